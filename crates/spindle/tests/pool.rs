//! `spindle::process::Pool`: CPython's `_TestPool`, `_TestPoolWorkerErrors`
//! and `_TestPoolWorkerLifetime` (Lib/test/_test_multiprocessing.py), ported
//! and rewritten in Rust. Functions are `#[spindle::task]`s; `sqr` and `mul`
//! are the same helpers as CPython's.

mod common;

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use spindle::futures::FutureError;
use spindle::process::{AsyncResult, Callbacks, Pool, StartMethod};

use common::LONG;

#[spindle::task]
fn sqr(x: i64) -> i64 {
    x * x
}

#[spindle::task]
fn sqr_slow(x: i64, wait_ms: u64) -> i64 {
    std::thread::sleep(Duration::from_millis(wait_ms));
    x * x
}

#[spindle::task]
fn mul(x: i64, y: i64) -> i64 {
    x * y
}

#[spindle::task]
fn parse_int(s: String) -> i64 {
    s.parse().expect("invalid literal for int()")
}

#[spindle::task]
fn raising() -> i64 {
    panic!("KeyError: key")
}

#[spindle::task]
fn my_pid(_i: u64) -> u32 {
    std::process::id()
}

#[spindle::task]
fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

/// Blocks SIGTERM (a task in a signal-masked state: SIGTERM stays pending
/// and never kills it), says so by creating `marker`, then sleeps.
#[spindle::task]
fn deaf_to_sigterm(marker: String, ms: u64) {
    let mut set = nix::sys::signal::SigSet::empty();
    set.add(nix::sys::signal::Signal::SIGTERM);
    set.thread_block().expect("block SIGTERM");
    // Written whole under a temporary name, then renamed: the test never
    // reads half a pid.
    let tmp = format!("{marker}.tmp");
    std::fs::write(&tmp, std::process::id().to_string()).expect("write the marker");
    std::fs::rename(&tmp, &marker).expect("rename the marker");
    std::thread::sleep(Duration::from_millis(ms));
}

#[spindle::task]
fn byte_len(s: String) -> usize {
    s.len()
}

#[spindle::task]
fn echo(s: String) -> String {
    s
}

#[spindle::task]
fn init_fails() {
    panic!("no database")
}

fn pool(n: usize) -> Pool {
    Pool::new(n).unwrap()
}

// test_apply
#[test]
fn apply() {
    let p = pool(2);
    assert_eq!(p.apply(sqr::call(5)), Ok(25));
    assert_eq!(p.apply(mul::call(3, 4)), Ok(12));
}

// test_map (with and without chunksize), test_empty_iterable
#[test]
fn map_keeps_order() {
    let p = pool(2);
    let want: Vec<i64> = (0..10).map(|x| x * x).collect();
    assert_eq!(p.map(sqr::call, 0..10).unwrap(), want);
    let want: Vec<i64> = (0..100).map(|x| x * x).collect();
    assert_eq!(p.map_chunked(sqr::call, 0..100, 20).unwrap(), want);
    assert_eq!(
        p.map(sqr::call, Vec::<i64>::new()).unwrap(),
        Vec::<i64>::new()
    );
    assert_eq!(p.imap(sqr::call, Vec::<i64>::new()).unwrap().count(), 0);
    let r = p
        .map_async(sqr::call, Vec::<i64>::new(), 0, Callbacks::new())
        .unwrap();
    assert_eq!(r.get(), Ok(vec![]));
}

// test_starmap, test_starmap_async
#[test]
fn starmap() {
    let p = pool(2);
    let tuples: Vec<(i64, i64)> = (0..10).zip(0..10).map(|(a, b)| (a, b * 2)).collect();
    let want: Vec<i64> = tuples.iter().map(|(a, b)| a * b).collect();
    assert_eq!(p.starmap(mul::call, tuples.clone()).unwrap(), want);
    let r = p
        .starmap_async(mul::call, tuples, 6, Callbacks::new())
        .unwrap();
    assert_eq!(r.get(), Ok(want));
}

