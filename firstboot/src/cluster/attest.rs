//! Majority attestation: the designated master runs `kubeadm init` only when a majority of the masters (itself
//! included) attest that they hold no cluster and are waiting for *it* to initialize. A master that is alone (its
//! peers are down, partitioned, on a wrong VLAN) can then never form a second cluster; and two masters that each
//! believe they are designated (a per-node `kubeha.bootstrap=`) cannot both collect a majority, because every
//! master attests for the one master its own config designates.
//!
//! Protocol, one TCP exchange on [`PORT`] (plain TCP, authenticated by an HMAC keyed by the masters-only
//! certificate key, so neither a worker nor anyone on the wire can forge an attestation, and a replay is useless
//! because the asker's nonce is inside the MAC):
//!
//! ```text
//! asker     -> "kubeha-attest/1 <nonce: 32 hex>\n"
//! responder <- "kubeha-attest/1 <name> <state> <designated> <hmac-sha256 hex>\n"
//! ```
//!
//! where the MAC covers `nonce|name|state|designated` and `state` is `waiting` (no control plane here, waiting for
//! `designated` to initialize) or `busy` (this master runs kubeadm or already has a control plane). Lines are at
//! most [`MAX_LINE`] bytes; anything else gets no answer.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use sha2::{Digest, Sha256};

/// The listener's port (in the model's port table, so the kickstart and the firewall step open it on masters).
pub const PORT: u16 = kubeha_model::kube::ports::ATTEST_PORT;
/// The longest request or reply line.
pub const MAX_LINE: usize = 512;
const VERSION: &str = "kubeha-attest/1";

/// What a master says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// It holds no cluster and waits for its designated master to initialize one.
    Waiting,
    /// It runs kubeadm or has a control plane: it attests nothing.
    Busy,
}

impl State {
    fn word(self) -> &'static str {
        match self {
            State::Waiting => "waiting",
            State::Busy => "busy",
        }
    }
}

/// A verified answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attestation {
    /// The master that answered.
    pub name: String,
    /// Its state.
    pub state: State,
    /// The master it waits for.
    pub designated: String,
}

/// The HMAC key: derived from the masters-only certificate key (workers never hold it).
pub fn key(certificate_key: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"kubeha attestation v1\0");
    h.update(certificate_key.as_bytes());
    h.finalize().into()
}

/// HMAC-SHA256 (RFC 2104) of the fields, joined by '|'.
fn mac(key: &[u8; 32], fields: &[&str]) -> String {
    let mut k = [0u8; 64];
    k[..32].copy_from_slice(key);
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let mut inner = Sha256::new();
    inner.update(pad(0x36));
    inner.update(fields.join("|").as_bytes());
    let mut outer = Sha256::new();
    outer.update(pad(0x5c));
    outer.update(inner.finalize());
    hex::encode(outer.finalize())
}

fn is_word(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.bytes().all(|b| b.is_ascii_graphic() && b != b'|')
}

/// The request line for `nonce` (32 hex).
pub fn request(nonce: &str) -> String {
    format!("{VERSION} {nonce}\n")
}

/// The nonce of a request line, if it is one.
pub fn parse_request(line: &str) -> Option<&str> {
    let nonce = line
        .trim_end_matches('\n')
        .strip_prefix(VERSION)?
        .strip_prefix(' ')?;
    (nonce.len() == 32 && nonce.bytes().all(|b| b.is_ascii_hexdigit())).then_some(nonce)
}

/// The reply line.
pub fn reply(key: &[u8; 32], nonce: &str, name: &str, state: State, designated: &str) -> String {
    let m = mac(key, &[nonce, name, state.word(), designated]);
    format!("{VERSION} {name} {} {designated} {m}\n", state.word())
}

/// Checks a reply to `nonce` that should come from `expect`.
pub fn verify(key: &[u8; 32], nonce: &str, line: &str, expect: &str) -> Result<Attestation> {
    let f: Vec<&str> = line.trim_end_matches('\n').split(' ').collect();
    let [v, name, state, designated, m] = f[..] else {
        bail!("not a kubeha attestation");
    };
    if v != VERSION || !is_word(name) || !is_word(designated) {
        bail!("not a kubeha attestation");
    }
    let state = match state {
        "waiting" => State::Waiting,
        "busy" => State::Busy,
        _ => bail!("not a kubeha attestation"),
    };
    if m != mac(key, &[nonce, name, state.word(), designated]) {
        bail!("the attestation's MAC does not verify (another cluster's master, or a forgery)");
    }
    if name != expect {
        bail!("the attestation comes from '{name}', not '{expect}'");
    }
    Ok(Attestation {
        name: name.to_string(),
        state,
        designated: designated.to_string(),
    })
}

/// A fresh nonce.
pub fn nonce() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// Asks the master at `addr` (named `expect`).
pub fn ask(
    key: &[u8; 32],
    addr: SocketAddrV4,
    expect: &str,
    timeout: Duration,
) -> Result<Attestation> {
    let n = nonce();
    let mut s = TcpStream::connect_timeout(&SocketAddr::V4(addr), timeout)
        .with_context(|| format!("connecting to {addr}"))?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.write_all(request(&n).as_bytes())?;
    let mut line = String::new();
    BufReader::new(s.take(MAX_LINE as u64))
        .read_line(&mut line)
        .with_context(|| format!("reading from {addr}"))?;
    verify(key, &n, &line, expect).with_context(|| format!("{addr}"))
}

