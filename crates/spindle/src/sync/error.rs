//! Errors of the synchronisation objects: each one names the Python exception
//! it replaces.
#![forbid(unsafe_code)]

use std::error::Error;
use std::fmt;

/// A [`Lock`](super::Lock) or [`RLock`](super::RLock) was released in a state
/// that does not allow it.
///
/// Python raises `RuntimeError("release unlocked lock")` for a `Lock` and
/// `RuntimeError("cannot release un-acquired lock")` for an `RLock`.
///
/// # Examples
///
/// ```
/// use spindle::sync::{Lock, ReleaseError};
///
/// let lock = Lock::new();
/// assert_eq!(lock.release(), Err(ReleaseError::Unlocked));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReleaseError {
    /// The lock was not locked.
    Unlocked,
    /// The calling thread does not own the re-entrant lock (it is unlocked or
    /// held by another thread).
    NotOwner,
}

impl fmt::Display for ReleaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReleaseError::Unlocked => f.write_str("release unlocked lock"),
            ReleaseError::NotOwner => f.write_str("cannot release un-acquired lock"),
        }
    }
}

impl Error for ReleaseError {}

/// A [`Condition`](super::Condition) was waited on or notified without holding
/// its lock (Python: `RuntimeError("cannot wait on un-acquired lock")`).
///
/// # Examples
///
/// ```
/// use spindle::sync::{Condition, NotOwnedError};
///
/// let cond = Condition::new();
/// assert_eq!(cond.notify_all(), Err(NotOwnedError));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct NotOwnedError;

impl fmt::Display for NotOwnedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("condition used without holding its lock")
    }
}

impl Error for NotOwnedError {}

/// A [`BoundedSemaphore`](super::BoundedSemaphore) was released above its
/// initial value (Python: `ValueError("Semaphore released too many times")`).
///
/// # Examples
///
/// ```
/// use spindle::sync::{BoundedSemaphore, OverReleaseError};
///
/// let sem = BoundedSemaphore::new(1);
/// assert_eq!(sem.release(), Err(OverReleaseError));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct OverReleaseError;

impl fmt::Display for OverReleaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("semaphore released too many times")
    }
}

impl Error for OverReleaseError {}

/// A semaphore's `release_n(n)` was refused, and nothing changed.
///
/// # Examples
///
/// ```
/// use spindle::sync::{BoundedSemaphore, ReleaseNError, Semaphore};
///
/// let sem = Semaphore::new(0);
/// assert_eq!(sem.release_n(0), Err(ReleaseNError::Zero));
/// let bounded = BoundedSemaphore::new(1);
/// assert_eq!(bounded.release_n(1), Err(ReleaseNError::OverRelease));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReleaseNError {
    /// `n` was 0: Python's `ValueError('n must be one or more')`.
    Zero,
    /// The count would pass its bound: a
    /// [`BoundedSemaphore`](super::BoundedSemaphore)'s initial value
    /// (Python: `ValueError: Semaphore released too many times`, the
    /// [`OverReleaseError`] of `release`), or a
    /// [`Semaphore`](super::Semaphore)'s scope maximum (`usize::MAX` for
    /// threads, `SEM_VALUE_MAX` for processes; Python's `multiprocessing`
    /// raises `OverflowError`).
    OverRelease,
}

impl From<OverReleaseError> for ReleaseNError {
    fn from(_: OverReleaseError) -> ReleaseNError {
        ReleaseNError::OverRelease
    }
}

impl fmt::Display for ReleaseNError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReleaseNError::Zero => f.write_str("n must be one or more"),
            ReleaseNError::OverRelease => fmt::Display::fmt(&OverReleaseError, f),
        }
    }
}

impl Error for ReleaseNError {}

/// The [`Barrier`](super::Barrier) is broken: it was aborted, reset while
/// threads waited, a wait timed out, or the action panicked (Python:
/// `threading.BrokenBarrierError`).
///
/// # Examples
///
/// ```
/// use spindle::sync::{Barrier, BrokenBarrierError};
///
/// let barrier = Barrier::new(2).unwrap();
/// barrier.abort();
/// assert_eq!(barrier.wait(), Err(BrokenBarrierError));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct BrokenBarrierError;

impl fmt::Display for BrokenBarrierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("barrier is broken")
    }
}

impl Error for BrokenBarrierError {}

/// Why [`Barrier::wait_timeout`](super::Barrier::wait_timeout) failed.
///
/// # Examples
///
/// ```
/// use spindle::sync::{Barrier, BarrierWaitError};
/// use std::time::Duration;
///
/// let barrier = Barrier::new(2).unwrap();
/// let err = barrier.wait_timeout(Duration::from_millis(1)).unwrap_err();
/// assert_eq!(err, BarrierWaitError::Timeout);
/// assert!(barrier.is_broken()); // as in Python, a timeout breaks the barrier
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BarrierWaitError {
    /// The barrier was or became broken while waiting.
    Broken,
    /// This thread's wait timed out; the barrier is now broken.
    Timeout,
}

impl BarrierWaitError {
    /// Whether this thread's own wait timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, BarrierWaitError::Timeout)
    }
}

impl fmt::Display for BarrierWaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BarrierWaitError::Broken => f.write_str("barrier is broken"),
            BarrierWaitError::Timeout => {
                f.write_str("barrier wait timed out (the barrier is now broken)")
            }
        }
    }
}

impl Error for BarrierWaitError {}

impl From<BrokenBarrierError> for BarrierWaitError {
    fn from(_: BrokenBarrierError) -> Self {
        BarrierWaitError::Broken
    }
}

/// A synchronisation object could not be made: an argument Python rejects
/// with `ValueError`, or (process scope) the shared memory could not be
/// made.
#[derive(Debug)]
#[non_exhaustive]
pub enum CreateError {
    /// A barrier for 0 parties (Python: `ValueError: parties must be > 0`).
    ZeroParties,
    /// A count above what the scope holds (a semaphore value above
    /// `SEM_VALUE_MAX`, Python's `ValueError`; a party count that does not
    /// fit a shared word).
    TooLarge {
        /// What was asked for.
        value: usize,
        /// The most the scope holds.
        max: usize,
    },
    /// The OS refused the shared memory (process scope).
    Os(std::io::Error),
}

impl fmt::Display for CreateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CreateError::ZeroParties => f.write_str("parties must be > 0"),
            CreateError::TooLarge { value, max } => {
                write!(f, "value {value} is above the maximum {max}")
            }
            CreateError::Os(e) => write!(f, "cannot make the shared memory: {e}"),
        }
    }
}

impl Error for CreateError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            CreateError::Os(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for CreateError {
    fn from(e: std::io::Error) -> Self {
        CreateError::Os(e)
    }
}

impl From<CreateError> for std::io::Error {
    fn from(e: CreateError) -> Self {
        match e {
            CreateError::Os(e) => e,
            other => std::io::Error::new(std::io::ErrorKind::InvalidInput, other),
        }
    }
}
