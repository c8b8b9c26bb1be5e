//! Tests of `spindle::sched`.
//!
//! The `test_*` scheduler tests are ported from CPython's `Lib/test/test_sched.py`
//! (Python Software Foundation License) and rewritten in Rust, on virtual time
//! instead of `time.time`/`time.sleep` and CPython's own `Timer` test clock: an
//! auto-advancing `VirtualClock` where the scheduler runs on the test thread, a
//! manual one (CPython's `Timer.advance`) where it runs in another thread. No test
//! here sleeps for real except the few marked "real clock", which wait a few
//! milliseconds and assert only lower bounds.

mod common;

use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use spindle::sched::{
    CancelError, Clock, JoinError, MonotonicClock, ScheduledEvent, Scheduler, StartError, Timer,
    VirtualClock, WaitOutcome, WakeToken, Wakeup,
};

use common::until_within;

/// CPython's `support.SHORT_TIMEOUT`: a generous bound for things that must happen.
const TIMEOUT: Duration = Duration::from_secs(30);

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

type Log<T> = Arc<Mutex<Vec<T>>>;
type Action = Box<dyn FnOnce() + Send>;

/// A shared log and a closure factory appending to it: Python's `l.append`.
fn log<T: Send + 'static>() -> (Log<T>, impl Fn(T) -> Action) {
    let l = Arc::new(Mutex::new(Vec::new()));
    let l2 = l.clone();
    let fun = move |x: T| {
        let l = l2.clone();
        Box::new(move || l.lock().unwrap().push(x)) as Action
    };
    (l, fun)
}

fn taken<T: Clone>(l: &Mutex<Vec<T>>) -> Vec<T> {
    std::mem::take(&mut *l.lock().unwrap())
}

#[test]
fn test_enter() {
    let clock = VirtualClock::auto_advance();
    let (l, fun) = log();
    let scheduler = Scheduler::with_clock(clock.clone());
    for x in [500, 400, 300, 200, 100] {
        scheduler.enter(Duration::from_millis(x), 1, fun(x));
    }
    scheduler.run().unwrap();
    assert_eq!(taken(&l), [100, 200, 300, 400, 500]);
    // Virtual time ended exactly at the last event.
    assert_eq!(clock.elapsed(), Duration::from_millis(500));
}

#[test]
fn test_enter_real_clock() {
    let (l, fun) = log();
    let scheduler = Scheduler::new();
    let t0 = Instant::now();
    for x in [5, 4, 3, 2, 1] {
        scheduler.enter(Duration::from_millis(x), 1, fun(x));
    }
    scheduler.run().unwrap();
    assert_eq!(taken(&l), [1, 2, 3, 4, 5]);
    assert!(t0.elapsed() >= Duration::from_millis(5));
}

#[test]
fn test_enterabs() {
    let clock = VirtualClock::auto_advance();
    let (l, fun) = log();
    let scheduler = Scheduler::with_clock(clock.clone());
    for x in [0.05, 0.04, 0.03, 0.02, 0.01] {
        scheduler.enterabs(clock.epoch() + secs(x), 1, fun(x));
    }
    scheduler.run().unwrap();
    assert_eq!(taken(&l), [0.01, 0.02, 0.03, 0.04, 0.05]);
}