// test_map_async, test_map_async_callbacks: the callback receives the whole
// list; the error_callback the error.
#[test]
fn map_async_callbacks() {
    let p = pool(2);
    let (tx, rx) = mpsc::channel();
    let (etx, erx) = mpsc::channel::<FutureError>();
    let cbs = Callbacks::new()
        .callback(move |v: &Vec<i64>| tx.send(v.clone()).unwrap())
        .error_callback(move |e| etx.send(e.clone()).unwrap());
    let r = p
        .map_async(parse_int::call, ["1".to_string()], 0, cbs)
        .unwrap();
    r.wait();
    assert_eq!(rx.recv().unwrap(), vec![1]);
    assert!(erx.try_recv().is_err());
    assert_eq!(r.successful(), Some(true));

    let (tx, rx) = mpsc::channel::<Vec<i64>>();
    let (etx, erx) = mpsc::channel::<FutureError>();
    let cbs = Callbacks::new()
        .callback(move |v: &Vec<i64>| tx.send(v.clone()).unwrap())
        .error_callback(move |e| etx.send(e.clone()).unwrap());
    let items: Vec<String> = ["1", "a", "3"].iter().map(|s| s.to_string()).collect();
    let r = p.map_async(parse_int::call, items, 1, cbs).unwrap();
    let e = r.get().unwrap_err();
    assert!(e.panic_message().unwrap().contains("invalid literal"));
    let got = erx.recv().unwrap();
    assert!(got.is_panic());
    assert!(rx.try_recv().is_err());
    assert_eq!(r.successful(), Some(false));
}

// Issue 18 §1: `AsyncResult: IntoFuture`. Awaiting gives what `get` gives:
// the value, a map's list in order, and a task's panic as an error.
#[test]
fn async_result_await() {
    let p = pool(2);
    let r = p.apply_async(sqr_slow::call(7, 10)).unwrap();
    assert_eq!(common::block_on(r), Ok(49));
    let items: Vec<String> = ["1", "2", "3"].iter().map(|s| s.to_string()).collect();
    let r = p
        .map_async(parse_int::call, items, 1, Callbacks::new())
        .unwrap();
    assert_eq!(common::block_on(r), Ok(vec![1, 2, 3]));
    let items: Vec<String> = ["1", "a"].iter().map(|s| s.to_string()).collect();
    let r = p
        .map_async(parse_int::call, items, 1, Callbacks::new())
        .unwrap();
    let e = common::block_on(r).unwrap_err();
    assert!(e.panic_message().unwrap().contains("invalid literal"));
}

// test_async, test_async_timeout
#[test]
fn apply_async_and_timeout() {
    let p = pool(2);
    let r = p.apply_async(sqr_slow::call(7, 10)).unwrap();
    assert_eq!(r.get(), Ok(49));
    assert!(r.ready());
    let r = p.apply_async(sqr_slow::call(6, 2_000)).unwrap();
    let t0 = Instant::now();
    assert_eq!(
        r.get_timeout(Duration::from_millis(100)),
        Err(FutureError::Timeout)
    );
    assert!(t0.elapsed() >= Duration::from_millis(100));
    assert!(!r.ready());
    assert_eq!(r.successful(), None);
    // The deadline forms of `get` and `wait` bound the wait the same way.
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_millis(50);
    assert_eq!(r.get_deadline(deadline), Err(FutureError::Timeout));
    assert!(t0.elapsed() >= Duration::from_millis(50));
    let t0 = Instant::now();
    assert!(!r.wait_deadline(t0 + Duration::from_millis(50)));
    assert!(t0.elapsed() >= Duration::from_millis(50));
    assert!(!r.wait_timeout(Duration::ZERO));
    assert!(r.wait_deadline(Instant::now() + Duration::from_secs(60)));
    assert_eq!(r.get_deadline(Instant::now()), Ok(36));
}

