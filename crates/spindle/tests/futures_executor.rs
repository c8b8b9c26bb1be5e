//! Tests of `ThreadPoolExecutor`, `Executor::map`, `as_completed` and `wait`.
//!
//! Ported from CPython's `Lib/test/test_concurrent_futures/` (`executor.py`,
//! `test_as_completed.py`, `test_wait.py`, `test_thread_pool.py`,
//! `test_shutdown.py`, `test_init.py`) and manually rewritten in Rust. Where the
//! Python tests sleep to keep a task running, these block the task on a gate
//! the test opens, so nothing depends on timing.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use spindle::futures::{
    Executor, Future, FutureError, MapOptions, Promise, ReturnWhen, ThreadPoolExecutor,
    as_completed, as_completed_timeout, default_max_workers, fallible, wait, wait_timeout,
};

use common::{block_on, cancelled, failed, successful};

const LONG: Duration = Duration::from_secs(30);

/// A one-shot gate (Python's `threading.Event`), kept local so these tests do
/// not depend on `spindle::sync`.
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    fn open(&self) {
        *self.0.0.lock().unwrap() = true;
        self.0.1.notify_all();
    }
    fn wait(&self) {
        let mut open = self.0.0.lock().unwrap();
        while !*open {
            open = self.0.1.wait(open).unwrap();
        }
    }
}

fn pool(n: usize) -> ThreadPoolExecutor {
    ThreadPoolExecutor::builder()
        .max_workers(n)
        .build()
        .unwrap()
}

// Futures hash by identity, so the interior mutability does not matter.
#[allow(clippy::mutable_key_type)]
fn keys(fs: &[Future<u32, String>]) -> HashSet<Future<u32, String>> {
    fs.iter().cloned().collect()
}

// ExecutorTest.test_submit
#[test]
fn submit_returns_the_value() {
    let pool = pool(2);
    let f = pool.submit(|| 2u64.pow(8)).unwrap();
    assert_eq!(f.result(), Ok(256));
}

// ExecutorTest.test_map
#[test]
fn map_keeps_input_order() {
    let pool = pool(4);
    let got: Vec<u64> = pool
        .map(|i: u64| i.pow(i as u32 % 5), 0..100)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let want: Vec<u64> = (0..100u64).map(|i| i.pow(i as u32 % 5)).collect();
    assert_eq!(got, want);
}

// ExecutorTest.test_map_exception: the error shows up at its place in order;
// unlike Python the iteration may go on.
#[test]
fn map_reports_a_task_error_in_place() {
    let pool = pool(2);
    let divmod = |(a, b): (i32, i32)| {
        a.checked_div(b)
            .map(|q| (q, a % b))
            .ok_or("ZeroDivisionError")
    };
    let mut it = pool
        .map(fallible(divmod), [(1, 2), (1, 2), (1, 0), (1, 2)])
        .unwrap();
    assert_eq!(it.next(), Some(Ok((0, 1))));
    assert_eq!(it.next(), Some(Ok((0, 1))));
    assert_eq!(
        it.next(),
        Some(Err(FutureError::failed("ZeroDivisionError")))
    );
    assert_eq!(it.next(), Some(Ok((0, 1))));
    assert_eq!(it.next(), None);
}

// ExecutorTest.test_map_timeout: two results, then TimeoutError; the rest is
// cancelled and the iteration ends.
#[test]
fn map_timeout_yields_timeout_and_cancels_the_rest() {
    let pool = pool(1);
    let gate = Gate::default();
    let g = gate.clone();
    let started = Instant::now();
    let mut it = pool
        .map_with(
            move |i: u32| {
                if i == 2 {
                    g.wait();
                }
                i
            },
            0..10,
            MapOptions::new().timeout(Duration::from_millis(50)),
        )
        .unwrap();
    assert_eq!(it.next(), Some(Ok(0)));
    assert_eq!(it.next(), Some(Ok(1)));
    assert_eq!(it.next(), Some(Err(FutureError::Timeout)));
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert_eq!(it.next(), None);
    gate.open();
}

