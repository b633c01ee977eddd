//! Start-up and the HTTP routes.
//!
//! ```text
//! GET  /boot.ipxe?mac=MAC                 iPXE script: the installer for a known node that is not installed,
//!                                         the local disk otherwise (unknown machines too)
//! GET  /nodes/NAME/ks.cfg                 the node's kickstart (its network fixed; bundle over HTTP)
//! GET  /nodes/NAME/MAC.toml               the node's config, pinned by sha256 on the command line handed out;
//!                                         403 for another machine's MAC, 410 for an installed master's
//! GET  /kubeha/...                        the bundle (only files bundle.toml lists), agent/, node.toml (no keys)
//! GET  /os/...                            the base ISO's tree (inst.repo=, the installer kernel and initrd)
//! POST /api/report[/MAC]                  a node's report (model::report), at most MAX_REPORT_BYTES
//! POST /api/reimage/NAME                  reinstall NAME on its next network boot (header X-Kubeha-Reimage)
//! GET  /api/fleet                         the fleet (fleet::FleetView) as JSON
//! GET  /events                            the fleet as server-sent events (events), 503 beyond --max-event-clients
//! GET  /                                  the fleet page
//! ```
//!
//! MACs in paths are written with dashes (`52-54-00-12-34-01`) so the URLs hold nothing a shell or a boot
//! loader would read specially. A MAC in a URL is what the machine says it is: over plain HTTP the sha256 pin
//! keeps a config from being altered, not from being read by a machine that lies about its MAC (docs/serve.md).

use std::collections::HashSet;
use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use kubeha_image::Agent;
use kubeha_kickstart::{Options, Source};
use kubeha_model::cluster::{normalize_mac, Role};
use kubeha_model::kernel_args::{ConfigLocation, KernelArgs};
use kubeha_model::report::{Report, MAX_REPORT_BYTES};
use kubeha_model::{Cluster, NodeConfig, Secrets};
use kubeha_runner::Cmd;
use tiny_http::{Header, Method, Request, Response};

use crate::events::Hub;
use crate::fleet::{now, Fleet, Verdict};
use crate::journal::{Entry, Journal};
use crate::{io, Error, Result};

/// The journal's file name under the state directory.
pub const JOURNAL: &str = "journal.jsonl";
/// The base ISO's extracted tree under the state directory.
pub const OS_DIR: &str = "os";
const OS_STAMP: &str = "os.stamp";
const KERNEL: &str = "images/pxeboot/vmlinuz";
const INITRD: &str = "images/pxeboot/initrd.img";
const PAGE: &str = include_str!("page.html");
/// The header a reimage request must carry: a cross-site form or image cannot set it, so a page the operator
/// visits elsewhere cannot reimage a node.
pub const REIMAGE_HEADER: &str = "X-Kubeha-Reimage";

/// Everything `kubeha serve` needs.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The cluster.
    pub cluster: Cluster,
    /// Its secrets (masters' configs carry the CA keys).
    pub secrets: Secrets,
    /// The bundle directory.
    pub bundle: PathBuf,
    /// The base EL install ISO.
    pub base: PathBuf,
    /// The state directory: the journal and the ISO's extracted tree.
    pub state: PathBuf,
    /// The address to listen on (`ADDR:PORT`; port 0 picks one).
    pub listen: String,
    /// The URL nodes reach this server at (default: `http://` + the listening address).
    pub url: Option<String>,
    /// The agent files.
    pub agent: Agent,
    /// The bundle's minisign public key line, put in every node config.
    pub bundle_pubkey: Option<String>,
    /// The kickstart's EL release (default: the ISO's, else cluster.toml's).
    pub el: Option<u8>,
    /// The most `/events` streams open at once (more get 503).
    pub max_event_clients: usize,
    /// HTTPS: the certificate chain and its private key (PEM files; the key PKCS#8 or PKCS#1 RSA).
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// What one node is served.
#[derive(Debug, Clone)]
struct NodeAssets {
    name: String,
    role: Role,
    mac: String,
    config: String,
    sha256: String,
    kickstart: String,
}

struct State {
    fleet: Fleet,
    journal: Journal,
}

