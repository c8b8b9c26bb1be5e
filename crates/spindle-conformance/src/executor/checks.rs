//! The checks of the executor suite. Each names the tests of CPython's
//! `Lib/test/test_concurrent_futures/` it mirrors (file, class and test).

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use spindle::futures::{
    Future, FutureError, MapOptions, ReturnWhen, State, Timeout, as_completed,
    as_completed_timeout as completed_within, wait, wait_timeout,
};

use super::{ExecutorUnderTest, Gate, Work};

/// The longest any wait of a check may take before the check fails: far
/// beyond what a correct executor needs, so only a broken one reaches it.
const LIMIT: Duration = Duration::from_secs(30);

/// A bounded wait that must run out (nothing can end it sooner).
const SHORT: Duration = Duration::from_millis(50);

/// The timeout of a `map` whose first items must all be ready in time: they
/// return at once, so this is generous; the last item waits on a shut gate.
const MAP_TIMEOUT: Duration = Duration::from_secs(2);

/// Fails the calling check when `cond` does not hold.
fn check(cond: bool, what: &str) {
    assert!(cond, "executor conformance: {what}");
}

/// Waits until `cond` holds (polling; it is about state another thread or
/// process changes), failing the check after [`LIMIT`].
fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let since = Instant::now();
    while !cond() {
        check(
            since.elapsed() < LIMIT,
            &format!("timed out waiting until {what}"),
        );
        thread::sleep(Duration::from_millis(1));
    }
}

fn gate() -> Gate {
    Gate::new().expect("executor conformance: create a gate file")
}

fn submit<X: ExecutorUnderTest>(x: &X, work: Work) -> Future<u64> {
    match x.submit(X::task(work)) {
        Ok(f) => f,
        Err(e) => panic!("executor conformance: submit refused: {e}"),
    }
}

/// Submits `work` that blocks on `gate` and waits until it is running.
fn submit_running<X: ExecutorUnderTest>(x: &X, gate: &Gate, value: u64) -> Future<u64> {
    let f = submit(x, gate.work(value));
    wait_until("a task blocked on a gate is running", || f.running());
    f
}

/// The futures of `fs` as a set of identities. (Futures hash by identity,
/// so their interior mutability does not matter.)
#[allow(clippy::mutable_key_type)]
fn keys(fs: &[Future<u64>]) -> HashSet<Future<u64>> {
    fs.iter().cloned().collect()
}

fn is_panic_with(e: &FutureError, message: &str) -> bool {
    e.panic_message().is_some_and(|m| m.contains(message))
}

/// `executor.ExecutorTest.test_submit` and `test_submit_keyword`,
/// `test_future.FutureTests.test_result_with_timeout` and
/// `test_result_with_success`: a submitted task's value comes back from
/// `result`; a bounded wait on an unfinished task times out and the task
/// goes on.
pub fn submit_result<X: ExecutorUnderTest>() {
    let x = X::with_workers(2);
    let f = submit(&x, Work::Identity(8));
    check(f.result() == Ok(8), "result() is the task's value");
    check(
        f.done() && f.state() == State::Finished,
        "finished after result()",
    );
    check(
        f.exception().is_none(),
        "a task that returned has no exception",
    );
    let fs: Vec<_> = (0..10).map(|i| submit(&x, Work::Identity(i))).collect();
    for (i, f) in (0..).zip(&fs) {
        check(
            f.result() == Ok(i),
            "each future holds its own task's value",
        );
    }
    let start = Instant::now();
    let f = submit(&x, Work::SleepMs { ms: 20, value: 3 });
    check(f.result() == Ok(3), "a sleeping task's value");
    check(
        start.elapsed() >= Duration::from_millis(20),
        "result() waited for the task",
    );
    let g = gate();
    let f = submit(&x, g.work(9));
    check(
        f.result_timeout(SHORT) == Err(FutureError::Timeout),
        "result_timeout on a blocked task times out",
    );
    check(
        !f.done() && !f.cancelled(),
        "the task goes on after the timeout",
    );
    g.open();
    check(
        f.result_timeout(LIMIT) == Ok(9),
        "the blocked task finishes once unblocked",
    );
}

