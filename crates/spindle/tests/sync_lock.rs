//! `Lock` and `RLock`: what is particular to the thread scope. The
//! behaviours of CPython's `Lib/test/lock_tests.py` (`BaseLockTests`,
//! `LockTests`, `RLockTests`) are checked on both scopes by the conformance
//! suite (`spindle_conformance::sync`, run by
//! `crates/spindle-conformance/tests/sync.rs` and `ipc_sync.rs`).

use spindle::sync::{Lock, RLock};

#[test]
fn ids_are_unique_and_stable() {
    let locks: Vec<Lock> = (0..100).map(|_| Lock::new()).collect();
    let mut ids: Vec<_> = locks.iter().map(Lock::id).collect();
    assert_eq!(ids, locks.iter().map(Lock::id).collect::<Vec<_>>());
    let r = RLock::new();
    ids.push(r.id());
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 101);
}

static GLOBAL: Lock = Lock::new();
static GLOBAL_R: RLock = RLock::new();

#[test]
fn locks_work_in_statics() {
    let _g = GLOBAL.lock();
    let _r = GLOBAL_R.lock();
    let _r2 = GLOBAL_R.lock();
    assert!(GLOBAL.is_locked() && GLOBAL_R.is_owned());
}