struct App {
    url: String,
    nodes: Vec<NodeAssets>,
    shared_config: String,
    bundle: PathBuf,
    bundle_files: HashSet<String>,
    os: PathBuf,
    agent: Agent,
    state: Mutex<State>,
    hub: Arc<Hub>,
    /// The fleet document last built: the generation and second it shows, and its JSON.
    view: Mutex<Option<(u64, String, Arc<String>)>>,
}

/// A started server.
pub struct Server {
    http: Arc<tiny_http::Server>,
    app: Arc<App>,
    addr: SocketAddr,
}

fn bad(field: &str, message: impl Into<String>) -> Error {
    Error::Value {
        field: field.into(),
        message: message.into(),
    }
}

/// `52-54-00-12-34-01`.
fn dashed(mac: &str) -> String {
    mac.replace(':', "-")
}

impl Server {
    /// Verifies the bundle, extracts the base ISO (once per ISO), renders every node's kickstart and config,
    /// replays the journal and starts listening. Nodes without a MAC in cluster.toml get nothing per-MAC (warned).
    pub fn start(spec: Spec) -> Result<Server> {
        spec.agent.check()?;
        let verified = kubeha_image::bundle::verify(&spec.bundle)?;
        let size = std::fs::metadata(&spec.base)
            .map_err(io("reading", &spec.base))?
            .len();
        kubeha_image::iso::check_volume_size(&spec.base, size)?;
        std::fs::create_dir_all(&spec.state).map_err(io("creating", &spec.state))?;
        let (os, iso_el) = os_tree(&spec.base, &spec.state, &verified.manifest.profile.arch)?;
        match iso_el {
            Some(e) if e != verified.manifest.profile.el => {
                return Err(kubeha_image::Error::WrongRelease {
                    path: spec.base.clone(),
                    iso_el: e,
                    bundle_el: verified.manifest.profile.el,
                }
                .into())
            }
            _ => {}
        }
        let el = spec.el.or(iso_el).unwrap_or(spec.cluster.install.el);

        let listener = TcpListener::bind(&spec.listen).map_err(|e| Error::Listen {
            addr: spec.listen.clone(),
            message: e.to_string(),
        })?;
        let addr = listener.local_addr().map_err(|e| Error::Listen {
            addr: spec.listen.clone(),
            message: e.to_string(),
        })?;
        let url = match &spec.url {
            Some(u) => {
                let u = u.trim_end_matches('/').to_string();
                if !(u.starts_with("http://") || u.starts_with("https://"))
                    || u.contains(char::is_whitespace)
                    || u.contains(['"', '?', '#'])
                {
                    return Err(bad("--url", format!("'{u}' is not an http(s) base URL")));
                }
                u
            }
            None if addr.ip().is_unspecified() => {
                return Err(bad(
                    "--url",
                    format!(
                        "listening on {addr}: give the URL nodes reach this server at (--url http://10.0.0.5:{})",
                        addr.port()
                    ),
                ))
            }
            None if spec.tls.is_some() => format!("https://{addr}"),
            None => format!("http://{addr}"),
        };
        let ssl = match &spec.tls {
            None => None,
            Some((cert, key)) => Some(tls_config(cert, key)?),
        };
        let base = format!("{url}/{}", kubeha_kickstart::MEDIA_DIR);

        let mut shared = NodeConfig::build(&spec.cluster, &spec.secrets, None, None, false)?;
        shared.bundle.url = Some(base.clone());
        shared.bundle.public_key = spec.bundle_pubkey.clone();
        let mut nodes = Vec::new();
        for (role, n) in spec.cluster.nodes() {
            let Some(m) = &n.mac else {
                log::warn!(
                    "{}: no mac in cluster.toml: kubeha serve cannot recognise it at network boot",
                    n.name
                );
                continue;
            };
            let mac = normalize_mac(m).ok_or_else(|| {
                bad(
                    &format!("{}.mac", n.name),
                    format!("'{m}' is not a MAC address"),
                )
            })?;
            // Masters get the CA keys (they must be able to init or join at any time); workers none.
            let mut nc = NodeConfig::build(
                &spec.cluster,
                &spec.secrets,
                Some(role),
                Some(&n.name),
                role == Role::Master,
            )?;
            nc.bundle.url = Some(base.clone());
            nc.bundle.public_key = spec.bundle_pubkey.clone();
            let config = nc.to_toml();
            let mut ko = Options::new(el, Source::Http(base.clone()));
            ko.node = Some(n.name.clone());
            ko.packages = verified.manifest.requested_packages();
            let kickstart = kubeha_kickstart::render(&spec.cluster, &ko)?;
            nodes.push(NodeAssets {
                name: n.name.clone(),
                role,
                mac,
                sha256: kubeha_image::pxe::sha256_hex(config.as_bytes()),
                config,
                kickstart,
            });
        }
        let mut bundle_files: HashSet<String> = verified
            .manifest
            .files
            .iter()
            .map(|f| f.path.clone())
            .collect();
        bundle_files.insert(kubeha_model::bundle::MANIFEST.to_string());
        if spec
            .bundle
            .join(kubeha_model::bundle::MANIFEST_SIGNATURE)
            .is_file()
        {
            bundle_files.insert(kubeha_model::bundle::MANIFEST_SIGNATURE.to_string());
        }

        let journal_path = spec.state.join(JOURNAL);
        let (journal, entries) = Journal::open(&journal_path)?;
        let mut fleet = Fleet::new(&spec.cluster);
        for e in &entries {
            fleet.apply(e);
        }
        log::info!(
            "{}: {} entries replayed",
            journal_path.display(),
            entries.len()
        );
        // Without it, a response larger than tiny_http's 1 KiB write buffer ends in Nagle's algorithm waiting for
        // the client's delayed ACK: ~40 ms on every `/api/fleet` over a kept-alive connection (make bench-serve).
        // Linux hands the option on to every accepted connection.
        if let Err(e) =
            nix::sys::socket::setsockopt(&listener, nix::sys::socket::sockopt::TcpNoDelay, &true)
        {
            log::warn!("{addr}: TCP_NODELAY: {e}");
        }
        let http = tiny_http::Server::from_listener(listener, ssl).map_err(|e| Error::Listen {
            addr: spec.listen.clone(),
            message: e.to_string(),
        })?;
        Ok(Server {
            http: Arc::new(http),
            addr,
            app: Arc::new(App {
                url,
                nodes,
                shared_config: shared.to_toml(),
                bundle: spec.bundle,
                bundle_files,
                os,
                agent: spec.agent,
                state: Mutex::new(State { fleet, journal }),
                hub: Hub::new(spec.max_event_clients),
                view: Mutex::new(None),
            }),
        })
    }