/// `executor.ExecutorTest.test_map` (input order whatever the completion
/// order), `test_process_pool.ProcessPoolExecutorTest.test_map_chunksize`,
/// and Python 3.14's `test_map_buffersize`.
pub fn map_order<X: ExecutorUnderTest>() {
    let x = X::with_workers(3);
    let slower_first = (0..8).map(|i| Work::SleepMs {
        ms: (8 - i) * 10,
        value: i,
    });
    let got: Vec<_> = x.map(X::map_fn(), slower_first).unwrap().collect();
    let want: Vec<_> = (0..8).map(Ok).collect();
    check(got == want, &format!("map yields in input order: {got:?}"));
    for opts in [
        MapOptions::new().chunksize(7),
        MapOptions::new().buffersize(2),
        MapOptions::new().chunksize(3).buffersize(1),
    ] {
        let got: Vec<_> = x
            .map_with(X::map_fn(), (0..100).map(Work::Identity), opts)
            .unwrap()
            .collect();
        let want: Vec<_> = (0..100).map(Ok).collect();
        check(got == want, &format!("map with {opts:?} keeps input order"));
    }
    let none: Vec<_> = x
        .map(X::map_fn(), std::iter::empty::<Work>())
        .unwrap()
        .collect();
    check(none.is_empty(), "map over no items yields nothing");
}

/// `executor.ExecutorTest.test_map_timeout`: the items ready in time, then
/// `Timeout` (Python's `TimeoutError` from the iterator) for an item still
/// running when the time is up, and the iteration ends.
pub fn map_timeout<X: ExecutorUnderTest>() {
    let x = X::with_workers(2);
    let g = gate();
    let start = Instant::now();
    let items = [Work::Identity(1), Work::Identity(2), g.work(3)];
    let mut it = x
        .map_with(X::map_fn(), items, MapOptions::new().timeout(MAP_TIMEOUT))
        .unwrap();
    check(it.next() == Some(Ok(1)), "first result before the timeout");
    check(it.next() == Some(Ok(2)), "second result before the timeout");
    check(
        it.next() == Some(Err(FutureError::Timeout)),
        "an item still running at the timeout yields Timeout",
    );
    check(
        start.elapsed() >= MAP_TIMEOUT,
        "the timeout did not fire early",
    );
    check(it.next().is_none(), "the iteration ends after Timeout");
    drop(it);
    // A slow task and a short timeout (a 5 s task against 50 ms in spirit;
    // the gate makes it as slow as needed).
    let start = Instant::now();
    let mut it = x
        .map_with(X::map_fn(), [g.work(4)], MapOptions::new().timeout(SHORT))
        .unwrap();
    check(
        it.next() == Some(Err(FutureError::Timeout)),
        "a task slower than the map's timeout yields Timeout",
    );
    check(
        start.elapsed() >= SHORT,
        "the short timeout did not fire early",
    );
    check(it.next().is_none(), "and the iteration ends");
    g.open();
}

/// `executor.ExecutorTest.test_map_exception` and
/// `test_future.FutureTests.test_exception_with_success`: a panic (Python:
/// the function raised) fails only its own future, with the panic's
/// message, which `exception()` reports too; the workers go on running
/// tasks, and `map` reports the failure in place and continues.
pub fn panicking_task<X: ExecutorUnderTest>() {
    let x = X::with_workers(2);
    let f = submit(&x, Work::PanicWith("conformance boom".into()));
    let err = f.result().expect_err("a panicking task has no value");
    check(
        is_panic_with(&err, "conformance boom"),
        &format!("the error names the panic message: {err:?}"),
    );
    check(
        err.is_panic() && err.is_exception(),
        "a panic counts as raised",
    );
    check(
        f.state() == State::Finished && !f.cancelled(),
        "a panicked future is finished, not cancelled",
    );
    check(
        f.exception()
            .is_some_and(|e| is_panic_with(&e, "conformance boom")),
        "exception() reports the panic",
    );
    let panics: Vec<_> = (0..6)
        .map(|i| submit(&x, Work::PanicWith(format!("panic {i}"))))
        .collect();
    let oks: Vec<_> = (0..4).map(|i| submit(&x, Work::Identity(i))).collect();
    for (i, f) in panics.iter().enumerate() {
        check(
            f.result()
                .is_err_and(|e| is_panic_with(&e, &format!("panic {i}"))),
            "every panicking task fails with its own message",
        );
    }
    for (i, f) in (0..).zip(&oks) {
        check(
            f.result() == Ok(i),
            "the executor keeps working after panics",
        );
    }
    let got: Vec<_> = x
        .map(
            X::map_fn(),
            [
                Work::Identity(1),
                Work::PanicWith("map boom".into()),
                Work::Identity(3),
            ],
        )
        .unwrap()
        .collect();
    check(
        got.len() == 3
            && got[0] == Ok(1)
            && got[1].as_ref().is_err_and(|e| is_panic_with(e, "map boom"))
            && got[2] == Ok(3),
        &format!("map reports the panic in place and goes on: {got:?}"),
    );
}

