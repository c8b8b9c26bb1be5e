//! Tests of `spindle::futures::Future` and `Promise`: states, cancel, result,
//! exception, callbacks, several waiters, the async bridge.
//!
//! Ported from CPython's `Lib/test/test_concurrent_futures/test_future.py`
//! (`FutureTests`) and manually rewritten in Rust; Python's module-level
//! PENDING_FUTURE, RUNNING_FUTURE, CANCELLED_FUTURE, EXCEPTION_FUTURE and
//! SUCCESSFUL_FUTURE fixtures become the `pending()`, `running()`, … helpers
//! (in tests/common, shared with futures_executor.rs).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use spindle::futures::{Future, FutureError, Promise, State};

use common::{block_on, cancelled, failed, pending, running, successful};

const SHORT: Duration = Duration::from_millis(1);
const LONG: Duration = Duration::from_secs(30);

// test_cancel
#[test]
fn cancel_depends_on_state() {
    let (_p1, f1) = pending();
    assert!(f1.cancel());
    assert_eq!(f1.state(), State::Cancelled);

    let (_p2, f2) = running();
    assert!(!f2.cancel());
    assert_eq!(f2.state(), State::Running);

    let f3 = cancelled();
    assert!(f3.cancel(), "cancelling twice is still true");
    assert_eq!(f3.state(), State::Cancelled);

    let f4 = failed();
    assert!(!f4.cancel());
    assert_eq!(f4.state(), State::Finished);

    let f5 = successful();
    assert!(!f5.cancel());
    assert_eq!(f5.state(), State::Finished);
}

// test_cancelled, test_done, test_running
#[test]
fn state_predicates() {
    let (_p, pend) = pending();
    let (_q, run) = running();
    let (can, fail, ok) = (cancelled(), failed(), successful());
    assert!(!pend.cancelled() && !run.cancelled() && can.cancelled());
    assert!(!fail.cancelled() && !ok.cancelled());
    assert!(!pend.done() && !run.done() && can.done() && fail.done() && ok.done());
    assert!(!pend.running() && run.running() && !can.running());
    assert!(!fail.running() && !ok.running());
}

// test_result_with_timeout
#[test]
fn result_with_timeout() {
    let (_p, pend) = pending();
    let (_q, run) = running();
    assert_eq!(pend.result_timeout(SHORT), Err(FutureError::Timeout));
    assert_eq!(run.result_timeout(SHORT), Err(FutureError::Timeout));
    assert_eq!(
        cancelled().result_timeout(SHORT),
        Err(FutureError::Cancelled)
    );
    assert_eq!(
        failed().result_timeout(SHORT),
        Err(FutureError::failed("OSError".to_owned()))
    );
    assert_eq!(successful().result_timeout(SHORT), Ok(42));
}

// A wait nobody ends must time out, and not before its time.
#[test]
fn timeout_waits_at_least_the_timeout() {
    let (_p, f) = pending();
    let t = Instant::now();
    assert!(
        f.result_timeout(Duration::from_millis(30))
            .unwrap_err()
            .is_timeout()
    );
    assert!(t.elapsed() >= Duration::from_millis(30));
    let deadline = Instant::now() + Duration::from_millis(10);
    assert!(f.result_deadline(deadline).unwrap_err().is_timeout());
    assert!(Instant::now() >= deadline);
    assert!(!f.wait_timeout(SHORT));
}

