//! Ordered acquisition: [`acquire`] takes a set of locks in one global order
//! (ascending [`LockId`]), whatever order the caller lists them in — the
//! `acquire(*locks)` context manager of the Python Cookbook (recipe 12.5).
#![forbid(unsafe_code)]

use super::error::{AcquireError, DeadlockError, LockOrderViolation};
use super::set::{Collector, LockSet, Set};
use crate::sync::LockId;
use crate::sync::raw::Locked;
use crate::util::Wait;
use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::panic::Location;
use std::time::{Duration, Instant};

thread_local! {
    /// Ids of the locks this thread holds through `acquire`, ascending (the
    /// recipe's `_local.acquired`).
    static HELD: RefCell<Vec<LockId>> = const { RefCell::new(Vec::new()) };
}

/// Takes every lock of `locks` in ascending id order, blocking, and returns
/// one guard that releases them in reverse order — Python's `with
/// acquire(x_lock, y_lock):` from the recipe. Two threads calling
/// `acquire((&x, &y))` and `acquire((&y, &x))` cannot deadlock each other.
///
/// # Errors
///
/// * [`AcquireError::Violation`] if the calling thread already holds, through
///   `acquire`, a lock that sorts after (or is) the first of `locks`, or if a
///   lock is listed twice; nothing is taken.
/// * [`AcquireError::Deadlock`] if the deadlock detector aborted the wait
///   (only under [`Recovery`](super::detector::Recovery)); nothing is held.
///
/// # Examples
///
/// ```
/// use spindle::lockorder::acquire;
/// use spindle::sync::Lock;
///
/// let (x_lock, y_lock) = (Lock::new(), Lock::new());
/// std::thread::scope(|s| {
///     s.spawn(|| for _ in 0..1000 { let _g = acquire((&x_lock, &y_lock)).unwrap(); });
///     s.spawn(|| for _ in 0..1000 { let _g = acquire((&y_lock, &x_lock)).unwrap(); });
/// });
/// ```
#[track_caller]
pub fn acquire<'a>(locks: impl LockSet<'a>) -> Result<OrderedGuard<'a>, AcquireError> {
    acquire_with(locks, Wait::Forever, Location::caller())
}

/// [`acquire`] without blocking: [`AcquireError::Timeout`] if a lock of the
/// set is busy (none is then held).
///
/// # Errors
///
/// As [`acquire`], plus [`AcquireError::Timeout`].
#[track_caller]
pub fn try_acquire<'a>(locks: impl LockSet<'a>) -> Result<OrderedGuard<'a>, AcquireError> {
    acquire_with(locks, Wait::Never, Location::caller())
}

/// [`acquire`] waiting at most `timeout` for the whole set — the classic remedy
/// "acquire with a timeout" (`acquire(timeout=...)`) combined with the order.
///
/// # Errors
///
/// As [`acquire`], plus [`AcquireError::Timeout`] (none is then held).
///
/// # Examples
///
/// ```
/// use spindle::lockorder::{acquire_timeout, AcquireError};
/// use spindle::sync::Lock;
/// use std::time::Duration;
///
/// let (a, b) = (Lock::new(), Lock::new());
/// let _b = b.lock();
/// let err = acquire_timeout((&a, &b), Duration::from_millis(5)).unwrap_err();
/// assert!(err.is_timeout());
/// assert!(!a.is_locked()); // taken, then given back
/// ```
#[track_caller]
pub fn acquire_timeout<'a>(
    locks: impl LockSet<'a>,
    timeout: Duration,
) -> Result<OrderedGuard<'a>, AcquireError> {
    acquire_with(locks, Wait::after(timeout), Location::caller())
}

/// [`acquire`] waiting at most until `deadline` for the whole set.
///
/// # Errors
///
/// As [`acquire_timeout`].
#[track_caller]
pub fn acquire_deadline<'a>(
    locks: impl LockSet<'a>,
    deadline: Instant,
) -> Result<OrderedGuard<'a>, AcquireError> {
    acquire_with(locks, Wait::Until(deadline), Location::caller())
}

fn acquire_with<'a>(
    locks: impl LockSet<'a>,
    wait: Wait,
    site: &'static Location<'static>,
) -> Result<OrderedGuard<'a>, AcquireError> {
    // Built in place: the guard owns the set from the start, and forgets it
    // (`Set::Empty`) on every error path, after giving back what it took.
    let mut guard = OrderedGuard::new(Set::Empty);
    locks.__collect(&mut Collector(&mut guard.locks));
    let entries = guard.locks.as_mut_slice();
    entries.sort_unstable_by_key(|e| e.id);
    let violation = match entries.windows(2).find(|w| w[0].id == w[1].id) {
        Some(w) => Some(LockOrderViolation::new(w[0].id, w[1].id)),
        None => match (entries.first(), HELD.with(|h| h.borrow().last().copied())) {
            (Some(first), Some(max)) if max >= first.id => {
                Some(LockOrderViolation::new(max, first.id))
            }
            _ => None,
        },
    };
    if let Some(v) = violation {
        guard.locks = Set::Empty;
        return Err(v.into());
    }
    let entries = guard.locks.as_slice();
    for (i, e) in entries.iter().enumerate() {
        let err = match e.lock.take(wait, site) {
            Locked::Acquired => continue,
            Locked::Failed => AcquireError::Timeout,
            Locked::Aborted(payload) => match payload.downcast::<DeadlockError>() {
                Ok(d) => AcquireError::Deadlock(*d),
                Err(other) => std::panic::resume_unwind(other),
            },
        };
        for taken in entries[..i].iter().rev() {
            taken.lock.release();
        }
        guard.locks = Set::Empty;
        return Err(err);
    }
    HELD.with(|h| h.borrow_mut().extend(entries.iter().map(|e| e.id)));
    Ok(guard)
}

/// Holds the locks taken by [`acquire`]; releases them in reverse order when
/// dropped. It stays on its thread (not `Send`): the order record is per
/// thread, and an [`RLock`](crate::sync::RLock) may only be released by its
/// owner.
#[must_use = "the locks are released as soon as the guard is dropped"]
pub struct OrderedGuard<'a> {
    locks: Set<'a>,
    _not_send: PhantomData<*const ()>,
}

impl<'a> OrderedGuard<'a> {
    #[inline]
    fn new(locks: Set<'a>) -> Self {
        OrderedGuard {
            locks,
            _not_send: PhantomData,
        }
    }

    /// The ids of the held locks, in the order they were taken.
    pub fn locks(&self) -> Vec<LockId> {
        self.locks.as_slice().iter().map(|e| e.id).collect()
    }
}

impl Drop for OrderedGuard<'_> {
    fn drop(&mut self) {
        let entries = self.locks.as_slice();
        for e in entries.iter().rev() {
            e.lock.release();
        }
        // Guards may be dropped out of order: forget exactly our ids.
        let _ = HELD.try_with(|h| {
            let mut h = h.borrow_mut();
            let n = entries.len();
            if h.len() >= n && h[h.len() - n..].iter().eq(entries.iter().map(|e| &e.id)) {
                let keep = h.len() - n;
                h.truncate(keep);
                return;
            }
            for e in entries {
                if let Some(i) = h.iter().rposition(|&id| id == e.id) {
                    h.remove(i);
                }
            }
        });
    }
}

impl fmt::Debug for OrderedGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrderedGuard")
            .field("locks", &self.locks())
            .finish()
    }
}
