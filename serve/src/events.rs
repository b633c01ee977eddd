//! Live updates: `GET /events`, a server-sent events stream (`text/event-stream`) of the fleet.
//!
//! Every change the server records (an accepted report, a boot, a refusal, an unknown machine, a reimage) bumps
//! the [`Hub`]'s generation. Each connected client has its own thread (never one of the request workers, which a
//! stream would hold for as long as the browser stays open) that sends the whole fleet view (`event: fleet`,
//! `id:` the generation, `data:` what `/api/fleet` returns) when the generation moved, at most every
//! [`MIN_INTERVAL`] (500 nodes reporting every second are one event, not 500), and every [`HEARTBEAT`] anyway so
//! the time in phase goes on and a vanished client is noticed (its write fails). At most `max` clients at once:
//! the next one gets 503, and the page falls back to polling `/api/fleet`.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// The shortest time between two events to one client.
pub const MIN_INTERVAL: Duration = Duration::from_millis(250);
/// The longest time between two events to one client.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// The change counter every stream waits on, and the count of open streams.
#[derive(Debug)]
pub struct Hub {
    generation: Mutex<u64>,
    changed: Condvar,
    clients: AtomicUsize,
    max: usize,
}

/// An open stream's place; given back when dropped.
#[derive(Debug)]
pub struct Ticket(Arc<Hub>);

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.clients.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Hub {
    /// A hub for at most `max` streams at once.
    pub fn new(max: usize) -> Arc<Hub> {
        Arc::new(Hub {
            generation: Mutex::new(0),
            changed: Condvar::new(),
            clients: AtomicUsize::new(0),
            max,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, u64> {
        self.generation.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The fleet changed: wakes every stream.
    pub fn changed(&self) {
        *self.lock() += 1;
        self.changed.notify_all();
    }

    /// The current generation.
    pub fn generation(&self) -> u64 {
        *self.lock()
    }

    /// Waits until the generation is past `seen` or `timeout` passed; returns the generation then.
    pub fn wait(&self, seen: u64, timeout: Duration) -> u64 {
        let g = self.lock();
        let (g, _) = self
            .changed
            .wait_timeout_while(g, timeout, |g| *g <= seen)
            .unwrap_or_else(|e| e.into_inner());
        *g
    }

    /// A place for one more stream; `None` when `max` are open.
    pub fn join(self: &Arc<Hub>) -> Option<Ticket> {
        let mut n = self.clients.load(Ordering::SeqCst);
        loop {
            if n >= self.max {
                return None;
            }
            match self
                .clients
                .compare_exchange(n, n + 1, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return Some(Ticket(self.clone())),
                Err(now) => n = now,
            }
        }
    }

    /// The streams open now.
    pub fn clients(&self) -> usize {
        self.clients.load(Ordering::SeqCst)
    }
}

/// The response head of a stream (the connection is closed when the stream ends).
pub const HEAD: &str =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n\
    X-Accel-Buffering: no\r\nConnection: close\r\n\r\n";

/// One event: `event: fleet`, `id:` and the document on one `data:` line (JSON holds no raw newline).
pub fn event(id: u64, data: &str) -> String {
    debug_assert!(!data.contains('\n'));
    format!("id: {id}\nevent: fleet\ndata: {data}\n\n")
}

/// Streams to `w` until a write fails: the head, then an event with `view()` whenever the generation moved (at
/// most every [`MIN_INTERVAL`]) or [`HEARTBEAT`] passed. `view` returns the document and the generation it shows.
pub fn stream(hub: &Hub, w: &mut dyn Write, view: &dyn Fn() -> (u64, Arc<String>)) {
    if w.write_all(HEAD.as_bytes())
        .and_then(|_| w.flush())
        .is_err()
    {
        return;
    }
    // `retry:` tells EventSource how long to wait before reconnecting after the server went away.
    if w.write_all(b"retry: 2000\n\n").is_err() {
        return;
    }
    loop {
        let (g, doc) = view();
        if w.write_all(event(g, &doc).as_bytes())
            .and_then(|_| w.flush())
            .is_err()
        {
            return;
        }
        std::thread::sleep(MIN_INTERVAL);
        hub.wait(g, HEARTBEAT.saturating_sub(MIN_INTERVAL));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_bounded_and_given_back() {
        let hub = Hub::new(2);
        let a = hub.join().unwrap();
        let b = hub.join().unwrap();
        assert!(hub.join().is_none(), "a third stream");
        assert_eq!(hub.clients(), 2);
        drop(a);
        let c = hub.join().expect("a place was given back");
        drop((b, c));
        assert_eq!(hub.clients(), 0);
    }

    #[test]
    fn a_change_wakes_a_waiting_stream() {
        let hub = Hub::new(1);
        let g = hub.generation();
        let h = hub.clone();
        let t = std::thread::spawn(move || h.wait(g, Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(50));
        let start = std::time::Instant::now();
        hub.changed();
        assert_eq!(t.join().unwrap(), g + 1);
        assert!(start.elapsed() < Duration::from_secs(10));
        // Nothing changed: the wait ends at its timeout with the same generation.
        assert_eq!(hub.wait(g + 1, Duration::from_millis(10)), g + 1);
    }
}
