//! The [`Clock`] trait, the real [`MonotonicClock`] and the [`Wakeup`] a waiter
//! can be woken early with.
//!
//! Python's `sched.scheduler(timefunc, delayfunc)` takes two functions; a Rust
//! scheduler also has to be woken early when another thread enters an event that
//! is due sooner than the one it is sleeping for, so a clock here is `now()` plus a
//! sleep that a [`Wakeup`] can cut short.
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// A source of time and a way to wait for it: what [`Scheduler`](super::Scheduler)
/// and [`Timer`](super::Timer) read instead of the wall.
///
/// Mirrors the `timefunc`/`delayfunc` pair of Python's `sched.scheduler`. Two
/// implementations ship: [`MonotonicClock`] (real time, the default, like
/// `time.monotonic`/`time.sleep`) and [`VirtualClock`](super::VirtualClock) (time
/// that only moves when a test says so). Implement it to drive a scheduler from
/// any other notion of time.
///
/// # Contract
///
/// - [`now`](Clock::now) never goes backwards.
/// - [`wait_until`](Clock::wait_until) returns [`WaitOutcome::Woken`] as soon as
///   possible once `wakeup` was woken after `token` was taken (also when that
///   happened before the call), and [`WaitOutcome::DeadlineReached`] once `now()`
///   has reached `deadline`. It may return early spuriously with `Woken`; callers
///   re-check their state and wait again.
///
/// # Examples
///
/// ```
/// use spindle::sched::{Clock, MonotonicClock};
/// use std::time::Duration;
///
/// let clock = MonotonicClock;
/// let t0 = clock.now();
/// clock.sleep(Duration::from_millis(2));
/// assert!(clock.now() - t0 >= Duration::from_millis(2));
/// ```
pub trait Clock: Send + Sync {
    /// The current time on this clock (Python's `timefunc`).
    fn now(&self) -> Instant;

    /// Blocks until this clock reaches `deadline` or `wakeup` is woken after
    /// `token` was taken, whichever comes first.
    fn wait_until(&self, wakeup: &Wakeup, token: WakeToken, deadline: Instant) -> WaitOutcome;

    /// Blocks until this clock reaches `deadline` (Python's `delayfunc`, with an
    /// absolute time).
    fn sleep_until(&self, deadline: Instant) {
        let wakeup = Wakeup::new();
        let token = wakeup.token();
        while self.wait_until(&wakeup, token, deadline) != WaitOutcome::DeadlineReached {}
    }

    /// Blocks for `duration` of this clock's time (Python's `delayfunc`).
    fn sleep(&self, duration: Duration) {
        self.sleep_until(deadline_after(self.now(), duration));
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> Instant {
        (**self).now()
    }
    fn wait_until(&self, wakeup: &Wakeup, token: WakeToken, deadline: Instant) -> WaitOutcome {
        (**self).wait_until(wakeup, token, deadline)
    }
}

/// `now + duration`, saturating at a point decades away instead of overflowing.
pub(crate) fn deadline_after(now: Instant, duration: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(86_400 * 365 * 30);
    now.checked_add(duration.min(FAR))
        .or_else(|| now.checked_add(FAR))
        .unwrap_or(now)
}

/// The real monotonic clock: [`Instant::now`] and a real sleep (Python's default
/// `time.monotonic` and `time.sleep`).
///
/// # Examples
///
/// ```
/// use spindle::sched::{Clock, MonotonicClock, WaitOutcome, Wakeup};
/// use std::time::{Duration, Instant};
///
/// let wakeup = Wakeup::new();
/// let token = wakeup.token();
/// wakeup.wake(); // woken before the wait: the wait returns at once
/// let far = Instant::now() + Duration::from_secs(3600);
/// assert_eq!(MonotonicClock.wait_until(&wakeup, token, far), WaitOutcome::Woken);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MonotonicClock;

impl Clock for MonotonicClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn wait_until(&self, wakeup: &Wakeup, token: WakeToken, deadline: Instant) -> WaitOutcome {
        wakeup.wait_deadline(token, deadline)
    }
}