// test_apply_async callback (Python's Pool(5).apply_async(Foo, callback=Bar))
#[test]
fn apply_async_callback_runs_in_parent() {
    let p = pool(2);
    let (tx, rx) = mpsc::channel();
    let me = std::process::id();
    for i in 0..5 {
        let tx = tx.clone();
        let cbs =
            Callbacks::new().callback(move |v: &i64| tx.send((*v, std::process::id())).unwrap());
        p.apply_async_with(sqr::call(i), cbs).unwrap();
    }
    drop(tx);
    p.close();
    p.join().unwrap();
    let mut got: Vec<(i64, u32)> = rx.iter().collect();
    got.sort();
    assert_eq!(got, (0..5).map(|i| (i * i, me)).collect::<Vec<_>>());
}

// _TestPoolWorkerErrors.test_async_error_callback
#[test]
fn async_error_callback() {
    let p = pool(1);
    let (tx, rx) = mpsc::channel();
    let cbs = Callbacks::new().error_callback(move |e| tx.send(e.clone()).unwrap());
    let r = p.apply_async_with(raising::call(), cbs).unwrap();
    assert!(
        r.get()
            .unwrap_err()
            .panic_message()
            .unwrap()
            .contains("KeyError")
    );
    assert!(rx.recv().unwrap().is_panic());
}

// test_imap, test_imap_unordered
#[test]
fn imap_and_imap_unordered() {
    let p = pool(2);
    let got: Vec<i64> = p
        .imap(sqr::call, 0..10)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, (0..10).map(|x| x * x).collect::<Vec<_>>());
    let got: Vec<i64> = p
        .imap_chunked(sqr::call, 0..1000, 100)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, (0..1000).map(|x| x * x).collect::<Vec<_>>());
    let mut got: Vec<i64> = p
        .imap_unordered(sqr::call, 0..1000)
        .map(Result::unwrap)
        .collect();
    got.sort();
    assert_eq!(got, (0..1000).map(|x| x * x).collect::<Vec<_>>());
    let mut got: Vec<i64> = p
        .imap_unordered_chunked(sqr::call, 0..1000, 53)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    got.sort();
    assert_eq!(got, (0..1000).map(|x| x * x).collect::<Vec<_>>());
}

// Python: `Pool.imap(f, it, chunksize=0)` raises `ValueError: Chunksize must
// be 1+, not 0` (imap_unordered too), before taking an item.
#[test]
fn imap_with_a_zero_chunksize_is_an_invalid_argument() {
    let p = pool(1);
    let taken = std::cell::Cell::new(0);
    let items = || (0..10).inspect(|_| taken.set(taken.get() + 1));
    let err = p.imap_chunked(sqr::call, items(), 0).unwrap_err();
    assert!(err.is_invalid_argument(), "{err:?}");
    assert_eq!(err.invalid_argument(), Some("chunksize"));
    let err = p.imap_unordered_chunked(sqr::call, items(), 0).unwrap_err();
    assert!(err.is_invalid_argument(), "{err:?}");
    assert_eq!(err.invalid_argument(), Some("chunksize"));
    assert_eq!(taken.get(), 0);
    // 1 is Python's default and works.
    let got: Vec<i64> = p
        .imap_chunked(sqr::call, items(), 1)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, (0..10).map(|x| x * x).collect::<Vec<_>>());
}

// imap and imap_unordered are lazy: they take items as results are wanted, so
// an endless input works (Python's imap takes its iterable lazily too, in
// chunks).
#[test]
fn imap_and_imap_unordered_take_endless_input_lazily() {
    let p = pool(2);
    let got: Vec<i64> = p
        .imap(sqr::call, 0..)
        .unwrap()
        .take(50)
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, (0..50).map(|x| x * x).collect::<Vec<_>>());
    let mut got: Vec<i64> = p
        .imap_unordered_chunked(sqr::call, 0.., 7)
        .unwrap()
        .take(50)
        .map(Result::unwrap)
        .collect();
    got.sort();
    assert_eq!(got.len(), 50);
    assert!(got.iter().all(|&x| (x as f64).sqrt().fract() == 0.0));
    // The pool is still usable afterwards.
    assert_eq!(p.apply(sqr::call(9)), Ok(81));
}

