//! `kubeha bundle build`: a profile in, a verified offline bundle out (layout in `kubeha_model::bundle`).
//!
//! Idempotent: blobs already in the layout are not downloaded again (a rerun with the same profile only asks the
//! registries for manifests), extra files already present with their pinned sha256 are kept, images the profile no
//! longer names are removed along with the blobs only they used. `bundle.toml` is written last, atomically: a bundle
//! whose build failed halfway has no new manifest, and `kubeha bundle verify` says so.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use kubeha_model::backoff::Backoff;
use kubeha_model::bundle::{
    BundleManifest, ExtraFile, ImageEntry, ImageSet, Profile, RpmEntry, FORMAT, IMAGES_DIR,
    RPMS_DIR,
};

use crate::bundle::{file_entries, files_dir, images_dir, images_for, mtime_ns, rpms_dir};
use crate::digest::{hash_file, sha256_file, Hasher};
use crate::error::{format_err, io, Error, Result};
use crate::oci::{Layout, Platform};
use crate::progress::{human, Progress};
use crate::registry::{Client, ClientConfig, Credentials};

/// How to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Extra trusted CA certificates (PEM) for registries and file URLs.
    pub ca_pem: Vec<Vec<u8>>,
    /// Parallel blob downloads.
    pub parallel: usize,
    /// Attempts per request.
    pub attempts: u32,
    /// First retry delay.
    pub backoff: Duration,
    /// Progress bars (a terminal) or log lines.
    pub tty: bool,
    /// Trust an existing blob or RPM whose size and mtime match the stamp `bundle.toml` recorded instead of
    /// hashing it (`--fast`).
    pub fast: bool,
    /// Which images to put in (`--images`).
    pub images: ImageSet,
}

impl Default for BuildOptions {
    fn default() -> Self {
        let c = ClientConfig::default();
        BuildOptions {
            ca_pem: Vec::new(),
            parallel: c.parallel,
            attempts: c.attempts,
            backoff: c.backoff,
            tty: false,
            fast: false,
            images: ImageSet::All,
        }
    }
}

/// What a build did (`kubeha bundle build --json`).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct BuildSummary {
    /// The bundle directory.
    pub dir: String,
    /// The profile's name.
    pub profile: String,
    /// Images in the bundle.
    pub images: usize,
    /// Blobs downloaded by this run.
    pub blobs_fetched: usize,
    /// Bytes downloaded by this run (image blobs).
    pub bytes_fetched: u64,
    /// Blobs that were already there.
    pub blobs_reused: usize,
    /// Images removed because the profile no longer names them.
    pub images_removed: Vec<String>,
    /// Bytes of blobs no image uses any more, deleted.
    pub bytes_freed: u64,
    /// RPMs in the bundle.
    pub rpms: usize,
    /// Extra files in the bundle.
    pub files: usize,
    /// Bytes of image blobs in the bundle (each shared blob once).
    pub image_bytes: u64,
    /// Bytes of the whole bundle.
    pub bundle_bytes: u64,
    /// Blobs and RPMs that were already there, checked by hashing them.
    pub checked: usize,
    /// Blobs and RPMs that were already there, trusted by their size and mtime stamp (`--fast`).
    pub stamped: usize,
    /// Damaged blobs and RPMs (bytes that do not match their digest) found, removed and fetched again,
    /// as paths relative to the bundle.
    pub repaired: Vec<String>,
    /// RPMs downloaded by this run.
    pub rpms_fetched: usize,
    /// Wall time.
    pub seconds: f64,
}

