//! [`Barrier`]: Python's `threading.Barrier` / `multiprocessing.Barrier`,
//! once for every scope.
//!
//! The state is a few words guarded by the scope's lock word, and waiters
//! sleep on an `epoch` word bumped by every change they wait for. Instead of
//! CPython's draining/resetting phases, a waiter remembers the round and the
//! number of breaks when it arrived: the round moving on means it passed, the
//! breaks moving on means the barrier broke (abort, reset, a timeout, a
//! panicking action) under it. A new round can therefore start while the
//! last one's waiters are still leaving, and nothing is left for a dead
//! process to wedge but the short internal lock, which its scope takes over.
#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, Location, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::sync::atomic::Ordering::SeqCst;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::sync::contract::BlockingBarrier;
use crate::sync::error::{BarrierWaitError, BrokenBarrierError};
use crate::sync::raw::{LockKind, Locked, RawMutex, RawWord, Scope};
use crate::util::{Wait, deadline_after, passed};

/// The state of a [`Barrier`] in its scope's memory. Every word but `epoch`
/// changes under `mutex`.
#[repr(C)]
pub(crate) struct BarrierState<S: Scope> {
    pub(crate) mutex: S::Mutex,
    pub(crate) parties: S::Word,
    /// Parties waiting in the current round.
    pub(crate) count: S::Word,
    /// Rounds completed.
    pub(crate) round: S::Word,
    /// Times the barrier broke under waiters.
    pub(crate) breaks: S::Word,
    /// 1 while broken (until `reset`).
    pub(crate) broken: S::Word,
    /// 1 while the last party runs the action; arrivals wait.
    pub(crate) acting: S::Word,
    /// Bumped on every change waiters wait for; they sleep on it.
    pub(crate) epoch: S::Word,
}

/// What the last party of a thread barrier runs before the others go on.
pub(crate) type Action = Box<dyn Fn() + Send + Sync>;

/// Makes a fixed number of threads meet, Python's `threading.Barrier`
/// ([`spindle::sync::Barrier`](crate::sync::Barrier)) and
/// `multiprocessing.Barrier` ([`spindle::ipc::sync::Barrier`](crate::ipc::sync::Barrier)):
/// each [`wait`](Barrier::wait) blocks until `parties` threads are waiting,
/// then all go on. The barrier is reusable.
///
/// `wait` returns the arrival index, `0..parties`, different for each thread
/// of one round (the last to arrive gets `parties - 1` and runs the optional
/// action first). [`abort`](Barrier::abort), a timed-out wait, a [`reset`](Barrier::reset)
/// while threads wait, or a panicking action break the barrier: current and
/// later waits fail with [`BrokenBarrierError`] until `reset`.
///
/// # Examples
///
/// ```
/// use spindle::sync::Barrier;
///
/// let barrier = Barrier::new(3)?;
/// let mut indices: Vec<usize> = std::thread::scope(|s| {
///     let hs: Vec<_> = (0..3).map(|_| s.spawn(|| barrier.wait().unwrap())).collect();
///     hs.into_iter().map(|h| h.join().unwrap()).collect()
/// });
/// indices.sort();
/// assert_eq!(indices, [0, 1, 2]);
/// # Ok::<(), spindle::sync::CreateError>(())
/// ```
pub struct Barrier<S: Scope> {
    pub(crate) state: S::Place<BarrierState<S>>,
    pub(crate) action: Option<Action>,
    /// The bound of [`wait`](Barrier::wait) (Python's `timeout=`): this
    /// handle's, not shared.
    pub(crate) default_timeout: Option<Duration>,
}

/// How an arrival went.
enum Arrival {
    /// The action runs: wait for the round to start again.
    Busy(usize),
    /// Wait for the others, as party `index` of `round`.
    Wait {
        index: usize,
        round: usize,
        breaks: usize,
    },
    /// The last party (`index`); `breaks` as it arrived.
    Last { index: usize, breaks: usize },
}

impl<S: Scope> Barrier<S> {
    /// The number of threads required to pass (`parties`).
    pub fn parties(&self) -> usize {
        self.state.parties.load(SeqCst)
    }

