//! [`Barrier`]: Python's `multiprocessing.Barrier`, in shared memory.

use std::fmt;
use std::io;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::core::{self, Kind, Region};
use crate::sync::{BarrierWaitError, BrokenBarrierError, Wait, deadline_after};

/// The internal mutex (holder pid | WAITERS): taken over if its holder dies.
const W_MUTEX: usize = 1;
/// Parties inside `wait` in the current round.
const W_COUNT: usize = 2;
/// Rounds completed.
const W_ROUND: usize = 3;
/// Bumped at every trip, break and reset; waiters sleep on it.
const W_EPOCH: usize = 4;
/// 1 while broken (until `reset`).
const W_BROKEN: usize = 5;
/// Bumped whenever the waiters of a round must leave broken.
const W_BREAKS: usize = 6;
const W_PARTIES: usize = 7;
const WORDS: usize = 8;

/// Makes a fixed number of processes (or threads) meet, Python's
/// `multiprocessing.Barrier`: each [`wait`](Barrier::wait) blocks until
/// `parties` are waiting, then all go on; the barrier is reusable.
///
/// `wait` returns the arrival index, `0..parties` (the last to arrive gets
/// `parties - 1`). [`abort`](Barrier::abort), a timed-out wait, or a
/// [`reset`](Barrier::reset) while parties wait break it, as in Python. There
/// is no `action` (a closure cannot cross processes): let the party that gets
/// index 0 do the work. The internal lock is taken over if a process dies
/// holding it; a process that dies *waiting* still counts as arrived, so use
/// [`wait_timeout`](Barrier::wait_timeout) when a party may die.
///
/// # Examples
///
/// ```
/// use spindle::ipc::sync::Barrier;
/// use spindle::process::Process;
///
/// #[spindle::task]
/// fn meet(b: Barrier) -> usize {
///     b.wait().unwrap()
/// }
///
/// let barrier = Barrier::new(2)?;
/// let mut p = Process::new(meet::call(barrier.clone()));
/// p.start()?;
/// let mine = barrier.wait()?;
/// p.join()?;
/// assert!(mine < 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Barrier {
    region: Region,
}

