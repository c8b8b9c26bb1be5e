//! [`RLock`]: Python's `multiprocessing.RLock`, in shared memory.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::core::{self, Got, HOLDER, Kind, Region};
use crate::sync::{ReleaseError, Wait};

const W_STATE: usize = 1; // holder tid | WAITERS
const W_DEPTH: usize = 2; // touched by the holder only
const W_PID: usize = 3; // the holder's process
const W_GEN: usize = 4; // bumped on each first acquisition
const W_DEATHS: usize = 5;
const WORDS: usize = 6;

/// A re-entrant lock shared between processes, Python's
/// `multiprocessing.RLock`: the thread that holds it may acquire it again,
/// and only that thread may release it.
///
/// The lock word records the holder's thread id (system-wide on Linux). A
/// waiter that finds the holder thread gone (its process died, or the thread
/// ended while holding the lock) takes the lock over; the acquisition
/// succeeds and [`owner_deaths`](RLock::owner_deaths) counts it.
///
/// It is also the lock of a [`Value`](crate::ipc::Value) or
/// [`Array`](crate::ipc::Array) (`get_lock()`), as in Python.
///
/// # Examples
///
/// ```
/// use spindle::ipc::sync::RLock;
/// use spindle::sync::ReleaseError;
///
/// let rlock = RLock::new()?;
/// let outer = rlock.lock();
/// let inner = rlock.lock(); // re-entry by the owner
/// assert_eq!(rlock.recursion_depth(), 2);
/// drop((inner, outer));
/// assert!(!rlock.is_locked());
/// assert_eq!(rlock.release(), Err(ReleaseError::NotOwner));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct RLock {
    region: Region,
}

impl RLock {
    /// Creates an unlocked re-entrant lock in fresh shared memory
    /// (`multiprocessing.RLock()`).
    ///
    /// # Errors
    /// The OS error if the shared memory cannot be made.
    pub fn new() -> io::Result<RLock> {
        Ok(RLock {
            region: Region::new(Kind::RLock, WORDS)?,
        })
    }

    fn state(&self) -> u32 {
        self.region.word(W_STATE).load(SeqCst)
    }

    /// Whether any thread of any process holds the lock.
    pub fn is_locked(&self) -> bool {
        self.state() & HOLDER != 0
    }

    /// Whether the calling thread holds the lock (Python's `_is_owned`).
    pub fn is_owned(&self) -> bool {
        self.state() & HOLDER == core::my_tid()
            && self.region.word(W_PID).load(Relaxed) == core::my_pid()
    }

    /// How many times the calling thread holds it (0 if it does not).
    pub fn recursion_depth(&self) -> usize {
        if self.is_owned() {
            self.region.word(W_DEPTH).load(Relaxed) as usize
        } else {
            0
        }
    }

    /// How many times this lock was taken over from a holder that had died
    /// (spindle addition).
    pub fn owner_deaths(&self) -> u32 {
        self.region.word(W_DEATHS).load(SeqCst)
    }

    /// Blocks until acquired (`acquire()`); re-entry by the owner is
    /// immediate.
    pub fn acquire(&self) {
        self.acquire_with(Wait::Forever);
    }

    /// Acquires without blocking; returns whether acquired.
    #[must_use = "if true, the lock is held and must be released"]
    pub fn try_acquire(&self) -> bool {
        self.acquire_with(Wait::Never)
    }