#[test]
fn test_enter_concurrent() {
    let (tx, q) = mpsc::channel();
    let fun = move |x: u64| {
        let tx = tx.clone();
        move || tx.send(x).unwrap()
    };
    let timer = VirtualClock::new();
    let scheduler = Scheduler::with_clock(timer.clone());
    scheduler.enter(secs(1.0), 1, fun(1));
    scheduler.enter(secs(3.0), 1, fun(3));
    let t = {
        let s = scheduler.clone();
        thread::spawn(move || s.run())
    };
    timer.advance(secs(1.0));
    assert_eq!(q.recv_timeout(TIMEOUT), Ok(1));
    assert_eq!(q.try_recv(), Err(TryRecvError::Empty));
    for x in [4, 5, 2] {
        scheduler.enter(secs(x as f64 - 1.0), 1, fun(x));
    }
    timer.advance(secs(2.0));
    assert_eq!(q.recv_timeout(TIMEOUT), Ok(2));
    assert_eq!(q.recv_timeout(TIMEOUT), Ok(3));
    assert_eq!(q.try_recv(), Err(TryRecvError::Empty));
    timer.advance(secs(1.0));
    assert_eq!(q.recv_timeout(TIMEOUT), Ok(4));
    assert_eq!(q.try_recv(), Err(TryRecvError::Empty));
    timer.advance(secs(1.0));
    assert_eq!(q.recv_timeout(TIMEOUT), Ok(5));
    // CPython advances 1000 s more, joins, and checks the clock stopped at 5: here
    // time moves only by advance, so joining *before* advancing shows the same
    // thing: run() returned as soon as the queue was empty.
    t.join().unwrap().unwrap();
    assert_eq!(q.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(timer.elapsed(), secs(5.0));
}

#[test]
fn test_priority() {
    let clock = VirtualClock::auto_advance();
    let (l, fun) = log();
    let scheduler = Scheduler::with_clock(clock.clone());
    let cases: [([i64; 5], [i64; 5]); 4] = [
        ([1, 2, 3, 4, 5], [1, 2, 3, 4, 5]),
        ([5, 4, 3, 2, 1], [1, 2, 3, 4, 5]),
        ([2, 5, 3, 1, 4], [1, 2, 3, 4, 5]),
        ([1, 2, 3, 2, 1], [1, 1, 2, 2, 3]),
    ];
    for (priorities, expected) in cases {
        let at = clock.now() + secs(0.01);
        for priority in priorities {
            scheduler.enterabs(at, priority, fun(priority));
        }
        scheduler.run().unwrap();
        assert_eq!(taken(&l), expected, "priorities {priorities:?}");
        assert!(scheduler.is_empty());
    }
}

#[test]
fn equal_time_and_priority_run_in_insertion_order() {
    let clock = VirtualClock::auto_advance();
    let (l, fun) = log();
    let scheduler = Scheduler::with_clock(clock.clone());
    let at = clock.now() + secs(1.0);
    for x in 0..20 {
        scheduler.enterabs(at, 7, fun(x));
    }
    scheduler.run().unwrap();
    assert_eq!(taken(&l), (0..20).collect::<Vec<_>>());
}

#[test]
fn test_cancel() {
    let clock = VirtualClock::auto_advance();
    let (l, fun) = log();
    let scheduler = Scheduler::with_clock(clock.clone());
    let now = clock.now();
    let event1 = scheduler.enterabs(now + secs(0.01), 1, fun(0.01));
    let event2 = scheduler.enterabs(now + secs(0.02), 1, fun(0.02));
    let _event3 = scheduler.enterabs(now + secs(0.03), 1, fun(0.03));
    let _event4 = scheduler.enterabs(now + secs(0.04), 1, fun(0.04));
    let event5 = scheduler.enterabs(now + secs(0.05), 1, fun(0.05));
    scheduler.cancel(&event1).unwrap();
    scheduler.cancel(&event5).unwrap();
    scheduler.run().unwrap();
    assert_eq!(taken(&l), [0.02, 0.03, 0.04]);
    // No longer queued: Python's ValueError.
    assert_eq!(scheduler.cancel(&event1), Err(CancelError::NotQueued));
    assert_eq!(scheduler.cancel(&event2), Err(CancelError::NotQueued));
}

#[test]
fn test_cancel_concurrent() {
    let (tx, q) = mpsc::channel();
    let fun = move |x: u64| {
        let tx = tx.clone();
        move || tx.send(x).unwrap()
    };
    let timer = VirtualClock::new();
    let scheduler = Scheduler::with_clock(timer.clone());
    let now = timer.now();
    let _event1 = scheduler.enterabs(now + secs(1.0), 1, fun(1));
    let event2 = scheduler.enterabs(now + secs(2.0), 1, fun(2));
    let _event4 = scheduler.enterabs(now + secs(4.0), 1, fun(4));
    let event5 = scheduler.enterabs(now + secs(5.0), 1, fun(5));
    let _event3 = scheduler.enterabs(now + secs(3.0), 1, fun(3));
    let t = {
        let s = scheduler.clone();
        thread::spawn(move || s.run())
    };
    timer.advance(secs(1.0));
    assert_eq!(q.recv_timeout(TIMEOUT), Ok(1));
    assert_eq!(q.try_recv(), Err(TryRecvError::Empty));
    scheduler.cancel(&event2).unwrap();
    scheduler.cancel(&event5).unwrap();
    timer.advance(secs(1.0));
    assert_eq!(q.try_recv(), Err(TryRecvError::Empty));
    timer.advance(secs(1.0));
    assert_eq!(q.recv_timeout(TIMEOUT), Ok(3));
    assert_eq!(q.try_recv(), Err(TryRecvError::Empty));
    timer.advance(secs(1.0));
    assert_eq!(q.recv_timeout(TIMEOUT), Ok(4));
    // As in test_enter_concurrent: run() returns without waiting for more time.
    t.join().unwrap().unwrap();
    assert_eq!(q.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(timer.elapsed(), secs(4.0));
}

#[test]
fn test_cancel_correct_event() {
    // bpo-19270: equal events must not be confused with each other.
    let (l, fun) = log();
    let scheduler = Scheduler::with_clock(VirtualClock::auto_advance());
    let at = scheduler.now() + secs(1.0);
    scheduler.enterabs(at, 1, fun("a"));
    let b = scheduler.enterabs(at, 1, fun("b"));
    scheduler.enterabs(at, 1, fun("c"));
    scheduler.cancel(&b).unwrap();
    scheduler.run().unwrap();
    assert_eq!(taken(&l), ["a", "c"]);
}

#[test]
fn cancel_an_event_of_another_scheduler_is_an_error() {
    let a = Scheduler::with_clock(VirtualClock::auto_advance());
    let b = Scheduler::with_clock(VirtualClock::auto_advance());
    let (l, fun) = log();
    let ea = a.enter(secs(1.0), 1, fun("a"));
    let _eb = b.enter(secs(1.0), 1, fun("b"));
    assert_eq!(b.cancel(&ea), Err(CancelError::ForeignEvent));
    assert_eq!(b.len(), 1);
    a.run().unwrap();
    b.run().unwrap();
    assert_eq!(taken(&l), ["a", "b"]);
}

#[test]
fn test_empty() {
    let clock = VirtualClock::auto_advance();
    let (_l, fun) = log();
    let scheduler = Scheduler::with_clock(clock.clone());
    assert!(scheduler.is_empty());
    for x in [0.05, 0.04, 0.03, 0.02, 0.01] {
        scheduler.enterabs(clock.epoch() + secs(x), 1, fun(x));
    }
    assert!(!scheduler.is_empty());
    scheduler.run().unwrap();
    assert!(scheduler.is_empty());
}

#[test]
fn test_queue() {
    let clock = VirtualClock::new();
    let scheduler = Scheduler::with_clock(clock.clone());
    let now = clock.now();
    let e5 = scheduler.enterabs(now + secs(0.05), 1, || {});
    let e1 = scheduler.enterabs(now + secs(0.01), 1, || {});
    let e2 = scheduler.enterabs(now + secs(0.02), 1, || {});
    let e4 = scheduler.enterabs(now + secs(0.04), 1, || {});
    let e3 = scheduler.enterabs(now + secs(0.03), 1, || {});
    // The queue lists the upcoming events in the order they will run.
    assert_eq!(scheduler.queue(), [e1, e2, e3, e4, e5]);
    assert_eq!(e3.time(), now + secs(0.03));
    assert_eq!(e3.priority(), 1);
    assert_eq!(e3.sequence(), 4);
}

#[test]
fn test_args_kwargs() {
    // Python passes `argument` and `kwargs`; a Rust action captures them.
    type Call = (Vec<String>, Vec<(String, i32)>);
    let seq: Arc<Mutex<Vec<Call>>> = Arc::default();
    let fun = |a: &[&str], b: &[(&str, i32)]| {
        let seq = seq.clone();
        let a: Vec<String> = a.iter().map(|s| s.to_string()).collect();
        let b: Vec<(String, i32)> = b.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        move || seq.lock().unwrap().push((a, b))
    };
    let scheduler = Scheduler::with_clock(VirtualClock::auto_advance());
    let now = scheduler.now();
    scheduler.enterabs(now, 1, fun(&[], &[]));
    scheduler.enterabs(now, 1, fun(&["1", "2"], &[]));
    scheduler.enterabs(now, 1, fun(&["a", "b"], &[]));
    scheduler.enterabs(now, 1, fun(&["1", "2"], &[("foo", 3)]));
    scheduler.run().unwrap();
    let mut got = taken(&seq);
    got.sort();
    let own = |a: &[&str], b: &[(&str, i32)]| -> Call {
        (
            a.iter().map(|s| s.to_string()).collect(),
            b.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        )
    };
    let mut want = vec![
        own(&[], &[]),
        own(&["1", "2"], &[]),
        own(&["a", "b"], &[]),
        own(&["1", "2"], &[("foo", 3)]),
    ];
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn test_run_non_blocking() {
    let clock = VirtualClock::new();
    let (l, fun) = log();
    let scheduler = Scheduler::with_clock(clock.clone());
    for x in [10, 9, 8, 7, 6] {
        scheduler.enter(secs(x as f64), 1, fun(x));
    }
    // Nothing is due: nothing runs, and it says how long until the next event.
    assert_eq!(scheduler.run_pending().unwrap(), Some(secs(6.0)));
    assert_eq!(taken(&l), Vec::<i32>::new());
    clock.advance(secs(8.5));
    assert_eq!(scheduler.run_pending().unwrap(), Some(secs(0.5)));
    assert_eq!(taken(&l), [6, 7, 8]);
    clock.advance(secs(5.0));
    assert_eq!(scheduler.run_pending().unwrap(), None);
    assert_eq!(taken(&l), [9, 10]);
}

#[test]
fn actions_schedule_and_cancel_other_events() {
    fn link(s: Scheduler, l: Arc<Mutex<Vec<u32>>>, n: u32) {
        l.lock().unwrap().push(n);
        if n < 3 {
            // Each link enters the next one, one second later.
            let s2 = s.clone();
            s.enter(secs(1.0), 1, move || link(s2, l, n + 1));
        }
    }
    let clock = VirtualClock::auto_advance();
    let l: Arc<Mutex<Vec<u32>>> = Arc::default();
    let scheduler = Scheduler::with_clock(clock.clone());
    let l2 = l.clone();
    let doomed = scheduler.enter(secs(10.0), 1, move || l2.lock().unwrap().push(99));
    let (s, l3) = (scheduler.clone(), l.clone());
    scheduler.enter(secs(1.0), 1, move || {
        s.cancel(&doomed).unwrap();
        link(s.clone(), l3, 1);
    });
    scheduler.run().unwrap();
    assert_eq!(taken(&l), [1, 2, 3]);
    assert_eq!(clock.elapsed(), secs(3.0));
}

#[test]
fn a_panicking_action_stops_run_and_leaves_the_scheduler_consistent() {
    let (l, fun) = log();
    let scheduler = Scheduler::with_clock(VirtualClock::auto_advance());
    scheduler.enter(secs(1.0), 1, fun(1));
    let bad = scheduler.enter(secs(2.0), 1, || panic!("boom"));
    scheduler.enter(secs(3.0), 1, fun(3));
    let err = scheduler.run().unwrap_err();
    assert_eq!(err.event(), bad);
    assert_eq!(err.message(), Some("boom"));
    assert_eq!(taken(&l), [1]);
    // The panicking event is gone, the rest is still queued and runs on.
    assert_eq!(scheduler.len(), 1);
    assert_eq!(scheduler.cancel(&bad), Err(CancelError::NotQueued));
    scheduler.run().unwrap();
    assert_eq!(taken(&l), [3]);
    // The payload can be re-raised, as Python propagates the exception.
    scheduler.enter(secs(0.0), 1, || std::panic::panic_any(42_u8));
    let payload = scheduler.run().unwrap_err().into_panic();
    assert_eq!(payload.downcast_ref::<u8>(), Some(&42));
}

#[test]
fn a_sleeping_run_is_woken_by_an_earlier_event() {
    // Virtual time: the runner sleeps for an event at 10 s; one entered at 1 s
    // from another thread must run when the clock reaches 1 s, not at 10 s.
    let clock = VirtualClock::new();
    let scheduler = Scheduler::with_clock(clock.clone());
    let (tx, rx) = mpsc::channel();
    let tx2 = tx.clone();
    scheduler.enter(secs(10.0), 1, move || tx2.send(10).unwrap());
    let t = {
        let s = scheduler.clone();
        thread::spawn(move || s.run())
    };
    wait_for_sleepers(&clock, 1);
    scheduler.enter(secs(1.0), 1, move || tx.send(1).unwrap());
    clock.advance(secs(1.0));
    assert_eq!(rx.recv_timeout(TIMEOUT), Ok(1));
    assert_eq!(clock.elapsed(), secs(1.0));
    clock.advance(secs(9.0));
    assert_eq!(rx.recv_timeout(TIMEOUT), Ok(10));
    t.join().unwrap().unwrap();
}

/// Waits (bounded) until `n` threads are blocked on the manual `clock`.
fn wait_for_sleepers(clock: &VirtualClock, n: usize) {
    until_within("a thread asleep on the clock", TIMEOUT, || {
        clock.waiters() >= n
    });
}

/// Real time, announcing on a channel each time someone starts waiting on it.
struct AnnouncingClock(Mutex<mpsc::Sender<()>>);

impl Clock for AnnouncingClock {
    fn now(&self) -> Instant {
        MonotonicClock.now()
    }
    fn wait_until(&self, wakeup: &Wakeup, token: WakeToken, deadline: Instant) -> WaitOutcome {
        let _ = self.0.lock().unwrap().send(());
        MonotonicClock.wait_until(wakeup, token, deadline)
    }
}

#[test]
fn real_clock_run_is_woken_by_enter_and_cancel() {
    // Real clock: the runner sleeps for an event an hour away. An event entered
    // now must run promptly, and cancelling the far one must end run().
    let (sleeping_tx, sleeping) = mpsc::channel();
    let scheduler = Scheduler::with_clock(AnnouncingClock(Mutex::new(sleeping_tx)));
    let far = scheduler.enter(Duration::from_secs(3600), 1, || panic!("must not run"));
    let t = {
        let s = scheduler.clone();
        thread::spawn(move || s.run())
    };
    // The runner is (about to be) asleep for the far event.
    sleeping.recv_timeout(TIMEOUT).unwrap();
    let (tx, rx) = mpsc::channel();
    scheduler.enter(Duration::ZERO, 1, move || tx.send(()).unwrap());
    assert_eq!(rx.recv_timeout(TIMEOUT), Ok(()));
    scheduler.cancel(&far).unwrap();
    t.join().unwrap().unwrap();
    assert!(scheduler.is_empty());
}

#[test]
fn concurrent_runners_run_each_event_exactly_once() {
    const N: usize = if cfg!(miri) { 50 } else { 2_000 };
    let scheduler = Scheduler::with_clock(MonotonicClock);
    let ran: Arc<Vec<Mutex<u32>>> = Arc::new((0..N).map(|_| Mutex::new(0)).collect());
    for i in 0..N {
        let ran = ran.clone();
        scheduler.enter(Duration::ZERO, (i % 7) as i64, move || {
            *ran[i].lock().unwrap() += 1
        });
    }
    let barrier = Arc::new(Barrier::new(3));
    let runners: Vec<_> = (0..3)
        .map(|_| {
            let (s, b) = (scheduler.clone(), barrier.clone());
            thread::spawn(move || {
                b.wait();
                s.run()
            })
        })
        .collect();
    for r in runners {
        r.join().unwrap().unwrap();
    }
    assert!(ran.iter().all(|c| *c.lock().unwrap() == 1));
}

#[test]
fn run_on_an_empty_scheduler_returns_at_once() {
    let scheduler = Scheduler::new();
    scheduler.run().unwrap();
    assert_eq!(scheduler.run_pending().unwrap(), None);
    assert_eq!(scheduler.queue(), Vec::<ScheduledEvent>::new());
}

// ---- clocks ----

#[test]
fn virtual_clock_manual_sleep_waits_for_advance() {
    let clock = VirtualClock::new();
    let deadline = clock.now() + secs(5.0);
    let (tx, rx) = mpsc::channel();
    let t = {
        let c = clock.clone();
        thread::spawn(move || {
            c.sleep_until(deadline);
            tx.send(c.elapsed()).unwrap();
        })
    };
    clock.advance(secs(4.0));
    // Whether or not the sleeper has looked at the time yet, 4 s is not enough.
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(20)),
        Err(RecvTimeoutError::Timeout)
    );
    clock.advance(secs(1.0));
    assert_eq!(rx.recv_timeout(TIMEOUT), Ok(secs(5.0)));
    t.join().unwrap();
    assert_eq!(clock.waiters(), 0);
}

#[test]
fn virtual_clock_wait_is_cut_short_by_wakeup() {
    let clock = VirtualClock::new();
    let wakeup = Wakeup::new();
    let token = wakeup.token();
    let t = {
        let (c, w) = (clock.clone(), wakeup.clone());
        thread::spawn(move || c.wait_until(&w, token, c.now() + secs(3600.0)))
    };
    wakeup.wake();
    assert_eq!(t.join().unwrap(), WaitOutcome::Woken);
    assert_eq!(clock.elapsed(), Duration::ZERO);
}

#[test]
fn auto_advance_jumps_to_the_deadline() {
    let clock = VirtualClock::auto_advance();
    let t0 = Instant::now();
    clock.sleep(secs(86_400.0));
    assert_eq!(clock.elapsed(), secs(86_400.0));
    assert!(t0.elapsed() < Duration::from_secs(3600));
    // A deadline in the past does not move time backwards.
    clock.sleep_until(clock.epoch());
    assert_eq!(clock.elapsed(), secs(86_400.0));
}

#[test]
fn monotonic_clock_sleeps_at_least_the_duration() {
    let t0 = Instant::now();
    MonotonicClock.sleep(Duration::from_millis(3));
    assert!(t0.elapsed() >= Duration::from_millis(3));
    let wakeup = Wakeup::new();
    let token = wakeup.token();
    let at = Instant::now() + Duration::from_millis(1);
    assert_eq!(
        MonotonicClock.wait_until(&wakeup, token, at),
        WaitOutcome::DeadlineReached
    );
    assert!(Instant::now() >= at);
}

// ---- Timer ----

#[test]
fn timer_fires_once_after_the_delay() {
    let (tx, rx) = mpsc::channel();
    let t0 = Instant::now();
    let timer = Timer::new(Duration::from_millis(20), move || {
        tx.send(Instant::now()).unwrap()
    });
    timer.start().unwrap();
    let fired = rx.recv_timeout(TIMEOUT).unwrap();
    assert!(fired - t0 >= Duration::from_millis(20));
    timer.join().unwrap();
    // The function (and its sender) is gone: it ran exactly once.
    assert_eq!(
        rx.recv_timeout(TIMEOUT),
        Err(RecvTimeoutError::Disconnected)
    );
    assert_eq!(timer.runs(), 1);
    assert!(!timer.is_alive());
    assert!(!timer.cancel(), "nothing left to cancel");
}

#[test]
fn timer_cancelled_before_firing_never_runs() {
    let (tx, rx) = mpsc::channel::<()>();
    let timer = Timer::new(Duration::from_secs(3600), move || tx.send(()).unwrap());
    timer.start().unwrap();
    assert!(timer.is_alive());
    assert!(timer.cancel());
    assert!(!timer.cancel(), "a second cancel prevents nothing more");
    // The sleeping thread is woken by cancel: join returns long before the hour.
    timer.join_timeout(TIMEOUT).unwrap();
    assert_eq!(rx.recv(), Err(mpsc::RecvError));
    assert_eq!(timer.runs(), 0);
    assert!(timer.is_cancelled());
}

#[test]
fn timer_on_virtual_time_fires_at_its_deadline_only() {
    let clock = VirtualClock::new();
    let (tx, rx) = mpsc::channel();
    let early = Timer::new(secs(5.0), || panic!("cancelled timer ran")).with_clock(clock.clone());
    let c = clock.clone();
    let late =
        Timer::new(secs(5.0), move || tx.send(c.elapsed()).unwrap()).with_clock(clock.clone());
    early.start().unwrap();
    late.start().unwrap();
    clock.advance(secs(4.0));
    // At 4 s of 5 the run cannot have been claimed: cancel still prevents it.
    assert!(early.cancel());
    clock.advance(secs(1.0));
    assert_eq!(rx.recv_timeout(TIMEOUT), Ok(secs(5.0)));
    early.join().unwrap();
    late.join().unwrap();
    assert_eq!((early.runs(), late.runs()), (0, 1));
}

#[test]
fn timer_cancelled_before_start_never_runs() {
    let timer = Timer::new(Duration::ZERO, || panic!("must not run"));
    assert!(timer.cancel());
    timer.start().unwrap();
    timer.join().unwrap();
    assert_eq!(timer.runs(), 0);
}

#[test]
fn timer_start_twice_and_join_before_start_are_errors() {
    let timer = Timer::new(Duration::ZERO, || {}).name("twice");
    assert_eq!(timer.join(), Err(JoinError::NotStarted));
    timer.start().unwrap();
    assert!(matches!(timer.start(), Err(StartError::AlreadyStarted)));
    timer.join().unwrap();
    timer.join().unwrap(); // joining again is fine, as in Python
}

#[test]
fn timer_join_timeout_times_out_while_waiting() {
    let timer = Timer::new(Duration::from_secs(3600), || {});
    timer.start().unwrap();
    let err = timer.join_timeout(Duration::from_millis(1)).unwrap_err();
    assert!(err.is_timeout());
    assert!(timer.cancel());
    timer.join().unwrap();
}

#[test]
fn timer_panic_comes_back_from_join() {
    let timer = Timer::new(Duration::ZERO, || panic!("timer boom"));
    timer.start().unwrap();
    let err = timer.join().unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err, JoinError::Panicked(Some("timer boom".into())));
    // The outcome is kept for later joins.
    assert_eq!(timer.join(), Err(err));
}

