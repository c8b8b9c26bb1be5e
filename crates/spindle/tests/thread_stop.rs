//! `StopSource` / `StopToken`: the cooperative stop of the Python Cookbook's
//! recipe 12.1 (`CountdownTask.terminate()`), which Python writes by hand
//! with a flag.

mod common;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use spindle::thread::{self, StopSource};

use common::LONG;

#[test]
fn poll_until_stopped() {
    let stop = StopSource::new();
    let token = stop.token();
    let started = Arc::new(Barrier::new(2));
    let s = Arc::clone(&started);
    let h = thread::spawn(move || {
        let mut rounds = 0u64;
        s.wait();
        while !token.is_stopped() {
            rounds += 1;
            std::hint::spin_loop();
        }
        rounds
    })
    .unwrap();
    started.wait();
    assert!(stop.stop());
    h.join_timeout(LONG).unwrap();
    h.join().unwrap();
}

#[test]
fn wait_timeout_times_out_when_not_stopped() {
    let stop = StopSource::new();
    let token = stop.token();
    let t0 = Instant::now();
    assert!(!token.wait_timeout(Duration::from_millis(20)));
    assert!(t0.elapsed() >= Duration::from_millis(20));
    let at = Instant::now() + Duration::from_millis(5);
    assert!(!token.wait_deadline(at));
    assert!(Instant::now() >= at);
    assert!(!stop.is_stopped());
}

// A long wait that somebody ends returns early (one-sided: well under LONG).
#[test]
fn stop_wakes_all_waiters() {
    const N: usize = if cfg!(miri) { 2 } else { 8 };
    let stop = StopSource::new();
    let ready = Arc::new(Barrier::new(N + 1));
    let handles: Vec<_> = (0..N)
        .map(|_| {
            let token = stop.token();
            let ready = Arc::clone(&ready);
            thread::spawn(move || {
                ready.wait();
                let t0 = Instant::now();
                let stopped = token.wait_timeout(Duration::from_secs(600));
                (stopped, t0.elapsed())
            })
            .unwrap()
        })
        .collect();
    ready.wait();
    stop.stop();
    for h in handles {
        let (stopped, waited) = h.join().unwrap();
        assert!(stopped);
        assert!(waited < LONG, "{waited:?}");
    }
}

#[test]
fn stop_is_permanent_and_shared_by_clones() {
    let stop = StopSource::new();
    let other = stop.clone();
    let token = stop.token();
    let token2 = token.clone();
    assert!(!token2.is_stopped());
    assert!(other.stop());
    assert!(!stop.stop(), "second stop reports it was already stopped");
    assert!(stop.is_stopped());
    assert!(token.is_stopped() && token2.is_stopped());
    assert!(token.wait_timeout(Duration::ZERO));
    token.wait(); // returns at once
    assert!(format!("{token:?}").contains("true"));
}

// Stress for lost wake-ups: many rounds of a waiter racing a stop.
#[test]
fn no_lost_wakeup() {
    const ROUNDS: usize = if cfg!(miri) { 20 } else { 500 };
    for _ in 0..ROUNDS {
        let stop = StopSource::new();
        let token = stop.token();
        let h = thread::spawn(move || token.wait()).unwrap();
        stop.stop();
        h.join_timeout(LONG).unwrap();
    }
}