    /// Acquires, waiting at most `timeout`; returns whether acquired.
    #[must_use = "if true, the lock is held and must be released"]
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.acquire_with(Wait::after(timeout))
    }

    /// Acquires, waiting at most until `deadline`; returns whether acquired.
    #[must_use = "if true, the lock is held and must be released"]
    pub fn acquire_deadline(&self, deadline: Instant) -> bool {
        self.acquire_with(Wait::Until(deadline))
    }

    /// Releases one level (`release()`).
    ///
    /// # Errors
    /// [`ReleaseError::NotOwner`] if the calling thread does not hold it
    /// (Python: `AssertionError`/`RuntimeError`).
    pub fn release(&self) -> Result<(), ReleaseError> {
        if !self.is_owned() {
            return Err(ReleaseError::NotOwner);
        }
        let depth = self.region.word(W_DEPTH).load(Relaxed);
        if depth > 1 {
            self.region.word(W_DEPTH).store(depth - 1, Relaxed);
        } else {
            self.release_outer();
        }
        Ok(())
    }

    /// Blocks until acquired and returns a guard releasing one level on drop
    /// (`with rlock:`).
    pub fn lock(&self) -> RLockGuard<'_> {
        self.acquire_with(Wait::Forever);
        self.guard()
    }

    /// A guard if the lock can be had now.
    pub fn try_lock(&self) -> Option<RLockGuard<'_>> {
        self.acquire_with(Wait::Never).then(|| self.guard())
    }

    /// A guard, waiting at most `timeout`.
    pub fn lock_timeout(&self, timeout: Duration) -> Option<RLockGuard<'_>> {
        self.acquire_with(Wait::after(timeout))
            .then(|| self.guard())
    }

    /// A guard, waiting at most until `deadline`.
    pub fn lock_deadline(&self, deadline: Instant) -> Option<RLockGuard<'_>> {
        self.acquire_with(Wait::Until(deadline))
            .then(|| self.guard())
    }

    fn guard(&self) -> RLockGuard<'_> {
        RLockGuard {
            lock: self,
            _not_send: PhantomData,
        }
    }

    pub(crate) fn acquire_with(&self, wait: Wait) -> bool {
        if self.is_owned() {
            let w = self.region.word(W_DEPTH);
            w.store(w.load(Relaxed) + 1, Relaxed);
            return true;
        }
        self.acquire_outer(wait, 1)
    }

    fn acquire_outer(&self, wait: Wait, depth: u32) -> bool {
        let got = core::mutex_lock(self.region.word(W_STATE), core::my_tid(), wait);
        if !got.ok() {
            return false;
        }
        if got == Got::Recovered {
            self.region.word(W_DEATHS).fetch_add(1, Relaxed);
        }
        self.region.word(W_PID).store(core::my_pid(), Relaxed);
        self.region.word(W_DEPTH).store(depth, Relaxed);
        let g = self.region.word(W_GEN);
        let next = match g.load(Relaxed).wrapping_add(1) {
            0 => 1,
            n => n,
        };
        g.store(next, Relaxed);
        true
    }

    fn release_outer(&self) {
        self.region.word(W_DEPTH).store(0, Relaxed);
        self.region.word(W_PID).store(0, Relaxed);
        core::mutex_unlock(self.region.word(W_STATE));
    }

    /// The number of the current holding (changes at every first
    /// acquisition; never 0). Meaningful to the holder only.
    pub(crate) fn generation(&self) -> u32 {
        self.region.word(W_GEN).load(Relaxed)
    }

    /// Python's `_release_save`: frees the lock at any depth (the caller owns
    /// it); returns the depth to restore.
    pub(crate) fn release_save(&self) -> u32 {
        let depth = self.region.word(W_DEPTH).load(Relaxed);
        self.release_outer();
        depth
    }

    /// Python's `_acquire_restore`.
    pub(crate) fn acquire_restore(&self, depth: u32) {
        self.acquire_outer(Wait::Forever, depth.max(1));
    }
}

impl fmt::Debug for RLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLock")
            .field("locked", &self.is_locked())
            .field("owned", &self.is_owned())
            .finish()
    }
}

impl Serialize for RLock {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.region.serialize(s)
    }
}

impl<'de> Deserialize<'de> for RLock {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(RLock {
            region: Region::deserialize(d, Kind::RLock, WORDS)?,
        })
    }
}

/// Holds one level of an [`RLock`]; returned by [`RLock::lock`]. It stays on
/// the thread that took it (not `Send`), since an `RLock` has an owner.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RLockGuard<'a> {
    lock: &'a RLock,
    _not_send: PhantomData<*const ()>,
}

impl Drop for RLockGuard<'_> {
    fn drop(&mut self) {
        let _ = self.lock.release();
    }
}

impl fmt::Debug for RLockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLockGuard").finish_non_exhaustive()
    }
}