impl Barrier {
    /// Creates a barrier for `parties` parties
    /// (`multiprocessing.Barrier(parties)`).
    ///
    /// # Errors
    /// `InvalidInput` if `parties` is 0 or above `u32::MAX` (Python:
    /// `ValueError`); the OS error if the shared memory cannot be made.
    pub fn new(parties: usize) -> io::Result<Barrier> {
        let p = u32::try_from(parties)
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "parties must be > 0"))?;
        let region = Region::new(Kind::Barrier, WORDS)?;
        region.word(W_PARTIES).store(p, SeqCst);
        Ok(Barrier { region })
    }

    fn word(&self, i: usize) -> &AtomicU32 {
        self.region.word(i)
    }

    fn with_mutex<R>(&self, f: impl FnOnce() -> R) -> R {
        core::mutex_lock(self.word(W_MUTEX), core::my_pid(), Wait::Forever);
        let r = f();
        core::mutex_unlock(self.word(W_MUTEX));
        r
    }

    /// The number of parties required (`parties`).
    pub fn parties(&self) -> usize {
        self.word(W_PARTIES).load(SeqCst) as usize
    }

    /// The number of parties waiting now (`n_waiting`).
    pub fn n_waiting(&self) -> usize {
        self.word(W_COUNT).load(SeqCst) as usize
    }

    /// Whether the barrier is broken (`broken`).
    pub fn is_broken(&self) -> bool {
        self.word(W_BROKEN).load(SeqCst) != 0
    }

    /// Waits until `parties` parties wait; returns the arrival index.
    ///
    /// # Errors
    /// [`BrokenBarrierError`] if the barrier is or becomes broken.
    pub fn wait(&self) -> Result<usize, BrokenBarrierError> {
        self.wait_inner(None).map_err(|_| BrokenBarrierError)
    }

    /// Like [`wait`](Barrier::wait), giving up after `timeout`; a timeout
    /// breaks the barrier, as in Python.
    ///
    /// # Errors
    /// [`BarrierWaitError::Timeout`] if this wait timed out,
    /// [`BarrierWaitError::Broken`] if the barrier is or became broken.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize, BarrierWaitError> {
        self.wait_inner(deadline_after(timeout))
    }

    /// Like [`wait_timeout`](Barrier::wait_timeout), until `deadline`.
    ///
    /// # Errors
    /// As [`wait_timeout`](Barrier::wait_timeout).
    pub fn wait_deadline(&self, deadline: Instant) -> Result<usize, BarrierWaitError> {
        self.wait_inner(Some(deadline))
    }

    /// Breaks the barrier and releases every party with an error, until the
    /// next [`reset`](Barrier::reset) (`abort()`).
    pub fn abort(&self) {
        self.with_mutex(|| self.break_round(true));
    }

    /// Returns the barrier to its empty, unbroken state; parties waiting now
    /// leave with [`BrokenBarrierError`] (`reset()`).
    pub fn reset(&self) {
        self.with_mutex(|| {
            if self.word(W_COUNT).load(SeqCst) > 0 {
                self.word(W_BREAKS).fetch_add(1, SeqCst);
            }
            self.word(W_COUNT).store(0, SeqCst);
            self.word(W_BROKEN).store(0, SeqCst);
            self.bump_epoch();
        });
    }

    fn bump_epoch(&self) {
        self.word(W_EPOCH).fetch_add(1, SeqCst);
        core::wake_all(self.word(W_EPOCH));
    }

    /// Under the mutex: the current round leaves broken.
    fn break_round(&self, stay_broken: bool) {
        if stay_broken {
            self.word(W_BROKEN).store(1, SeqCst);
        }
        self.word(W_BREAKS).fetch_add(1, SeqCst);
        self.word(W_COUNT).store(0, SeqCst);
        self.bump_epoch();
    }

    fn wait_inner(&self, deadline: Option<Instant>) -> Result<usize, BarrierWaitError> {
        let entered = self.with_mutex(|| {
            if self.is_broken() {
                return Err(BarrierWaitError::Broken);
            }
            let round = self.word(W_ROUND).load(SeqCst);
            let breaks = self.word(W_BREAKS).load(SeqCst);
            let index = self.word(W_COUNT).load(SeqCst);
            if index + 1 >= self.word(W_PARTIES).load(SeqCst) {
                // The last party: trip.
                self.word(W_COUNT).store(0, SeqCst);
                self.word(W_ROUND).fetch_add(1, SeqCst);
                self.bump_epoch();
                return Ok(Err(index as usize));
            }
            self.word(W_COUNT).store(index + 1, SeqCst);
            Ok(Ok((round, breaks, index as usize)))
        })?;
        let (round, breaks, index) = match entered {
            Err(last) => return Ok(last),
            Ok(t) => t,
        };
        let epoch = self.word(W_EPOCH);
        loop {
            let e = epoch.load(SeqCst);
            if self.word(W_ROUND).load(SeqCst) != round {
                return Ok(index);
            }
            if self.word(W_BREAKS).load(SeqCst) != breaks {
                return Err(BarrierWaitError::Broken);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return self.with_mutex(|| {
                    if self.word(W_ROUND).load(SeqCst) != round {
                        Ok(index)
                    } else if self.word(W_BREAKS).load(SeqCst) != breaks {
                        Err(BarrierWaitError::Broken)
                    } else {
                        self.break_round(true);
                        Err(BarrierWaitError::Timeout)
                    }
                });
            }
            core::wait_on(epoch, e, deadline);
        }
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties())
            .field("n_waiting", &self.n_waiting())
            .field("broken", &self.is_broken())
            .finish()
    }
}

impl Serialize for Barrier {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.region.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Barrier {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let region = Region::deserialize(d, Kind::Barrier, WORDS)?;
        if region.word(W_PARTIES).load(SeqCst) == 0 {
            return Err(serde::de::Error::custom("barrier with 0 parties"));
        }
        Ok(Barrier { region })
    }
}