#[test]
fn repeating_timer_runs_exactly_count_times_on_a_fixed_rate() {
    let clock = VirtualClock::auto_advance();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (c, s) = (clock.clone(), seen.clone());
    let timer = Timer::repeating(secs(1.0), 10, move || s.lock().unwrap().push(c.elapsed()))
        .with_clock(clock.clone());
    timer.start().unwrap();
    timer.join().unwrap();
    assert_eq!(timer.runs(), 10);
    let want: Vec<_> = (1..=10).map(|k| secs(k as f64)).collect();
    assert_eq!(*seen.lock().unwrap(), want);
    assert!(!timer.cancel(), "all runs done");
}

#[test]
fn repeating_timer_real_clock() {
    let t0 = Instant::now();
    let (tx, rx) = mpsc::channel();
    let timer = Timer::repeating(Duration::from_millis(5), 3, move || tx.send(()).unwrap());
    timer.start().unwrap();
    timer.join().unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(15));
    assert_eq!(rx.try_iter().count(), 3);
    assert_eq!(rx.recv(), Err(mpsc::RecvError), "no fourth run");
}

#[test]
fn cancelling_a_repeating_timer_stops_it() {
    let clock = VirtualClock::new();
    let (tx, rx) = mpsc::channel();
    let timer =
        Timer::repeating(secs(1.0), 10, move || tx.send(()).unwrap()).with_clock(clock.clone());
    timer.start().unwrap();
    clock.advance(secs(1.0));
    rx.recv_timeout(TIMEOUT).unwrap();
    clock.advance(secs(1.0));
    rx.recv_timeout(TIMEOUT).unwrap();
    assert!(timer.cancel());
    clock.advance(secs(100.0));
    timer.join().unwrap();
    assert_eq!(timer.runs(), 2);
    assert_eq!(rx.recv(), Err(mpsc::RecvError), "no run after cancel");
}