    /// The number of threads waiting now (`n_waiting`).
    pub fn n_waiting(&self) -> usize {
        let st = &*self.state;
        if st.acting.load(SeqCst) != 0 {
            0
        } else {
            st.count.load(SeqCst)
        }
    }

    /// Whether the barrier is broken (`broken`).
    pub fn is_broken(&self) -> bool {
        self.state.broken.load(SeqCst) != 0
    }

    /// Waits until `parties` threads wait; returns this thread's arrival
    /// index (`wait()`). With a default timeout (Python's
    /// `Barrier(parties, timeout=t)`, [`with_timeout`](Barrier::with_timeout)),
    /// waits at most that long, and a timeout breaks the barrier, as
    /// [`wait_timeout`](Barrier::wait_timeout) does.
    ///
    /// # Errors
    ///
    /// [`BrokenBarrierError`] if the barrier is or becomes broken (also by
    /// this wait's default timeout, as Python raises `BrokenBarrierError`
    /// then).
    ///
    /// # Panics
    ///
    /// Resumes a panic of the action, in the thread that ran it.
    pub fn wait(&self) -> Result<usize, BrokenBarrierError> {
        let deadline = self.default_timeout.and_then(deadline_after);
        self.wait_inner(deadline).map_err(|_| BrokenBarrierError)
    }

