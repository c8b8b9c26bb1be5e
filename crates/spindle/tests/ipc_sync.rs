//! Process-shared synchronisation objects across processes, ported from
//! CPython's `Lib/test/_test_multiprocessing.py` (`_TestLock`,
//! `_TestSemaphore`, `_TestCondition`, `_TestEvent`, `_TestBarrier`),
//! manually rewritten in Rust for spindle. Where CPython coordinates with
//! sleeps, these tests coordinate with events, semaphores and condition
//! predicates instead. What the objects do within one process (CPython's
//! `lock_tests.py`) is checked by the conformance suite
//! (`spindle_conformance::sync`, run by
//! `crates/spindle-conformance/tests/ipc_sync.rs`).

use std::time::Duration;

use spindle::ipc::Value;
use spindle::ipc::sync::{
    Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, SEM_VALUE_MAX, Semaphore,
};
use spindle::process::{Process, StartMethod, TaskCall};
use spindle::sync::{CreateError, ReleaseError};

mod common;
use common::LONG;
const SHORT: Duration = Duration::from_millis(30);

fn start(call: impl Into<TaskCall>) -> Process {
    let mut p = Process::new(call);
    p.start().unwrap();
    p
}

fn join_all(ps: &mut [Process]) {
    for p in ps {
        p.join_timeout(LONG).unwrap();
    }
}

#[spindle::task]
fn release_foreign(lock: Lock, rlock: RLock) -> bool {
    // A Lock may be released by anyone; an RLock only by its owner.
    lock.release().is_ok() && rlock.release() == Err(ReleaseError::NotOwner)
}

#[spindle::task]
fn check_release(lock: Lock, rlock: RLock, out: Value<u8>) {
    out.store(release_foreign(lock, rlock) as u8);
}

/// A `Lock` acquired in the parent is released by a child; an `RLock` is not.
#[test]
fn lock_released_by_another_process() {
    let (lock, rlock) = (Lock::new().unwrap(), RLock::new().unwrap());
    let out = Value::new(0u8).unwrap();
    lock.acquire();
    rlock.acquire();
    let mut p = start(check_release::call(
        lock.clone(),
        rlock.clone(),
        out.clone(),
    ));
    p.join_timeout(LONG).unwrap();
    assert_eq!(out.load(), 1);
    assert!(!lock.is_locked() && rlock.is_owned());
    rlock.release().unwrap();
}

#[spindle::task]
fn add_with_lock(lock: Lock, counter: Value<u64>, times: u64) {
    for _ in 0..times {
        let _g = lock.lock();
        counter.store(counter.load() + 1);
    }
}

/// A process-shared Lock serialises read-modify-writes of several processes.
#[test]
fn lock_excludes_across_processes() {
    const N: u64 = 1_000;
    let lock = Lock::new().unwrap();
    let counter = Value::new(0u64).unwrap();
    let mut ps: Vec<Process> = (0..3)
        .map(|_| start(add_with_lock::call(lock.clone(), counter.clone(), N)))
        .collect();
    join_all(&mut ps);
    assert_eq!(counter.load(), 3 * N);
}

