//! [`Condition`]: Python's `multiprocessing.Condition`, in shared memory.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::core::{self, Kind, Region};
use super::{Lock, RLock};
use crate::sync::{NotOwnedError, ReleaseError, Wait, deadline_after};

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Lock {}
    impl Sealed for super::RLock {}
}

/// A process-shared lock a [`Condition`] can be built on: [`Lock`] or
/// [`RLock`] (sealed). The methods are the internal protocol of Python's
/// `Condition` and are not meant to be called directly.
pub trait SharedLock: sealed::Sealed + Clone + Send + Sync + Serialize + 'static {
    /// Whether the caller may wait/notify: for a `Lock`, whether this process
    /// holds it; for an `RLock`, whether the calling thread does.
    #[doc(hidden)]
    fn cond_is_owned(&self) -> bool;
    /// Frees the lock whatever its depth; returns what to restore.
    #[doc(hidden)]
    fn cond_release_save(&self) -> u32;
    /// Re-acquires after a wait, restoring the saved depth.
    #[doc(hidden)]
    fn cond_acquire_restore(&self, saved: u32);
    /// Acquires: `None` never blocks, `Some(None)` blocks, `Some(Some(t))`
    /// until `t`.
    #[doc(hidden)]
    fn cond_acquire(&self, wait: Option<Option<Instant>>) -> bool;
    /// Releases one level.
    #[doc(hidden)]
    fn cond_release(&self) -> Result<(), ReleaseError>;
}

fn to_wait(wait: Option<Option<Instant>>) -> Wait {
    match wait {
        None => Wait::Never,
        Some(None) => Wait::Forever,
        Some(Some(t)) => Wait::Until(t),
    }
}

impl SharedLock for Lock {
    fn cond_is_owned(&self) -> bool {
        self.held_by_this_process()
    }
    fn cond_release_save(&self) -> u32 {
        let _ = self.release();
        0
    }
    fn cond_acquire_restore(&self, _saved: u32) {
        self.acquire_with(Wait::Forever);
    }
    fn cond_acquire(&self, wait: Option<Option<Instant>>) -> bool {
        self.acquire_with(to_wait(wait))
    }
    fn cond_release(&self) -> Result<(), ReleaseError> {
        self.release()
    }
}

impl SharedLock for RLock {
    fn cond_is_owned(&self) -> bool {
        self.is_owned()
    }
    fn cond_release_save(&self) -> u32 {
        self.release_save()
    }
    fn cond_acquire_restore(&self, saved: u32) {
        self.acquire_restore(saved);
    }
    fn cond_acquire(&self, wait: Option<Option<Instant>>) -> bool {
        self.acquire_with(to_wait(wait))
    }
    fn cond_release(&self) -> Result<(), ReleaseError> {
        self.release()
    }
}

/// Bumped by every `notify` that wakes someone; waiters sleep on it.
const W_SEQ: usize = 1;
/// Waiters registered and not yet notified (changed under the lock).
const W_SLEEPERS: usize = 2;
/// Notifications handed out and not yet taken by a waiter.
const W_PERMITS: usize = 3;
const WORDS: usize = 4;

/// A condition variable shared between processes, Python's
/// `multiprocessing.Condition`: holders of its lock wait until another
/// process (or thread) holding the lock notifies them.
///
/// The lock is an [`RLock`] by default, as in Python, or a given [`Lock`] /
/// [`RLock`]. `notify(n)` moves up to `n` registered waiters to "notified";
/// a waiter only takes a notification issued after it started waiting, so a
/// late waiter cannot steal one, and `wait` never returns `true` spuriously.
/// Unlike Python's, `notify` does not wait for the woken processes to run,
/// so a waiter that died cannot block the notifier; its notification is then
/// taken by the next waiter instead.
///
/// # Examples
///
/// ```
/// use spindle::ipc::Value;
/// use spindle::ipc::sync::Condition;
/// use spindle::process::Process;
///
/// #[spindle::task]
/// fn produce(cond: Condition, ready: Value<u32>) {
///     let _held = cond.lock();
///     ready.store(1);
///     cond.notify_all().unwrap();
/// }
///
/// let cond = Condition::new()?;
/// let ready = Value::new(0u32)?;
/// let mut p = Process::new(produce::call(cond.clone(), ready.clone()));
/// {
///     let _held = cond.lock();
///     p.start()?;
///     cond.wait_for(|| ready.load() == 1).unwrap();
/// }
/// p.join()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Condition<L: SharedLock = RLock> {
    lock: L,
    region: Region,
}

impl Condition<RLock> {
    /// Creates a condition over a fresh [`RLock`]
    /// (`multiprocessing.Condition()`).
    ///
    /// # Errors
    /// The OS error if the shared memory cannot be made.
    pub fn new() -> io::Result<Self> {
        Condition::with_lock(RLock::new()?)
    }
}

