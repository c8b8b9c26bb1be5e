//! Loom models of the one-byte lock word (run them as `crate::loom` says).
//!
//! Every model checks, besides its own claim, that no thread is left parked
//! (loom fails a model whose threads all sleep) and that the word ends at 0:
//! unlocked, with no `PARKED` bit left behind without a sleeper.
#![forbid(unsafe_code)]

use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use ::loom::sync::Arc;
use ::loom::sync::atomic::AtomicUsize;
use ::loom::thread;

use super::RawLock;
use crate::loom::{advance, check};

/// A lock and a counter it protects, updated with a relaxed load and store:
/// a lost update means two holders overlapped, or the lock's
/// acquire/release did not order one holder's writes before the next.
struct Guarded {
    lock: RawLock,
    count: AtomicUsize,
}

impl Guarded {
    fn new() -> Arc<Guarded> {
        Arc::new(Guarded {
            lock: RawLock::new(),
            count: AtomicUsize::new(0),
        })
    }

    /// The critical section.
    fn bump(&self) {
        let v = self.count.load(Relaxed);
        self.count.store(v + 1, Relaxed);
    }

    fn word(&self) -> u8 {
        self.lock.state.load(Relaxed)
    }
}

/// Three threads lock (blocking), count, unlock: nobody's update is lost,
/// nobody sleeps forever (a contender parks at once: spinning is off under
/// loom), and the `PARKED` bit is cleared once the last sleeper is gone.
#[test]
fn loom_model_lock_word_three_lockers() {
    check("lock_word: three lockers", 3, || {
        let g = Guarded::new();
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let g = Arc::clone(&g);
                thread::spawn(move || {
                    assert!(g.lock.lock_until(None));
                    g.bump();
                    assert!(g.lock.unlock());
                })
            })
            .collect();
        assert!(g.lock.lock_until(None));
        g.bump();
        assert!(g.lock.unlock());
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(g.count.load(Relaxed), 3);
        assert_eq!(g.word(), 0, "unlocked, PARKED cleared");
    });
}

/// A timed lock races the holder's unlock and the clock: it either gets
/// the lock (and its section is ordered after the holder's) or times out;
/// either way nobody is left parked and the word ends clean (a timed-out
/// last sleeper clears `PARKED`).
#[test]
fn loom_model_lock_word_timed_lock_races_unlock() {
    check("lock_word: timed lock vs unlock vs clock", 3, || {
        let g = Guarded::new();
        assert!(g.lock.try_lock());
        let waiter = {
            let g = Arc::clone(&g);
            thread::spawn(move || {
                let got = g.lock.lock_until(Some(Instant::now()));
                if got {
                    // The holder's section came first.
                    assert_eq!(g.count.load(Relaxed), 1);
                    g.bump();
                    assert!(g.lock.unlock());
                }
                got
            })
        };
        let clock = thread::spawn(advance);
        g.bump();
        assert!(g.lock.unlock());
        let got = waiter.join().unwrap();
        clock.join().unwrap();
        assert_eq!(g.count.load(Relaxed), if got { 2 } else { 1 });
        assert_eq!(g.word(), 0, "unlocked, PARKED cleared");
    });
}

/// A lock taken by one thread is released by another, which wakes a third
/// thread blocked on it.
#[test]
fn loom_model_lock_word_unlock_from_another_thread() {
    check("lock_word: unlock from another thread", 3, || {
        let g = Guarded::new();
        assert!(g.lock.lock_until(None));
        let releaser = {
            let g = Arc::clone(&g);
            thread::spawn(move || assert!(g.lock.unlock()))
        };
        let waiter = {
            let g = Arc::clone(&g);
            thread::spawn(move || {
                assert!(g.lock.lock_until(None));
                g.bump();
                assert!(g.lock.unlock());
            })
        };
        releaser.join().unwrap();
        waiter.join().unwrap();
        assert_eq!(g.count.load(Relaxed), 1);
        assert_eq!(g.word(), 0);
    });
}

/// Two threads release one locked period at once: exactly one succeeds.
#[test]
fn loom_model_lock_word_racing_unlocks() {
    check("lock_word: racing unlocks", 3, || {
        let g = Guarded::new();
        assert!(g.lock.lock_until(None));
        let other = {
            let g = Arc::clone(&g);
            thread::spawn(move || g.lock.unlock())
        };
        let mine = g.lock.unlock();
        let theirs = other.join().unwrap();
        assert!(mine ^ theirs, "exactly one unlock succeeds");
        assert_eq!(g.word(), 0);
    });
}
