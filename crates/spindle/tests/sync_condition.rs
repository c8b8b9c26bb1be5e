//! `Condition`: what is particular to the thread scope's constructors and
//! inherent methods. The behaviours of CPython's `Lib/test/lock_tests.py`
//! (`ConditionTests`) are checked on both scopes, over an `RLock` and over a
//! `Lock`, by the conformance suite (`spindle_conformance::sync`, run by
//! `crates/spindle-conformance/tests/sync.rs` and `ipc_sync.rs`).

use spindle::sync::{Condition, Lock, NotOwnedError};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::thread;
use std::time::Duration;

mod common;
use common::until;

// The inherent `wait_for*` check the lock before evaluating the predicate
// (the contract's `BlockingCondition::wait_for*`, like Python, return at
// once, without the error, when the predicate already holds).
#[test]
fn inherent_wait_for_checks_the_lock_first() {
    let cond = Condition::new();
    assert_eq!(
        cond.wait_for_timeout(|| true, Duration::ZERO),
        Err(NotOwnedError)
    );
    assert_eq!(cond.wait_for(|| true), Err(NotOwnedError));
}

// Several conditions share one Lock (as queue.Queue does).
#[test]
fn conditions_share_a_lock() {
    let mutex = Arc::new(Lock::new());
    let not_empty = Arc::new(Condition::with_lock(Arc::clone(&mutex)));
    let not_full = Condition::with_lock(Arc::clone(&mutex));
    let items = Arc::new(AtomicUsize::new(0));
    let (ne, it) = (Arc::clone(&not_empty), Arc::clone(&items));
    let t = thread::spawn(move || {
        let _g = ne.lock();
        ne.wait_for(|| it.load(SeqCst) > 0).unwrap();
        it.fetch_sub(1, SeqCst);
    });
    until("the consumer", || not_empty.__parked() == 1);
    {
        let _g = not_full.lock();
        items.fetch_add(1, SeqCst);
        assert_eq!(not_full.notify_all(), Ok(0), "nobody waits on not_full");
        assert_eq!(not_empty.notify_one(), Ok(true));
    }
    t.join().unwrap();
    assert_eq!(items.load(SeqCst), 0);
    assert!(!mutex.is_locked());
}