/// CPU time used by the calling thread so far.
fn thread_cpu_time() -> Duration {
    // SAFETY: `rusage` is plain integers, valid all zero.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `getrusage` writes one `rusage` through a valid pointer.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) };
    assert_eq!(rc, 0);
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

// spindle-specific: a wait yields the CPU in a loop for a few tens of
// microseconds (a process pool's answers come that fast) and then sleeps, so
// a long wait costs the waiter almost no CPU, and a short timeout is kept.
#[test]
fn a_long_wait_sleeps_after_its_short_spin() {
    let (p, f) = running();
    let t = thread::spawn(move || {
        thread::sleep(Duration::from_millis(300));
        p.set_result(7).unwrap();
    });
    let before = thread_cpu_time();
    assert_eq!(f.result(), Ok(7));
    let used = thread_cpu_time() - before;
    assert!(
        used < Duration::from_millis(100),
        "the waiter used {used:?} of CPU"
    );
    t.join().unwrap();
    let (_p, f) = running();
    let start = Instant::now();
    assert!(!f.wait_timeout(Duration::from_micros(1)));
    assert!(start.elapsed() < Duration::from_secs(1));
}

// test_result_with_success
#[test]
fn result_set_by_another_thread() {
    let (p, f) = running();
    let t = thread::spawn(move || p.set_result(42).unwrap());
    assert_eq!(f.result_timeout(LONG), Ok(42));
    t.join().unwrap();
}

// test_result_with_cancel
#[test]
fn result_cancelled_by_another_thread() {
    let (_p, f) = pending();
    let g = f.clone();
    let t = thread::spawn(move || assert!(g.cancel()));
    assert_eq!(f.result_timeout(LONG), Err(FutureError::Cancelled));
    t.join().unwrap();
}

// test_exception_with_timeout
#[test]
fn exception_with_timeout() {
    let (_p, pend) = pending();
    let (_q, run) = running();
    assert_eq!(pend.exception_timeout(SHORT), Some(FutureError::Timeout));
    assert_eq!(run.exception_timeout(SHORT), Some(FutureError::Timeout));
    assert_eq!(cancelled().exception(), Some(FutureError::Cancelled));
    assert_eq!(
        failed().exception_timeout(SHORT),
        Some(FutureError::failed("OSError".to_owned()))
    );
    assert_eq!(successful().exception(), None);
}

// test_exception_with_success
#[test]
fn exception_set_by_another_thread() {
    let (p, f) = running();
    let t = thread::spawn(move || p.set_error("OSError".to_owned()).unwrap());
    let e = f.exception_timeout(LONG).unwrap();
    assert_eq!(e.task_error().map(String::as_str), Some("OSError"));
    assert!(e.is_exception());
    t.join().unwrap();
}

// test_multiple_set_result / test_multiple_set_exception: completing twice is
// impossible (set_* consume the promise); completing a cancelled future hands
// the value back instead of raising InvalidStateError.
#[test]
fn completing_a_cancelled_future_hands_the_value_back() {
    let (p, f) = pending();
    assert!(f.cancel());
    assert_eq!(p.set_result(7), Err(7));
    let (p, f) = pending();
    assert!(f.cancel());
    assert!(p.is_cancelled());
    assert_eq!(p.set_error("e".to_owned()), Err("e".to_owned()));
    assert_eq!(f.result(), Err(FutureError::Cancelled));
}

#[test]
fn dropped_promise_breaks_the_future_instead_of_hanging() {
    let (p, f) = running();
    drop(p);
    assert!(f.result_timeout(LONG).unwrap_err().is_broken());
}

#[test]
fn panic_outcome_carries_the_message() {
    let (p, f) = running();
    p.set_panic("boom");
    let e = f.result().unwrap_err();
    assert!(e.is_panic());
    assert_eq!(e.panic_message(), Some("boom"));
    assert_eq!(e.to_string(), "the task panicked: boom");
}

// test_done_callback_with_result
#[test]
fn done_callback_with_result() {
    let (p, f) = running();
    let (tx, rx) = mpsc::channel();
    f.add_done_callback(move |f| tx.send(f.result()).unwrap());
    assert!(rx.try_recv().is_err(), "not called before done");
    p.set_result(5).unwrap();
    assert_eq!(rx.recv_timeout(LONG).unwrap(), Ok(5));
}

// test_done_callback_with_exception
#[test]
fn done_callback_with_exception() {
    let (p, f) = running();
    let (tx, rx) = mpsc::channel();
    f.add_done_callback(move |f| tx.send(f.exception()).unwrap());
    p.set_error("test".to_owned()).unwrap();
    assert_eq!(
        rx.recv_timeout(LONG).unwrap(),
        Some(FutureError::failed("test".to_owned()))
    );
}

// test_done_callback_with_cancel: the cancelling thread runs the callbacks.
#[test]
fn done_callback_with_cancel() {
    let (_p, f) = pending();
    let (tx, rx) = mpsc::channel();
    let me = thread::current().id();
    f.add_done_callback(move |f| tx.send((f.cancelled(), thread::current().id())).unwrap());
    assert!(f.cancel());
    assert_eq!(rx.try_recv().unwrap(), (true, me));
}

// test_done_callback_raises: the panic is contained, the other callbacks run.
#[test]
fn done_callback_panic_is_contained() {
    let (p, f) = running();
    let calls = Arc::new(AtomicUsize::new(0));
    let c1 = calls.clone();
    f.add_done_callback(move |_| {
        c1.fetch_add(1, Ordering::SeqCst);
        panic!("doh!");
    });
    let c2 = calls.clone();
    f.add_done_callback(move |_| {
        c2.fetch_add(10, Ordering::SeqCst);
    });
    p.set_result(5).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 11);
    assert_eq!(f.result(), Ok(5));
}