    /// The URL nodes are given.
    pub fn url(&self) -> &str {
        &self.app.url
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves with `threads` threads until the process ends.
    pub fn run(self, threads: usize) {
        let mut handles = Vec::new();
        for _ in 0..threads.max(1) {
            let http = self.http.clone();
            let app = self.app.clone();
            handles.push(std::thread::spawn(move || {
                while let Ok(req) = http.recv() {
                    app.handle(req);
                }
            }));
        }
        for h in handles {
            let _ = h.join();
        }
    }
}

/// Reads `--tls-cert` and `--tls-key` for tiny_http. The key's PEM label is checked here (tiny_http panics on a key
/// it cannot use); errors name the option and file, never a byte of the key.
fn tls_config(cert: &Path, key: &Path) -> Result<tiny_http::SslConfig> {
    let certificate = std::fs::read(cert).map_err(io("reading", cert))?;
    if !certificate
        .windows(27)
        .any(|w| w == b"-----BEGIN CERTIFICATE-----")
    {
        return Err(bad(
            "--tls-cert",
            format!("{}: no PEM certificate in it", cert.display()),
        ));
    }
    let private_key = std::fs::read(key).map_err(io("reading", key))?;
    let has = |label: &[u8]| private_key.windows(label.len()).any(|w| w == label);
    if !(has(b"-----BEGIN PRIVATE KEY-----") || has(b"-----BEGIN RSA PRIVATE KEY-----")) {
        return Err(bad(
            "--tls-key",
            format!(
                "{}: not an unencrypted PEM private key in PKCS#8 (BEGIN PRIVATE KEY) or PKCS#1 RSA form",
                key.display()
            ),
        ));
    }
    Ok(tiny_http::SslConfig {
        certificate,
        private_key,
    })
}

/// The base ISO's tree under `state/os`, extracted once per ISO (path, size and mtime in `os.stamp`); checked for
/// the installer kernel and against the bundle's architecture. Returns the tree and the ISO's EL release.
fn os_tree(iso: &Path, state: &Path, arch: &str) -> Result<(PathBuf, Option<u8>)> {
    let meta = std::fs::metadata(iso).map_err(io("reading", iso))?;
    let canon = std::fs::canonicalize(iso).map_err(io("reading", iso))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let stamp = format!("{}\n{}\n{mtime}\n", canon.display(), meta.len());
    let os = state.join(OS_DIR);
    let stamp_path = state.join(OS_STAMP);
    let work = state.join(".inspect");
    let _ = std::fs::remove_dir_all(&work);
    let b = kubeha_image::iso::inspect(iso, &work)?;
    let _ = std::fs::remove_dir_all(&work);
    if b.arch != arch {
        return Err(kubeha_image::Error::WrongArch {
            path: iso.to_path_buf(),
            iso_arch: b.arch,
            want: arch.to_string(),
        }
        .into());
    }
    let current = std::fs::read_to_string(&stamp_path).ok().as_deref() == Some(stamp.as_str());
    if !current || !os.is_dir() {
        log::info!("extracting {} into {}", iso.display(), os.display());
        let tmp = state.join(format!(".os.{}", std::process::id()));
        remove_tree(&tmp)?;
        let xorriso = Cmd::new("xorriso")
            .env("LANG", "C")
            .args(["-osirrox", "on", "-indev"])
            .arg_path(iso)
            .args(["-extract", "/"])
            .arg_path(&tmp);
        let out = kubeha_runner::output(&xorriso).map_err(|e| match e {
            kubeha_runner::Error::Start { source, .. }
            | kubeha_runner::Error::Io { source, .. } => io("running xorriso on", iso)(source),
            e => bad("--base", e.to_string()),
        })?;
        if !out.success() {
            return Err(bad(
                "--base",
                format!(
                    "xorriso could not extract {}: {}",
                    iso.display(),
                    String::from_utf8_lossy(&out.stderr)
                        .lines()
                        .last()
                        .unwrap_or("")
                ),
            ));
        }
        writable(&tmp)?;
        remove_tree(&os)?;
        std::fs::rename(&tmp, &os).map_err(io("writing", &os))?;
        kubeha_model::fsutil::write_atomic(&stamp_path, stamp.as_bytes(), 0o644, true)?;
    }
    for f in [KERNEL, INITRD] {
        if !os.join(f).is_file() {
            return Err(bad(
                "--base",
                format!(
                    "{} has no {f}: not an EL install ISO with PXE boot files",
                    iso.display()
                ),
            ));
        }
    }
    let os = std::fs::canonicalize(&os).map_err(io("reading", &os))?;
    Ok((os, b.el))
}

/// Gives the owner write permission on every directory (osirrox keeps the ISO's read-only modes, and a
/// read-only directory cannot be emptied when the ISO changes).
fn writable(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mode = std::fs::metadata(&d)
            .map_err(io("reading", &d))?
            .permissions()
            .mode();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode((mode | 0o755) & 0o7777))
            .map_err(io("writing", &d))?;
        for e in std::fs::read_dir(&d).map_err(io("reading", &d))? {
            let e = e.map_err(io("reading", &d))?;
            if e.file_type().map_err(io("reading", e.path()))?.is_dir() {
                stack.push(e.path());
            }
        }
    }
    Ok(())
}