// test_thread_pool.test_map_submits_without_iteration
#[test]
fn map_submits_without_iteration() {
    let pool = pool(4);
    let finished = Arc::new(Mutex::new(Vec::new()));
    let fin = finished.clone();
    let it = pool
        .map(move |i: u32| fin.lock().unwrap().push(i), 0..10)
        .unwrap();
    pool.shutdown(true, false);
    let mut got = finished.lock().unwrap().clone();
    got.sort();
    assert_eq!(got, (0..10).collect::<Vec<_>>());
    drop(it);
}

// Python's `Executor.map` submits every call at once and its generator
// cancels the futures left only in its `finally`, which never runs for a
// generator that was not started: dropping an un-started map cancels
// nothing (issue 16 §6: spindle ran 0 of 10).
#[test]
fn dropping_an_unstarted_map_cancels_nothing() {
    let pool = pool(4); // a window of 16 calls: all 10 are submitted
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let it = pool
        .map(
            move |_: u32| {
                r.fetch_add(1, Ordering::SeqCst);
            },
            0..10,
        )
        .unwrap();
    drop(it);
    pool.shutdown(true, false);
    assert_eq!(ran.load(Ordering::SeqCst), 10);
}

// Closing a started generator runs its `finally`: the calls not started
// are cancelled.
#[test]
fn dropping_a_started_map_cancels_the_calls_not_started() {
    let pool = pool(1);
    let (gate, running) = (Gate::default(), Gate::default());
    let ran = Arc::new(AtomicUsize::new(0));
    let (g, run, r) = (gate.clone(), running.clone(), ran.clone());
    let mut it = pool
        .map(
            move |i: u32| {
                if i == 1 {
                    run.open();
                    g.wait();
                }
                r.fetch_add(1, Ordering::SeqCst);
                i
            },
            0..10,
        )
        .unwrap();
    assert_eq!(it.next(), Some(Ok(0)));
    running.wait(); // call 1 runs on the only worker: 2.. wait in the queue
    drop(it);
    gate.open();
    pool.shutdown(true, false);
    assert_eq!(ran.load(Ordering::SeqCst), 2);
}

// executor.py test_map_buffersize_on_infinite_iterable
#[test]
fn map_is_lazy_over_an_endless_iterator() {
    let pool = pool(2);
    let mut it = pool
        .map_with(|i: u64| i.to_string(), 0.., MapOptions::new().buffersize(2))
        .unwrap();
    assert_eq!(it.next().unwrap().unwrap(), "0");
    assert_eq!(it.next().unwrap().unwrap(), "1");
    assert_eq!(it.next().unwrap().unwrap(), "2");
}

// executor.py test_map_buffersize_when_buffer_is_full: only `buffersize` items
// are taken from the input before the results are read.
#[test]
fn map_takes_only_a_window_of_input() {
    let pool = pool(2);
    let taken = Arc::new(AtomicUsize::new(0));
    let t = taken.clone();
    let input = (0..100).inspect(move |_| {
        t.fetch_add(1, Ordering::SeqCst);
    });
    let it = pool
        .map_with(|i: u32| i, input, MapOptions::new().buffersize(2))
        .unwrap();
    pool.shutdown(true, false);
    assert_eq!(taken.load(Ordering::SeqCst), 2);
    // The two submitted results are still there; the next submission fails.
    let got: Vec<_> = it.collect();
    assert_eq!(got[..2], [Ok(0), Ok(1)]);
    assert_eq!(got[2..], [Err(FutureError::Cancelled)]);
}

#[test]
fn map_with_chunks_keeps_order_and_counts() {
    let pool = pool(3);
    let opts = MapOptions::new().chunksize(7).buffersize(3);
    let got: Vec<u32> = pool
        .map_with(|i: u32| i * 2, 0..1000, opts)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, (0..1000).map(|i| i * 2).collect::<Vec<_>>());
}