// imap_unordered really yields in completion order: a slow first item comes last.
#[test]
fn imap_unordered_yields_completed_first() {
    let p = pool(2);
    let items = vec![(0, 1_000), (1, 0), (2, 0), (3, 0)];
    let got: Vec<i64> = p
        .imap_unordered(|(x, ms)| sqr_slow::call(x, ms), items)
        .map(Result::unwrap)
        .collect();
    assert_eq!(got.last(), Some(&0));
}

/// `wait_for_workers` has the blocking, `_timeout` and `_deadline` forms,
/// and none of them waits for what cannot happen.
#[test]
fn wait_for_workers_forms() {
    let p = pool(2);
    assert!(p.wait_for_workers(2));
    assert!(p.wait_for_workers_timeout(1, Duration::ZERO));
    let t = Instant::now();
    assert!(!p.wait_for_workers_deadline(3, t + Duration::from_secs(60)));
    assert!(
        !p.executor()
            .wait_for_workers_timeout(3, Duration::from_secs(60))
    );
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "only 2 workers: no wait"
    );
    p.close();
    p.join().unwrap();
    assert!(!p.wait_for_workers(1), "a closed pool starts no worker");
}

// Pool.join: ValueError("Pool is still running") before close/terminate.
#[test]
fn join_before_close_is_an_error() {
    let p = pool(1);
    assert!(p.join().unwrap_err().is_still_running());
    p.close();
    p.join().unwrap();
    // test_enter: using a closed pool fails (Python's ValueError).
    assert!(p.apply_async(sqr::call(1)).unwrap_err().is_shut_down());
    // A closed pool is not broken: its own error (issue 16 §4).
    let e = p.apply(sqr::call(1)).unwrap_err();
    assert!(e.is_closed() && !e.is_broken(), "{e:?}");
    let e = p.map(sqr::call, [1, 2]).unwrap_err();
    assert!(e.is_closed(), "{e:?}");
    assert_eq!(e.to_string(), "the pool is closed: it takes no more tasks");
}

/// `join_timeout` / `join_deadline` (spindle only) report workers still
/// busy as a timeout, and need `close` first as `join` does.
#[test]
fn join_timeout_and_join_deadline() {
    let p = pool(1);
    assert!(p.join_timeout(LONG).unwrap_err().is_still_running());
    let _busy = p.apply_async(sqr_slow::call(1, 5_000)).unwrap();
    p.close();
    let t = Instant::now();
    let e = p.join_deadline(t + Duration::from_millis(50)).unwrap_err();
    assert!(e.is_timeout() && !e.is_still_running(), "{e}");
    assert!(t.elapsed() >= Duration::from_millis(50));
    let t = Instant::now();
    assert!(
        p.join_timeout(Duration::from_millis(50))
            .unwrap_err()
            .is_timeout()
    );
    assert!(t.elapsed() >= Duration::from_millis(50));
    p.terminate();
    p.join_timeout(LONG).unwrap();
    p.join_deadline(Instant::now()).unwrap();
}

// test_terminate: 10,000 pending tasks, terminate returns promptly.
#[test]
fn terminate_with_10000_pending_returns_promptly() {
    let p = pool(2);
    let r = p
        .map_async(sleep_ms::call, vec![100u64; 10_000], 1, Callbacks::new())
        .unwrap();
    let t0 = Instant::now();
    p.terminate();
    p.join().unwrap();
    // Python allows 2 s; the tasks alone would take 500 s.
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
    assert_eq!(r.get(), Err(FutureError::Cancelled));
}

/// Starts a pool of one worker whose task blocks SIGTERM; returns once the
/// task has blocked it.
fn pool_with_a_deaf_worker(tag: &str) -> (Pool, AsyncResult<()>, u32) {
    deaf_worker_in(pool(1), tag)
}

