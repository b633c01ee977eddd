use std::time::{Duration, Instant};

use super::*;
use crate::providers::{fixtures, parse_config};
use crate::retry::Unavailable;
use crate::testutil::{Reply, Server};
use sha2::{Digest, Sha256};

fn provider(url: String, timeout_ms: u64) -> HttpProvider {
    HttpProvider {
        url,
        client: Client::with_timeout(Duration::from_millis(timeout_ms))
            .unwrap()
            .max_retries(2)
            .backoff(Duration::from_millis(50), Duration::from_millis(100))
            .return_on_404(true),
    }
}

fn fetch_and_parse(
    p: &HttpProvider,
    pin: Option<&str>,
) -> Result<Option<kubeha_model::NodeConfig>> {
    match p.fetch()? {
        None => Ok(None),
        Some(f) => Ok(Some(parse_config(&f.data, &f.source, pin)?)),
    }
}

#[test]
fn http_metadata_cases() {
    let good = fixtures::config().to_toml().into_bytes();
    let pin = hex::encode(Sha256::digest(&good));

    // 200
    let s = Server::start(vec![Reply::Status(200, good.clone())]);
    let c = fetch_and_parse(
        &provider(s.url("/n/52:54:00:00:00:01.toml"), 2000),
        Some(&pin),
    )
    .unwrap();
    assert_eq!(c, Some(fixtures::config()));
    assert_eq!(s.requests()[0].path, "/n/52:54:00:00:00:01.toml");

    // 404 → nothing there yet
    let s = Server::start(vec![Reply::Status(404, b"no".to_vec())]);
    assert_eq!(
        fetch_and_parse(&provider(s.url("/x"), 2000), None).unwrap(),
        None
    );

    // 500 then 200 → retried, then fine
    let s = Server::start(vec![
        Reply::Status(500, vec![]),
        Reply::Status(200, good.clone()),
    ]);
    assert_eq!(
        fetch_and_parse(&provider(s.url("/x"), 2000), None).unwrap(),
        Some(fixtures::config())
    );
    assert_eq!(s.requests().len(), 2);

    // stalled response → times out, Unavailable
    let s = Server::start(vec![Reply::Stall]);
    let t = Instant::now();
    let e = fetch_and_parse(&provider(s.url("/x"), 300), None).unwrap_err();
    assert!(e.is::<Unavailable>(), "{e:#}");
    assert!(t.elapsed() < Duration::from_secs(6), "{:?}", t.elapsed());

    // bad TOML → an error naming the URL
    let s = Server::start(vec![Reply::Status(200, b"[cluster\n".to_vec())]);
    let e = format!(
        "{:#}",
        fetch_and_parse(&provider(s.url("/bad.toml"), 2000), None).unwrap_err()
    );
    assert!(e.contains("/bad.toml") && e.contains("parsing"), "{e}");

    // sha256 mismatch → an error naming both hashes
    let s = Server::start(vec![Reply::Status(200, good.clone())]);
    let wrong = "0".repeat(64);
    let e = format!(
        "{:#}",
        fetch_and_parse(&provider(s.url("/x"), 2000), Some(&wrong)).unwrap_err()
    );
    assert!(
        e.contains("sha256 mismatch") && e.contains(&pin) && e.contains(&wrong),
        "{e}"
    );

    // 403 → refused, not retried
    let s = Server::start(vec![Reply::Status(403, vec![])]);
    let e = format!(
        "{:#}",
        fetch_and_parse(&provider(s.url("/x"), 2000), None).unwrap_err()
    );
    assert!(e.contains("403"), "{e}");
    assert_eq!(s.requests().len(), 1);
}