/// `test_shutdown`: `test_hang_issue12364` and `test_context_manager_shutdown`
/// (`shutdown(wait=True)` returns once running and queued work is done),
/// `test_shutdown_no_wait` (`shutdown(wait=False)` returns at once; the work
/// still runs), and shutting down twice.
pub fn shutdown_wait<X: ExecutorUnderTest>() {
    let x = X::with_workers(2);
    let running = [
        submit(&x, Work::SleepMs { ms: 200, value: 1 }),
        submit(&x, Work::SleepMs { ms: 200, value: 2 }),
    ];
    let queued: Vec<_> = (3..8).map(|i| submit(&x, Work::Identity(i))).collect();
    wait_until("a sleeping task is running", || running[0].running());
    x.shutdown(true, false);
    for (i, f) in (1..).zip(running.iter().chain(&queued)) {
        check(
            f.done(),
            "shutdown(wait=true) returned before the work was done",
        );
        check(f.result() == Ok(i), "work finished by shutdown(wait=true)");
    }
    x.shutdown(true, false); // harmless
    x.shutdown(false, true);

    let x = X::with_workers(1);
    let g = gate();
    let blocked = submit_running(&x, &g, 7);
    let queued = submit(&x, Work::Identity(8));
    x.shutdown(false, false);
    check(
        !blocked.done(),
        "shutdown(wait=false) returned while a task is blocked",
    );
    check(
        !queued.cancelled(),
        "shutdown without cancel_futures keeps the queued work",
    );
    g.open();
    check(
        blocked.result_timeout(LIMIT) == Ok(7),
        "running work finishes after shutdown(wait=false)",
    );
    check(
        queued.result_timeout(LIMIT) == Ok(8),
        "queued work runs after shutdown(wait=false)",
    );
}

/// `test_shutdown.ExecutorShutdownTest.test_cancel_futures` (and its
/// `wait=False` flavour): `cancel_futures=true` cancels the tasks that have
/// not started, which report `Cancelled` (their callbacks run); running
/// tasks finish; with `wait=true` the call returns once they have.
pub fn shutdown_cancel_futures<X: ExecutorUnderTest>() {
    const QUEUED: u64 = 20;
    for wait_for_running in [false, true] {
        let x = X::with_workers(2);
        let gates = [gate(), gate()];
        let running: Vec<_> = (0..)
            .zip(&gates)
            .map(|(i, g)| submit_running(&x, g, i))
            .collect();
        let called = Arc::new(AtomicUsize::new(0));
        let queued: Vec<_> = (0..QUEUED)
            .map(|i| {
                let f = submit(&x, Work::Identity(100 + i));
                let called = called.clone();
                f.add_done_callback(move |f| {
                    if f.cancelled() {
                        called.fetch_add(1, SeqCst);
                    }
                });
                f
            })
            .collect();
        let no_pending = || queued.iter().all(|f| f.state() != State::Pending);
        if wait_for_running {
            thread::scope(|s| {
                s.spawn(|| {
                    // Open the gates once the pending tasks were cancelled
                    // (or at the limit, so a broken executor fails, not hangs).
                    let since = Instant::now();
                    while !no_pending() && since.elapsed() < LIMIT {
                        thread::sleep(Duration::from_millis(1));
                    }
                    gates.iter().for_each(Gate::open);
                });
                x.shutdown(true, true);
            });
            for (i, f) in (0..).zip(&running) {
                check(
                    f.done() && f.result() == Ok(i),
                    "shutdown(wait=true, cancel_futures=true) waits for running work",
                );
            }
            check(
                queued.iter().all(Future::done),
                "every task is done or cancelled after shutdown(wait=true)",
            );
        } else {
            x.shutdown(false, true);
            wait_until(
                "shutdown(cancel_futures=true) leaves no task pending",
                no_pending,
            );
            check(
                running.iter().all(|f| !f.done()),
                "running tasks are not cancelled",
            );
            gates.iter().for_each(Gate::open);
            for (i, f) in (0..).zip(&running) {
                check(
                    f.result_timeout(LIMIT) == Ok(i),
                    "running tasks finish after shutdown(cancel_futures=true)",
                );
            }
        }
        let cancelled: Vec<_> = queued.iter().filter(|f| f.cancelled()).collect();
        check(
            !cancelled.is_empty(),
            &format!("{QUEUED} tasks queued behind blocked workers: none was cancelled"),
        );
        for f in &cancelled {
            check(
                f.result() == Err(FutureError::Cancelled),
                "a cancelled task reports Cancelled",
            );
        }
        for (i, f) in (100..).zip(&queued) {
            if !f.cancelled() {
                check(
                    f.result_timeout(LIMIT) == Ok(i),
                    "a queued task that was not cancelled runs",
                );
            }
        }
        x.shutdown(true, false);
        check(
            called.load(SeqCst) == cancelled.len(),
            "each cancelled task's done-callback ran once",
        );
    }
}

