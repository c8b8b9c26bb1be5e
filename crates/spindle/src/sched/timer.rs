//! [`Timer`]: Python's `threading.Timer`, plus a bounded repeating variant.
#![forbid(unsafe_code)]

use crate::thread::{self as sthread, JoinHandle};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::clock::{Clock, MonotonicClock, Wakeup, deadline_after};
use super::error::{JoinError, StartError};

enum Job {
    Once(Option<Box<dyn FnOnce() + Send + 'static>>),
    Repeat(Box<dyn FnMut() + Send + 'static>),
}

/// Runs a function in its own thread after a delay — once (Python's
/// `threading.Timer`) or a bounded number of times at a fixed rate
/// ([`Timer::repeating`]) — unless cancelled first.
///
/// Create it with [`new`](Self::new) or [`repeating`](Self::repeating), then
/// [`start`](Self::start) it; the delay counts from `start`. [`cancel`](Self::cancel)
/// is exact where Python's is best-effort: when it returns `true`, the function
/// will not run again, not even once more; `false` means there was nothing left to
/// prevent (all runs claimed, or already cancelled).
///
/// Differences from Python: `start` and `join` return typed errors instead of
/// raising `RuntimeError`; a panic in the function comes back from `join`; the
/// time source is a [`Clock`], so tests drive a timer with a
/// [`VirtualClock`](super::VirtualClock). Dropping a `Timer` detaches its thread
/// (it still fires); join it before `main` returns, since Rust does not wait for
/// other threads at exit as Python does for non-daemon ones.
///
/// # Examples
///
/// ```
/// use spindle::sched::Timer;
/// use std::sync::mpsc;
/// use std::time::Duration;
///
/// let (tx, rx) = mpsc::channel();
/// let timer = Timer::new(Duration::from_millis(10), move || tx.send("fired").unwrap());
/// timer.start().unwrap();
/// assert_eq!(rx.recv().unwrap(), "fired");
/// timer.join().unwrap();
///
/// // Cancelled before it fires: it never runs.
/// let timer = Timer::new(Duration::from_secs(3600), || unreachable!());
/// timer.start().unwrap();
/// assert!(timer.cancel());
/// timer.join().unwrap();
/// assert_eq!(timer.runs(), 0);
/// ```
pub struct Timer {
    shared: Arc<Shared>,
    slot: Mutex<Slot>,
    clock: Arc<dyn Clock>,
    name: Option<String>,
    interval: Duration,
    count: u32,
}

enum Slot {
    Unstarted,
    Started(JoinHandle<()>),
    Joined(Result<(), JoinError>),
}

struct Shared {
    state: Mutex<State>,
    finished_cond: Condvar,
    wakeup: Wakeup,
    job: Mutex<Option<Job>>,
}

struct State {
    cancelled: bool,
    /// Runs not yet claimed by the timer thread.
    remaining: u32,
    /// Runs completed.
    runs: u32,
    started: bool,
    finished: bool,
}

impl Timer {
    /// A timer that will run `function` once, `delay` after [`start`](Self::start)
    /// (Python's `threading.Timer(interval, function)`).
    pub fn new<F>(delay: Duration, function: F) -> Timer
    where
        F: FnOnce() + Send + 'static,
    {
        Self::build(delay, 1, Job::Once(Some(Box::new(function))))
    }

    /// A timer that will run `function` `count` times, every `interval` after
    /// [`start`](Self::start): run `k` is due at `start + k * interval`.
    ///
    /// Fixed rate: a late run does not shift the later ones; if a run overruns the
    /// next due time, the next run starts right after it. Replaces the Python
    /// pattern of a Timer that re-arms a new Timer from its own function.
    ///
    /// # Examples
    ///
    /// ```
    /// use spindle::sched::{Timer, VirtualClock};
    /// use std::time::Duration;
    ///
    /// let clock = VirtualClock::auto_advance();
    /// let timer = Timer::repeating(Duration::from_secs(1), 10, || println!("tick"))
    ///     .with_clock(clock.clone());
    /// timer.start().unwrap();
    /// timer.join().unwrap();
    /// assert_eq!(timer.runs(), 10);
    /// assert_eq!(clock.elapsed(), Duration::from_secs(10));
    /// ```
    pub fn repeating<F>(interval: Duration, count: u32, function: F) -> Timer
    where
        F: FnMut() + Send + 'static,
    {
        Self::build(interval, count, Job::Repeat(Box::new(function)))
    }

    fn build(interval: Duration, count: u32, job: Job) -> Timer {
        Timer {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    cancelled: false,
                    remaining: count,
                    runs: 0,
                    started: false,
                    finished: false,
                }),
                finished_cond: Condvar::new(),
                wakeup: Wakeup::new(),
                job: Mutex::new(Some(job)),
            }),
            slot: Mutex::new(Slot::Unstarted),
            clock: Arc::new(MonotonicClock),
            name: None,
            interval,
            count,
        }
    }

    /// Uses `clock` instead of real time (set before [`start`](Self::start)).
    pub fn with_clock(mut self, clock: impl Clock + 'static) -> Timer {
        self.clock = Arc::new(clock);
        self
    }

    /// Names the timer's thread (set before [`start`](Self::start)).
    pub fn name(mut self, name: impl Into<String>) -> Timer {
        self.name = Some(name.into());
        self
    }

    /// Starts the timer's thread; the delay counts from now (Python's
    /// `Timer.start`). A timer cancelled before `start` starts and ends at once.
    ///
    /// # Errors
    ///
    /// [`StartError::AlreadyStarted`] on a second call;
    /// [`StartError::Spawn`] if the thread cannot be created (the timer stays
    /// unstarted and `start` may be retried).
    pub fn start(&self) -> Result<(), StartError> {
        let mut slot = self.slot.lock();
        if !matches!(*slot, Slot::Unstarted) {
            return Err(StartError::AlreadyStarted);
        }
        let start = self.clock.now();
        let (shared, clock) = (self.shared.clone(), self.clock.clone());
        let (interval, count) = (self.interval, self.count);
        let name = self
            .name
            .clone()
            .unwrap_or_else(|| "spindle-timer".to_owned());
        self.shared.state.lock().started = true;
        // A spindle thread, as Python's Timer is a Thread: it is listed by
        // `thread::enumerate()` and, unless daemon, waited for at exit.
        let spawned = sthread::Thread::builder()
            .name(name)
            .spawn(move || timer_thread(&shared, &*clock, start, interval, count));
        match spawned {
            Ok(handle) => {
                *slot = Slot::Started(handle);
                Ok(())
            }
            Err(e) => {
                // The job is still in `shared.job`: a later start can retry.
                self.shared.state.lock().started = false;
                Err(StartError::Spawn(e))
            }
        }
    }

    /// Stops the timer if it has runs left: returns `true` if this call prevented
    /// at least one run (Python's `Timer.cancel`, which returns nothing).
    ///
    /// A run already in progress finishes; no run starts after `cancel` returns
    /// `true`. Works before `start` too.
    pub fn cancel(&self) -> bool {
        {
            let mut state = self.shared.state.lock();
            if state.cancelled || state.remaining == 0 {
                return false;
            }
            state.cancelled = true;
        }
        self.shared.wakeup.wake();
        true
    }

    /// Waits for the timer's thread to end: after its last run, or after
    /// `cancel` (Python's `Timer.join()`). May be called again; it returns the
    /// same result.
    ///
    /// # Errors
    ///
    /// [`JoinError::NotStarted`] before `start`; [`JoinError::Panicked`] if the
    /// function panicked (no later runs happen); [`JoinError::CurrentThread`] when
    /// called from the timer's own function.
    pub fn join(&self) -> Result<(), JoinError> {
        self.join_inner(None)
    }

    /// [`join`](Self::join) bounded by `timeout` of real time (Python's
    /// `Timer.join(timeout)`, which tells a timeout only through `is_alive()`).
    ///
    /// # Errors
    ///
    /// As [`join`](Self::join), plus [`JoinError::Timeout`].
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), JoinError> {
        self.join_inner(Some(deadline_after(Instant::now(), timeout)))
    }

    /// [`join`](Self::join) bounded by a real-time `deadline`.
    ///
    /// # Errors
    ///
    /// As [`join_timeout`](Self::join_timeout).
    pub fn join_deadline(&self, deadline: Instant) -> Result<(), JoinError> {
        self.join_inner(Some(deadline))
    }

    fn join_inner(&self, deadline: Option<Instant>) -> Result<(), JoinError> {
        match &*self.slot.lock() {
            Slot::Unstarted => return Err(JoinError::NotStarted),
            Slot::Started(handle) if handle.ident() == sthread::current_thread().ident() => {
                return Err(JoinError::CurrentThread);
            }
            Slot::Started(_) | Slot::Joined(_) => {}
        }
        {
            let mut state = self.shared.state.lock();
            while !state.finished {
                match deadline {
                    None => self.shared.finished_cond.wait(&mut state),
                    Some(d) => {
                        if self
                            .shared
                            .finished_cond
                            .wait_until(&mut state, d)
                            .timed_out()
                            && !state.finished
                        {
                            return Err(JoinError::Timeout);
                        }
                    }
                }
            }
        }
        let mut slot = self.slot.lock();
        let result = match std::mem::replace(&mut *slot, Slot::Unstarted) {
            Slot::Started(handle) => handle.join().map_err(|e| match e {
                sthread::JoinError::Panicked(msg) => JoinError::Panicked(Some(msg)),
                sthread::JoinError::NotStarted => JoinError::NotStarted,
                sthread::JoinError::CurrentThread => JoinError::CurrentThread,
            }),
            Slot::Joined(result) => result,
            Slot::Unstarted => Err(JoinError::NotStarted),
        };
        *slot = Slot::Joined(result.clone());
        result
    }

    /// Whether the timer's thread is running: started and not yet ended
    /// (Python's `is_alive()`).
    pub fn is_alive(&self) -> bool {
        let state = self.shared.state.lock();
        state.started && !state.finished
    }

    /// Whether [`cancel`](Self::cancel) took effect.
    pub fn is_cancelled(&self) -> bool {
        self.shared.state.lock().cancelled
    }

    /// How many runs of the function completed.
    pub fn runs(&self) -> u32 {
        self.shared.state.lock().runs
    }

    /// The delay (or the repeat interval).
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// How many runs the timer was created for (1 for [`new`](Self::new)).
    pub fn count(&self) -> u32 {
        self.count
    }
}

