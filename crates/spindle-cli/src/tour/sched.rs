//! Tour section `sched`: `Timer` and `Scheduler` (Python's `threading.Timer` and
//! `sched.scheduler`), on virtual and real time, every claim checked.

use std::panic;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use spindle::sched::{CancelError, Scheduler, Timer, VirtualClock};

use super::Tour;

const GENEROUS: Duration = Duration::from_secs(10);

pub(crate) fn run(t: &mut Tour) {
    priorities(t);
    virtual_time(t);
    early_wake_and_cancel(t);
    panicking_action(t);
    timers(t);
}

fn priorities(t: &mut Tour) {
    t.say("sched.scheduler: three actions due at the same time with priorities 3, 2, 1.");
    let sched = Scheduler::with_clock(VirtualClock::auto_advance());
    let out = Arc::new(Mutex::new(Vec::new()));
    let at = sched.now() + Duration::from_secs(1);
    for (priority, site) in [(3, "python"), (2, "shell"), (1, "java")] {
        let out = out.clone();
        sched.enterabs(at, priority, move || out.lock().unwrap().push(site));
    }
    let ran = sched.run().is_ok();
    let order = out.lock().unwrap().clone();
    t.check(
        "equal times run by priority, lower first",
        ran && order == ["java", "shell", "python"],
        format!("{order:?}"),
    );
}

fn virtual_time(t: &mut Tour) {
    t.say("A VirtualClock lets an hour of scheduled events run in no real time.");
    let clock = VirtualClock::auto_advance();
    let sched = Scheduler::with_clock(clock.clone());
    let seen = Arc::new(Mutex::new(Vec::new()));
    for minute in (0..=60).rev().step_by(6) {
        let (seen, c) = (seen.clone(), clock.clone());
        sched.enter(Duration::from_secs(60 * minute), 1, move || {
            seen.lock().unwrap().push(c.elapsed().as_secs() / 60);
        });
    }
    let t0 = Instant::now();
    let ok = sched.run().is_ok();
    let real = t0.elapsed();
    let seen = seen.lock().unwrap().clone();
    let want: Vec<u64> = (0..=60).step_by(6).collect();
    t.check(
        "11 events over 60 virtual minutes ran in time order, each at its minute",
        ok && seen == want && clock.elapsed() == Duration::from_secs(3600),
        format!(
            "minutes {seen:?} in {:.1} ms of real time",
            real.as_secs_f64() * 1e3
        ),
    );
}

fn early_wake_and_cancel(t: &mut Tour) {
    t.say("run() sleeping for an event an hour away is woken when a sooner one is entered.");
    // Manual virtual time, so that the tour can see the runner asleep; it never
    // advances: only the wake-up can make the new event run.
    let clock = VirtualClock::new();
    let sched = Scheduler::with_clock(clock.clone());
    let far = sched.enter(Duration::from_secs(3600), 1, || {});
    let runner = {
        let s = sched.clone();
        thread::spawn(move || s.run())
    };
    let t0 = Instant::now();
    while clock.waiters() == 0 && t0.elapsed() < GENEROUS {
        thread::yield_now();
    }
    let asleep = clock.waiters() == 1;
    let (tx, rx) = mpsc::channel();
    let t0 = Instant::now();
    sched.enter(Duration::ZERO, 1, move || tx.send(()).unwrap());
    let woke = rx.recv_timeout(GENEROUS).is_ok();
    t.check(
        "an event entered from another thread ran at once, the runner being asleep",
        asleep && woke,
        format!("after {:.2} ms", t0.elapsed().as_secs_f64() * 1e3),
    );
    let cancelled = sched.cancel(&far).is_ok();
    let again = sched.cancel(&far);
    let joined = runner.join().map(|r| r.is_ok()).unwrap_or(false);
    t.check(
        "cancelling the far event ended run(); cancelling it again is a typed error",
        cancelled && joined && again == Err(CancelError::NotQueued),
        format!("second cancel: {again:?} (Python: ValueError)"),
    );
}

fn panicking_action(t: &mut Tour) {
    t.say("A panicking action stops run() with an error; the rest stays queued.");
    let sched = Scheduler::with_clock(VirtualClock::auto_advance());
    let out = Arc::new(Mutex::new(Vec::new()));
    sched.enter(Duration::from_secs(1), 1, || panic!("action failed"));
    let o = out.clone();
    sched.enter(Duration::from_secs(2), 1, move || {
        o.lock().unwrap().push("after")
    });
    // Keep the expected panic's message off the terminal.
    let hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let first = sched.run();
    panic::set_hook(hook);
    let message = first
        .as_ref()
        .err()
        .and_then(|e| e.message().map(str::to_owned));
    let second = sched.run().is_ok();
    let out = out.lock().unwrap().clone();
    t.check(
        "run() returned ActionPanicked, a second run() ran the remaining event",
        message.as_deref() == Some("action failed") && second && out == ["after"],
        format!("error message {message:?}"),
    );
}

fn timers(t: &mut Tour) {
    t.say("Timer: run once after a delay, unless cancelled first.");
    let (tx, rx) = mpsc::channel::<()>();
    let timer = Timer::new(Duration::from_secs(3600), move || tx.send(()).unwrap());
    let started = timer.start().is_ok();
    let prevented = timer.cancel();
    let joined = timer.join_timeout(GENEROUS).is_ok();
    t.check(
        "a timer cancelled before it fires never runs (and its thread ends at once)",
        started && prevented && joined && timer.runs() == 0 && rx.recv().is_err(),
        "cancel() returned true",
    );

    let t0 = Instant::now();
    let (tx, rx) = mpsc::channel();
    let timer = Timer::new(Duration::from_millis(50), move || {
        tx.send(Instant::now()).unwrap()
    });
    let fired = timer.start().is_ok() && timer.join().is_ok();
    let at = rx.recv().ok().map(|at| at - t0);
    t.check(
        "a 50 ms timer fired once, not before 50 ms",
        fired && at.is_some_and(|d| d >= Duration::from_millis(50)) && rx.recv().is_err(),
        format!(
            "fired after {:.1} ms",
            at.unwrap_or_default().as_secs_f64() * 1e3
        ),
    );

    t.say("Timer::repeating: Python's \"print the time every second, 10 times\".");
    let clock = VirtualClock::auto_advance();
    let c = clock.clone();
    let ticks = Arc::new(Mutex::new(Vec::new()));
    let k = ticks.clone();
    let timer = Timer::repeating(Duration::from_secs(1), 10, move || {
        k.lock().unwrap().push(c.elapsed().as_secs());
    })
    .with_clock(clock);
    let done = timer.start().is_ok() && timer.join().is_ok();
    let ticks = ticks.lock().unwrap().clone();
    t.check(
        "10 runs, one per virtual second, then it stops",
        done && ticks == (1..=10).collect::<Vec<u64>>(),
        format!("at seconds {ticks:?}"),
    );

    let clock = VirtualClock::new();
    let (tx, rx) = mpsc::channel();
    let timer = Timer::repeating(Duration::from_secs(1), 10, move || tx.send(()).unwrap())
        .with_clock(clock.clone());
    let _ = timer.start();
    clock.advance(Duration::from_secs(3));
    let got3 = (0..3).all(|_| rx.recv_timeout(GENEROUS).is_ok());
    let prevented = timer.cancel();
    clock.advance(Duration::from_secs(100));
    let joined = timer.join().is_ok();
    t.check(
        "cancelling a repeating timer after 3 of 10 runs stops it there",
        got3 && prevented && joined && timer.runs() == 3 && rx.recv().is_err(),
        format!("{} runs", timer.runs()),
    );
}
