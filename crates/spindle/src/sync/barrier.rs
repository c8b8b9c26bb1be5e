//! [`Barrier`]: Python's `threading.Barrier`, a port of CPython's
//! `Lib/threading.py` state machine onto a `parking_lot` mutex and condvar.

use super::deadline_after;
use super::error::{BarrierWaitError, BrokenBarrierError};
use parking_lot::{Condvar, Mutex, MutexGuard};
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::time::{Duration, Instant};

/// CPython's `_state`, plus `Action` (the last thread runs the action without
/// the mutex held, so the action may call back into the barrier).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Threads are arriving (CPython 0).
    Filling,
    /// The last thread runs the action; arrivals and departures wait.
    Action,
    /// The barrier tripped; waiters leave (CPython 1).
    Draining,
    /// `reset` while threads were inside; they leave broken (CPython -1).
    Resetting,
    /// Broken until `reset` (CPython -2).
    Broken,
}

struct State {
    phase: Phase,
    /// Threads inside `wait` (CPython `_count`).
    count: usize,
}

type Action = Box<dyn Fn() + Send + Sync>;

/// Makes a fixed number of threads meet, Python's `threading.Barrier`: each
/// [`wait`](Barrier::wait) blocks until `parties` threads are waiting, then
/// all go on. The barrier is reusable.
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
/// let barrier = Barrier::new(3);
/// let mut indices: Vec<usize> = std::thread::scope(|s| {
///     let hs: Vec<_> = (0..3).map(|_| s.spawn(|| barrier.wait().unwrap())).collect();
///     hs.into_iter().map(|h| h.join().unwrap()).collect()
/// });
/// indices.sort();
/// assert_eq!(indices, [0, 1, 2]);
/// ```
pub struct Barrier {
    parties: usize,
    action: Option<Action>,
    state: Mutex<State>,
    cond: Condvar,
}

impl Barrier {
    /// Creates a barrier for `parties` threads (`threading.Barrier(parties)`).
    ///
    /// # Panics
    ///
    /// If `parties` is 0 (Python: `ValueError`).
    pub fn new(parties: usize) -> Self {
        assert!(parties > 0, "Barrier parties must be > 0");
        Barrier {
            parties,
            action: None,
            state: Mutex::new(State {
                phase: Phase::Filling,
                count: 0,
            }),
            cond: Condvar::new(),
        }
    }

    /// Creates a barrier whose last arriving thread runs `action` before the
    /// others are released (`threading.Barrier(parties, action)`). If the
    /// action panics the barrier breaks and the panic goes on in that thread.
    ///
    /// # Panics
    ///
    /// If `parties` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use spindle::sync::Barrier;
    /// use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    ///
    /// static ROUNDS: AtomicUsize = AtomicUsize::new(0);
    /// let barrier = Barrier::with_action(1, || { ROUNDS.fetch_add(1, Relaxed); });
    /// barrier.wait().unwrap();
    /// barrier.wait().unwrap();
    /// assert_eq!(ROUNDS.load(Relaxed), 2);
    /// ```
    pub fn with_action(parties: usize, action: impl Fn() + Send + Sync + 'static) -> Self {
        let mut b = Barrier::new(parties);
        b.action = Some(Box::new(action));
        b
    }

    /// The number of threads required to pass (`parties`).
    pub fn parties(&self) -> usize {
        self.parties
    }

    /// The number of threads waiting now (`n_waiting`).
    pub fn n_waiting(&self) -> usize {
        let st = self.state.lock();
        if st.phase == Phase::Filling {
            st.count
        } else {
            0
        }
    }

    /// Whether the barrier is broken (`broken`).
    pub fn is_broken(&self) -> bool {
        self.state.lock().phase == Phase::Broken
    }

    /// Waits until `parties` threads wait; returns this thread's arrival
    /// index (`wait()`).
    ///
    /// # Errors
    ///
    /// [`BrokenBarrierError`] if the barrier is or becomes broken.
    ///
    /// # Panics
    ///
    /// Resumes a panic of the action, in the thread that ran it.
    pub fn wait(&self) -> Result<usize, BrokenBarrierError> {
        self.wait_inner(None).map_err(|_| BrokenBarrierError)
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

    fn wait_inner(&self, deadline: Option<Instant>) -> Result<usize, BarrierWaitError> {
        let mut st = self.state.lock();
        // CPython `_enter`: block while the previous round drains or resets.
        while matches!(st.phase, Phase::Draining | Phase::Resetting | Phase::Action) {
            self.cond.wait(&mut st);
        }
        if st.phase == Phase::Broken {
            return Err(BarrierWaitError::Broken);
        }
        let index = st.count;
        st.count += 1;
        let result = if index + 1 == self.parties {
            self.release(st)
        } else {
            self.wait_trip(st, deadline)
        };
        let mut st = result.1;
        // CPython `finally: _count -= 1; _exit()`.
        st.count -= 1;
        if st.count == 0 && matches!(st.phase, Phase::Draining | Phase::Resetting) {
            st.phase = Phase::Filling;
            self.cond.notify_all();
        }
        result.0.map(|()| index)
    }

    /// CPython `_release`: the last thread runs the action, then trips.
    fn release<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
    ) -> (Result<(), BarrierWaitError>, MutexGuard<'a, State>) {
        if let Some(action) = &self.action {
            st.phase = Phase::Action;
            let outcome = MutexGuard::unlocked(&mut st, || catch_unwind(AssertUnwindSafe(action)));
            if let Err(panic) = outcome {
                self.break_locked(&mut st);
                // Our own `_exit`: the barrier stays broken until `reset`.
                st.count -= 1;
                drop(st);
                resume_unwind(panic);
            }
            if st.phase != Phase::Action {
                // `abort` or `reset` was called by the action.
                return (Err(BarrierWaitError::Broken), st);
            }
        }
        st.phase = Phase::Draining;
        self.cond.notify_all();
        (Ok(()), st)
    }

    /// CPython `_wait`: wait for the trip; a timeout breaks the barrier.
    fn wait_trip<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        deadline: Option<Instant>,
    ) -> (Result<(), BarrierWaitError>, MutexGuard<'a, State>) {
        while matches!(st.phase, Phase::Filling | Phase::Action) {
            match deadline {
                None => self.cond.wait(&mut st),
                Some(t) => {
                    if self.cond.wait_until(&mut st, t).timed_out()
                        && matches!(st.phase, Phase::Filling | Phase::Action)
                    {
                        self.break_locked(&mut st);
                        return (Err(BarrierWaitError::Timeout), st);
                    }
                }
            }
        }
        match st.phase {
            Phase::Draining => (Ok(()), st),
            _ => (Err(BarrierWaitError::Broken), st),
        }
    }

    fn break_locked(&self, st: &mut State) {
        st.phase = Phase::Broken;
        self.cond.notify_all();
    }

    /// Breaks the barrier: current and future waits fail until
    /// [`reset`](Barrier::reset) (`abort()`).
    pub fn abort(&self) {
        let mut st = self.state.lock();
        self.break_locked(&mut st);
    }

    /// Returns the barrier to its initial state; threads waiting now fail with
    /// [`BrokenBarrierError`] (`reset()`).
    pub fn reset(&self) {
        let mut st = self.state.lock();
        if st.count > 0 {
            if matches!(st.phase, Phase::Filling | Phase::Broken | Phase::Action) {
                st.phase = Phase::Resetting;
            }
        } else {
            st.phase = Phase::Filling;
        }
        self.cond.notify_all();
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties)
            .field("n_waiting", &self.n_waiting())
            .field("broken", &self.is_broken())
            .finish()
    }
}
