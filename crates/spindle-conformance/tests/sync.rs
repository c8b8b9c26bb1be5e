//! The sync conformance suite (`spindle_conformance::sync`, a port of
//! CPython's `Lib/test/lock_tests.py`) run against the thread objects of
//! `spindle::sync`, through their contract traits.

use spindle::sync::{Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, Semaphore};

spindle_conformance::sync_suite! {
    lock: Lock,
    rlock: RLock,
    condition: Condition,
    condition_over_lock: Condition<Lock>,
    semaphore: Semaphore,
    bounded_semaphore: BoundedSemaphore,
    event: Event,
    barrier: Barrier,
    barrier_with_action: Barrier,
}