#[test]
fn map_with_a_zero_chunksize_or_buffersize_is_an_invalid_argument() {
    // Python: `ValueError: chunksize must be >= 1.` and (3.14) `ValueError:
    // buffersize must be None or > 0`, before any item is taken.
    let pool = pool(2);
    let taken = AtomicUsize::new(0);
    let items = || {
        (0..10u32).inspect(|_| {
            taken.fetch_add(1, Ordering::SeqCst);
        })
    };
    for (opts, name) in [
        (MapOptions::new().chunksize(0), "chunksize"),
        (MapOptions::new().buffersize(0), "buffersize"),
        (MapOptions::new().chunksize(0).buffersize(4), "chunksize"),
    ] {
        let err = pool.map_with(|i: u32| i, items(), opts).unwrap_err();
        assert!(err.is_invalid_argument(), "{err:?}");
        assert_eq!(err.invalid_argument(), Some(name));
        assert!(err.to_string().contains(name), "{err}");
    }
    assert_eq!(taken.load(Ordering::SeqCst), 0);
    // Unset is the default: one item per task, the executor's window.
    for opts in [MapOptions::new(), MapOptions::default()] {
        let got: Vec<u32> = pool
            .map_with(|i: u32| i + 1, items(), opts)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, (1..=10).collect::<Vec<_>>());
    }
}

#[test]
fn map_moves_unclonable_values_out() {
    struct NoClone(u32);
    let pool = pool(2);
    let got: Vec<u32> = pool
        .map(NoClone, 0..20)
        .unwrap()
        .map(|r| r.unwrap().0)
        .collect();
    assert_eq!(got, (0..20).collect::<Vec<_>>());
}

#[test]
fn a_panicking_task_fails_its_future_only() {
    let pool = pool(1);
    let bad = pool.submit(|| -> u32 { panic!("task blew up") }).unwrap();
    let good = pool.submit(|| 5u32).unwrap();
    assert_eq!(
        bad.result().unwrap_err().panic_message(),
        Some("task blew up")
    );
    assert_eq!(good.result(), Ok(5));
    assert_eq!(pool.num_threads(), 1, "the worker survived the panic");
}

#[test]
fn fallible_task_error_is_the_futures_error() {
    let pool = pool(1);
    let f = pool.submit(fallible(|| "x".parse::<u32>())).unwrap();
    let e = f.exception().unwrap();
    assert!(e.task_error().is_some());
    let ok = pool.submit(fallible(|| "7".parse::<u32>())).unwrap();
    assert_eq!(ok.result(), Ok(7));
    assert_eq!(ok.exception(), None);
}

// test_as_completed.test_no_timeout
#[test]
fn as_completed_yields_every_future() {
    let pool = pool(2);
    let gate = Gate::default();
    let g = gate.clone();
    let later = pool
        .submit(fallible(move || {
            g.wait();
            Ok::<u32, String>(1)
        }))
        .unwrap();
    let fs = [cancelled(), failed(), successful(), later.clone()];
    let mut it = as_completed(&fs);
    let first_three: Vec<_> = it.by_ref().take(3).collect();
    assert_eq!(keys(&first_three), keys(&fs[..3]), "done ones come first");
    gate.open();
    let last = it.next().unwrap();
    assert!(last.ptr_eq(&later));
    assert!(it.next().is_none());
}

// test_as_completed.test_future_times_out
#[test]
fn as_completed_timeout_yields_done_ones_then_timeout() {
    let (_p, pending) = Promise::<u32, String>::new();
    let fs = [successful(), failed(), pending.clone()];
    let started = Instant::now();
    let got: Vec<_> = as_completed_timeout(&fs, Duration::from_millis(20)).collect();
    assert!(started.elapsed() >= Duration::from_millis(20));
    assert_eq!(got.len(), 3);
    let done: Vec<_> = got[..2].iter().map(|r| r.clone().unwrap()).collect();
    assert_eq!(keys(&done), keys(&fs[..2]));
    let timeout = got[2].clone().unwrap_err();
    assert_eq!((timeout.not_done, timeout.total), (1, 3));
}

// test_as_completed.test_duplicate_futures
#[test]
fn as_completed_yields_a_duplicate_once() {
    let f = successful();
    let got: Vec<_> = as_completed([&f, &f, &f]).collect();
    assert_eq!(got.len(), 1);
}

// test_as_completed.test_correct_timeout_exception_msg
#[test]
fn as_completed_timeout_message() {
    let (_p1, a) = Promise::<u32, String>::new();
    let (_p2, b) = Promise::<u32, String>::new();
    let fs = [successful(), cancelled(), a, b];
    let err = as_completed_timeout(&fs, Duration::ZERO)
        .find_map(Result::err)
        .unwrap();
    assert_eq!(err.to_string(), "2 (of 4) futures unfinished");
}