fn remove_tree(p: &Path) -> Result<()> {
    if p.exists() {
        writable(p)?;
        std::fs::remove_dir_all(p).map_err(io("removing", p))?;
    }
    Ok(())
}

type Reply = Response<Box<dyn Read + Send>>;

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("a valid header")
}

fn reply(code: u16, ctype: &str, body: impl Into<Vec<u8>>) -> Reply {
    let body: Vec<u8> = body.into();
    let len = body.len();
    Response::new(
        code.into(),
        vec![header("Content-Type", ctype)],
        Box::new(std::io::Cursor::new(body)) as Box<dyn Read + Send>,
        Some(len),
        None,
    )
    .with_chunked_threshold(usize::MAX)
}

fn text(code: u16, body: impl Into<String>) -> Reply {
    let mut b: String = body.into();
    b.push('\n');
    reply(code, "text/plain; charset=utf-8", b)
}

fn json(code: u16, v: &serde_json::Value) -> Reply {
    reply(code, "application/json", v.to_string())
}

fn file(p: &Path) -> Reply {
    let ctype = match p.extension().and_then(|e| e.to_str()) {
        Some("xml") => "text/xml",
        Some("toml" | "cfg" | "yaml" | "txt") => "text/plain; charset=utf-8",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    };
    match std::fs::File::open(p) {
        Ok(f) => {
            let len = f.metadata().ok().map(|m| m.len() as usize);
            // Always Content-Length, never chunked (tiny_http's default above 32 KiB): dnf and the installer show
            // progress and check lengths with it.
            Response::new(
                200.into(),
                vec![header("Content-Type", ctype)],
                Box::new(f) as Box<dyn Read + Send>,
                len,
                None,
            )
            .with_chunked_threshold(usize::MAX)
        }
        Err(e) => {
            log::warn!("reading {}: {e}", p.display());
            text(404, "not found")
        }
    }
}