impl<L: SharedLock> Condition<L> {
    /// Creates a condition over an existing lock
    /// (`multiprocessing.Condition(lock)`).
    ///
    /// # Errors
    /// The OS error if the shared memory cannot be made.
    pub fn with_lock(lock: L) -> io::Result<Self> {
        Ok(Condition {
            lock,
            region: Region::new(Kind::Condition, WORDS)?,
        })
    }

    /// The underlying lock.
    pub fn get_lock(&self) -> &L {
        &self.lock
    }

    fn word(&self, i: usize) -> &AtomicU32 {
        self.region.word(i)
    }

    /// Acquires the underlying lock, blocking (`acquire()`).
    pub fn acquire(&self) {
        self.lock.cond_acquire(Some(None));
    }

    /// Acquires the underlying lock without blocking.
    #[must_use = "if true, the lock is held and must be released"]
    pub fn try_acquire(&self) -> bool {
        self.lock.cond_acquire(None)
    }

    /// Acquires the underlying lock, waiting at most `timeout`.
    #[must_use = "if true, the lock is held and must be released"]
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.lock.cond_acquire(Some(deadline_after(timeout)))
    }

    /// Acquires the underlying lock, waiting at most until `deadline`.
    #[must_use = "if true, the lock is held and must be released"]
    pub fn acquire_deadline(&self, deadline: Instant) -> bool {
        self.lock.cond_acquire(Some(Some(deadline)))
    }

    /// Releases the underlying lock (`release()`).
    ///
    /// # Errors
    /// The lock's [`ReleaseError`].
    pub fn release(&self) -> Result<(), ReleaseError> {
        self.lock.cond_release()
    }

    /// Acquires the lock and returns a guard releasing it on drop
    /// (`with cond:`).
    pub fn lock(&self) -> ConditionGuard<'_, L> {
        self.lock.cond_acquire(Some(None));
        ConditionGuard {
            cond: self,
            _not_send: PhantomData,
        }
    }

    /// Waits until notified (`wait()`); the lock is released meanwhile and
    /// held again on return.
    ///
    /// # Errors
    /// [`NotOwnedError`] if the caller does not hold the lock.
    pub fn wait(&self) -> Result<(), NotOwnedError> {
        self.wait_inner(None).map(|_| ())
    }

    /// Waits until notified or `timeout`; `false` on timeout.
    ///
    /// # Errors
    /// [`NotOwnedError`] if the caller does not hold the lock.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, NotOwnedError> {
        self.wait_inner(deadline_after(timeout))
    }

    /// Waits until notified or `deadline`; `false` on timeout.
    ///
    /// # Errors
    /// [`NotOwnedError`] if the caller does not hold the lock.
    pub fn wait_deadline(&self, deadline: Instant) -> Result<bool, NotOwnedError> {
        self.wait_inner(Some(deadline))
    }

    fn take_permit(&self) -> bool {
        let w = self.word(W_PERMITS);
        let mut p = w.load(SeqCst);
        while p > 0 {
            match w.compare_exchange(p, p - 1, SeqCst, SeqCst) {
                Ok(_) => return true,
                Err(now) => p = now,
            }
        }
        false
    }

    fn wait_inner(&self, deadline: Option<Instant>) -> Result<bool, NotOwnedError> {
        if !self.lock.cond_is_owned() {
            return Err(NotOwnedError);
        }
        let seq = self.word(W_SEQ);
        self.word(W_SLEEPERS).fetch_add(1, SeqCst);
        let registered = seq.load(SeqCst);
        let saved = self.lock.cond_release_save();
        let mut notified = false;
        loop {
            let s = seq.load(SeqCst);
            // Only a notification issued since we registered is ours.
            if s != registered && self.take_permit() {
                notified = true;
                break;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            core::wait_on(seq, s, deadline);
        }
        self.lock.cond_acquire_restore(saved);
        if !notified {
            // Under the lock again: a notify that raced with the timeout
            // counts; otherwise leave the sleepers.
            if seq.load(SeqCst) != registered && self.take_permit() {
                notified = true;
            } else {
                let sl = self.word(W_SLEEPERS);
                let n = sl.load(SeqCst);
                sl.store(n.saturating_sub(1), SeqCst);
            }
        }
        Ok(notified)
    }

    /// Waits until `predicate()` is true (`wait_for(predicate)`), evaluated
    /// with the lock held, first before any wait.
    ///
    /// # Errors
    /// [`NotOwnedError`] if the caller does not hold the lock.
    pub fn wait_for(&self, predicate: impl FnMut() -> bool) -> Result<(), NotOwnedError> {
        self.wait_for_inner(predicate, None).map(|_| ())
    }

    /// Waits until `predicate()` is true or `timeout`; returns the last value
    /// of the predicate.
    ///
    /// # Errors
    /// [`NotOwnedError`] if the caller does not hold the lock.
    pub fn wait_for_timeout(
        &self,
        predicate: impl FnMut() -> bool,
        timeout: Duration,
    ) -> Result<bool, NotOwnedError> {
        self.wait_for_inner(predicate, deadline_after(timeout))
    }

    /// Waits until `predicate()` is true or `deadline`; returns the last
    /// value of the predicate.
    ///
    /// # Errors
    /// [`NotOwnedError`] if the caller does not hold the lock.
    pub fn wait_for_deadline(
        &self,
        predicate: impl FnMut() -> bool,
        deadline: Instant,
    ) -> Result<bool, NotOwnedError> {
        self.wait_for_inner(predicate, Some(deadline))
    }

    fn wait_for_inner(
        &self,
        mut predicate: impl FnMut() -> bool,
        deadline: Option<Instant>,
    ) -> Result<bool, NotOwnedError> {
        if !self.lock.cond_is_owned() {
            return Err(NotOwnedError);
        }
        let mut result = predicate();
        while !result {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            self.wait_inner(deadline)?;
            result = predicate();
        }
        Ok(result)
    }

    /// Wakes up to `n` waiters (`notify(n)`); returns how many.
    ///
    /// # Errors
    /// [`NotOwnedError`] if the caller does not hold the lock.
    pub fn notify(&self, n: usize) -> Result<usize, NotOwnedError> {
        if !self.lock.cond_is_owned() {
            return Err(NotOwnedError);
        }
        let sleepers = self.word(W_SLEEPERS).load(SeqCst);
        let k = sleepers.min(u32::try_from(n).unwrap_or(u32::MAX));
        if k > 0 {
            self.word(W_SLEEPERS).store(sleepers - k, SeqCst);
            self.word(W_PERMITS).fetch_add(k, SeqCst);
            self.word(W_SEQ).fetch_add(1, SeqCst);
            // Everyone: a waiter registered after an earlier notify must not
            // be the only one woken while an older one sleeps on.
            core::wake_all(self.word(W_SEQ));
        }
        Ok(k as usize)
    }

    /// Wakes one waiter (`notify()`); returns whether one was woken.
    ///
    /// # Errors
    /// [`NotOwnedError`] if the caller does not hold the lock.
    pub fn notify_one(&self) -> Result<bool, NotOwnedError> {
        self.notify(1).map(|n| n == 1)
    }

    /// Wakes every waiter (`notify_all()`); returns how many.
    ///
    /// # Errors
    /// [`NotOwnedError`] if the caller does not hold the lock.
    pub fn notify_all(&self) -> Result<usize, NotOwnedError> {
        self.notify(usize::MAX)
    }

    /// Test support, not part of the API: waiters registered and not yet
    /// notified.
    #[doc(hidden)]
    pub fn __sleepers(&self) -> usize {
        self.word(W_SLEEPERS).load(Relaxed) as usize
    }
}

