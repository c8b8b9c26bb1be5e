//! [`Lock`]: Python's `multiprocessing.Lock`, in shared memory.

use std::fmt;
use std::io;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::core::{self, Got, HOLDER, Kind, Region};
use crate::sync::{ReleaseError, Wait};

const W_STATE: usize = 1;
const W_DEATHS: usize = 2;
const WORDS: usize = 3;

/// A lock shared between processes, Python's `multiprocessing.Lock`.
///
/// Like Python's, it is not owned by a thread: any thread of any process may
/// release it. It lives in shared memory; a handle crosses into a child as a
/// `#[spindle::task]` argument (its descriptor travels with the call) or by
/// being captured by a `Fork` closure, and `clone` gives another handle in
/// this process.
///
/// **A holder that dies does not wedge the others.** The lock word records
/// the holder's process id; a waiter that sleeps a while without the word
/// changing checks whether that process still runs and, if it does not,
/// takes the lock over. The acquisition then succeeds normally and
/// [`owner_deaths`](Lock::owner_deaths) counts it. (Python's lock stays
/// locked forever.)
///
/// # Examples
///
/// ```
/// use spindle::ipc::sync::Lock;
/// use spindle::process::Process;
///
/// #[spindle::task]
/// fn hold_then_release(lock: Lock) {
///     assert!(lock.is_locked()); // taken by the parent
///     lock.release().unwrap(); // any process may release it
/// }
///
/// let lock = Lock::new()?;
/// lock.acquire();
/// let mut p = Process::new(hold_then_release::call(lock.clone()));
/// p.start()?;
/// p.join()?;
/// assert!(!lock.is_locked());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Lock {
    region: Region,
}

impl Lock {
    /// Creates an unlocked lock in fresh shared memory
    /// (`multiprocessing.Lock()`).
    ///
    /// # Errors
    /// The OS error if the shared memory cannot be made.
    pub fn new() -> io::Result<Lock> {
        Ok(Lock {
            region: Region::new(Kind::Lock, WORDS)?,
        })
    }

    /// Whether the lock is held by anyone.
    pub fn is_locked(&self) -> bool {
        self.region.word(W_STATE).load(SeqCst) & HOLDER != 0
    }

    /// How many times this lock was taken over from a holder process that
    /// had died (spindle addition).
    pub fn owner_deaths(&self) -> u32 {
        self.region.word(W_DEATHS).load(SeqCst)
    }

    /// Blocks until the lock is acquired (`acquire()`).
    pub fn acquire(&self) {
        self.acquire_with(Wait::Forever);
    }

    /// Acquires the lock if it is free (or its holder died), without
    /// blocking (`acquire(block=False)`); returns whether it was acquired.
    #[must_use = "if true, the lock is held and must be released"]
    pub fn try_acquire(&self) -> bool {
        self.acquire_with(Wait::Never)
    }

    /// Acquires the lock, waiting at most `timeout` (`acquire(timeout=t)`);
    /// returns whether it was acquired.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let lock = spindle::ipc::sync::Lock::new()?;
    /// lock.acquire();
    /// assert!(!lock.acquire_timeout(Duration::from_millis(1)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use = "if true, the lock is held and must be released"]
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.acquire_with(Wait::after(timeout))
    }

    /// Acquires the lock, waiting at most until `deadline`.
    #[must_use = "if true, the lock is held and must be released"]
    pub fn acquire_deadline(&self, deadline: Instant) -> bool {
        self.acquire_with(Wait::Until(deadline))
    }

    /// Releases the lock (`release()`), from any thread or process.
    ///
    /// # Errors
    /// [`ReleaseError::Unlocked`] if it was not locked (Python:
    /// `ValueError: semaphore or lock released too many times`).
    pub fn release(&self) -> Result<(), ReleaseError> {
        if core::mutex_unlock(self.region.word(W_STATE)) == 0 {
            return Err(ReleaseError::Unlocked);
        }
        Ok(())
    }

    /// Blocks until acquired and returns a guard that releases on drop
    /// (`with lock:`).
    pub fn lock(&self) -> LockGuard<'_> {
        self.acquire_with(Wait::Forever);
        LockGuard { lock: self }
    }

    /// A guard if the lock is free now.
    pub fn try_lock(&self) -> Option<LockGuard<'_>> {
        self.acquire_with(Wait::Never)
            .then_some(LockGuard { lock: self })
    }

    /// A guard, waiting at most `timeout`.
    pub fn lock_timeout(&self, timeout: Duration) -> Option<LockGuard<'_>> {
        self.acquire_with(Wait::after(timeout))
            .then_some(LockGuard { lock: self })
    }

    /// A guard, waiting at most until `deadline`.
    pub fn lock_deadline(&self, deadline: Instant) -> Option<LockGuard<'_>> {
        self.acquire_with(Wait::Until(deadline))
            .then_some(LockGuard { lock: self })
    }

    pub(crate) fn acquire_with(&self, wait: Wait) -> bool {
        let got = core::mutex_lock(self.region.word(W_STATE), core::my_pid(), wait);
        if got == Got::Recovered {
            self.region.word(W_DEATHS).fetch_add(1, Relaxed);
        }
        got.ok()
    }

    /// Whether this process holds the lock (Python's `SemLock._is_mine`, as
    /// far as a process-wide lock can tell).
    pub(crate) fn held_by_this_process(&self) -> bool {
        self.region.word(W_STATE).load(SeqCst) & HOLDER == core::my_pid()
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let holder = self.region.word(W_STATE).load(SeqCst) & HOLDER;
        f.debug_struct("Lock")
            .field("locked", &(holder != 0))
            .field("holder_pid", &holder)
            .finish()
    }
}

impl Serialize for Lock {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.region.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Lock {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Lock {
            region: Region::deserialize(d, Kind::Lock, WORDS)?,
        })
    }
}

/// Holds a [`Lock`] and releases it on drop; returned by [`Lock::lock`].
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    lock: &'a Lock,
}

impl LockGuard<'_> {
    /// The lock this guard holds.
    pub fn lock(&self) -> &Lock {
        self.lock
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        // An error means someone released it explicitly meanwhile.
        let _ = self.lock.release();
    }
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard").finish_non_exhaustive()
    }
}