/// Builds (or updates) the bundle in `dir` from `profile`.
pub fn build(profile: &Profile, dir: &Path, opts: &BuildOptions) -> Result<BuildSummary> {
    let t0 = Instant::now();
    // Everything that can be checked without the network is checked before the first write.
    profile.check(&format!("profile {}", profile.name))?;
    let credentials = Credentials::from_profile(&profile.credentials)?;
    crate::rpm::repo_auth(profile).map_err(|error| Error::Rpm {
        what: "repos",
        error,
    })?;
    let images = images_for(profile, opts.images)?;
    let platform = Platform::linux_for_rpm_arch(&profile.arch);
    let client = Client::new(ClientConfig {
        platform: platform.clone(),
        mirrors: profile.registry_mirrors.clone(),
        credentials,
        ca_pem: opts.ca_pem.clone(),
        attempts: opts.attempts.max(1),
        backoff: opts.backoff,
        parallel: opts.parallel.max(1),
        ..ClientConfig::default()
    })?;
    let progress = Progress::new(opts.tty);

    fs::create_dir_all(dir).map_err(io("creating", dir))?;
    let mut check = check_existing(dir, opts.fast, &progress)?;
    let layout = Layout::init(&images_dir(dir))?.with_platform(platform.clone());
    progress.println(&format!(
        "Pulling {} images for profile {} into {}",
        images.len(),
        profile.name,
        layout.root().display()
    ));
    let (pulled, stats) = client.pull(&layout, &images, &progress)?;
    let keep: BTreeSet<String> = pulled.iter().map(|p| p.reference.clone()).collect();
    let removed = layout.retain_images(&keep)?;
    let freed = layout.gc()?;

    let files = fetch_files(&profile.files, &files_dir(dir), &opts.ca_pem, &progress)?;

    let rpm_dir = rpms_dir(dir);
    let rpm_prefix = format!("{RPMS_DIR}/");
    let mut rpms_fetched = 0;
    let mut rpm_keys = Vec::new();
    let rpms: Vec<RpmEntry> = if profile.packages.is_empty() {
        if rpm_dir.exists() {
            fs::remove_dir_all(&rpm_dir).map_err(io("removing", &rpm_dir))?;
        }
        Vec::new()
    } else {
        progress.println(&format!(
            "Resolving {} RPM packages",
            profile.packages.len()
        ));
        let checked: HashMap<String, String> = check
            .good
            .iter()
            .filter_map(|(rel, sha)| {
                Some((rel.strip_prefix(&rpm_prefix)?.to_string(), sha.clone()))
            })
            .collect();
        let (entries, fetched, keys) =
            crate::rpm::build_repo_checked(profile, &rpm_dir, &checked, &|m: &str| {
                progress.println(m)
            })
            .map_err(|error| Error::Rpm {
                what: "rpms",
                error,
            })?;
        // A file fetched again has other bytes than the ones checked above.
        for f in &fetched {
            check.good.remove(&format!("{rpm_prefix}{f}"));
        }
        rpms_fetched = fetched.len();
        rpm_keys = keys;
        entries
    };
    progress.finish();

    let mut image_entries = Vec::new();
    let mut image_bytes = 0;
    let mut counted = BTreeSet::new();
    for p in &pulled {
        let img = layout.image(&p.reference)?;
        for b in img.blobs() {
            if counted.insert(b.digest.clone()) {
                image_bytes += b.size;
            }
        }
        image_entries.push(ImageEntry {
            reference: p.reference.clone(),
            digest: p.stored.digest.to_string(),
            media_type: p.stored.media_type.clone(),
            platform: platform.to_string(),
            index_digest: p.source_digest.as_ref().map(|d| d.to_string()),
            size: p.size,
        });
    }
    let file_list = file_entries(dir, &check.good)?;
    let manifest = BundleManifest {
        format: FORMAT,
        created: now_rfc3339(),
        image_set: opts.images,
        profile: profile.clone(),
        images: image_entries,
        rpms: rpms.clone(),
        rpm_keys,
        files: file_list,
    };
    let bundle_bytes = manifest.files.iter().map(|f| f.size).sum();
    // A signature over the old bundle.toml would not verify (and must not seem to vouch for the new one).
    let sig = crate::signature::signature_path(dir);
    if sig.exists() {
        fs::remove_file(&sig).map_err(io("removing", &sig))?;
        progress.println(&format!(
            "Removed the old signature {}: sign the new bundle.toml with `kubeha bundle sign`",
            sig.display()
        ));
    }
    manifest.save(dir)?;
    Ok(BuildSummary {
        dir: dir.display().to_string(),
        profile: profile.name.clone(),
        images: pulled.len(),
        blobs_fetched: stats.blobs_fetched,
        bytes_fetched: stats.bytes_fetched,
        blobs_reused: stats.blobs_reused,
        images_removed: removed,
        bytes_freed: freed,
        rpms: rpms.len(),
        files,
        image_bytes,
        bundle_bytes,
        checked: check.hashed,
        stamped: check.stamped,
        repaired: check.repaired,
        rpms_fetched,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

impl std::fmt::Display for BuildSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "Bundle {} (profile {}): {} images ({}), {} RPMs, {} files; {} in all",
            self.dir,
            self.profile,
            self.images,
            human(self.image_bytes),
            self.rpms,
            self.files,
            human(self.bundle_bytes)
        )?;
        write!(
            f,
            "This run: downloaded {} blobs ({}), reused {}",
            self.blobs_fetched,
            human(self.bytes_fetched),
            self.blobs_reused
        )?;
        if !self.repaired.is_empty() {
            write!(
                f,
                ", repaired {} damaged file(s): {}",
                self.repaired.len(),
                self.repaired.join(", ")
            )?;
        }
        if !self.images_removed.is_empty() {
            write!(
                f,
                ", removed {} images no longer in the profile ({} freed)",
                self.images_removed.len(),
                human(self.bytes_freed)
            )?;
        }
        write!(f, "; {:.1} s", self.seconds)
    }
}

