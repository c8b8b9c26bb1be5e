//! `ProcessPoolExecutor`: the process-pool parts of CPython's
//! `Lib/test/test_concurrent_futures` (`ProcessPoolExecutorTest`,
//! `ExecutorTest`, `test_shutdown`), ported and rewritten in Rust, plus
//! spindle's "never hang" guarantees.

use std::time::Duration;

use spindle::futures::{Executor, FutureError, MapOptions, as_completed};
use spindle::process::ProcessPoolExecutor;

#[spindle::task]
fn square(n: u64) -> u64 {
    n * n
}

#[spindle::task]
fn pid_of(_n: u64) -> u32 {
    std::process::id()
}

#[spindle::task]
fn fail_on(n: u64) -> u64 {
    assert!(n != 3, "three is bad");
    n
}

fn pool(n: usize) -> ProcessPoolExecutor {
    ProcessPoolExecutor::builder()
        .max_workers(n)
        .build()
        .unwrap()
}

// test_submit
#[test]
fn submit_returns_result() {
    let p = pool(2);
    let f = p.submit(square::task(8)).unwrap();
    assert_eq!(f.result(), Ok(64));
}

// test_map, test_map_exception (ExecutorTest)
#[test]
fn map_keeps_order_and_reports_errors() {
    let p = pool(2);
    let got: Vec<u64> = p
        .map(square::task, 0..100u64)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, (0..100u64).map(|n| n * n).collect::<Vec<_>>());
    let got: Vec<_> = p.map(fail_on::task, 0..5u64).unwrap().collect();
    assert_eq!(got[..3], [Ok(0), Ok(1), Ok(2)]);
    assert!(
        got[3]
            .as_ref()
            .unwrap_err()
            .panic_message()
            .unwrap()
            .contains("three is bad")
    );
    assert_eq!(got[4], Ok(4));
}

// test_map with chunksize (ProcessPoolExecutorTest.test_map_chunksize)
#[test]
fn map_chunksize() {
    let p = pool(2);
    for chunk in [1, 3, 7, 200] {
        let got: u64 = p
            .map_with(square::task, 0..200u64, MapOptions::new().chunksize(chunk))
            .unwrap()
            .map(Result::unwrap)
            .sum();
        assert_eq!(got, (0..200u64).map(|n| n * n).sum::<u64>());
    }
}

// test_as_completed over process futures
#[test]
fn as_completed_and_pids_differ_from_parent() {
    let p = pool(2);
    let fs: Vec<_> = (0..10)
        .map(|n| p.submit(pid_of::task(n)).unwrap())
        .collect();
    for f in as_completed(&fs) {
        assert_ne!(f.result().unwrap(), std::process::id());
    }
}

// test_submit_after_shutdown: RuntimeError('cannot schedule new futures after shutdown')
#[test]
fn submit_after_shutdown_hands_the_call_back() {
    let p = pool(1);
    p.shutdown(true, false);
    let e = p.submit(square::task(2)).unwrap_err();
    assert!(e.is_shut_down());
    assert_eq!(e.into_inner().into_args(), (2,));
}

#[test]
fn panic_is_an_error_not_a_dead_pool() {
    let p = pool(1);
    let e = p.submit(fail_on::task(3)).unwrap().result().unwrap_err();
    assert!(matches!(e, FutureError::Panicked(ref m) if m.contains("three is bad")));
    assert_eq!(p.submit(square::task(3)).unwrap().result(), Ok(9));
    let _ = Duration::ZERO;
}