// test_done_callback_already_successful / _failed / _cancelled: called at once.
#[test]
fn done_callback_on_already_done_futures_runs_at_once() {
    for (f, expect) in [
        (successful(), "ok"),
        (failed(), "failed"),
        (cancelled(), "cancelled"),
    ] {
        let (tx, rx) = mpsc::channel();
        f.add_done_callback(move |f| {
            let what = match f.result() {
                Ok(_) => "ok",
                Err(FutureError::Failed(_)) => "failed",
                Err(FutureError::Cancelled) => "cancelled",
                Err(_) => "other",
            };
            tx.send(what).unwrap();
        });
        assert_eq!(rx.try_recv().unwrap(), expect);
    }
}

// test_done_callback_raises_already_succeeded
#[test]
fn done_callback_panic_on_already_done_future_is_contained() {
    let f = successful();
    f.add_done_callback(|_| panic!("doh!"));
    assert_eq!(f.result(), Ok(42));
}

#[test]
fn callback_runs_on_the_completing_thread_in_order() {
    let (p, f) = running();
    let (tx, rx) = mpsc::channel();
    for i in 0..3 {
        let tx = tx.clone();
        f.add_done_callback(move |_| {
            tx.send((i, thread::current().name().map(str::to_owned)))
                .unwrap()
        });
    }
    thread::Builder::new()
        .name("completer".into())
        .spawn(move || p.set_result(1).unwrap())
        .unwrap()
        .join()
        .unwrap();
    let got: Vec<_> = rx.try_iter().collect();
    let want: Vec<_> = (0..3).map(|i| (i, Some("completer".to_owned()))).collect();
    assert_eq!(got, want);
}

#[test]
fn several_threads_wait_on_one_future() {
    const WAITERS: usize = 8;
    let (p, f) = running();
    let barrier = Arc::new(Barrier::new(WAITERS + 1));
    let waiters: Vec<_> = (0..WAITERS)
        .map(|_| {
            let f = f.clone();
            let b = barrier.clone();
            thread::spawn(move || {
                b.wait();
                f.result_timeout(LONG)
            })
        })
        .collect();
    barrier.wait();
    p.set_result(99).unwrap();
    for w in waiters {
        assert_eq!(w.join().unwrap(), Ok(99));
    }
    assert_eq!(f.into_result(), Ok(99));
}

#[test]
fn into_result_moves_out_of_the_last_handle() {
    let (p, f) = Promise::<Vec<u8>>::new();
    let g = f.clone();
    p.set_result(vec![1, 2, 3]).unwrap();
    assert_eq!(g.into_result(), Ok(vec![1, 2, 3]), "clones while shared");
    assert_eq!(f.result(), Ok(vec![1, 2, 3]));
    assert_eq!(f.into_result(), Ok(vec![1, 2, 3]));
}

#[test]
fn futures_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Future<u32>>();
    assert_send_sync::<Future<Vec<u8>, std::io::Error>>();
    assert_send_sync::<Promise<u32, String>>();
    assert_send_sync::<FutureError<String>>();
}

#[test]
fn error_display_and_predicates() {
    let e: FutureError<String> = FutureError::failed("bad".into());
    assert_eq!(e.to_string(), "the task failed: bad");
    assert!(!e.is_cancelled() && !e.is_timeout() && !e.is_panic() && !e.is_broken());
    assert_eq!(e.clone().map_err(|s| s.len()), FutureError::failed(3));
    assert!(!FutureError::<String>::Cancelled.is_exception());
    assert_eq!(
        FutureError::<String>::Timeout.to_string(),
        "timed out waiting for the future"
    );
}

#[test]
fn await_a_future_without_any_runtime() {
    let (p, f) = running();
    let t = thread::spawn(move || {
        thread::sleep(Duration::from_millis(5));
        p.set_result(7).unwrap();
    });
    assert_eq!(block_on(f), Ok(7));
    t.join().unwrap();
    assert_eq!(block_on(cancelled()), Err(FutureError::Cancelled));
}