impl<L: SharedLock + fmt::Debug> fmt::Debug for Condition<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition")
            .field("lock", &self.lock)
            .field("waiting", &self.__sleepers())
            .finish()
    }
}

impl<L: SharedLock> Serialize for Condition<L> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut t = s.serialize_tuple(2)?;
        t.serialize_element(&self.lock)?;
        t.serialize_element(&RegionRef(&self.region))?;
        t.end()
    }
}

impl<'de, L: SharedLock + Deserialize<'de>> Deserialize<'de> for Condition<L> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (lock, RegionOwned(region)) = <(L, RegionOwned)>::deserialize(d)?;
        Ok(Condition { lock, region })
    }
}

struct RegionRef<'a>(&'a Region);

impl Serialize for RegionRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

struct RegionOwned(Region);

impl<'de> Deserialize<'de> for RegionOwned {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Region::deserialize(d, Kind::Condition, WORDS).map(RegionOwned)
    }
}

/// Holds a [`Condition`]'s lock; returned by [`Condition::lock`]. Not `Send`.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ConditionGuard<'a, L: SharedLock> {
    cond: &'a Condition<L>,
    _not_send: PhantomData<*const ()>,
}

impl<L: SharedLock> ConditionGuard<'_, L> {
    /// The condition whose lock is held.
    pub fn condition(&self) -> &Condition<L> {
        self.cond
    }
}

impl<L: SharedLock> Drop for ConditionGuard<'_, L> {
    fn drop(&mut self) {
        let _ = self.cond.lock.cond_release();
    }
}

impl<L: SharedLock> fmt::Debug for ConditionGuard<'_, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConditionGuard").finish_non_exhaustive()
    }
}