/// Decodes `%XX` escapes; `None` for a bad escape or a result that is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A relative path of plain components only (no `..`, `.`, root, empty or NUL): the only paths served from disk.
fn plain_relative(p: &str) -> Option<&Path> {
    if p.is_empty()
        || p.contains('\0')
        || p.split('/').any(|c| c.is_empty() || c == "." || c == "..")
    {
        return None;
    }
    let path = Path::new(p);
    path.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then_some(path)
}

fn query<'a>(q: &'a str, key: &str) -> Option<&'a str> {
    q.split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

impl App {
    fn handle(self: &Arc<Self>, mut req: Request) {
        let ip = req.remote_addr().map(|a| a.ip().to_string());
        let method = req.method().clone();
        let raw = req.url().to_string();
        let (path, q) = raw.split_once('?').unwrap_or((raw.as_str(), ""));
        if path == "/events" && method == Method::Get {
            return self.events(req);
        }
        let resp = match percent_decode(path) {
            None => text(400, "path: not a valid percent-encoded UTF-8 path"),
            Some(path) => self.route(&method, &path, q, ip, &mut req),
        };
        log::debug!("{method} {raw}: {}", resp.status_code().0);
        if let Err(e) = req.respond(resp) {
            log::debug!("answering {raw}: {e}");
        }
    }