#[test]
fn as_completed_follows_completion_order() {
    let pool = pool(3);
    let gates: Vec<Gate> = (0..3).map(|_| Gate::default()).collect();
    let fs: Vec<_> = (0..3)
        .map(|i| {
            let g = gates[i].clone();
            pool.submit(move || {
                g.wait();
                i
            })
            .unwrap()
        })
        .collect();
    let mut it = as_completed(&fs);
    for i in [2, 0, 1] {
        gates[i].open();
        assert_eq!(it.next().unwrap().result(), Ok(i));
    }
}

// test_wait.test_20369
#[test]
fn wait_counts_a_duplicate_once() {
    let f = successful();
    let r = wait([&f, &f], ReturnWhen::AllCompleted);
    assert_eq!((r.done.len(), r.not_done.len()), (1, 0));
}

// test_wait.test_first_completed
#[test]
fn wait_first_completed() {
    let pool = pool(2);
    let gate = Gate::default();
    let g = gate.clone();
    let f1 = pool.submit(fallible(|| Ok::<u32, String>(21 * 2))).unwrap();
    let f2 = pool
        .submit(fallible(move || {
            g.wait();
            Ok::<u32, String>(0)
        }))
        .unwrap();
    let r = wait([&f1, &f2], ReturnWhen::FirstCompleted);
    assert_eq!(keys(&r.done), keys(&[f1]));
    assert_eq!(keys(&r.not_done), keys(&[f2]));
    gate.open();
}

// test_wait.test_first_completed_some_already_completed
#[test]
fn wait_first_completed_some_already_completed() {
    let (_p, pending) = Promise::<u32, String>::new();
    let fs = [cancelled(), successful(), pending];
    let r = wait(&fs, ReturnWhen::FirstCompleted);
    assert_eq!(keys(&r.done), keys(&fs[..2]));
    assert_eq!(keys(&r.not_done), keys(&fs[2..]));
}

// test_wait.test_first_exception
#[test]
fn wait_first_exception() {
    let pool = pool(3);
    let gate = Gate::default();
    let g = gate.clone();
    let f1 = pool.submit(fallible(|| Ok::<u32, String>(42))).unwrap();
    f1.wait();
    let f2 = pool
        .submit(fallible(|| Err::<u32, String>("raise".into())))
        .unwrap();
    let f3 = pool
        .submit(fallible(move || {
            g.wait();
            Ok::<u32, String>(3)
        }))
        .unwrap();
    let r = wait([&f1, &f2, &f3], ReturnWhen::FirstException);
    assert_eq!(keys(&r.done), keys(&[f1, f2]));
    assert_eq!(keys(&r.not_done), keys(&[f3]));
    gate.open();
}

// test_wait.test_first_exception_some_already_complete: cancellation is not an
// exception.
#[test]
fn wait_first_exception_some_already_complete() {
    let pool = pool(2);
    let gate = Gate::default();
    let g = gate.clone();
    let f1 = pool
        .submit(fallible(|| Err::<u32, String>("div by 0".into())))
        .unwrap();
    let f2 = pool
        .submit(fallible(move || {
            g.wait();
            Ok::<u32, String>(0)
        }))
        .unwrap();
    let fs = [successful(), cancelled(), f1, f2];
    let r = wait(&fs, ReturnWhen::FirstException);
    assert_eq!(keys(&r.done), keys(&fs[..3]));
    assert_eq!(keys(&r.not_done), keys(&fs[3..]));
    gate.open();
}

// test_wait.test_first_exception_one_already_failed
#[test]
fn wait_first_exception_one_already_failed() {
    let (_p, pending) = Promise::<u32, String>::new();
    let fs = [failed(), pending];
    let r = wait(&fs, ReturnWhen::FirstException);
    assert_eq!(keys(&r.done), keys(&fs[..1]));
    assert_eq!(keys(&r.not_done), keys(&fs[1..]));
}