    /// Like [`wait`](Barrier::wait), giving up after `timeout`
    /// (`wait(timeout)`); a timeout breaks the barrier, as in Python.
    ///
    /// # Errors
    ///
    /// [`BarrierWaitError::Timeout`] if this wait timed out,
    /// [`BarrierWaitError::Broken`] if the barrier is or became broken.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize, BarrierWaitError> {
        self.wait_inner(deadline_after(timeout))
    }

    /// Like [`wait_timeout`](Barrier::wait_timeout), until `deadline`.
    ///
    /// # Errors
    ///
    /// As [`wait_timeout`](Barrier::wait_timeout).
    pub fn wait_deadline(&self, deadline: Instant) -> Result<usize, BarrierWaitError> {
        self.wait_inner(Some(deadline))
    }

    /// The same barrier, whose [`wait`](Barrier::wait) waits at most
    /// `timeout` (Python's `Barrier(parties, action, timeout)`): a wait that
    /// runs out breaks the barrier and fails with [`BrokenBarrierError`],
    /// as in Python. `wait_timeout` / `wait_deadline` use their own bound.
    /// `Duration::ZERO` is Python's `timeout=0`: a wait that does not
    /// complete the round at once breaks it. The timeout belongs to this
    /// handle and its clones; a process barrier passed to a child carries
    /// it along.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use spindle::sync::Barrier;
    ///
    /// let barrier = Barrier::new(2)?.with_timeout(Duration::from_millis(10));
    /// assert_eq!(barrier.timeout(), Some(Duration::from_millis(10)));
    /// assert!(barrier.wait().is_err(), "nobody came");
    /// assert!(barrier.is_broken());
    /// # Ok::<(), spindle::sync::CreateError>(())
    /// ```
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = Some(timeout);
        self
    }

    /// The default timeout of [`wait`](Barrier::wait), if one was given.
    pub fn timeout(&self) -> Option<Duration> {
        self.default_timeout
    }

    /// Breaks the barrier (`abort()`): current and later waits fail until
    /// [`reset`](Barrier::reset).
    pub fn abort(&self) {
        self.with_mutex(|st| Self::break_round(st, true));
    }

    /// Returns the barrier to its initial state (`reset()`); threads waiting
    /// now fail with [`BrokenBarrierError`].
    pub fn reset(&self) {
        self.with_mutex(|st| {
            if st.count.load(SeqCst) > 0 || st.acting.load(SeqCst) != 0 {
                st.breaks.fetch_add(1, SeqCst);
            }
            st.count.store(0, SeqCst);
            st.broken.store(0, SeqCst);
            Self::bump(st);
        });
    }

    /// Runs `f` under the internal lock.
    fn with_mutex<R>(&self, f: impl FnOnce(&BarrierState<S>) -> R) -> R {
        let st = &*self.state;
        // The internal lock is never tracked, so never aborted.
        let locked = st
            .mutex
            .lock(LockKind::Internal, Wait::Forever, Location::caller());
        debug_assert!(matches!(locked, Locked::Acquired));
        let r = f(st);
        st.mutex.unlock(LockKind::Internal);
        r
    }

    /// Wakes everyone sleeping on the epoch.
    fn bump(st: &BarrierState<S>) {
        st.epoch.fetch_add(1, SeqCst);
        S::wake(&st.epoch, usize::MAX);
    }

    /// Breaks the current round under the lock: its waiters fail; with
    /// `stay`, later waits fail too until `reset`.
    fn break_round(st: &BarrierState<S>, stay: bool) {
        if stay {
            st.broken.store(1, SeqCst);
        }
        st.breaks.fetch_add(1, SeqCst);
        st.count.store(0, SeqCst);
        Self::bump(st);
    }

    /// Starts the next round: the waiters of this one pass.
    fn trip(st: &BarrierState<S>) {
        st.count.store(0, SeqCst);
        st.round.fetch_add(1, SeqCst);
        Self::bump(st);
    }

    /// Waits asynchronously until `parties` threads or tasks wait; the
    /// arrival index: the async face of [`wait`](Barrier::wait), Python's
    /// `await asyncio.Barrier.wait()`. Tasks and blocked threads (or other
    /// processes) meet at the same barrier.
    ///
    /// The arrival happens at the first poll. The handle's default timeout
    /// ([`with_timeout`](Barrier::with_timeout)) does not apply: bound the
    /// wait with your runtime's timeout, which drops the future (see below)
    /// instead of breaking the barrier. If this task is the last to arrive
    /// and the barrier has an action, the action runs inside that poll.
    ///
    /// # Errors
    ///
    /// [`BrokenBarrierError`] if the barrier is or becomes broken.
    ///
    /// # Panics
    ///
    /// Resumes a panic of the action, in the poll that ran it.
    ///
    /// # Cancel safety
    ///
    /// As asyncio's: a future dropped while it waits for the others
    /// withdraws its arrival (the round then needs one more party), and
    /// breaks nothing; one dropped after its round passed or broke changes
    /// nothing. Other waiters are not affected: every change they wait for
    /// wakes them all. As in asyncio (whose `wait` does `count -= 1` on
    /// cancellation), a later arrival may then get an index that a waiter
    /// of the same round already has.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let mut f = std::pin::pin!(f);
    /// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
    /// # }
    /// use std::sync::Arc;
    /// let barrier = Arc::new(spindle::sync::Barrier::new(2).unwrap());
    /// let b2 = Arc::clone(&barrier);
    /// let t = std::thread::spawn(move || b2.wait().unwrap());
    /// let mine = block_on(barrier.wait_async()).unwrap();
    /// let theirs = t.join().unwrap();
    /// assert_eq!(mine + theirs, 1); // indices 0 and 1
    /// ```
    pub fn wait_async(&self) -> BarrierWait<'_, S> {
        BarrierWait {
            barrier: self,
            stage: Stage::Arrive,
            watch: None,
        }
    }

    /// One arrival under the internal lock: busy (the action runs), the
    /// last party, or a waiter of the current round.
    fn arrive(&self) -> Result<Arrival, BarrierWaitError> {
        let has_action = self.action.is_some();
        self.with_mutex(|st| {
            if st.acting.load(SeqCst) != 0 {
                return Ok(Arrival::Busy(st.epoch.load(SeqCst)));
            }
            if st.broken.load(SeqCst) != 0 {
                return Err(BarrierWaitError::Broken);
            }
            let index = st.count.load(SeqCst);
            let breaks = st.breaks.load(SeqCst);
            if index + 1 >= st.parties.load(SeqCst) {
                if has_action {
                    st.acting.store(1, SeqCst);
                } else {
                    Self::trip(st);
                }
                return Ok(Arrival::Last { index, breaks });
            }
            st.count.store(index + 1, SeqCst);
            Ok(Arrival::Wait {
                index,
                round: st.round.load(SeqCst),
                breaks,
            })
        })
    }

    fn wait_inner(&self, deadline: Option<Instant>) -> Result<usize, BarrierWaitError> {
        let st = &*self.state;
        let arrival = loop {
            let arrival = self.arrive()?;
            match arrival {
                // CPython `_enter`: arrivals wait while the action runs.
                Arrival::Busy(e) => S::wait(&st.epoch, e, None),
                other => break other,
            }
        };
        match arrival {
            Arrival::Busy(_) => unreachable!("looped above"),
            Arrival::Last { index, breaks } => match &self.action {
                None => Ok(index),
                Some(action) => self.run_action(action, index, breaks),
            },
            Arrival::Wait {
                index,
                round,
                breaks,
            } => self.wait_trip(index, round, breaks, deadline),
        }
    }

    /// The last party runs the action without the lock held (it may call
    /// back into the barrier), then trips the barrier — unless the action
    /// panicked (the barrier breaks and the panic goes on) or the barrier
    /// broke meanwhile (an `abort`/`reset`, maybe by the action, or a
    /// waiter's timeout).
    fn run_action(
        &self,
        action: &Action,
        index: usize,
        breaks: usize,
    ) -> Result<usize, BarrierWaitError> {
        let outcome = catch_unwind(AssertUnwindSafe(action));
        let result = self.with_mutex(|st| {
            st.acting.store(0, SeqCst);
            if outcome.is_err() {
                Self::break_round(st, true);
                Err(BarrierWaitError::Broken)
            } else if st.breaks.load(SeqCst) != breaks {
                Self::bump(st);
                Err(BarrierWaitError::Broken)
            } else {
                Self::trip(st);
                Ok(index)
            }
        });
        if let Err(panic) = outcome {
            resume_unwind(panic);
        }
        result
    }

    /// Waits for the round to trip or break; on timeout breaks it.
    fn wait_trip(
        &self,
        index: usize,
        round: usize,
        breaks: usize,
        deadline: Option<Instant>,
    ) -> Result<usize, BarrierWaitError> {
        let st = &*self.state;
        let outcome = |st: &BarrierState<S>| {
            if st.round.load(SeqCst) != round {
                Some(Ok(index))
            } else if st.breaks.load(SeqCst) != breaks {
                Some(Err(BarrierWaitError::Broken))
            } else {
                None
            }
        };
        loop {
            let e = st.epoch.load(SeqCst);
            if let Some(r) = outcome(st) {
                return r;
            }
            if passed(deadline) {
                return self.with_mutex(|st| {
                    outcome(st).unwrap_or_else(|| {
                        Self::break_round(st, true);
                        Err(BarrierWaitError::Timeout)
                    })
                });
            }
            S::wait(&st.epoch, e, deadline);
        }
    }
}

