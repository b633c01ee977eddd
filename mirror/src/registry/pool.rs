//! A bounded pool of threads over a list of items.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::error::{Error, Result};

/// Runs `f` over `items` on at most `n` threads; results keep the input order. After the first error no new item
/// starts, and that error is returned.
pub fn parallel<T: Send, R: Send>(
    items: Vec<T>,
    n: usize,
    f: impl Fn(T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let len = items.len();
    let queue: Mutex<std::vec::IntoIter<(usize, T)>> = Mutex::new(
        items
            .into_iter()
            .enumerate()
            .collect::<Vec<_>>()
            .into_iter(),
    );
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..len).map(|_| None).collect());
    let failed = AtomicBool::new(false);
    let first_err: Mutex<Option<(usize, Error)>> = Mutex::new(None);
    let done = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..n.max(1).min(len.max(1)) {
            s.spawn(|| loop {
                if failed.load(Ordering::SeqCst) {
                    return;
                }
                let next = queue.lock().expect("not poisoned").next();
                let Some((i, item)) = next else { return };
                match f(item) {
                    Ok(r) => {
                        results.lock().expect("not poisoned")[i] = Some(r);
                        done.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => {
                        failed.store(true, Ordering::SeqCst);
                        let mut fe = first_err.lock().expect("not poisoned");
                        if fe.as_ref().is_none_or(|(j, _)| i < *j) {
                            *fe = Some((i, e));
                        }
                        return;
                    }
                }
            });
        }
    });
    if let Some((_, e)) = first_err.into_inner().expect("not poisoned") {
        return Err(e);
    }
    Ok(results
        .into_inner()
        .expect("not poisoned")
        .into_iter()
        .map(|r| r.expect("every item ran"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::format_err;

    #[test]
    fn parallel_keeps_order_and_stops_on_error() {
        let out = parallel((0..50).collect(), 4, |i: i32| Ok(i * 2)).unwrap();
        assert_eq!(out, (0..50).map(|i| i * 2).collect::<Vec<_>>());
        let err = parallel((0..50).collect(), 4, |i: i32| {
            if i == 7 {
                Err(format_err("item 7", "bad"))
            } else {
                Ok(i)
            }
        })
        .unwrap_err();
        assert!(err.to_string().contains("item 7"), "{err}");
        assert!(parallel(Vec::<i32>::new(), 4, Ok).unwrap().is_empty());
    }
}