// test_wait.test_all_completed
#[test]
fn wait_all_completed() {
    let pool = pool(2);
    let f1 = pool
        .submit(fallible(|| Err::<u32, String>("div".into())))
        .unwrap();
    let f2 = pool.submit(fallible(|| Ok::<u32, String>(21 * 2))).unwrap();
    let fs = [successful(), cancelled(), failed(), f1, f2];
    let r = wait(&fs, ReturnWhen::AllCompleted);
    assert_eq!(keys(&r.done), keys(&fs));
    assert!(r.not_done.is_empty());
}

// test_wait.test_timeout
#[test]
fn wait_timeout_returns_the_stragglers() {
    let (_p, pending) = Promise::<u32, String>::new();
    let fs = [cancelled(), failed(), successful(), pending];
    let started = Instant::now();
    let r = wait_timeout(&fs, Duration::from_millis(20), ReturnWhen::AllCompleted);
    assert!(started.elapsed() >= Duration::from_millis(20));
    assert_eq!(keys(&r.done), keys(&fs[..3]));
    assert_eq!(keys(&r.not_done), keys(&fs[3..]));
}

// test_shutdown.test_cancel_futures: few workers, 50 sleeping tasks.
#[test]
fn shutdown_cancel_futures_cancels_the_queue() {
    let pool = pool(5);
    let fs: Vec<_> = (0..50)
        .map(|_| {
            pool.submit(|| thread::sleep(Duration::from_millis(10)))
                .unwrap()
        })
        .collect();
    pool.shutdown(true, true);
    let cancelled = fs.iter().filter(|f| f.cancelled()).count();
    assert!(cancelled > 20, "only {cancelled} cancelled");
    for f in fs.iter().filter(|f| !f.cancelled()) {
        assert!(f.done());
        assert_eq!(f.exception(), None);
    }
}

// test_shutdown.test_run_after_shutdown
#[test]
fn submit_after_shutdown_is_an_error() {
    let pool = pool(2);
    pool.shutdown(true, false);
    let err = pool.submit(|| 2 * 5).unwrap_err();
    assert!(err.is_shut_down());
    assert_eq!(
        err.to_string(),
        "cannot schedule new futures after shutdown"
    );
    assert_eq!((err.into_inner())(), 10);
    assert!(pool.map(|i: u32| i, 0..3).unwrap_err().is_shut_down());
}

// test_shutdown.test_hang_issue12364: shutdown(wait) finishes the queue.
#[test]
fn shutdown_wait_runs_every_queued_task() {
    let pool = pool(2);
    let fs: Vec<_> = (0..50).map(|i| pool.submit(move || i).unwrap()).collect();
    pool.shutdown(true, false);
    for (i, f) in fs.iter().enumerate() {
        assert!(f.done());
        assert_eq!(f.result(), Ok(i));
    }
}

// test_shutdown.test_shutdown_no_wait and test_context_manager_shutdown:
// shutdown(wait=false) returns at once; dropping the pool then waits.
#[test]
fn shutdown_without_wait_then_drop_waits() {
    let pool = pool(2);
    let gate = Gate::default();
    let g = gate.clone();
    let f = pool
        .submit(move || {
            g.wait();
            7
        })
        .unwrap();
    pool.shutdown(false, false);
    assert!(!f.done());
    let opener = {
        let gate = gate.clone();
        thread::spawn(move || gate.open())
    };
    drop(pool);
    assert!(f.done(), "dropping the pool waited for the task");
    assert_eq!(f.result(), Ok(7));
    opener.join().unwrap();
}