/// Where a [`BarrierWait`] is.
#[derive(Debug, Clone, Copy)]
enum Stage {
    /// Not arrived yet (or waiting for the action of a round to end).
    Arrive,
    /// Arrived in `round`, with `breaks` breaks seen, as `index`.
    Wait {
        index: usize,
        round: usize,
        breaks: usize,
    },
    /// Returned its outcome.
    Done,
}

/// The future of [`Barrier::wait_async`]: the arrival index once the round
/// passes.
#[must_use = "futures do nothing unless polled"]
pub struct BarrierWait<'a, S: Scope> {
    barrier: &'a Barrier<S>,
    stage: Stage,
    watch: Option<S::Watch>,
}

impl<S: Scope> BarrierWait<'_, S> {
    fn done(
        &mut self,
        r: Result<usize, BarrierWaitError>,
    ) -> Poll<Result<usize, BrokenBarrierError>> {
        self.stage = Stage::Done;
        Poll::Ready(r.map_err(|_| BrokenBarrierError))
    }
}

impl<S: Scope> Future for BarrierWait<'_, S> {
    type Output = Result<usize, BrokenBarrierError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let barrier = this.barrier;
        let st = &*barrier.state;
        // A previous registration (woken or not) is replaced by one with
        // this poll's waker; `bump` wakes every registration, so nothing is
        // passed on.
        if let Some(w) = this.watch.take() {
            S::unwatch(w);
        }
        loop {
            // Read the epoch before the state: a change after this read
            // makes the registration below fail (or wakes it).
            let e = match this.stage {
                Stage::Done => panic!("`BarrierWait` polled after completion"),
                Stage::Arrive => match barrier.arrive() {
                    Err(err) => return this.done(Err(err)),
                    Ok(Arrival::Busy(e)) => e,
                    Ok(Arrival::Last { index, breaks }) => {
                        this.stage = Stage::Done;
                        let r = match &barrier.action {
                            None => Ok(index),
                            Some(action) => barrier.run_action(action, index, breaks),
                        };
                        return this.done(r);
                    }
                    Ok(Arrival::Wait {
                        index,
                        round,
                        breaks,
                    }) => {
                        this.stage = Stage::Wait {
                            index,
                            round,
                            breaks,
                        };
                        continue;
                    }
                },
                Stage::Wait {
                    index,
                    round,
                    breaks,
                } => {
                    let e = st.epoch.load(SeqCst);
                    if st.round.load(SeqCst) != round {
                        return this.done(Ok(index));
                    }
                    if st.breaks.load(SeqCst) != breaks {
                        return this.done(Err(BarrierWaitError::Broken));
                    }
                    e
                }
            };
            match S::watch(&barrier.state, &st.epoch, e, cx.waker()) {
                // Something changed meanwhile: look again.
                None => continue,
                Some(w) => {
                    this.watch = Some(w);
                    return Poll::Pending;
                }
            }
        }
    }
}