/// The listener: answers every asker with this master's current state until dropped.
pub struct Responder {
    state: Arc<Mutex<(State, String)>>,
    stop: Arc<AtomicBool>,
}

impl Responder {
    /// Listens on `bind` and answers as `name`.
    pub fn start(
        key: [u8; 32],
        bind: SocketAddrV4,
        name: &str,
        state: State,
        designated: &str,
    ) -> Result<Responder> {
        let l = TcpListener::bind(bind)
            .with_context(|| format!("listening on {bind} for attestations"))?;
        Responder::serve(l, key, name, state, designated)
    }

    /// Answers on a bound listener.
    pub fn serve(
        l: TcpListener,
        key: [u8; 32],
        name: &str,
        state: State,
        designated: &str,
    ) -> Result<Responder> {
        let bind = l.local_addr()?;
        l.set_nonblocking(true)?;
        let shared = Arc::new(Mutex::new((state, designated.to_string())));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp, who) = (shared.clone(), stop.clone(), name.to_string());
        std::thread::spawn(move || {
            while !sp.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((conn, _)) => {
                        let (state, designated) = st
                            .lock()
                            .map(|g| g.clone())
                            .unwrap_or((State::Busy, String::new()));
                        let _ = answer(conn, &key, &who, state, &designated);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        });
        log::info!(
            "answering attestations on {bind} as {name} ({})",
            state.word()
        );
        Ok(Responder {
            state: shared,
            stop,
        })
    }

    /// Changes what it answers.
    pub fn set(&self, state: State, designated: &str) {
        if let Ok(mut g) = self.state.lock() {
            *g = (state, designated.to_string());
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn answer(
    conn: TcpStream,
    key: &[u8; 32],
    name: &str,
    state: State,
    designated: &str,
) -> Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(2)))?;
    conn.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut line = String::new();
    BufReader::new((&conn).take(MAX_LINE as u64)).read_line(&mut line)?;
    let Some(nonce) = parse_request(&line) else {
        return Ok(());
    };
    (&conn).write_all(reply(key, nonce, name, state, designated).as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The MAC is RFC 2104 HMAC-SHA256: checked against RFC 4231 test case 2 ("Jefe").
    #[test]
    fn hmac_is_rfc_4231() {
        let mut k = [0u8; 32];
        k[..4].copy_from_slice(b"Jefe");
        assert_eq!(
            mac(&k, &["what do ya want for nothing?"]),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn replies_verify_only_with_the_key_the_nonce_and_the_name() {
        let k = key(&"a".repeat(64));
        let other = key(&"b".repeat(64));
        let n = nonce();
        let r = reply(&k, &n, "k8s-master02", State::Waiting, "k8s-master01");
        let a = verify(&k, &n, &r, "k8s-master02").unwrap();
        assert_eq!(a.state, State::Waiting);
        assert_eq!(a.designated, "k8s-master01");
        assert!(verify(&other, &n, &r, "k8s-master02")
            .unwrap_err()
            .to_string()
            .contains("MAC"));
        assert!(
            verify(&k, &nonce(), &r, "k8s-master02").is_err(),
            "replayed for another nonce"
        );
        assert!(
            verify(&k, &n, &r, "k8s-master03").is_err(),
            "relayed from another master"
        );
        let forged = r.replace("waiting", "busy");
        assert!(verify(&k, &n, &forged, "k8s-master02").is_err());
        for junk in ["", "\n", "kubeha-attest/1", &"x".repeat(600)] {
            assert!(verify(&k, &n, junk, "k8s-master02").is_err(), "{junk:?}");
        }
        assert_eq!(parse_request(&request(&n)), Some(n.as_str()));
        assert_eq!(parse_request("kubeha-attest/1 zz\n"), None);
    }

    /// A real listener on loopback: asked, it answers; changed, it answers the new state; dropped, it stops.
    #[test]
    fn responder_answers_over_tcp() {
        let k = key(&"c".repeat(64));
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = SocketAddrV4::new(
            std::net::Ipv4Addr::LOCALHOST,
            l.local_addr().unwrap().port(),
        );
        let r = Responder::serve(l, k, "k8s-master03", State::Waiting, "k8s-master01").unwrap();
        let t = Duration::from_secs(2);
        let a = ask(&k, addr, "k8s-master03", t).unwrap();
        assert_eq!(
            (a.state, a.designated.as_str()),
            (State::Waiting, "k8s-master01")
        );
        r.set(State::Busy, "k8s-master01");
        assert_eq!(ask(&k, addr, "k8s-master03", t).unwrap().state, State::Busy);
        assert!(ask(&key(&"d".repeat(64)), addr, "k8s-master03", t).is_err());
        drop(r);
        std::thread::sleep(Duration::from_millis(200));
        assert!(ask(&k, addr, "k8s-master03", Duration::from_millis(300)).is_err());
    }
}