#[spindle::task]
fn hold_forever(lock: Lock, rlock: RLock, held: Event) {
    lock.acquire();
    rlock.acquire();
    held.set();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The test: a child killed while holding a lock does not hang the
/// parent — the dead holder is detected and the lock taken over.
#[test]
fn killed_holder_is_taken_over() {
    for m in [StartMethod::ForkServer, StartMethod::Spawn] {
        let (lock, rlock, held) = (
            Lock::new().unwrap(),
            RLock::new().unwrap(),
            Event::new().unwrap(),
        );
        let mut p = Process::builder()
            .task(hold_forever::call(
                lock.clone(),
                rlock.clone(),
                held.clone(),
            ))
            .start_method(m)
            .start()
            .unwrap();
        assert!(held.wait_timeout(LONG));
        // Alive holder: a short wait times out, nothing is taken over.
        assert!(!lock.acquire_timeout(SHORT));
        assert!(!rlock.try_acquire());
        p.kill().unwrap();
        assert!(lock.acquire_timeout(LONG), "{m:?}");
        assert!(rlock.acquire_timeout(LONG), "{m:?}");
        assert_eq!((lock.owner_deaths(), rlock.owner_deaths()), (1, 1));
        assert_eq!(rlock.recursion_depth(), 1);
        lock.release().unwrap();
        rlock.release().unwrap();
        let _ = p.join_timeout(LONG);
        assert_eq!(p.exitcode(), Some(-9));
    }
}

/// CPython `_TestSemaphore`: a value above `SEM_VALUE_MAX` is refused
/// (Python: `ValueError`). The counting itself is in the conformance suite.
#[test]
fn semaphore_value_max() {
    assert!(Semaphore::new(SEM_VALUE_MAX).is_ok());
    assert!(Semaphore::new(SEM_VALUE_MAX + 1).is_err());
    assert!(BoundedSemaphore::new(SEM_VALUE_MAX + 1).is_err());
}

#[spindle::task]
fn take_and_report(sem: Semaphore, done: Semaphore, n: u32) {
    for _ in 0..n {
        sem.acquire();
        done.release();
    }
}

/// Permits released by the parent are taken by blocked children, exactly.
#[test]
fn semaphore_across_processes() {
    let (sem, done) = (Semaphore::new(0).unwrap(), Semaphore::new(0).unwrap());
    let mut ps: Vec<Process> = (0..3)
        .map(|_| start(take_and_report::call(sem.clone(), done.clone(), 5)))
        .collect();
    sem.release_n(15).unwrap();
    for _ in 0..15 {
        assert!(done.acquire_timeout(LONG));
    }
    join_all(&mut ps);
    assert_eq!((sem.value(), done.value()), (0, 0));
}

#[spindle::task]
fn set_event(ev: Event, go: Event) {
    assert!(go.wait_timeout(LONG));
    ev.set();
}

/// CPython `test_event`: a child's `set` wakes the parent, under every
/// start method.
#[test]
fn event_set_by_child_wakes_parent() {
    let ev = Event::new().unwrap();
    for m in StartMethod::all() {
        ev.clear();
        let go = Event::new().unwrap();
        let mut p = Process::builder()
            .task(set_event::call(ev.clone(), go.clone()))
            .start_method(m)
            .start()
            .unwrap();
        go.set();
        assert!(ev.wait_timeout(LONG), "{m:?}");
        p.join_timeout(LONG).unwrap();
    }
}

#[spindle::task]
fn cond_waiter(cond: Condition, sleeping: Semaphore, woken: Semaphore) {
    let _g = cond.lock();
    sleeping.release();
    assert!(cond.wait_timeout(LONG).unwrap());
    woken.release();
}

/// CPython `test_notify` / `test_notify_n` / `test_notify_all`: notify
/// wakes exactly the number asked for, across processes.
#[test]
fn condition_notify_counts() {
    let cond = Condition::new().unwrap();
    let (sleeping, woken) = (Semaphore::new(0).unwrap(), Semaphore::new(0).unwrap());
    let mut ps: Vec<Process> = (0..4)
        .map(|_| {
            start(cond_waiter::call(
                cond.clone(),
                sleeping.clone(),
                woken.clone(),
            ))
        })
        .collect();
    for _ in 0..4 {
        assert!(sleeping.acquire_timeout(LONG));
    }
    // Every child registered before releasing `sleeping` under the lock, so
    // once we hold the lock all four are waiting.
    {
        let _g = cond.lock();
        assert_eq!(cond.__parked(), 4);
        assert_eq!(cond.notify_one(), Ok(true));
    }
    assert!(woken.acquire_timeout(LONG));
    assert!(
        !woken.acquire_timeout(SHORT),
        "notify(1) woke more than one"
    );
    {
        let _g = cond.lock();
        assert_eq!(cond.notify(2), Ok(2));
    }
    assert!(woken.acquire_timeout(LONG) && woken.acquire_timeout(LONG));
    assert!(!woken.acquire_timeout(SHORT));
    {
        let _g = cond.lock();
        assert_eq!(cond.notify_all(), Ok(1));
        assert_eq!(cond.notify_all(), Ok(0));
    }
    assert!(woken.acquire_timeout(LONG));
    join_all(&mut ps);
}

#[spindle::task]
fn step_state(cond: Condition, state: Value<u32>) {
    for _ in 0..4 {
        let _g = cond.lock();
        state.store(state.load() + 1);
        cond.notify_all().unwrap();
    }
}

/// CPython `test_waitfor`: the parent waits for a predicate a child makes
/// true; the RLock is held at depth 2 and restored after waiting.
#[test]
fn condition_wait_for_child() {
    let cond = Condition::new().unwrap();
    let state = Value::new(0u32).unwrap();
    let mut p = start(step_state::call(cond.clone(), state.clone()));
    {
        let _a = cond.lock();
        let _b = cond.lock();
        cond.wait_for(|| state.load() == 4).unwrap();
        assert_eq!(cond.get_lock().recursion_depth(), 2);
    }
    p.join_timeout(LONG).unwrap();
    assert!(!cond.get_lock().is_locked());
}

#[spindle::task]
fn meet(b: Barrier, rounds: u32, out: Value<u32>) {
    for _ in 0..rounds {
        let i = b.wait_timeout(LONG).unwrap() as u32;
        // Sum of the arrival indexes of all parties, all rounds.
        *out.lock() += i;
    }
}

/// CPython `test_barrier` / `test_wait_return`: several processes pass a
/// reusable barrier several times; each round hands out every index once.
#[test]
fn barrier_across_processes() {
    const PARTIES: usize = 4;
    const ROUNDS: u32 = 5;
    let b = Barrier::new(PARTIES).unwrap();
    let out = Value::new(0u32).unwrap();
    let mut ps: Vec<Process> = (0..PARTIES - 1)
        .map(|_| start(meet::call(b.clone(), ROUNDS, out.clone())))
        .collect();
    meet(b.clone(), ROUNDS, out.clone());
    join_all(&mut ps);
    assert_eq!(out.load(), ROUNDS * (1 + 2 + 3));
    assert_eq!(b.n_waiting(), 0);
    assert!(!b.is_broken());
    assert_eq!(b.parties(), PARTIES);
}

/// CPython `BarrierTests.test_constructor`: no barrier of 0 parties
/// (Python: `ValueError`). Abort, reset, timeouts and a single party are in
/// the conformance suite.
#[test]
fn barrier_of_zero_parties_is_an_error() {
    assert!(matches!(Barrier::new(0), Err(CreateError::ZeroParties)));
}

/// Debug output and `Send + Sync` promises.
#[test]
fn debug_and_send_sync() {
    fn is_send_sync<T: Send + Sync + Clone>() {}
    is_send_sync::<Lock>();
    is_send_sync::<RLock>();
    is_send_sync::<Semaphore>();
    is_send_sync::<BoundedSemaphore>();
    is_send_sync::<Event>();
    is_send_sync::<Condition>();
    is_send_sync::<Condition<Lock>>();
    is_send_sync::<Barrier>();
    assert!(format!("{:?}", Semaphore::new(3).unwrap()).contains('3'));
    assert!(format!("{:?}", Barrier::new(3).unwrap()).contains("parties: 3"));
}

#[spindle::task]
fn notify_on_lock(cond: Condition<Lock>, flag: Value<u8>) {
    let _g = cond.lock();
    flag.store(1);
    assert_eq!(cond.notify_all(), Ok(1));
}

/// CPython `test_wait_result` with a plain `Lock` under the condition: the
/// child's notify wakes the parent's `wait`, which returns true.
#[test]
fn condition_over_lock_across_processes() {
    let cond = Condition::with_lock(Lock::new().unwrap()).unwrap();
    let flag = Value::new(0u8).unwrap();
    let _g = cond.lock();
    let mut p = start(notify_on_lock::call(cond.clone(), flag.clone()));
    // The child cannot notify before we wait: it needs the lock we hold.
    assert_eq!(cond.wait_timeout(LONG), Ok(true));
    assert_eq!(flag.load(), 1);
    drop(_g);
    p.join_timeout(LONG).unwrap();
}

/// A `Fork` closure captures the handles; a semaphore bounds how many
/// children are inside at once (`with sem:`), checked with a shared maximum.
#[test]
fn fork_closure_semaphore_bounds_concurrency() {
    let sem = BoundedSemaphore::new(2).unwrap();
    let inside = Value::new([0u32, 0u32]).unwrap(); // [now, max]
    let mut ps: Vec<Process> = (0..4)
        .map(|_| {
            let (sem, inside) = (sem.clone(), inside.clone());
            Process::builder()
                .closure(move || {
                    for _ in 0..50 {
                        let _permit = sem.permit();
                        {
                            let mut g = inside.lock();
                            g[0] += 1;
                            g[1] = g[1].max(g[0]);
                        }
                        std::thread::yield_now();
                        inside.lock()[0] -= 1;
                    }
                })
                .start_method(StartMethod::Fork)
                .start()
                .unwrap()
        })
        .collect();
    join_all(&mut ps);
    let [now, max] = inside.load();
    assert_eq!(now, 0);
    assert!((1..=2).contains(&max), "max inside {max}");
    assert_eq!(sem.value(), 2);
}

#[spindle::task]
fn wait_alone(b: spindle::ipc::sync::Barrier, report: spindle::ipc::Connection) {
    let t = b.timeout();
    let failed = b.wait().is_err();
    report.send(&(t, failed, b.is_broken())).unwrap();
}

/// `multiprocessing.Barrier(parties, timeout=t)`: the default timeout bounds
/// a plain `wait` and travels with the barrier to a child.
#[test]
fn barrier_default_timeout_crosses_processes() {
    let b = spindle::ipc::sync::Barrier::new(2)
        .unwrap()
        .with_timeout(Duration::from_millis(100));
    assert_eq!(b.clone().timeout(), Some(Duration::from_millis(100)));
    let (ours, theirs) = spindle::ipc::Pipe(true).unwrap();
    let mut p = Process::new(wait_alone::call(b.clone(), theirs));
    p.start().unwrap();
    let got: (Option<Duration>, bool, bool) = ours.recv_timeout(LONG).unwrap();
    assert_eq!(got, (Some(Duration::from_millis(100)), true, true));
    p.join_timeout(LONG).unwrap();
    assert!(b.is_broken());
}