    fn route(
        &self,
        method: &Method,
        path: &str,
        q: &str,
        ip: Option<String>,
        req: &mut Request,
    ) -> Reply {
        let get = matches!(method, Method::Get | Method::Head);
        let post = *method == Method::Post;
        match path {
            "/" if get => reply(200, "text/html; charset=utf-8", PAGE),
            "/api/fleet" if get => self.fleet(),
            "/boot.ipxe" if get => self.boot(q, ip),
            "/api/report" if post => self.report(None, ip, req),
            p if post && p.starts_with("/api/report/") => {
                let m = &p["/api/report/".len()..];
                match normalize_mac(m) {
                    Some(mac) => self.report(Some(mac), ip, req),
                    None => text(400, format!("mac: '{}' is not a MAC address", shown(m))),
                }
            }
            p if post && p.starts_with("/api/reimage/") => {
                self.reimage(&p["/api/reimage/".len()..], req)
            }
            p if get && p.starts_with("/nodes/") => self.node_file(&p["/nodes/".len()..], ip),
            p if get && p.starts_with("/kubeha/") => self.bundle_file(&p["/kubeha/".len()..]),
            p if get && p.starts_with("/os/") => self.os_file(&p["/os/".len()..]),
            _ if !get && !post => text(405, "method not allowed"),
            _ => text(404, "not found"),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves a state that is still consistent (each change is one apply).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Journals `e` and folds it into the fleet; false (logged) when the journal cannot be written.
    fn record(&self, st: &mut State, e: Entry) -> bool {
        if let Err(err) = st.journal.append(&e) {
            log::error!("{err}");
            return false;
        }
        st.fleet.apply(&e);
        // After the change is in the fleet: a document built for the new generation shows it.
        self.hub.changed();
        true
    }

    /// The fleet document (what `/api/fleet` answers) and the generation it shows; built once per change and
    /// second, however many clients ask.
    fn view_json(&self) -> (u64, Arc<String>) {
        // The generation first: the document built after it shows at least that generation.
        let g = self.hub.generation();
        let t = now();
        let mut cache = self.view.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((cg, ct, doc)) = cache.as_ref() {
            if *cg == g && *ct == t {
                return (g, doc.clone());
            }
        }
        let v = self.lock().fleet.view(&t);
        let doc = Arc::new(serde_json::to_string(&v).unwrap_or_else(|e| {
            log::error!("fleet: {e}");
            "{}".into()
        }));
        *cache = Some((g, t, doc.clone()));
        (g, doc)
    }

    /// `GET /events`: a stream on its own thread, or 503 when `--max-event-clients` are open.
    fn events(self: &Arc<Self>, req: Request) {
        let Some(ticket) = self.hub.join() else {
            log::warn!(
                "/events: {} streams open already (--max-event-clients): 503",
                self.hub.clients()
            );
            let resp = text(
                503,
                "events: too many live clients (kubeha serve --max-event-clients); poll /api/fleet",
            )
            .with_header(header("Retry-After", "30"));
            let _ = req.respond(resp);
            return;
        };
        let app = self.clone();
        let spawned = std::thread::Builder::new()
            .name("events".into())
            .spawn(move || {
                let _ticket = ticket;
                let mut w = req.into_writer();
                crate::events::stream(&app.hub, &mut w, &|| app.view_json());
                log::debug!("/events: a stream ended");
            });
        if let Err(e) = spawned {
            log::error!("/events: starting a stream: {e}");
        }
    }

    fn unknown(&self, mac: Option<String>, ip: Option<String>, what: &str) {
        let mut st = self.lock();
        if st.fleet.knows_unknown(mac.as_deref(), ip.as_deref()) {
            return;
        }
        log::warn!(
            "unknown machine {}: {what}",
            mac.as_deref().or(ip.as_deref()).unwrap_or("?")
        );
        let e = Entry::Unknown {
            at: now(),
            mac,
            ip,
            what: what.to_string(),
        };
        self.record(&mut st, e);
    }

    fn fleet(&self) -> Reply {
        let (_, doc) = self.view_json();
        reply(200, "application/json", doc.as_bytes())
    }

    fn boot(&self, q: &str, ip: Option<String>) -> Reply {
        let Some(m) = query(q, "mac") else {
            return text(400, "mac: missing (/boot.ipxe?mac=${net0/mac})");
        };
        let m = percent_decode(m).unwrap_or_default();
        let Some(mac) = normalize_mac(&m) else {
            return text(400, format!("mac: '{}' is not a MAC address", shown(&m)));
        };
        let Some(a) = self.nodes.iter().find(|a| a.mac == mac) else {
            self.unknown(Some(mac.clone()), ip, "boot.ipxe");
            return reply(
                200,
                "text/plain",
                format!("#!ipxe\necho kubeha: {mac} is not a node of this cluster: booting the local disk\nexit\n"),
            );
        };
        let mut st = self.lock();
        let (action, script) = if st.fleet.installed(&a.name) {
            (
                "local",
                format!(
                    "#!ipxe\n# kubeha serve: {0} ({1}) is installed\necho kubeha: {0} is installed: booting the local disk (kubeha serve reimage {0} reinstalls it)\nexit\n",
                    a.name, a.role
                ),
            )
        } else {
            let reinstall = st.fleet.reinstall(&a.name);
            match self.install_script(a, reinstall) {
                Ok(s) => (if reinstall { "reinstall" } else { "install" }, s),
                Err(e) => return text(500, format!("{}: {e}", a.name)),
            }
        };
        if st.fleet.boot_is_news(&a.name, action) {
            let e = Entry::Boot {
                at: now(),
                node: a.name.clone(),
                ip,
                action: action.into(),
            };
            self.record(&mut st, e);
        }
        log::info!("{} ({}): network boot: {action}", a.name, a.mac);
        reply(200, "text/plain", script)
    }

    /// The kernel command line a node's installer boots with: the OS tree, its kickstart, and kubeha's
    /// arguments with its config pinned by sha256 and its reports coming back here.
    fn cmdline(&self, a: &NodeAssets, reinstall: bool) -> Result<Vec<String>> {
        let u = &self.url;
        let k = KernelArgs {
            role: Some(a.role),
            name: Some(a.name.clone()),
            config: Some(ConfigLocation::Http(format!(
                "{u}/nodes/{}/{}.toml",
                a.name,
                dashed(&a.mac)
            ))),
            config_sha256: Some(a.sha256.clone()),
            report: Some(format!("{u}/api/report/{}", dashed(&a.mac))),
            reinstall,
            ..Default::default()
        };
        k.validate().map_err(|e| bad(&a.name, e.to_string()))?;
        let mut args = vec![
            format!("inst.repo={u}/{OS_DIR}"),
            format!("inst.ks={u}/nodes/{}/ks.cfg", a.name),
            "ip=dhcp".to_string(),
        ];
        args.extend(k.to_args());
        Ok(args)
    }

    fn install_script(&self, a: &NodeAssets, reinstall: bool) -> Result<String> {
        let u = &self.url;
        Ok(format!(
            "#!ipxe\n# kubeha serve: {0} ({1}), {2}: {3}\nkernel {u}/{OS_DIR}/{KERNEL} initrd=initrd.img {4}\ninitrd {u}/{OS_DIR}/{INITRD}\nboot\n",
            a.name,
            a.role,
            a.mac,
            if reinstall { "reinstall (wipes the disk)" } else { "install" },
            self.cmdline(a, reinstall)?.join(" ")
        ))
    }

    fn node_file(&self, rest: &str, ip: Option<String>) -> Reply {
        let Some((name, file)) = rest.split_once('/') else {
            return text(404, "not found");
        };
        let Some(a) = self.nodes.iter().find(|a| a.name == name) else {
            self.unknown(None, ip, &format!("/nodes/{}", shown(rest)));
            return text(404, format!("'{}' is not a node served here", shown(name)));
        };
        if file == "ks.cfg" {
            return reply(200, "text/plain; charset=utf-8", a.kickstart.clone());
        }
        let Some(m) = file.strip_suffix(".toml") else {
            return text(404, "not found");
        };
        let Some(mac) = normalize_mac(m) else {
            return text(400, format!("mac: '{}' is not a MAC address", shown(m)));
        };
        if mac != a.mac {
            let reason = format!("MAC {mac} asked for {}'s config", a.name);
            log::warn!("{reason}: refused");
            let mut st = self.lock();
            if st.fleet.refusal_is_news(&a.name, &reason) {
                let e = Entry::Refused {
                    at: now(),
                    node: a.name.clone(),
                    mac: Some(mac),
                    ip,
                    reason,
                };
                self.record(&mut st, e);
            }
            return text(
                403,
                format!("this config belongs to {}'s machine, not to {m}", a.name),
            );
        }
        if a.role == Role::Master && self.lock().fleet.installed(&a.name) {
            log::warn!("{}: config asked for after install: gone", a.name);
            return text(
                410,
                format!("{} is installed: its config (with the CA keys) is no longer served; kubeha serve reimage {0} to reinstall it", a.name),
            );
        }
        log::info!("{} ({}): config served", a.name, a.mac);
        reply(200, "text/plain; charset=utf-8", a.config.clone())
    }

    fn bundle_file(&self, rest: &str) -> Reply {
        match rest {
            "node.toml" => {
                return reply(200, "text/plain; charset=utf-8", self.shared_config.clone())
            }
            "agent/kubeha-firstboot" => return file(&self.agent.binary),
            "agent/kubeha-firstboot.service" => return file(&self.agent.unit),
            _ => {}
        }
        // Only what bundle.toml lists: nothing else under the bundle directory is ever read.
        if plain_relative(rest).is_none() || !self.bundle_files.contains(rest) {
            return text(404, "not found");
        }
        file(&self.bundle.join(rest))
    }

    fn os_file(&self, rest: &str) -> Reply {
        let Some(rel) = plain_relative(rest) else {
            return text(404, "not found");
        };
        // A symlink in the ISO must not lead outside the tree either.
        match std::fs::canonicalize(self.os.join(rel)) {
            Ok(p) if p.starts_with(&self.os) && p.is_file() => file(&p),
            _ => text(404, "not found"),
        }
    }

    fn report(&self, mac: Option<String>, ip: Option<String>, req: &mut Request) -> Reply {
        if req.body_length().is_some_and(|n| n > MAX_REPORT_BYTES) {
            return text(413, format!("report: larger than {MAX_REPORT_BYTES} bytes"));
        }
        let mut body = Vec::new();
        if let Err(e) = req
            .as_reader()
            .take(MAX_REPORT_BYTES as u64 + 1)
            .read_to_end(&mut body)
        {
            return text(400, format!("report: reading the body: {e}"));
        }
        if body.len() > MAX_REPORT_BYTES {
            return text(413, format!("report: larger than {MAX_REPORT_BYTES} bytes"));
        }
        let r: Report = match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => {
                let msg: String = e.to_string().chars().take(200).collect();
                return text(400, format!("report: not a report document: {msg}"));
            }
        };
        if let Err(e) = r.validate() {
            return text(400, e.to_string());
        }
        let mut st = self.lock();
        match st.fleet.judge(&r, mac.as_deref(), ip.as_deref()) {
            Verdict::Replay => json(200, &serde_json::json!({"accepted": false, "replay": true})),
            Verdict::Unknown(what) => {
                drop(st);
                self.unknown(mac, ip, &what);
                text(404, format!("report: {what}"))
            }
            Verdict::Refuse(node, reason) => {
                log::warn!("{node}: {reason}: refused");
                if st.fleet.refusal_is_news(&node, &reason) {
                    let e = Entry::Refused {
                        at: now(),
                        node,
                        mac,
                        ip,
                        reason: reason.clone(),
                    };
                    self.record(&mut st, e);
                }
                text(409, format!("report: {reason}"))
            }
            Verdict::Accept(node) => {
                log::info!("{node}: {} {}", r.phase, r.state);
                let e = Entry::Report {
                    at: now(),
                    node,
                    mac,
                    ip,
                    report: Box::new(r),
                };
                if self.record(&mut st, e) {
                    json(200, &serde_json::json!({"accepted": true}))
                } else {
                    text(503, "report: the journal cannot be written; send it again")
                }
            }
        }
    }

    fn reimage(&self, name: &str, req: &Request) -> Reply {
        if !req.headers().iter().any(|h| h.field.equiv(REIMAGE_HEADER)) {
            return text(
                403,
                format!("reimage: the request needs the header {REIMAGE_HEADER}"),
            );
        }
        if !self.nodes.iter().any(|a| a.name == name) {
            return text(404, format!("'{}' is not a node served here", shown(name)));
        }
        let mut st = self.lock();
        let e = Entry::Reimage {
            at: now(),
            node: name.to_string(),
        };
        if !self.record(&mut st, e) {
            return text(503, "reimage: the journal cannot be written");
        }
        log::warn!(
            "{name}: reimage requested: its next network boot wipes its disk and reinstalls it"
        );
        json(200, &serde_json::json!({"reimage": name}))
    }
}

/// At most 64 characters of a value from the network, for an error message.
fn shown(v: &str) -> String {
    let s: String = v.chars().take(64).filter(|c| !c.is_control()).collect();
    if s.len() < v.len() {
        format!("{s}...")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_files_are_checked_and_the_key_never_quoted() {
        let d = tempfile::tempdir().unwrap();
        let cert = d.path().join("c.pem");
        let key = d.path().join("k.pem");
        std::fs::write(
            &cert,
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        std::fs::write(
            &key,
            "-----BEGIN EC PRIVATE KEY-----\nSECRETBYTES\n-----END EC PRIVATE KEY-----\n",
        )
        .unwrap();
        let e = tls_config(&cert, &key).unwrap_err().to_string();
        assert!(
            e.starts_with("--tls-key:") && !e.contains("SECRETBYTES"),
            "{e}"
        );
        let e = tls_config(&key, &key).unwrap_err().to_string();
        assert!(
            e.starts_with("--tls-cert:") && !e.contains("SECRETBYTES"),
            "{e}"
        );
        std::fs::write(
            &key,
            "-----BEGIN PRIVATE KEY-----\nMIG\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        assert!(tls_config(&cert, &key).is_ok());
        assert!(tls_config(&cert, &d.path().join("missing")).is_err());
    }

    #[test]
    fn only_plain_relative_paths_are_served_from_disk() {
        for p in ["images/pxeboot/vmlinuz", "a", "repodata/repomd.xml"] {
            assert!(plain_relative(p).is_some(), "{p}");
        }
        for p in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "./a",
            "a/.",
            "a\0b",
            "a/",
        ] {
            assert!(plain_relative(p).is_none(), "{p:?}");
        }
        assert_eq!(percent_decode("%2e%2E/x").as_deref(), Some("../x"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(
            query("mac=52:54:00:12:34:01&x=1", "mac"),
            Some("52:54:00:12:34:01")
        );
        assert_eq!(query("xmac=1", "mac"), None);
    }
}
