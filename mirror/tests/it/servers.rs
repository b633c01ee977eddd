//! Servers the registry tests talk to, all on loopback, besides Debian's docker-registry (distribution 2.8,
//! `kubeha_lab::Registry`): a pushing helper, a scriptable HTTP proxy that fails/corrupts/truncates/redirects, and a
//! Bearer token server whose JWTs distribution verifies (ES256, `x5c` chain to `rootcertbundle`).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use kubeha_mirror::digest::Digest;
use kubeha_mirror::synth::SynthImage;

/// Pushes blobs and manifests to an unauthenticated registry.
pub struct Pusher {
    pub base: String,
    http: reqwest::blocking::Client,
}

impl Pusher {
    pub fn new(base: &str) -> Pusher {
        Pusher {
            base: base.to_string(),
            http: reqwest::blocking::Client::new(),
        }
    }

    pub fn blob(&self, repo: &str, data: &[u8]) -> Digest {
        let d = Digest::of(data);
        let head = self
            .http
            .head(format!("{}/v2/{repo}/blobs/{d}", self.base))
            .send()
            .unwrap();
        if head.status().is_success() {
            return d;
        }
        // monolithic upload: POST to start, PUT with the whole body
        let r = self
            .http
            .post(format!("{}/v2/{repo}/blobs/uploads/", self.base))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 202, "start upload to {repo}");
        let loc = r.headers()["location"].to_str().unwrap().to_string();
        let url = if loc.starts_with("http") {
            loc
        } else {
            format!("{}{loc}", self.base)
        };
        let sep = if url.contains('?') { '&' } else { '?' };
        let r = self
            .http
            .put(format!("{url}{sep}digest={d}"))
            .header("content-type", "application/octet-stream")
            .body(data.to_vec())
            .send()
            .unwrap();
        assert_eq!(
            r.status().as_u16(),
            201,
            "upload {d} to {repo}: {:?}",
            r.text()
        );
        d
    }

    pub fn manifest(&self, repo: &str, tag: &str, media_type: &str, body: &[u8]) {
        let r = self
            .http
            .put(format!("{}/v2/{repo}/manifests/{tag}", self.base))
            .header("content-type", media_type)
            .body(body.to_vec())
            .send()
            .unwrap();
        assert_eq!(
            r.status().as_u16(),
            201,
            "manifest {repo}:{tag}: {:?}",
            r.text()
        );
    }

    /// Pushes every blob of an image and its manifest under `repo:tag` (or only by digest when `tag` is None).
    pub fn image(&self, repo: &str, tag: Option<&str>, img: &SynthImage) {
        for l in &img.layers {
            self.blob(repo, &l.blob);
        }
        self.blob(repo, &img.config);
        let t = tag
            .map(str::to_string)
            .unwrap_or_else(|| img.descriptor.digest.to_string());
        self.manifest(repo, &t, &img.descriptor.media_type, &img.manifest);
    }
}

/// One request the proxy saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: BTreeMap<String, String>,
}

/// What the proxy does with a request.
pub enum Action {
    /// Pass it to the upstream unchanged.
    Forward,
    /// Answer it directly.
    Respond(u16, Vec<(String, String)>, Vec<u8>),
    /// Forward, then flip one byte of the response body.
    Corrupt,
    /// Forward, send the headers and this many body bytes slowly, then drop the connection.
    Truncate(usize),
    /// Forward, sending the body at about this many bytes per second.
    Throttle(usize),
}

type Rule = dyn Fn(&Seen, usize) -> Action + Send + Sync;