/// Runs a task that blocks SIGTERM on `p`; returns once it has blocked it,
/// with the worker's pid.
fn deaf_worker_in(p: Pool, tag: &str) -> (Pool, AsyncResult<()>, u32) {
    let marker =
        std::env::temp_dir().join(format!("spindle-pool-deaf-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let r = p
        .apply_async(deaf_to_sigterm::call(marker.display().to_string(), 600_000))
        .unwrap();
    let t0 = Instant::now();
    while !marker.exists() {
        assert!(t0.elapsed() < Duration::from_secs(30), "the task never ran");
        std::thread::sleep(Duration::from_millis(5));
    }
    let pid: u32 = std::fs::read_to_string(&marker).unwrap().parse().unwrap();
    std::fs::remove_file(&marker).ok();
    (p, r, pid)
}

fn is_gone(pid: u32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_err()
}

// spindle only: Python's terminate() waits forever for a worker that
// ignores SIGTERM; spindle SIGKILLs it after the grace period (1 s).
#[test]
fn terminate_kills_a_worker_that_ignores_sigterm() {
    let (p, r, pid) = pool_with_a_deaf_worker("terminate");
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        let t0 = Instant::now();
        p.terminate();
        tx.send(t0.elapsed()).ok();
        p.join().unwrap();
    });
    let took = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("terminate() did not return: the SIGTERM-blocking worker was never killed");
    // SIGTERM alone did nothing: the grace period passed before the kill.
    assert!(took >= Duration::from_millis(900), "{took:?}");
    t.join().unwrap();
    assert_eq!(r.get(), Err(FutureError::Cancelled));
    assert!(is_gone(pid), "worker {pid} still exists");
}

// Dropping such a pool (Python's `with Pool()` exit) is bounded too.
#[test]
fn dropping_a_pool_with_a_worker_that_ignores_sigterm_is_bounded() {
    let (p, r, pid) = pool_with_a_deaf_worker("drop");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        drop(p);
        tx.send(()).ok();
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("dropping the pool did not return");
    assert_eq!(r.get(), Err(FutureError::Cancelled));
    assert!(is_gone(pid), "worker {pid} still exists");
}

// A shorter grace period is honoured.
#[test]
fn terminate_grace_zero_kills_at_once() {
    let p = Pool::builder()
        .processes(1)
        .terminate_grace(Duration::ZERO)
        .build()
        .unwrap();
    let (p, r, _pid) = deaf_worker_in(p, "grace0");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        p.terminate();
        tx.send(()).ok();
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("terminate() did not return");
    assert_eq!(r.get(), Err(FutureError::Cancelled));
}

