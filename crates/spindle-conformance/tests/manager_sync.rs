//! The sync conformance suite (`spindle_conformance::sync`, a port of
//! CPython's `Lib/test/lock_tests.py`) run against the manager's proxies
//! through their contract traits: every object lives on one manager server
//! in a child process (`spindle_conformance::sync::manager`), reached over
//! its Unix socket. Proxies cannot count their blocked threads, so the
//! checks fall back on a handshake there. A manager barrier takes no action
//! (the server cannot run client code), so `barrier_with_action` does not
//! apply; a manager condition is always over an `RLock`.

use spindle::manager::{
    BarrierProxy, BoundedSemaphoreProxy, ConditionProxy, EventProxy, LockProxy, RLockProxy,
    SemaphoreProxy,
};

spindle_conformance::sync_suite! {
    lock: LockProxy,
    rlock: RLockProxy,
    condition: ConditionProxy,
    semaphore: SemaphoreProxy,
    bounded_semaphore: BoundedSemaphoreProxy,
    event: EventProxy,
    barrier: BarrierProxy,
}