impl<S: Scope> Drop for BarrierWait<'_, S> {
    fn drop(&mut self) {
        if let Some(w) = self.watch.take() {
            S::unwatch(w);
        }
        if let Stage::Wait { round, breaks, .. } = self.stage {
            // asyncio's `finally: self._count -= 1`: leave a round that has
            // neither passed, broken, nor started its action.
            self.barrier.with_mutex(|st| {
                if st.round.load(SeqCst) == round
                    && st.breaks.load(SeqCst) == breaks
                    && st.acting.load(SeqCst) == 0
                {
                    let count = st.count.load(SeqCst);
                    if count > 0 {
                        st.count.store(count - 1, SeqCst);
                    }
                }
            });
        }
    }
}

impl<S: Scope> fmt::Debug for BarrierWait<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BarrierWait")
            .field("stage", &self.stage)
            .finish()
    }
}

impl<S: Scope> fmt::Debug for Barrier<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties())
            .field("n_waiting", &self.n_waiting())
            .field("broken", &self.is_broken())
            .finish()
    }
}

/// Checks a party count: at least 1, at most what the scope's words hold.
pub(crate) fn check_parties<S: Scope>(parties: usize) -> Result<(), crate::sync::CreateError> {
    if parties == 0 {
        return Err(crate::sync::CreateError::ZeroParties);
    }
    if parties >= S::Word::MAX {
        return Err(crate::sync::CreateError::TooLarge {
            value: parties,
            max: S::Word::MAX - 1,
        });
    }
    Ok(())
}

impl<S: Scope> BlockingBarrier for Barrier<S> {
    type Error = Infallible;

    fn wait(&self) -> Result<Result<usize, BrokenBarrierError>, Infallible> {
        Ok(Barrier::wait(self))
    }
    fn wait_deadline(
        &self,
        deadline: Instant,
    ) -> Result<Result<usize, BarrierWaitError>, Infallible> {
        Ok(Barrier::wait_deadline(self, deadline))
    }
    fn parties(&self) -> Result<usize, Infallible> {
        Ok(Barrier::parties(self))
    }
    fn n_waiting(&self) -> Result<usize, Infallible> {
        Ok(Barrier::n_waiting(self))
    }
    fn is_broken(&self) -> Result<bool, Infallible> {
        Ok(Barrier::is_broken(self))
    }
    fn abort(&self) -> Result<(), Infallible> {
        Barrier::abort(self);
        Ok(())
    }
    fn reset(&self) -> Result<(), Infallible> {
        Barrier::reset(self);
        Ok(())
    }
}
