//! Deadlock prevention and detection for spindle's locks: the classic
//! remedies (one global lock order, timed acquisition, detection), made
//! first-class.
//!
//! # Which one should I use?
//!
//! * **Take several locks at once?** [`acquire`]`((&a, &b))` takes them in one
//!   global order (ascending [`LockId`]) whatever order you list them in, and
//!   releases them in reverse — Python Cookbook's `acquire(*locks)` context
//!   manager. Asking for a lock that sorts before one the thread already
//!   holds through `acquire` is a typed [`LockOrderViolation`], as the recipe's
//!   `RuntimeError('Lock Order Violation')`.
//! * **Can't be sure of the order?** Bound the wait: [`acquire_timeout`], or
//!   `Lock::acquire_timeout` (already in [`crate::sync`]).
//! * **Want to know before it bites?** The [`checker`] (lockdep-style) records
//!   "held A while acquiring B" program-wide and reports a
//!   [`PotentialDeadlock`](checker::PotentialDeadlock) when the orders form a
//!   cycle, even in a run that did not deadlock. Turn it on with
//!   [`checker::enable`] or `SPINDLE_LOCKORDER=1` (`=panic` to panic). It is
//!   off by default, debug builds included: it multiplies the cost of an
//!   uncontended lock/unlock by about 6–10 (measured by `spindle bench
//!   lockorder`), fine for a test run, too much to impose on every build.
//! * **Stuck right now?** The [`detector`] finds threads blocked in a cycle of
//!   spindle locks ([`detector::detect`], or a [`Watchdog`] thread), names the
//!   threads, the locks and where each was acquired, and can abort waits to
//!   break the cycle ([`Recovery`]): the aborted thread gets a
//!   [`DeadlockError`].
//!
//! Only spindle [`Lock`](crate::sync::Lock) and [`RLock`](crate::sync::RLock)
//! are seen (not `std`/`parking_lot` mutexes, not `Condition::wait`,
//! `Semaphore`, `Event` or joins). See `README.md` beside this file for the
//! algorithms and their costs. With everything off (the default), a lock's
//! fast path pays one relaxed load of a static byte.
//!
//! # Examples
//!
//! The recipe's two threads, `acquire(x_lock, y_lock)` and
//! `acquire(y_lock, x_lock)`, run without deadlock:
//!
//! ```
//! use spindle::lockorder::{self, acquire};
//! use spindle::sync::Lock;
//!
//! let (x_lock, y_lock) = (Lock::new(), Lock::new());
//! lockorder::set_name(&x_lock, "x_lock");
//! lockorder::set_name(&y_lock, "y_lock");
//! std::thread::scope(|s| {
//!     s.spawn(|| for _ in 0..100 { let _g = acquire((&x_lock, &y_lock)).unwrap(); });
//!     s.spawn(|| for _ in 0..100 { let _g = acquire((&y_lock, &x_lock)).unwrap(); });
//! });
//! ```

pub mod checker;
pub mod detector;
mod error;
mod ordered;
mod set;
mod state;
mod track;

pub use detector::{Deadlock, Recovery, Watchdog};
pub use error::{AcquireError, DeadlockError, LockOrderViolation};
pub use ordered::{OrderedGuard, acquire, acquire_deadline, acquire_timeout, try_acquire};
pub use set::{AnyLock, Collector, LockSet, OrderedLock};

use crate::sync::LockId;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;

static NAMES: RwLock<Option<HashMap<LockId, Arc<str>>>> = RwLock::new(None);

/// Gives `lock` a name for reports and errors (e.g. `"x_lock"`); reports
/// otherwise show its id (`lock#3`).
///
/// # Examples
///
/// ```
/// let lock = spindle::sync::Lock::new();
/// spindle::lockorder::set_name(&lock, "account a");
/// assert_eq!(spindle::lockorder::name_of(lock.id()).as_deref(), Some("account a"));
/// ```
pub fn set_name(lock: &impl OrderedLock, name: &str) {
    NAMES
        .write()
        .get_or_insert_with(HashMap::new)
        .insert(lock.lock_id(), name.into());
}

/// The name given to lock `id` with [`set_name`], if any.
pub fn name_of(id: LockId) -> Option<String> {
    NAMES.read().as_ref()?.get(&id).map(|n| n.to_string())
}

/// `"name" (lock#3)`, or `lock#3` if unnamed.
pub(crate) fn label(id: LockId) -> String {
    match name_of(id) {
        Some(n) => format!("{n:?} ({id})"),
        None => id.to_string(),
    }
}

/// Runs `f`, turning a [`DeadlockError`] raised inside it (a plain
/// `Lock::lock()` whose wait the detector aborted) into an `Err`; every other
/// panic goes on unwinding. Guards that `f` held are released on the way out.
///
/// # Errors
///
/// The [`DeadlockError`] if the detector aborted a wait inside `f`.
///
/// # Examples
///
/// ```
/// let lock = spindle::sync::Lock::new();
/// let r = spindle::lockorder::recoverable(|| {
///     let _g = lock.lock();
///     42
/// });
/// assert_eq!(r.unwrap(), 42);
/// ```
pub fn recoverable<R>(f: impl FnOnce() -> R) -> Result<R, DeadlockError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => Ok(r),
        Err(payload) => match payload.downcast::<DeadlockError>() {
            Ok(e) => Err(*e),
            Err(other) => resume_unwind(other),
        },
    }
}
