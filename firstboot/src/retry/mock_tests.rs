use std::time::{Duration, Instant};

use super::*;
use crate::testutil::{Reply, Server};

fn fast(timeout_ms: u64) -> Client {
    Client::with_timeout(Duration::from_millis(timeout_ms))
        .unwrap()
        .max_retries(2)
        .backoff(Duration::from_millis(50), Duration::from_millis(100))
}

#[test]
fn ok_404_and_retry_then_ok() {
    let s = Server::start(vec![Reply::Status(200, b"hello".to_vec())]);
    assert_eq!(fast(2000).get(&s.url("/a")).unwrap().unwrap(), b"hello");

    let s = Server::start(vec![Reply::Status(404, vec![])]);
    assert!(fast(2000)
        .return_on_404(true)
        .get(&s.url("/a"))
        .unwrap()
        .is_none());
    let e = fast(2000).get(&s.url("/a")).unwrap_err();
    assert!(
        e.is::<Refused>(),
        "404 without return_on_404 is refused: {e}"
    );

    let s = Server::start(vec![
        Reply::Status(500, vec![]),
        Reply::Status(200, b"x".to_vec()),
    ]);
    assert_eq!(fast(2000).get(&s.url("/a")).unwrap().unwrap(), b"x");
    assert_eq!(s.requests().len(), 2, "one retry after the 500");

    let s = Server::start(vec![Reply::Status(503, vec![])]);
    let e = fast(2000).get(&s.url("/a")).unwrap_err();
    assert!(e.is::<Unavailable>(), "{e}");
    assert_eq!(s.requests().len(), 3, "1 attempt + 2 retries");

    let s = Server::start(vec![Reply::Status(403, vec![])]);
    let e = fast(2000).get(&s.url("/a")).unwrap_err();
    assert!(e.is::<Refused>() && e.to_string().contains("403"), "{e}");
    assert_eq!(s.requests().len(), 1, "4xx is not retried");
}

#[test]
fn stalled_server_times_out() {
    let s = Server::start(vec![Reply::Stall]);
    let t = Instant::now();
    let e = fast(300).max_retries(1).get(&s.url("/slow")).unwrap_err();
    assert!(e.is::<Unavailable>(), "{e}");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
}

#[test]
fn refused_connection_is_unavailable() {
    // Bind and drop to get a loopback port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = fast(500)
        .get(&format!("http://127.0.0.1:{port}/"))
        .unwrap_err();
    assert!(e.is::<Unavailable>(), "{e}");
}

#[test]
fn post_json_sends_the_document() {
    let s = Server::start(vec![Reply::Status(204, vec![])]);
    fast(2000)
        .post_json(&s.url("/report"), &serde_json::json!({"phase": "os"}))
        .unwrap();
    let r = s.requests();
    assert_eq!(r[0].method, "POST");
    let v: serde_json::Value = serde_json::from_slice(&r[0].body).unwrap();
    assert_eq!(v["phase"], "os");
}