/// What [`check_existing`] found.
struct Checked {
    /// Files whose bytes match (relative path → sha256).
    good: HashMap<String, String>,
    /// How many were hashed.
    hashed: usize,
    /// How many were trusted by their stamp.
    stamped: usize,
    /// Damaged files, removed.
    repaired: Vec<String>,
}

/// Checks the blobs and RPMs a bundle already holds, before anything is fetched: a blob must hash to its name,
/// an RPM to the sha256 `bundle.toml` recorded (an RPM it does not list is left to the RPM step, which checks it
/// against the repo's metadata). A damaged file is removed, so the pull and the RPM step fetch it again. With
/// `fast`, a file whose size and mtime match the recorded stamp is trusted without hashing. The hashing runs on
/// every core: it reads the whole bundle.
fn check_existing(dir: &Path, fast: bool, progress: &Progress) -> Result<Checked> {
    let old = BundleManifest::load(dir).ok();
    let recorded: HashMap<&str, &kubeha_model::bundle::FileEntry> = old
        .iter()
        .flat_map(|m| m.files.iter())
        .map(|f| (f.path.as_str(), f))
        .collect();
    let blob_prefix = format!("{IMAGES_DIR}/{}/", crate::oci::BLOBS_DIR);
    let mut todo: Vec<(String, String)> = Vec::new();
    let mut out = Checked {
        good: HashMap::new(),
        hashed: 0,
        stamped: 0,
        repaired: Vec::new(),
    };
    for (sub, is_blob) in [(blob_prefix.as_str(), true), ("rpms/", false)] {
        let d = dir.join(sub);
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd {
            let e = e.map_err(io("reading", &d))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let rel = format!("{sub}{name}");
            let meta = e.metadata().map_err(io("reading", &e.path()))?;
            if !meta.is_file() || (!is_blob && !name.ends_with(".rpm")) {
                continue;
            }
            let rec = recorded.get(rel.as_str());
            let want = if is_blob {
                name.clone()
            } else if let Some(r) = rec {
                r.sha256.clone()
            } else {
                continue;
            };
            let stamp_ok = rec.is_some_and(|r| {
                r.sha256 == want
                    && r.size == meta.len()
                    && r.mtime_ns.is_some()
                    && r.mtime_ns == mtime_ns(&meta)
            });
            if fast && stamp_ok {
                out.stamped += 1;
                out.good.insert(rel, want);
            } else {
                todo.push((rel, want));
            }
        }
    }
    if todo.is_empty() {
        return Ok(out);
    }
    progress.println(&format!(
        "Checking {} blobs and RPMs already in the bundle{}",
        todo.len(),
        if fast { " (not stamped)" } else { "" }
    ));
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(todo.len());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Result<Vec<(usize, String)>>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((rel, _)) = todo.get(i) else { break };
                        mine.push((i, sha256_file(&dir.join(rel))?.0));
                    }
                    Ok(mine)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("hashing thread"))
            .collect()
    });
    for r in results {
        for (i, sha) in r? {
            let (rel, want) = &todo[i];
            out.hashed += 1;
            if sha == *want {
                out.good.insert(rel.clone(), sha);
            } else {
                let p = dir.join(rel);
                log::warn!(
                    "{} is damaged (sha256 {sha}, want {want}); fetching it again",
                    p.display()
                );
                fs::remove_file(&p).map_err(io("removing", &p))?;
                out.repaired.push(rel.clone());
            }
        }
    }
    out.repaired.sort();
    Ok(out)
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formats")
}

