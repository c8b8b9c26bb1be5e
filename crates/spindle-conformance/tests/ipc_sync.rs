//! The sync conformance suite (`spindle_conformance::sync`, a port of
//! CPython's `Lib/test/lock_tests.py`) run against the process-shared
//! objects of `spindle::ipc::sync`, through their contract traits, within
//! one process: its threads share one mapping of each object (spindle's
//! `tests/ipc_sync.rs` covers other processes and dead holders). The
//! process `Lock` and `RLock` cannot count their blocked threads, so the
//! checks fall back on a handshake there. Process barriers take no action,
//! so the `barrier_with_action` checks do not apply.

use spindle::ipc::sync::{Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, Semaphore};

spindle_conformance::sync_suite! {
    lock: Lock,
    rlock: RLock,
    condition: Condition,
    condition_over_lock: Condition<Lock>,
    semaphore: Semaphore,
    bounded_semaphore: BoundedSemaphore,
    event: Event,
    barrier: Barrier,
}