/// `test_shutdown.ExecutorShutdownTest.test_run_after_shutdown`: submitting
/// (or mapping) after `shutdown` is the typed `ShutDown` error, with either
/// `wait`.
pub fn submit_after_shutdown<X: ExecutorUnderTest>() {
    for wait in [true, false] {
        let x = X::with_workers(1);
        let f = submit(&x, Work::Identity(1));
        x.shutdown(wait, false);
        match x.submit(X::task(Work::Identity(2))) {
            Err(e) => {
                check(e.is_shut_down(), "submit after shutdown: ShutDown");
                check(!e.is_broken(), "submit after shutdown: not BrokenPool");
            }
            Ok(_) => check(false, "submit after shutdown was accepted"),
        }
        match x.map(X::map_fn(), [Work::Identity(3)]) {
            Err(e) => check(e.is_shut_down(), "map after shutdown: ShutDown"),
            Ok(_) => check(false, "map after shutdown was accepted"),
        }
        check(
            f.result_timeout(LIMIT) == Ok(1),
            "work submitted before the shutdown runs",
        );
    }
}

/// `test_future.FutureTests`: `test_done_callback_with_result`,
/// `_with_exception`, `_with_cancel`, `_already_successful`,
/// `_already_failed`, `_already_cancelled`, `_raises` (a panicking callback
/// harms neither the other callbacks nor the executor), and the documented
/// order (callbacks run in the order they were added).
pub fn done_callbacks<X: ExecutorUnderTest>() {
    let x = X::with_workers(1);
    let calls = Arc::new(AtomicUsize::new(0));
    let counting = |calls: &Arc<AtomicUsize>| {
        let calls = calls.clone();
        move |_: &Future<u64>| {
            calls.fetch_add(1, SeqCst);
        }
    };

    // With a result: runs once, after completion, and sees the result.
    let g = gate();
    let f = submit(&x, g.work(5));
    let (tx, rx) = mpsc::channel();
    let order = Arc::new(Mutex::new(Vec::new()));
    f.add_done_callback(move |f| {
        tx.send((f.done(), f.result())).ok();
    });
    for i in 0..3 {
        let order = order.clone();
        f.add_done_callback(move |_| order.lock().unwrap().push(i));
    }
    f.add_done_callback(|_| panic!("a panicking done-callback (expected)"));
    f.add_done_callback(counting(&calls));
    check(
        rx.try_recv().is_err(),
        "a callback ran before its task completed",
    );
    g.open();
    check(
        rx.recv_timeout(LIMIT) == Ok((true, Ok(5))),
        "the callback runs after completion and sees the result",
    );

    // With an exception.
    let (tx, rx) = mpsc::channel();
    let p = submit(&x, Work::PanicWith("callback boom".into()));
    p.add_done_callback(move |f| {
        tx.send(f.exception()).ok();
    });
    let got = rx.recv_timeout(LIMIT);
    check(
        matches!(&got, Ok(Some(e)) if is_panic_with(e, "callback boom")),
        &format!("the callback of a panicked task sees the panic: {got:?}"),
    );

    // Already done: the callback runs at once, on this thread.
    f.result().ok();
    let before = calls.load(SeqCst);
    f.add_done_callback(counting(&calls));
    check(
        calls.load(SeqCst) == before + 1,
        "a callback added to a done future runs at once",
    );
    let failed_seen = Arc::new(AtomicUsize::new(0));
    let seen = failed_seen.clone();
    p.add_done_callback(move |f| {
        if f.exception().is_some() {
            seen.fetch_add(1, SeqCst);
        }
    });
    check(
        failed_seen.load(SeqCst) == 1,
        "a callback added to a failed future runs at once",
    );

    // With a cancel: the last of many tasks queued behind a blocked worker
    // is still pending; cancelling it runs its callback.
    let g = gate();
    let _blocked = submit_running(&x, &g, 0);
    let queued: Vec<_> = (0..20).map(|i| submit(&x, Work::Identity(i))).collect();
    let last = queued.last().expect("twenty futures");
    check(
        last.state() == State::Pending,
        "the 20th task queued behind a blocked worker is pending",
    );
    let cancelled_seen = Arc::new(AtomicUsize::new(0));
    let seen = cancelled_seen.clone();
    last.add_done_callback(move |f| {
        if f.cancelled() {
            seen.fetch_add(1, SeqCst);
        }
    });
    check(last.cancel(), "a pending task can be cancelled");
    check(
        cancelled_seen.load(SeqCst) == 1,
        "cancelling runs the callback, which sees the cancellation",
    );
    let seen = cancelled_seen.clone();
    last.add_done_callback(move |f| {
        if f.cancelled() {
            seen.fetch_add(1, SeqCst);
        }
    });
    check(
        cancelled_seen.load(SeqCst) == 2,
        "a callback added to a cancelled future runs at once",
    );
    g.open();
    for (i, f) in (0..).zip(&queued[..queued.len() - 1]) {
        check(
            f.result_timeout(LIMIT) == Ok(i),
            "the executor runs the rest after a callback panicked",
        );
    }
    x.shutdown(true, false);
    check(
        *order.lock().unwrap() == [0, 1, 2],
        "callbacks run in the order they were added",
    );
    check(
        calls.load(SeqCst) == 2,
        "each callback ran exactly once, the one after a panicking callback too",
    );
    check(
        last.result() == Err(FutureError::Cancelled),
        "the cancelled task stays cancelled",
    );
}