#[test]
fn a_repeating_timer_can_cancel_itself_and_cannot_join_itself() {
    // The Python program's stop condition, inside the function: stop after 4 runs.
    let me: Arc<Mutex<Option<Arc<Timer>>>> = Arc::default();
    let (tx, rx) = mpsc::channel();
    let m = me.clone();
    let mut n = 0;
    let timer = Arc::new(
        Timer::repeating(secs(1.0), 10, move || {
            n += 1;
            let timer = m.lock().unwrap().clone().unwrap();
            tx.send(timer.join()).unwrap();
            if n == 4 {
                assert!(timer.cancel());
            }
        })
        .with_clock(VirtualClock::auto_advance()),
    );
    *me.lock().unwrap() = Some(timer.clone());
    timer.start().unwrap();
    timer.join().unwrap();
    assert_eq!(timer.runs(), 4);
    let joins: Vec<_> = rx.try_iter().collect();
    assert_eq!(joins, vec![Err(JoinError::CurrentThread); 4]);
}

#[test]
fn a_panicking_repeating_timer_stops() {
    let clock = VirtualClock::auto_advance();
    let mut n = 0;
    let timer = Timer::repeating(secs(1.0), 5, move || {
        n += 1;
        assert!(n < 3, "third run");
    })
    .with_clock(clock);
    timer.start().unwrap();
    assert!(timer.join().unwrap_err().is_panic());
    assert_eq!(timer.runs(), 2);
}

#[test]
fn send_and_sync() {
    fn is<T: Send + Sync>() {}
    is::<Scheduler>();
    is::<ScheduledEvent>();
    is::<Timer>();
    is::<VirtualClock>();
    is::<Wakeup>();
    is::<spindle::sched::ActionPanicked>();
    is::<JoinError>();
    is::<CancelError>();
}

/// Python's `Timer` is a `Thread`: spindle's runs on a spindle thread, so it is
/// listed by `thread::enumerate()` under its name while it waits.
#[test]
fn a_timer_thread_is_a_spindle_thread() {
    let timer = Timer::new(Duration::from_secs(3600), || {}).name("tick-timer");
    timer.start().unwrap();
    let listed = spindle::thread::enumerate()
        .iter()
        .any(|t| t.name() == "tick-timer" && t.is_alive());
    assert!(timer.cancel());
    timer.join_timeout(Duration::from_secs(60)).unwrap();
    assert!(listed, "the timer's thread is not in thread::enumerate()");
    assert!(
        !spindle::thread::enumerate()
            .iter()
            .any(|t| t.name() == "tick-timer"),
        "a joined timer's thread is still listed"
    );
}
