//! The async bridge under a real runtime (tokio, a dev-dependency only): a
//! spindle `Future` is awaited without blocking the runtime's thread, which is
//! the `spawn_blocking` / Python `loop.run_in_executor` pattern.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use spindle::futures::{Executor, FutureError, Promise, ThreadPoolExecutor, fallible};

// On a single-threaded runtime the worker's wake-up must come from another
// thread: if awaiting blocked the thread, the timer below could never fire.
#[tokio::test(flavor = "current_thread")]
async fn await_does_not_block_the_runtime_thread() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let (tx, rx) = mpsc::channel::<()>();
    let f = pool
        .submit(move || rx.recv_timeout(Duration::from_secs(30)).is_ok())
        .unwrap();
    let ticker = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(5)).await;
        tx.send(()).unwrap(); // runs only if the runtime thread is free
    });
    assert_eq!(f.await, Ok(true));
    ticker.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_await_pool_work() {
    let pool = Arc::new(
        ThreadPoolExecutor::builder()
            .max_workers(4)
            .build()
            .unwrap(),
    );
    let tasks: Vec<_> = (0..100u64)
        .map(|i| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.submit(move || i * i).unwrap().await.unwrap() })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert_eq!(total, (0..100u64).map(|i| i * i).sum());
}

#[tokio::test]
async fn await_reports_errors_and_cancellation() {
    let pool = ThreadPoolExecutor::new();
    let err = pool.submit(fallible(|| "x".parse::<u8>())).unwrap().await;
    assert!(err.unwrap_err().task_error().is_some());
    let panicked = pool.submit(|| -> u8 { panic!("in a task") }).unwrap().await;
    assert_eq!(panicked.unwrap_err().panic_message(), Some("in a task"));
    let (_p, f) = Promise::<u8>::new();
    let g = f.clone();
    tokio::spawn(async move { g.cancel() });
    assert_eq!(f.await, Err(FutureError::Cancelled));
}

// Cancel safety: giving up the await (a timeout) leaves the task running.
#[tokio::test]
async fn dropping_the_await_does_not_cancel_the_task() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let (tx, rx) = mpsc::channel::<()>();
    let f = pool
        .submit(move || {
            rx.recv_timeout(Duration::from_secs(30)).unwrap();
            7
        })
        .unwrap();
    let timed_out = tokio::time::timeout(Duration::from_millis(5), f.clone()).await;
    assert!(timed_out.is_err());
    assert!(!f.cancelled());
    tx.send(()).unwrap();
    assert_eq!(f.await, Ok(7));
}

#[tokio::test]
async fn await_moves_an_unshared_value_out() {
    #[derive(Debug, PartialEq)]
    struct Big(Vec<u8>);
    impl Clone for Big {
        fn clone(&self) -> Self {
            panic!("the last handle must not clone");
        }
    }
    let pool = ThreadPoolExecutor::new();
    let v = pool.submit(|| Big(vec![1; 1024])).unwrap().await.unwrap();
    assert_eq!(v.0.len(), 1024);
}