/// `test_as_completed.AsCompletedTests`: `test_no_timeout` (every future
/// once), `test_duplicate_futures` (a future passed twice is yielded once),
/// the futures already done first, then each in the order it completes.
pub fn as_completed_order<X: ExecutorUnderTest>() {
    let x = X::with_workers(4);
    let gates = [gate(), gate(), gate()];
    // Each blocked task on a worker of its own (running before any task
    // completed, so none was sent ahead behind another), then a quick one.
    let [a, b, c] = [0, 1, 2].map(|i| submit_running(&x, &gates[i], i as u64));
    let done = submit(&x, Work::Identity(3));
    check(done.result() == Ok(3), "a quick task");
    let mut it = as_completed([&a, &b, &c, &done, &done]);
    let mut next = |what: &str| {
        let f = it.next();
        check(f.is_some(), &format!("as_completed ended before {what}"));
        f.expect("checked")
    };
    check(
        next("the done one").ptr_eq(&done),
        "a done future comes first",
    );
    for (gate, f, what) in [(1, &b, "b"), (2, &c, "c"), (0, &a, "a")] {
        gates[gate].open();
        let got = next(what);
        check(
            got.ptr_eq(f),
            &format!("{what} is next: the order of completion"),
        );
        check(got.done(), "a yielded future is done");
    }
    check(
        it.next().is_none(),
        "every future is yielded once, a duplicate too",
    );
}

/// `test_as_completed.AsCompletedTests`: `test_future_times_out`,
/// `test_zero_timeout` and `test_correct_timeout_exception_msg`: the futures
/// done in time, then `Timeout` (counting the rest) once, and the end.
pub fn as_completed_timeout<X: ExecutorUnderTest>() {
    let x = X::with_workers(2);
    let g = gate();
    let blocked = submit(&x, g.work(1));
    let done = submit(&x, Work::Identity(2));
    check(done.result() == Ok(2), "a quick task");
    for timeout in [SHORT, Duration::ZERO] {
        let start = Instant::now();
        let got: Vec<_> = completed_within([&blocked, &done], timeout).collect();
        check(
            got.len() == 2,
            &format!("the done future, then Timeout: {got:?}"),
        );
        check(
            got[0].as_ref().is_ok_and(|f| f.ptr_eq(&done)),
            "the done future first",
        );
        check(
            got[1]
                == Err(Timeout {
                    not_done: 1,
                    total: 2,
                }),
            "then Timeout with one of two not done",
        );
        check(start.elapsed() >= timeout, "the timeout did not fire early");
    }
    g.open();
    let got: Vec<_> = completed_within([&blocked, &done], LIMIT).collect();
    check(
        got.len() == 2 && got.iter().all(Result::is_ok),
        "both in time once unblocked",
    );
}

