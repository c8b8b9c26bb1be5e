//! Loom models of a future's shared state machine: result vs cancel vs
//! waiters (`result()`, `wait`) vs done-callbacks. Run them as
//! `crate::loom` says (spinning and yielding before a wait are off under
//! loom, so every waiter sleeps on the condition variable).
#![forbid(unsafe_code)]

use std::sync::atomic::Ordering::Relaxed;

use ::loom::sync::Arc;
use ::loom::sync::atomic::AtomicUsize;
use ::loom::thread;

use crate::futures::{FutureError, Promise, ReturnWhen, State, wait};
use crate::loom::check;

/// The worker's `set_running_or_notify_cancel` + `set_result` race a
/// `cancel` and a blocked `result()`: exactly one of them decides the
/// outcome, and the waiter sees that outcome.
#[test]
fn loom_model_future_result_vs_cancel_vs_waiter() {
    check("future: set_result vs cancel vs result()", 3, || {
        let (promise, fut) = Promise::<u32>::new();
        let worker = thread::spawn(move || {
            if promise.set_running_or_notify_cancel() {
                assert_eq!(promise.set_result(7), Ok(()));
                true
            } else {
                false
            }
        });
        let canceller = {
            let fut = fut.clone();
            thread::spawn(move || fut.cancel())
        };
        let outcome = fut.result();
        let ran = worker.join().unwrap();
        let cancelled = canceller.join().unwrap();
        assert_ne!(ran, cancelled, "the task runs or is cancelled, not both");
        match outcome {
            Ok(v) => assert!(ran && v == 7),
            Err(FutureError::Cancelled) => assert!(cancelled),
            Err(e) => panic!("unexpected outcome {e:?}"),
        }
        assert!(fut.done());
    });
}

/// `set_result` without `set_running` races `cancel`: one wins; the loser
/// is told (`set_result` hands the value back, `cancel` says false).
#[test]
fn loom_model_future_set_result_vs_cancel() {
    check("future: set_result vs cancel", 3, || {
        let (promise, fut) = Promise::<u32>::new();
        let worker = thread::spawn(move || promise.set_result(7).is_ok());
        let cancelled = fut.cancel();
        let set = worker.join().unwrap();
        assert_ne!(set, cancelled);
        assert_eq!(
            fut.state(),
            if set {
                State::Finished
            } else {
                State::Cancelled
            }
        );
    });
}

/// A done-callback added while the result is set runs exactly once, on
/// whichever thread comes second, and sees the future done; a `wait` for
/// the first completed future returns with it done.
#[test]
fn loom_model_future_callback_and_wait_vs_set_result() {
    check(
        "future: add_done_callback and wait vs set_result",
        3,
        || {
            let (promise, fut) = Promise::<u32>::new();
            let calls = Arc::new(AtomicUsize::new(0));
            let worker = thread::spawn(move || assert_eq!(promise.set_result(5), Ok(())));
            let adder = {
                let (fut, calls) = (fut.clone(), Arc::clone(&calls));
                thread::spawn(move || {
                    fut.add_done_callback(move |f| {
                        assert!(f.done());
                        assert_eq!(f.result(), Ok(5));
                        calls.fetch_add(1, Relaxed);
                    })
                })
            };
            let done = wait([&fut], ReturnWhen::FirstCompleted);
            assert_eq!(done.done.len(), 1);
            worker.join().unwrap();
            adder.join().unwrap();
            assert_eq!(calls.load(Relaxed), 1, "the callback ran once");
        },
    );
}