// test_init.InitializerMixin.test_initializer
#[test]
fn initializer_runs_in_every_worker() {
    let inits = Arc::new(AtomicUsize::new(0));
    let i = inits.clone();
    let pool = ThreadPoolExecutor::builder()
        .max_workers(3)
        .initializer(move || {
            i.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    let barrier = Arc::new(std::sync::Barrier::new(3));
    let fs: Vec<_> = (0..3)
        .map(|_| {
            let b = barrier.clone();
            pool.submit(move || {
                b.wait();
            })
            .unwrap()
        })
        .collect();
    for f in &fs {
        f.result_timeout(LONG).unwrap();
    }
    assert_eq!(inits.load(Ordering::SeqCst), 3);
}

// test_init.FailingInitializerMixin.test_initializer
#[test]
fn failing_initializer_breaks_the_pool() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(2)
        .initializer(|| panic!("initializer failed"))
        .build()
        .unwrap();
    let fs: Vec<_> = (0..5).map(|i| pool.submit(move || i).unwrap()).collect();
    for f in &fs {
        let e = f.result_timeout(LONG).unwrap_err();
        assert!(e.is_broken(), "{e:?}");
    }
    let b = pool.broken().expect("the pool is broken");
    assert!(b.reason().contains("initializer failed"), "{}", b.reason());
    let err = pool.submit(|| 1).unwrap_err();
    assert!(err.is_broken());
}

// ExecutorTest.test_max_workers_negative (Python: ValueError for 0 and
// below; spindle: a typed BuildError for 0) and the default.
#[test]
fn max_workers_default_and_bound() {
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(default_max_workers(), (cpus + 4).min(32));
    assert_eq!(
        ThreadPoolExecutor::new().max_workers(),
        default_max_workers()
    );
    let e = ThreadPoolExecutor::builder()
        .max_workers(0)
        .build()
        .unwrap_err();
    assert_eq!(e.argument(), "max_workers");
    assert_eq!(e.to_string(), "max_workers must be greater than 0");
    // The last value given counts.
    let p = ThreadPoolExecutor::builder().max_workers(0).max_workers(2);
    assert_eq!(p.build().unwrap().max_workers(), 2);
}

// test_thread_pool.test_saturation: never more than max_workers threads.
#[test]
fn threads_saturate_at_max_workers() {
    let pool = pool(4);
    let gate = Gate::default();
    let fs: Vec<_> = (0..60)
        .map(|_| {
            let g = gate.clone();
            pool.submit(move || g.wait()).unwrap()
        })
        .collect();
    assert_eq!(pool.num_threads(), 4);
    gate.open();
    for f in &fs {
        f.result_timeout(LONG).unwrap();
    }
    assert_eq!(pool.num_threads(), 4);
}

// test_thread_pool.test_idle_thread_reuse
#[test]
fn idle_worker_is_reused() {
    let pool = pool(8);
    assert_eq!(pool.num_threads(), 0, "workers start lazily");
    assert_eq!(pool.submit(|| 21 * 2).unwrap().result(), Ok(42));
    assert_eq!(pool.submit(|| 6 * 7).unwrap().result(), Ok(42));
    assert_eq!(pool.submit(|| 3 * 14).unwrap().result(), Ok(42));
    assert_eq!(pool.num_threads(), 1);
}

#[test]
fn thread_names_follow_the_prefix() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(1)
        .thread_name_prefix("fetcher")
        .build()
        .unwrap();
    let name = pool
        .submit(|| thread::current().name().map(str::to_owned))
        .unwrap();
    assert_eq!(name.result().unwrap().as_deref(), Some("fetcher_0"));
    let default = ThreadPoolExecutor::new();
    let name = default.submit(|| thread::current().name().unwrap().to_owned());
    let name = name.unwrap().result().unwrap();
    assert!(
        name.starts_with("ThreadPoolExecutor-") && name.ends_with("_0"),
        "{name}"
    );
}

// The issue: a task that submits to its own pool and waits does not deadlock
// while workers remain.
#[test]
fn nested_submit_and_wait_does_not_deadlock() {
    let pool = Arc::new(pool(4));
    let p = pool.clone();
    let outer = pool
        .submit(move || {
            let inner = p.submit(|| 20).unwrap();
            inner.result_timeout(LONG).unwrap() + 1
        })
        .unwrap();
    assert_eq!(outer.result_timeout(LONG), Ok(21));
    // Three levels deep with four workers.
    let p = pool.clone();
    let outer = pool
        .submit(move || {
            let p2 = p.clone();
            p.submit(move || p2.submit(|| 5).unwrap().result_timeout(LONG).unwrap() * 2)
                .unwrap()
                .result_timeout(LONG)
                .unwrap()
        })
        .unwrap();
    assert_eq!(outer.result_timeout(LONG), Ok(10));
}