/// `test_wait.WaitTests`: `test_first_completed`,
/// `test_first_completed_some_already_completed` and `test_timeout`
/// (`FIRST_COMPLETED`).
pub fn wait_first_completed<X: ExecutorUnderTest>() {
    let x = X::with_workers(2);
    let g = gate();
    let blocked = submit(&x, g.work(1));
    let quick = submit(&x, Work::SleepMs { ms: 20, value: 2 });
    let r = wait([&blocked, &quick], ReturnWhen::FirstCompleted);
    check(
        keys(&r.done) == keys(std::slice::from_ref(&quick))
            && keys(&r.not_done) == keys(std::slice::from_ref(&blocked)),
        "FIRST_COMPLETED returns once the quick task is done",
    );
    let r = wait([&blocked, &quick], ReturnWhen::FirstCompleted);
    check(
        r.done.len() == 1 && r.done[0].ptr_eq(&quick) && r.not_done.len() == 1,
        "FIRST_COMPLETED with one already done returns it at once",
    );
    let start = Instant::now();
    let r = wait_timeout([&blocked], SHORT, ReturnWhen::FirstCompleted);
    check(
        r.done.is_empty() && r.not_done.len() == 1,
        "FIRST_COMPLETED with a timeout: nothing done",
    );
    check(start.elapsed() >= SHORT, "the timeout did not fire early");
    g.open();
}

/// `test_wait.WaitTests`: `test_first_exception`,
/// `test_first_exception_one_already_failed` and, with no failure,
/// `FIRST_EXCEPTION` waiting for all (`FIRST_EXCEPTION`).
pub fn wait_first_exception<X: ExecutorUnderTest>() {
    let x = X::with_workers(3);
    let g = gate();
    // The blocked task first, on a worker of its own, so nothing queues
    // behind it.
    let blocked = submit_running(&x, &g, 2);
    let raising = submit(&x, Work::PanicWith("first exception".into()));
    let ok = submit(&x, Work::Identity(1));
    check(ok.result() == Ok(1), "a quick task");
    let r = wait([&ok, &raising, &blocked], ReturnWhen::FirstException);
    check(
        keys(&r.done) == keys(&[ok.clone(), raising.clone()])
            && keys(&r.not_done) == keys(std::slice::from_ref(&blocked)),
        "FIRST_EXCEPTION returns once a task raised",
    );
    let r = wait([&raising, &blocked], ReturnWhen::FirstException);
    check(
        r.done.len() == 1 && r.done[0].ptr_eq(&raising) && r.not_done.len() == 1,
        "FIRST_EXCEPTION with one already failed returns at once",
    );
    let fine = [
        submit(&x, Work::Identity(3)),
        submit(&x, Work::SleepMs { ms: 30, value: 4 }),
    ];
    let r = wait(&fine, ReturnWhen::FirstException);
    check(
        r.done.len() == 2 && r.not_done.is_empty(),
        "FIRST_EXCEPTION without a failure waits for every task",
    );
    g.open();
}

/// `test_wait.WaitTests`: `test_all_completed` and `test_timeout`
/// (`ALL_COMPLETED`).
pub fn wait_all_completed<X: ExecutorUnderTest>() {
    let x = X::with_workers(2);
    let fs = [
        submit(&x, Work::Identity(1)),
        submit(&x, Work::PanicWith("all completed".into())),
        submit(&x, Work::SleepMs { ms: 30, value: 3 }),
    ];
    let r = wait(&fs, ReturnWhen::AllCompleted);
    check(
        r.done.len() == 3 && r.not_done.is_empty() && fs.iter().all(Future::done),
        "ALL_COMPLETED returns once every task is done, a failed one too",
    );
    let g = gate();
    let blocked = submit(&x, g.work(4));
    let start = Instant::now();
    let r = wait_timeout([&fs[0], &blocked], SHORT, ReturnWhen::AllCompleted);
    check(
        r.done.len() == 1
            && r.done[0].ptr_eq(&fs[0])
            && r.not_done.len() == 1
            && r.not_done[0].ptr_eq(&blocked),
        "ALL_COMPLETED with a timeout: the stragglers are not done",
    );
    check(start.elapsed() >= SHORT, "the timeout did not fire early");
    g.open();
    let r = wait_timeout([&fs[0], &blocked], LIMIT, ReturnWhen::AllCompleted);
    check(
        r.not_done.is_empty(),
        "ALL_COMPLETED once the straggler is unblocked",
    );
}