// A write to a worker that does not read (here: its initializer blocks
// SIGTERM and sleeps) holds up only the thread writing, never the pool's
// lock: terminate() still gets through and kills the worker.
#[test]
fn terminate_is_not_held_up_by_a_write_to_a_worker_that_does_not_read() {
    let marker =
        std::env::temp_dir().join(format!("spindle-pool-deaf-init-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let p = std::sync::Arc::new(
        Pool::builder()
            .processes(1)
            .initializer(deaf_to_sigterm::call(marker.display().to_string(), 600_000))
            .build()
            .unwrap(),
    );
    let t0 = Instant::now();
    while !marker.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the initializer never ran"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::fs::remove_file(&marker).ok();
    // 8 MiB: far more than the pipe holds, so the write blocks.
    let (tx, rx) = mpsc::channel();
    let p2 = p.clone();
    std::thread::spawn(move || {
        let r = p2.apply_async(byte_len::call("x".repeat(8 << 20)));
        tx.send(r.map(|r| r.get()).ok()).ok();
    });
    std::thread::sleep(Duration::from_millis(500));
    let (ttx, trx) = mpsc::channel();
    let p3 = p.clone();
    std::thread::spawn(move || {
        p3.terminate();
        ttx.send(()).ok();
    });
    trx.recv_timeout(Duration::from_secs(30))
        .expect("terminate() was held up by a blocked write");
    let got = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the blocked submit never returned");
    assert_eq!(got, Some(Err(FutureError::Cancelled)));
}

// Arguments and results far larger than a pipe, mixed with tiny tasks that
// are sent ahead: every answer matches its task.
#[test]
fn large_and_tiny_tasks_interleave_in_order() {
    let p = pool(2);
    let big: Vec<_> = (0..6)
        .map(|i| {
            let s = char::from(b'a' + i).to_string().repeat(3 << 20);
            p.apply_async(echo::call(s)).unwrap()
        })
        .collect();
    let tiny = p.map_chunked(sqr::call, 0..2000, 1).unwrap();
    assert_eq!(tiny, (0..2000).map(|x| x * x).collect::<Vec<i64>>());
    for (i, r) in big.into_iter().enumerate() {
        let got = r.get().unwrap();
        assert_eq!(got.len(), 3 << 20);
        assert!(got.bytes().all(|b| b == b'a' + i as u8), "task {i}");
    }
}

// _TestPoolWorkerLifetime.test_pool_worker_lifetime: maxtasksperchild
// recycles the workers.
#[test]
fn maxtasksperchild_recycles_workers() {
    let p = Pool::builder()
        .processes(3)
        .maxtasksperchild(10)
        .build()
        .unwrap();
    let first = p.worker_pids();
    let results: Vec<_> = (0..100)
        .map(|i| p.apply_async(my_pid::call(i)).unwrap())
        .collect();
    let mut per_pid: HashMap<u32, usize> = HashMap::new();
    for r in results {
        *per_pid.entry(r.get().unwrap()).or_default() += 1;
    }
    assert!(per_pid.values().all(|&n| n <= 10), "{per_pid:?}");
    assert!(per_pid.len() >= 10, "{per_pid:?}");
    assert!(p.wait_for_workers_timeout(3, Duration::from_secs(10)));
    let mut last = p.worker_pids();
    last.sort();
    let mut first = first;
    first.sort();
    assert_ne!(first, last);
}

// A failing initializer: Python's Pool respawns workers forever (hang);
// spindle fails the tasks with the initializer's message.
#[test]
fn failing_initializer_breaks_the_pool_with_its_message() {
    let p = Pool::builder()
        .processes(2)
        .initializer(init_fails::call())
        .build()
        .unwrap();
    let e = p.apply(sqr::call(2)).unwrap_err();
    assert!(e.is_broken(), "{e:?}");
    assert!(e.to_string().contains("no database"), "{e}");
}

// Dropping the pool terminates it (Python's `with Pool() as p:`).
#[test]
fn drop_terminates() {
    let p = pool(1);
    let r = p.apply_async(sleep_ms::call(60_000)).unwrap();
    let pids = p.worker_pids();
    let t0 = Instant::now();
    drop(p);
    assert!(t0.elapsed() < Duration::from_secs(20));
    assert!(matches!(r.get(), Err(FutureError::Cancelled)));
    for pid in pids {
        // The worker is gone (reaped): signal 0 fails.
        assert!(nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_err());
    }
}

// Every start method can run a pool (ForkServer is the default).
#[spindle::task]
fn parent_pid(_i: u64) -> u32 {
    nix::unistd::getppid().as_raw() as u32
}

// The default start method is the fork server (as Python 3.14's default on
// Linux): a worker's parent is the server, not this process; with Fork it
// is this process.
#[test]
fn the_default_start_method_is_the_fork_server() {
    let me = std::process::id();
    let p = pool(1);
    assert_ne!(p.apply(parent_pid::call(0)), Ok(me));
    let p = Pool::builder()
        .processes(1)
        .start_method(StartMethod::Fork)
        .build()
        .unwrap();
    assert_eq!(p.apply(parent_pid::call(0)), Ok(me));
}

#[test]
fn every_start_method() {
    for m in StartMethod::all() {
        let p = Pool::builder()
            .processes(2)
            .start_method(m)
            .build()
            .unwrap();
        assert_eq!(p.map(sqr::call, 0..5).unwrap(), [0, 1, 4, 9, 16], "{m:?}");
        p.close();
        p.join().unwrap();
    }
}
