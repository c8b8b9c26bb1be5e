//! Errors of ordered acquisition and deadlock recovery.
#![forbid(unsafe_code)]

use super::label;
use super::state::Deadlock;
use crate::sync::LockId;
use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// A thread asked for a lock that sorts before (or is) one it already holds
/// through [`acquire`](super::acquire): taking it could deadlock against a
/// thread that follows the order. The Python Cookbook's `acquire(*locks)`
/// (recipe 12.5) raises `RuntimeError('Lock Order Violation')`.
///
/// # Examples
///
/// ```
/// use spindle::lockorder::{acquire, AcquireError};
/// use spindle::sync::Lock;
///
/// let (x, y) = (Lock::new(), Lock::new());
/// let (first, second) = if x.id() < y.id() { (&x, &y) } else { (&y, &x) };
/// let _outer = acquire((second,)).unwrap();
/// match acquire((first,)) {
///     Err(AcquireError::Violation(v)) => {
///         assert_eq!(v.held(), second.id());
///         assert_eq!(v.requested(), first.id());
///     }
///     other => panic!("expected a violation, got {other:?}"),
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LockOrderViolation {
    held: LockId,
    requested: LockId,
}

impl LockOrderViolation {
    pub(crate) fn new(held: LockId, requested: LockId) -> Self {
        LockOrderViolation { held, requested }
    }
    /// The highest lock the thread already held.
    pub fn held(&self) -> LockId {
        self.held
    }
    /// The lock it asked for, which sorts before (or is) `held`.
    pub fn requested(&self) -> LockId {
        self.requested
    }
}

impl fmt::Display for LockOrderViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Lock Order Violation: asked for {} while holding {}",
            label(self.requested),
            label(self.held)
        )
    }
}

impl Error for LockOrderViolation {}

/// The deadlock detector aborted this thread's wait to break a deadlock
/// ([`Deadlock::recover`](super::detector::Deadlock::recover)). Python has no
/// equivalent: its deadlocked threads hang forever.
///
/// A plain `Lock::lock()` has no error channel, so there it arrives as an
/// unwinding payload (no panic message is printed): catch it with
/// [`recoverable`](super::recoverable) or downcast `join()`'s error.
#[derive(Clone)]
pub struct DeadlockError {
    deadlock: Option<Arc<Deadlock>>,
    thread: u64,
    lock: LockId,
}

impl DeadlockError {
    pub(crate) fn new(deadlock: Option<Arc<Deadlock>>, thread: u64, lock: LockId) -> Self {
        DeadlockError {
            deadlock,
            thread,
            lock,
        }
    }
    /// The lock whose wait was aborted.
    pub fn lock(&self) -> LockId {
        self.lock
    }
    /// The deadlock that was broken.
    pub fn deadlock(&self) -> Option<&Deadlock> {
        self.deadlock.as_deref()
    }
}

impl fmt::Debug for DeadlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadlockError")
            .field("thread", &self.thread)
            .field("lock", &self.lock)
            .finish()
    }
}

impl fmt::Display for DeadlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "deadlock detected: the wait for {} was aborted",
            label(self.lock)
        )?;
        if let Some(d) = &self.deadlock {
            write!(f, "\n{d}")?;
        }
        Ok(())
    }
}

impl Error for DeadlockError {}

/// Why [`acquire`](super::acquire) and friends failed.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum AcquireError {
    /// The locks would be taken against the global order.
    Violation(LockOrderViolation),
    /// The deadline passed; no lock of the set is held.
    Timeout,
    /// The deadlock detector aborted the wait; no lock of the set is held.
    Deadlock(DeadlockError),
}

impl AcquireError {
    /// Whether this is a [`AcquireError::Violation`].
    pub fn is_violation(&self) -> bool {
        matches!(self, AcquireError::Violation(_))
    }
    /// Whether this is a [`AcquireError::Timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, AcquireError::Timeout)
    }
    /// Whether this is a [`AcquireError::Deadlock`].
    pub fn is_deadlock(&self) -> bool {
        matches!(self, AcquireError::Deadlock(_))
    }
}

impl fmt::Display for AcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcquireError::Violation(v) => v.fmt(f),
            AcquireError::Timeout => f.write_str("timed out acquiring the locks"),
            AcquireError::Deadlock(d) => d.fmt(f),
        }
    }
}

impl Error for AcquireError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            AcquireError::Violation(v) => Some(v),
            AcquireError::Timeout => None,
            AcquireError::Deadlock(d) => Some(d),
        }
    }
}

impl From<LockOrderViolation> for AcquireError {
    fn from(v: LockOrderViolation) -> Self {
        AcquireError::Violation(v)
    }
}

impl From<DeadlockError> for AcquireError {
    fn from(d: DeadlockError) -> Self {
        AcquireError::Deadlock(d)
    }
}