// A callback that submits and waits gets a fresh worker (the worker running
// the callback is not counted idle yet).
#[test]
fn callback_submitting_and_waiting_does_not_deadlock() {
    let pool = Arc::new(pool(2));
    let (tx, rx) = mpsc::channel();
    let p = pool.clone();
    let f = pool.submit(|| 1).unwrap();
    f.add_done_callback(move |f| {
        let v = p.submit(|| 2).unwrap().result_timeout(LONG).unwrap();
        tx.send(f.result().unwrap() + v).unwrap();
    });
    assert_eq!(rx.recv_timeout(LONG).unwrap(), 3);
}

#[test]
fn callbacks_run_on_the_worker_thread() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(1)
        .thread_name_prefix("cb")
        .build()
        .unwrap();
    let gate = Gate::default();
    let g = gate.clone();
    let f = pool.submit(move || g.wait()).unwrap();
    let (tx, rx) = mpsc::channel();
    f.add_done_callback(move |_| {
        tx.send(thread::current().name().map(str::to_owned))
            .unwrap()
    });
    gate.open();
    assert_eq!(rx.recv_timeout(LONG).unwrap().as_deref(), Some("cb_0"));
}

#[test]
fn many_tasks_from_many_threads() {
    const N: usize = if cfg!(miri) { 50 } else { 2_000 };
    let pool = Arc::new(pool(4));
    let submitters: Vec<_> = (0..4)
        .map(|t| {
            let pool = pool.clone();
            thread::spawn(move || {
                let fs: Vec<_> = (0..N)
                    .map(|i| pool.submit(move || t * N + i).unwrap())
                    .collect();
                fs.into_iter().map(|f| f.result().unwrap()).sum::<usize>()
            })
        })
        .collect();
    let total: usize = submitters.into_iter().map(|s| s.join().unwrap()).sum();
    let n = 4 * N;
    assert_eq!(total, n * (n - 1) / 2);
}

#[test]
fn cancel_a_queued_task_skips_it() {
    let pool = pool(1);
    let gate = Gate::default();
    let g = gate.clone();
    let blocker = pool.submit(move || g.wait()).unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let queued = pool
        .submit(move || {
            r.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    assert!(queued.cancel());
    assert!(!blocker.cancel() || blocker.cancelled());
    gate.open();
    pool.shutdown(true, false);
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert_eq!(queued.result(), Err(FutureError::Cancelled));
}

#[test]
fn executor_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<ThreadPoolExecutor>();
}

#[test]
fn await_pool_work_from_async_code() {
    let pool = pool(2);
    let task = async {
        let a = pool.submit(|| (1..=10u64).product::<u64>()).unwrap().await;
        let b = pool.submit(fallible(|| "x".parse::<u8>())).unwrap().await;
        (a, b.is_err())
    };
    let out = block_on(task);
    assert_eq!(out, (Ok(3_628_800), true));
}

// Cancel racing the worker: each future ends either cancelled (and its task
// never ran) or finished (and it ran exactly once).
#[test]
fn cancel_races_with_the_worker_consistently() {
    const N: usize = if cfg!(miri) { 50 } else { 5_000 };
    let pool = pool(2);
    let ran: Arc<Vec<AtomicUsize>> = Arc::new((0..N).map(|_| AtomicUsize::new(0)).collect());
    let fs: Vec<_> = (0..N)
        .map(|i| {
            let ran = ran.clone();
            pool.submit(move || {
                ran[i].fetch_add(1, Ordering::SeqCst);
            })
            .unwrap()
        })
        .collect();
    let cancels: Vec<bool> = fs.iter().map(|f| f.cancel()).collect();
    pool.shutdown(true, false);
    for (i, f) in fs.iter().enumerate() {
        let runs = ran[i].load(Ordering::SeqCst);
        assert!(f.done());
        assert_eq!(cancels[i], f.cancelled(), "cancel() told the truth");
        if f.cancelled() {
            assert_eq!(runs, 0);
            assert_eq!(f.result(), Err(FutureError::Cancelled));
        } else {
            assert_eq!(runs, 1);
            assert_eq!(f.result(), Ok(()));
        }
    }
}

#[test]
fn shutdown_from_inside_a_task_does_not_deadlock() {
    let pool = Arc::new(pool(2));
    let p = pool.clone();
    let f = pool
        .submit(move || {
            p.shutdown(true, false);
            "shut down from a worker"
        })
        .unwrap();
    assert_eq!(f.result_timeout(LONG), Ok("shut down from a worker"));
    assert!(pool.submit(|| ()).unwrap_err().is_shut_down());
}

#[test]
fn last_handle_dropped_by_a_task_does_not_deadlock() {
    let pool = Arc::new(pool(2));
    let (tx, rx) = mpsc::channel();
    let p = pool.clone();
    let f = pool
        .submit(move || {
            rx.recv_timeout(LONG).unwrap();
            drop(p); // the last handle: Drop runs shutdown(wait) on this worker
            1
        })
        .unwrap();
    drop(pool);
    tx.send(()).unwrap();
    assert_eq!(f.result_timeout(LONG), Ok(1));
}

#[test]
fn concurrent_shutdowns_both_wait() {
    let pool = Arc::new(pool(1));
    let gate = Gate::default();
    let g = gate.clone();
    let (started_tx, started_rx) = mpsc::channel();
    let f = pool
        .submit(move || {
            started_tx.send(()).unwrap();
            g.wait();
        })
        .unwrap();
    started_rx.recv_timeout(LONG).unwrap();
    let shutters: Vec<_> = (0..2)
        .map(|_| {
            let pool = pool.clone();
            let f = f.clone();
            thread::spawn(move || {
                pool.shutdown(true, false);
                f.done()
            })
        })
        .collect();
    gate.open();
    for s in shutters {
        assert!(
            s.join().unwrap(),
            "shutdown(wait) returned before the task ended"
        );
    }
}

#[test]
fn several_wait_sets_on_the_same_futures() {
    let pool = pool(2);
    let gate = Gate::default();
    let g = gate.clone();
    let f = pool.submit(move || g.wait()).unwrap();
    let fs = vec![f];
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let fs = fs.clone();
            thread::spawn(move || wait(&fs, ReturnWhen::AllCompleted).done.len())
        })
        .collect();
    let early = as_completed(&fs); // registered, then dropped unconsumed
    drop(early);
    gate.open();
    for w in waiters {
        assert_eq!(w.join().unwrap(), 1);
    }
    assert_eq!(as_completed(&fs).count(), 1);
}

