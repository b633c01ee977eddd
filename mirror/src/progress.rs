//! Progress for long downloads: indicatif bars on a terminal, plain log lines otherwise (CI logs, pipes).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A thread-safe progress reporter.
pub struct Progress {
    bars: Option<(MultiProgress, ProgressBar, ProgressBar)>,
    bytes_total: AtomicU64,
    bytes_done: AtomicU64,
    last_logged_pct: Mutex<u64>,
}

impl Progress {
    /// Bars when `tty` is true (stderr is a terminal), log lines otherwise.
    pub fn new(tty: bool) -> Progress {
        let bars = tty.then(|| {
            let mp = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let items = mp.add(ProgressBar::new(0));
            items.set_style(
                ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} {wide_msg}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            let bytes = mp.add(ProgressBar::new(0));
            bytes.set_style(
                ProgressStyle::with_template(
                    "{prefix:>8} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bytes.set_prefix("bytes");
            (mp, items, bytes)
        });
        Progress {
            bars,
            bytes_total: AtomicU64::new(0),
            bytes_done: AtomicU64::new(0),
            last_logged_pct: Mutex::new(0),
        }
    }

    /// No output at all (library callers and tests).
    pub fn hidden() -> Progress {
        Progress {
            bars: None,
            bytes_total: AtomicU64::new(0),
            bytes_done: AtomicU64::new(0),
            last_logged_pct: Mutex::new(101),
        }
    }

    /// Starts a phase of `total` items named `what` ("images", "blobs", "RPMs").
    pub fn phase(&self, what: &str, total: u64) {
        match &self.bars {
            Some((_, items, _)) => {
                items.set_prefix(what.to_string());
                items.set_length(total);
                items.set_position(0);
            }
            None => log::info!("{what}: {total} to fetch"),
        }
    }

    /// One item of the current phase finished.
    pub fn item_done(&self, msg: &str) {
        match &self.bars {
            Some((_, items, _)) => {
                items.inc(1);
                items.set_message(msg.to_string());
            }
            None => log::debug!("{msg}"),
        }
    }

    /// Adds to the number of bytes expected.
    pub fn add_total_bytes(&self, n: u64) {
        let t = self.bytes_total.fetch_add(n, Ordering::Relaxed) + n;
        if let Some((_, _, b)) = &self.bars {
            b.set_length(t);
        }
    }

    /// Counts bytes received.
    pub fn add_bytes(&self, n: u64) {
        let done = self.bytes_done.fetch_add(n, Ordering::Relaxed) + n;
        match &self.bars {
            Some((_, _, b)) => b.inc(n),
            None => {
                let total = self.bytes_total.load(Ordering::Relaxed).max(1);
                let pct = (done * 100 / total).min(100) / 10 * 10;
                let mut last = self.last_logged_pct.lock().expect("not poisoned");
                if *last <= 100 && pct > *last {
                    *last = pct;
                    log::info!("downloaded {pct}% ({} of {})", human(done), human(total));
                }
            }
        }
    }

    /// A message that must stay visible (printed above the bars).
    pub fn println(&self, msg: &str) {
        match &self.bars {
            Some((mp, _, _)) => {
                let _ = mp.println(msg);
            }
            None => log::info!("{msg}"),
        }
    }

    /// Removes the bars.
    pub fn finish(&self) {
        if let Some((mp, items, bytes)) = &self.bars {
            items.finish_and_clear();
            bytes.finish_and_clear();
            let _ = mp.clear();
        }
    }
}

/// `1.5 MiB`.
pub fn human(n: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}