/// A one-request-per-connection HTTP proxy in front of `upstream` (`host:port`, plain HTTP), listening on `ip`.
pub struct Proxy {
    pub port: u16,
    pub ip: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    pub sent_body_bytes: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    /// `rule(request, how many earlier requests had the same path)` decides.
    pub fn start(
        ip: &str,
        upstream: String,
        rule: impl Fn(&Seen, usize) -> Action + Send + Sync + 'static,
    ) -> Proxy {
        let listener = TcpListener::bind((ip, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::<Seen>::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let rule: Arc<Rule> = Arc::new(rule);
        {
            let (seen, stop, sent) = (seen.clone(), stop.clone(), sent.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(conn) = conn else { continue };
                    let (seen, rule, up, sent) =
                        (seen.clone(), rule.clone(), upstream.clone(), sent.clone());
                    std::thread::spawn(move || {
                        let _ = serve(conn, &up, &seen, &*rule, &sent);
                    });
                }
            });
        }
        Proxy {
            port,
            ip: ip.to_string(),
            seen,
            sent_body_bytes: sent,
            stop,
        }
    }

    pub fn host(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn count(&self, pred: impl Fn(&Seen) -> bool) -> usize {
        self.requests().iter().filter(|s| pred(s)).count()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect((self.ip.as_str(), self.port));
    }
}

fn read_request(conn: &mut BufReader<TcpStream>) -> std::io::Result<Seen> {
    let mut line = String::new();
    conn.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        conn.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    Ok(Seen {
        method,
        path,
        headers,
    })
}

fn serve(
    conn: TcpStream,
    upstream: &str,
    seen: &Mutex<Vec<Seen>>,
    rule: &Rule,
    sent: &AtomicUsize,
) -> std::io::Result<()> {
    let mut r = BufReader::new(conn.try_clone()?);
    let req = read_request(&mut r)?;
    let n = {
        let mut s = seen.lock().unwrap();
        let n = s.iter().filter(|x| x.path == req.path).count();
        s.push(req.clone());
        n
    };
    let mut out = conn;
    let action = rule(&req, n);
    if let Action::Respond(code, headers, body) = &action {
        let mut resp = format!(
            "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (k, v) in headers {
            resp.push_str(&format!("{k}: {v}\r\n"));
        }
        resp.push_str("\r\n");
        out.write_all(resp.as_bytes())?;
        out.write_all(body)?;
        return Ok(());
    }
    // forward (GET/HEAD only: the client under test never sends a body)
    let mut up = TcpStream::connect(upstream)?;
    let mut fwd = format!(
        "{} {} HTTP/1.1\r\nHost: {upstream}\r\nConnection: close\r\n",
        req.method, req.path
    );
    for (k, v) in &req.headers {
        if k != "host" && k != "connection" {
            fwd.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    fwd.push_str("\r\n");
    up.write_all(fwd.as_bytes())?;
    let mut resp = Vec::new();
    up.read_to_end(&mut resp)?;
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .unwrap_or(resp.len());
    let (head, body) = resp.split_at(split);
    let mut body = body.to_vec();
    match action {
        Action::Forward => {
            out.write_all(head)?;
            out.write_all(&body)?;
            sent.fetch_add(body.len(), Ordering::SeqCst);
        }
        Action::Corrupt => {
            if !body.is_empty() {
                let i = body.len() / 2;
                body[i] ^= 0x55;
            }
            out.write_all(head)?;
            out.write_all(&body)?;
        }
        Action::Truncate(k) => {
            out.write_all(head)?;
            for chunk in body[..k.min(body.len())].chunks(64 << 10) {
                out.write_all(chunk)?;
                sent.fetch_add(chunk.len(), Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
            }
            // drop the connection mid-body
        }
        Action::Throttle(bps) => {
            out.write_all(head)?;
            let chunk = (bps / 20).max(1024);
            for c in body.chunks(chunk) {
                out.write_all(c)?;
                sent.fetch_add(c.len(), Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Action::Respond(..) => unreachable!(),
    }
    Ok(())
}

/// A Bearer token server for distribution's `auth: token:`: checks Basic credentials and signs ES256 JWTs with
/// an `x5c` header naming its self-signed certificate (the registry's `rootcertbundle`).
pub struct TokenServer {
    pub port: u16,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    pub rootcert: PathBuf,
    pub issuer: &'static str,
    pub service: &'static str,
}

impl TokenServer {
    /// `access_token`: answer with `access_token` instead of `token`.
    pub fn start(
        dir: &Path,
        user: &'static str,
        password: &'static str,
        access_token: bool,
    ) -> TokenServer {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["kubeha-test-token".to_string()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let rootcert = dir.join("token.crt");
        std::fs::write(&rootcert, cert.pem()).unwrap();
        let x5c = base64::engine::general_purpose::STANDARD.encode(cert.der().as_ref());
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (issuer, service) = ("kubeha-test-issuer", "kubeha-test-registry");
        {
            let seen = seen.clone();
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    let Ok(conn) = conn else { continue };
                    let mut r = BufReader::new(conn.try_clone().unwrap());
                    let Ok(req) = read_request(&mut r) else {
                        continue;
                    };
                    seen.lock().unwrap().push(req.clone());
                    let want = format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD
                            .encode(format!("{user}:{password}"))
                    );
                    let mut out = conn;
                    if req.headers.get("authorization") != Some(&want) {
                        let _ = out.write_all(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                        continue;
                    }
                    let q = url::Url::parse(&format!("http://x{}", req.path)).unwrap();
                    let scopes: Vec<String> = q
                        .query_pairs()
                        .filter(|(k, _)| k == "scope")
                        .map(|(_, v)| v.into_owned())
                        .collect();
                    let access: Vec<serde_json::Value> = scopes
                        .iter()
                        .filter_map(|s| {
                            let mut p = s.splitn(3, ':');
                            let (t, name, actions) = (p.next()?, p.next()?, p.next()?);
                            Some(serde_json::json!({"type": t, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
                        })
                        .collect();
                    let jwt = sign_jwt(&key, &x5c, issuer, service, &access);
                    let field = if access_token {
                        "access_token"
                    } else {
                        "token"
                    };
                    let body = serde_json::json!({field: jwt, "expires_in": 300}).to_string();
                    let _ = out.write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        )
                        .as_bytes(),
                    );
                }
            });
        }
        TokenServer {
            port,
            seen,
            rootcert,
            issuer,
            service,
        }
    }

    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }
}

fn b64url(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

fn sign_jwt(
    key: &rcgen::KeyPair,
    x5c: &str,
    issuer: &str,
    service: &str,
    access: &[serde_json::Value],
) -> String {
    use rcgen::SigningKey as _;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [x5c]});
    let claims = serde_json::json!({
        "iss": issuer, "sub": "kubeha", "aud": service,
        "exp": now + 300, "nbf": now - 10, "iat": now - 10, "jti": format!("{now}-{}", access.len()),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let der = key.sign(signing_input.as_bytes()).unwrap();
    format!("{signing_input}.{}", b64url(&der_to_raw(&der)))
}

/// ECDSA DER `SEQUENCE { INTEGER r, INTEGER s }` → JWS `r || s` (32 bytes each).
fn der_to_raw(der: &[u8]) -> Vec<u8> {
    let mut i = 2; // SEQUENCE tag + short length (signatures are < 128 bytes)
    let mut out = Vec::new();
    for _ in 0..2 {
        assert_eq!(der[i], 0x02);
        let len = der[i + 1] as usize;
        let mut v = &der[i + 2..i + 2 + len];
        while v.len() > 32 && v[0] == 0 {
            v = &v[1..];
        }
        out.extend(std::iter::repeat_n(0u8, 32 - v.len()));
        out.extend_from_slice(v);
        i += 2 + len;
    }
    out
}

/// A TLS certificate and key for 127.0.0.1 (returns cert path, key path, CA PEM = the cert itself).
pub fn tls_cert(dir: &Path) -> (PathBuf, PathBuf, Vec<u8>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    let cert = params.self_signed(&key).unwrap();
    let c = dir.join("tls.crt");
    let k = dir.join("tls.key");
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k, cert.pem().into_bytes())
}
