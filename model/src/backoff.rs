//! The one backoff policy of both sides: the pauses between the attempts of a retried request and between the polls
//! of a wait.

use std::time::Duration;

/// Exponential backoff: the first pause is `initial`, each next one `factor` times the last, capped at `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first pause.
    pub initial: Duration,
    /// The longest pause (the first is `initial` even when that is longer).
    pub max: Duration,
    /// What each pause is multiplied by.
    pub factor: u32,
}

impl Backoff {
    /// Doubling pauses from `initial` up to `max`.
    pub const fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            factor: 2,
        }
    }

    /// The pauses, without end: `initial`, then each `factor` times the last, at most `max`.
    pub fn delays(&self) -> Delays {
        Delays {
            next: self.initial,
            max: self.max,
            factor: self.factor,
        }
    }
}

/// The pauses of a [`Backoff`], in order ([`Backoff::delays`]); the iterator never ends.
#[derive(Debug, Clone)]
pub struct Delays {
    next: Duration,
    max: Duration,
    factor: u32,
}

impl Delays {
    /// The next pause (the iterator's next item, which always exists).
    pub fn pause(&mut self) -> Duration {
        let d = self.next;
        self.next = self.next.saturating_mul(self.factor).min(self.max);
        d
    }
}

impl Iterator for Delays {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        Some(self.pause())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|m| Duration::from_millis(*m)).collect()
    }

    #[test]
    fn doubles_up_to_the_cap() {
        let b = Backoff::new(Duration::from_millis(500), Duration::from_secs(10));
        let got: Vec<Duration> = b.delays().take(8).collect();
        assert_eq!(got, ms(&[500, 1000, 2000, 4000, 8000, 10000, 10000, 10000]));
        let mut d = b.delays();
        assert_eq!(
            (d.pause(), d.pause()),
            (Duration::from_millis(500), Duration::from_secs(1))
        );
    }

    #[test]
    fn other_factors_and_a_first_pause_above_the_cap() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(1000),
            factor: 3,
        };
        assert_eq!(
            b.delays().take(4).collect::<Vec<_>>(),
            ms(&[100, 300, 900, 1000])
        );
        // The first pause is the one asked for; the cap holds from the second on.
        let b = Backoff::new(Duration::from_secs(5), Duration::from_secs(1));
        assert_eq!(
            b.delays().take(3).collect::<Vec<_>>(),
            ms(&[5000, 1000, 1000])
        );
        // Factor 1 is a constant pause; a huge one saturates at the cap instead of overflowing.
        let b = Backoff {
            initial: Duration::from_secs(1),
            max: Duration::MAX,
            factor: u32::MAX,
        };
        assert_eq!(b.delays().nth(3), Some(Duration::MAX));
        let b = Backoff {
            factor: 1,
            ..Backoff::new(Duration::from_millis(7), Duration::from_secs(1))
        };
        assert!(b.delays().take(5).all(|d| d == Duration::from_millis(7)));
    }
}
