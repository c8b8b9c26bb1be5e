//! The synchronisation objects, written once over a scope's raw layer.
//!
//! Each type here is generic over a [`Scope`](super::raw::Scope); the names
//! to use are the aliases of the scopes: [`spindle::sync::Lock`](crate::sync::Lock)
//! (`Lock<ThreadScope>`) for threads, [`spindle::ipc::sync::Lock`](crate::ipc::sync::Lock)
//! (`Lock<ProcessScope>`) for processes, and so on. Every type implements
//! its contract from [`contract`](super::contract), so generic code may take
//! either.
#![forbid(unsafe_code)]

#[macro_use]
mod family;
mod barrier;
mod condition;
mod event;
mod lock;
mod rlock;
mod semaphore;

#[cfg(all(test, loom))]
mod loom_model;

pub use barrier::{Barrier, BarrierWait};
pub use condition::{Condition, ConditionGuard, ConditionLock, ConditionLockAsync, ConditionWait};
pub use event::{Event, EventWait};
pub use lock::{Lock, LockAcquire, LockGuard};
pub use rlock::{RLock, RLockGuard};
pub use semaphore::{
    Bounded, BoundedSemaphore, Semaphore, SemaphoreAcquire, SemaphoreGuard, SemaphorePermit,
    Unbounded,
};

pub(crate) use barrier::{Action, BarrierState, check_parties};
pub(crate) use event::EventState;
pub(crate) use rlock::RState;
pub(crate) use semaphore::SemState;

use std::convert::Infallible;

/// The value of a result that cannot fail.
pub(crate) fn into_ok<T>(r: Result<T, Infallible>) -> T {
    match r {
        Ok(v) => v,
        Err(never) => match never {},
    }
}
