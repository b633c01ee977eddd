//! `kubeha serve` started from the test binary's `kubeha`, shared by the serve tests and the serve benchmark.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A running `kubeha serve`, killed (by its pid) when dropped.
pub struct Serve {
    pub child: Child,
    /// The URL of its `Serving URL` line.
    pub url: String,
    /// Its stderr so far.
    pub log: Arc<Mutex<String>>,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    /// `host:port` of its URL.
    pub fn addr(&self) -> &str {
        self.url
            .trim_start_matches("https://")
            .trim_start_matches("http://")
    }
    /// Its stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

/// Starts `kubeha serve ARGS` with the extra environment `env` and waits up to `wait` for its `Serving URL` line;
/// panics with its stderr when that does not come. Its stderr is drained for the whole run (a full pipe would stall
/// the server).
pub fn start(args: &[&str], env: &[(&str, &str)], wait: Duration) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubeha"))
        .arg("serve")
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting kubeha serve");
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let l = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("Serving ") {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
            }
            l.lock().unwrap().push_str(&line);
            l.lock().unwrap().push('\n');
        }
    });
    let url = rx.recv_timeout(wait);
    let mut serve = Serve {
        child,
        url: String::new(),
        log,
    };
    match url {
        Ok(u) => serve.url = u,
        Err(_) => panic!("kubeha serve did not start:\n{}", serve.log()),
    }
    serve
}