/// Marks the timer finished when the thread ends, panicking or not.
struct Finished<'a>(&'a Shared);

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        self.0.state.lock().finished = true;
        self.0.finished_cond.notify_all();
    }
}

fn timer_thread(
    shared: &Shared,
    clock: &dyn Clock,
    start: Instant,
    interval: Duration,
    count: u32,
) {
    let _finished = Finished(shared);
    let Some(mut job) = shared.job.lock().take() else {
        return;
    };
    for k in 1..=count {
        let due = deadline_after(start, interval.saturating_mul(k));
        loop {
            // Token before the check: a cancel after the check rings it.
            let token = shared.wakeup.token();
            if shared.state.lock().cancelled {
                return;
            }
            if clock.now() >= due {
                break;
            }
            clock.wait_until(&shared.wakeup, token, due);
        }
        {
            let mut state = shared.state.lock();
            if state.cancelled {
                return;
            }
            state.remaining -= 1;
        }
        match &mut job {
            Job::Once(f) => {
                if let Some(f) = f.take() {
                    f();
                }
            }
            Job::Repeat(f) => f(),
        }
        shared.state.lock().runs += 1;
    }
}

impl fmt::Debug for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.state.lock();
        f.debug_struct("Timer")
            .field("interval", &self.interval)
            .field("count", &self.count)
            .field("runs", &state.runs)
            .field("cancelled", &state.cancelled)
            .field("alive", &(state.started && !state.finished))
            .finish_non_exhaustive()
    }
}