/// What ended a [`Clock::wait_until`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WaitOutcome {
    /// The [`Wakeup`] was woken (or the wait ended spuriously): re-check and wait
    /// again if needed.
    Woken,
    /// The clock reached the deadline.
    DeadlineReached,
}

/// A snapshot of a [`Wakeup`]'s count of wake-ups, taken before deciding to wait,
/// so that a wake-up between the decision and the wait is not lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WakeToken(u64);

/// A doorbell that cuts a [`Clock::wait_until`] short: the scheduler rings it when
/// an event is entered that is due sooner than the one it sleeps for, a timer when
/// it is cancelled.
///
/// It is an event count: [`token`](Wakeup::token) snapshots the number of
/// [`wake`](Wakeup::wake) calls, and a wait given that token ends once the count
/// moves, even if it moved before the wait began. Cloning gives another handle to
/// the same doorbell. No Python equivalent (Python's scheduler is never woken
/// early; it re-reads its queue after each `delayfunc`).
///
/// # Examples
///
/// ```
/// use spindle::sched::{WaitOutcome, Wakeup};
/// use std::time::{Duration, Instant};
///
/// let wakeup = Wakeup::new();
/// let token = wakeup.token();
/// let ringer = wakeup.clone();
/// let t = std::thread::spawn(move || ringer.wake());
/// let far = Instant::now() + Duration::from_secs(3600);
/// assert_eq!(wakeup.wait_deadline(token, far), WaitOutcome::Woken);
/// t.join().unwrap();
/// ```
#[derive(Clone, Default)]
pub struct Wakeup {
    inner: Arc<WakeupInner>,
}

#[derive(Default)]
struct WakeupInner {
    count: Mutex<u64>,
    cond: Condvar,
}

impl Wakeup {
    /// A new doorbell, never rung.
    pub fn new() -> Self {
        Self::default()
    }

    /// Snapshots the count of wake-ups; pass it to the wait that follows.
    pub fn token(&self) -> WakeToken {
        WakeToken(*self.inner.count.lock())
    }

    /// Rings: every wait holding a token taken before this call ends.
    pub fn wake(&self) {
        let mut count = self.inner.count.lock();
        *count = count.wrapping_add(1);
        self.inner.cond.notify_all();
    }

    /// Whether [`wake`](Wakeup::wake) was called since `token` was taken.
    pub fn is_woken_since(&self, token: WakeToken) -> bool {
        *self.inner.count.lock() != token.0
    }

    /// Waits in real time until woken since `token` or until `deadline`.
    pub fn wait_deadline(&self, token: WakeToken, deadline: Instant) -> WaitOutcome {
        let mut count = self.inner.count.lock();
        loop {
            if *count != token.0 {
                return WaitOutcome::Woken;
            }
            if self.inner.cond.wait_until(&mut count, deadline).timed_out() {
                return if *count != token.0 {
                    WaitOutcome::Woken
                } else {
                    WaitOutcome::DeadlineReached
                };
            }
        }
    }

    /// Waits, with no deadline, until woken since `token` or until `keep_waiting`
    /// returns false; the building block for clocks whose time is not real time.
    ///
    /// `keep_waiting` runs with the doorbell's internal lock held, so it must not
    /// call back into this `Wakeup`. Whoever changes what it looks at must call
    /// [`nudge`](Wakeup::nudge) afterwards so that the waiter looks again.
    pub fn wait_while(
        &self,
        token: WakeToken,
        mut keep_waiting: impl FnMut() -> bool,
    ) -> WaitOutcome {
        let mut count = self.inner.count.lock();
        loop {
            if *count != token.0 {
                return WaitOutcome::Woken;
            }
            if !keep_waiting() {
                return WaitOutcome::DeadlineReached;
            }
            self.inner.cond.wait(&mut count);
        }
    }

    /// Makes the waiters in [`wait_while`](Wakeup::wait_while) re-evaluate their
    /// condition, without counting as a wake-up.
    pub fn nudge(&self) {
        let _count = self.inner.count.lock();
        self.inner.cond.notify_all();
    }
}

impl std::fmt::Debug for Wakeup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wakeup")
            .field("wakes", &*self.inner.count.lock())
            .finish()
    }
}
