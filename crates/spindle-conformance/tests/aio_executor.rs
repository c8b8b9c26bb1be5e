//! The executor conformance suite (`spindle_conformance::executor`, a port
//! of CPython's `Lib/test/test_concurrent_futures/`) run against
//! `spindle_aio::AioExecutor`: `async` blocks for `submit`, calls of a
//! registered task (run with `spawn_blocking`) for `map`.

spindle_conformance::executor_suite!(spindle_aio::AioExecutor);

use spindle::futures::{Executor, FutureError, fallible};
use spindle_aio::AioExecutor;

#[spindle::task]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

/// Both kinds of task on one executor: a future (plain and fallible) and a
/// registered call, submitted and mapped; awaited from async code too.
#[test]
fn futures_and_calls_on_one_executor() {
    let pool = AioExecutor::new(2).unwrap();
    assert_eq!(pool.submit(async { 6 * 7 }).unwrap().result(), Ok(42));
    assert_eq!(pool.submit(add::call(20, 22)).unwrap().result(), Ok(42));
    let sums: Vec<u64> = pool
        .map(|n: u64| add::call(n, 1), 0..5)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(sums, [1, 2, 3, 4, 5]);
    let bad = pool
        .submit(fallible(async { "x1".parse::<u32>() }))
        .unwrap();
    assert!(matches!(bad.result(), Err(FutureError::Failed(_))));
    let f = pool.submit(async { 5 }).unwrap();
    let got = spindle_aio::run(async move { f.await }).unwrap();
    assert_eq!(got, Ok(5));
}

/// An executor on the caller's runtime; dropping it inside async code does
/// not panic (tokio forbids dropping a runtime there; this one owns none).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executor_on_the_callers_runtime() {
    let pool = AioExecutor::on(tokio::runtime::Handle::current(), 2).unwrap();
    let f = pool.submit(async { 1 + 1 }).unwrap();
    assert_eq!(f.await, Ok(2));
    pool.shutdown(false, false);
    assert!(pool.submit(async { 0 }).is_err());
}

/// At most `max_workers` jobs run at once, even when they do not block a
/// thread (the checks above only see blocking tasks, which the runtime's
/// thread count limits anyway).
#[test]
fn at_most_max_workers_futures_at_once() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let pool = AioExecutor::new(2).unwrap();
    let now = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let futures: Vec<_> = (0..8)
        .map(|_| {
            let (now, max) = (now.clone(), max.clone());
            pool.submit(async move {
                let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(n, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                now.fetch_sub(1, Ordering::SeqCst);
            })
            .unwrap()
        })
        .collect();
    for f in &futures {
        f.result().unwrap();
    }
    let max = max.load(Ordering::SeqCst);
    assert!((1..=2).contains(&max), "{max} futures ran at once");
}

/// An executor owning its runtime can be dropped inside async code: its
/// runtime stops in the background (tokio panics when a runtime is dropped
/// where blocking is not allowed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owned_executor_dropped_in_async_code() {
    let pool = AioExecutor::new(1).unwrap();
    let f = pool.submit(async { 3 }).unwrap();
    assert_eq!(f.await, Ok(3));
    drop(pool);
}

/// A job that drops the last handle of its own executor (or shuts it down
/// with `wait`) does not wait for itself.
#[test]
fn a_job_shutting_down_its_own_executor_does_not_deadlock() {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    let pool = Arc::new(Mutex::new(Some(AioExecutor::new(2).unwrap())));
    let inside = pool.clone();
    let f = pool
        .lock()
        .unwrap()
        .as_ref()
        .unwrap()
        .submit(async move {
            let own = inside.lock().unwrap().take().unwrap();
            own.shutdown(true, false);
            drop(own); // the last handle, dropped on the executor's thread
            "done"
        })
        .unwrap();
    assert_eq!(f.result_timeout(Duration::from_secs(30)), Ok("done"));
}