#[test]
fn a_job_dropped_unrun_breaks_its_future() {
    use spindle::futures::ThreadJob;
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let (job, fut) = ThreadJob::new(move || {
        r.fetch_add(1, Ordering::SeqCst);
        Ok::<u32, String>(1)
    });
    assert!(!fut.done());
    drop(job);
    assert!(fut.result().unwrap_err().is_broken());
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

// `Map::fold` (what `sum`, `for_each` and `fold` use) walks a chunk's values
// in one loop and fetches the next chunk out of line: it must yield exactly
// what `next` yields, a failed chunk's one error at its place, also after
// part of the results were taken with `next`.
#[test]
fn map_fold_yields_what_next_yields() {
    let pool = pool(2);
    let f = |i: u32| {
        if i / 3 == 4 {
            Err("chunk 4 fails")
        } else {
            Ok(i)
        }
    };
    let opts = || MapOptions::new().chunksize(3).buffersize(2);
    let by_next: Vec<_> = {
        let mut it = pool.map_with(fallible(f), 0..40, opts()).unwrap();
        std::iter::from_fn(|| it.next()).collect()
    };
    // Chunks of 3: items 12..15 are one failed chunk, one error.
    assert_eq!(by_next.len(), 40 - 3 + 1);
    assert_eq!(by_next[12], Err(FutureError::failed("chunk 4 fails")));
    assert_eq!(by_next[13], Ok(15));
    let by_fold =
        pool.map_with(fallible(f), 0..40, opts())
            .unwrap()
            .fold(Vec::new(), |mut v, r| {
                v.push(r);
                v
            });
    assert_eq!(by_fold, by_next);
    let mut it = pool.map_with(fallible(f), 0..40, opts()).unwrap();
    let mut mixed: Vec<_> = (0..5).map(|_| it.next().unwrap()).collect();
    it.for_each(|r| mixed.push(r));
    assert_eq!(mixed, by_next);
    let sum: u32 = pool
        .map_with(|i: u32| i, 0..10_000, MapOptions::new().chunksize(1024))
        .unwrap()
        .map(Result::unwrap)
        .sum();
    assert_eq!(sum, (0..10_000).sum());
}