/// Downloads the profile's extra files into `dir` (kept when already there with the pinned sha256) and removes
/// files no longer listed. Returns how many there are.
fn fetch_files(
    files: &[ExtraFile],
    dir: &Path,
    ca_pem: &[Vec<u8>],
    progress: &Progress,
) -> Result<usize> {
    if files.is_empty() {
        if dir.exists() {
            fs::remove_dir_all(dir).map_err(io("removing", dir))?;
        }
        return Ok(0);
    }
    fs::create_dir_all(dir).map_err(io("creating", dir))?;
    let http = crate::http::client_builder(ca_pem)?
        .connect_timeout(Duration::from_secs(30))
        .timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| format_err("HTTP client", e.to_string()))?;
    let wanted: BTreeSet<&str> = files.iter().map(|f| f.name.as_str()).collect();
    for e in fs::read_dir(dir).map_err(io("reading", dir))? {
        let e = e.map_err(io("reading", dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if !wanted.contains(name.as_str()) {
            fs::remove_file(e.path()).map_err(io("removing", &e.path()))?;
        }
    }
    progress.phase("files", files.len() as u64);
    for f in files {
        let target = dir.join(&f.name);
        if target.exists() && hash_file(&target)?.digest().hex() == f.sha256 {
            progress.item_done(&f.name);
            continue;
        }
        let mut tmp = tempfile::Builder::new()
            .prefix(".kubeha-")
            .tempfile_in(dir)
            .map_err(io("creating a temporary file in", dir))?;
        let mut h = Hasher::new();
        if let Some(path) = f.url.strip_prefix("file://") {
            let mut src = fs::File::open(path).map_err(io("opening", Path::new(path)))?;
            copy_hashing(&mut src, tmp.as_file_mut(), &mut h, &f.url)?;
        } else {
            let mut attempt = 1;
            let mut delays = Backoff::new(Duration::from_secs(1), Duration::from_secs(2)).delays();
            loop {
                h = Hasher::new();
                tmp.as_file_mut()
                    .set_len(0)
                    .map_err(io("truncating", tmp.path()))?;
                let mut out = tmp.reopen().map_err(io("opening", tmp.path()))?;
                let r = http.get(&f.url).send().and_then(|r| r.error_for_status());
                let res = match r {
                    Ok(mut r) => copy_hashing(&mut r, &mut out, &mut h, &f.url),
                    Err(e) => Err(Error::Http {
                        url: f.url.clone(),
                        message: e.to_string(),
                    }),
                };
                match res {
                    Ok(()) => break,
                    Err(e) if attempt < 3 => {
                        log::warn!("{}: {e}; retrying", f.url);
                        std::thread::sleep(delays.pause());
                        attempt += 1;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        if h.digest().hex() != f.sha256 {
            return Err(Error::DigestMismatch {
                what: format!("file {} from {}", f.name, f.url),
                expected: f.sha256.clone(),
                actual: h.digest().hex().to_string(),
            });
        }
        tmp.as_file()
            .sync_all()
            .map_err(io("syncing", tmp.path()))?;
        tmp.persist(&target).map_err(|e| {
            Error::Io(kubeha_model::IoError {
                action: "writing",
                path: target.clone(),
                source: e.error,
            })
        })?;
        let _ = fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(0o644));
        progress.item_done(&f.name);
    }
    Ok(files.len())
}

fn copy_hashing(r: &mut dyn Read, w: &mut dyn Write, h: &mut Hasher, what: &str) -> Result<()> {
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Error::Http {
                    url: what.to_string(),
                    message: format!("reading: {e}"),
                })
            }
        };
        h.update(&buf[..n]);
        w.write_all(&buf[..n]).map_err(|e| Error::Http {
            url: what.to_string(),
            message: format!("writing: {e}"),
        })?;
    }
}
