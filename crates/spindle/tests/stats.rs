//! Pool and queue statistics (`spindle::stats`): the counts after known
//! workloads on each pool, pending and running tasks seen while tasks are
//! held, a killed worker, the task-time histogram, and the queues' counts.
//! Python has no equivalent (docs/PYTHON.md, "Statistics").

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use spindle::futures::{Executor, MapOptions, ThreadPoolExecutor, fallible};
use spindle::process::{Pool, ProcessPoolExecutor};
use spindle::queue::{LifoQueue, PriorityQueue, Queue};
use spindle::stats::{PoolStats, QueueStats};
use spindle::sync::Event;

use common::until;

#[spindle::task]
fn double(x: u64) -> u64 {
    x * 2
}

#[spindle::task]
fn boom(_x: u64) -> u64 {
    panic!("boom")
}

#[spindle::task]
fn sleep_then(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[spindle::task]
fn big_result(n: usize) -> String {
    "y".repeat(n)
}

/// Waits (in the worker process) until `path` exists.
#[spindle::task]
fn wait_for_file(path: String) -> u64 {
    while !Path::new(&path).exists() {
        std::thread::sleep(Duration::from_millis(1));
    }
    1
}

/// The first run creates `flag` and then blocks (its worker is killed);
/// the retry finds `flag` and answers 7.
#[spindle::task]
fn block_first_run(flag: String) -> u64 {
    if std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&flag)
        .is_ok()
    {
        std::thread::sleep(Duration::from_secs(120));
    }
    7
}

/// A fresh path in the temporary directory (removed first).
fn temp_path(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("spindle-stats-{name}-{}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

/// The invariant of an idle pool.
/// Sets its event when dropped (a test's gate, opened on every exit).
struct Open(Arc<Event>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.set();
    }
}

fn assert_balanced(s: &PoolStats) {
    assert_eq!(
        s.tasks_submitted,
        s.tasks_pending
            + s.tasks_running
            + s.tasks_completed
            + s.tasks_failed
            + s.tasks_panicked
            + s.tasks_cancelled,
        "{s:?}"
    );
    assert_eq!(s.workers_idle + s.workers_busy, s.workers_alive, "{s:?}");
}

#[test]
fn thread_pool_counts_each_outcome() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(2)
        .build()
        .unwrap();
    let before = pool.stats();
    assert_eq!(before.tasks_submitted, 0);
    assert_eq!(before.workers_alive, 0);
    assert!(before.started_unix_ms > 0);
    for i in 0..5u64 {
        assert_eq!(pool.submit(move || i).unwrap().result(), Ok(i));
    }
    for _ in 0..3 {
        assert!(
            pool.submit(fallible(|| "x".parse::<u32>()))
                .unwrap()
                .exception()
                .is_some()
        );
    }
    for _ in 0..2 {
        let f = pool.submit(|| -> u32 { panic!("task panics") }).unwrap();
        assert!(f.exception().unwrap().is_panic());
    }
    // Hold both workers, queue four more, cancel one of them with
    // Future::cancel and the other three with shutdown(cancel_futures).
    // The gate opens when `_open` drops, too: a failed assertion below
    // then ends the test instead of leaving the pool's drop waiting for
    // the held workers.
    let gate = Arc::new(Event::new());
    let _open = Open(gate.clone());
    let held: Vec<_> = (0..2)
        .map(|_| {
            let gate = gate.clone();
            pool.submit(move || {
                gate.wait();
            })
            .unwrap()
        })
        .collect();
    // Both held tasks started (a future completes before its worker
    // counts the task finished, so `tasks_running` alone can still count
    // an earlier task while one held task waits in the queue).
    until("both tasks running", || {
        held.iter().all(|f| f.running()) && pool.stats().tasks_running == 2
    });
    let queued: Vec<_> = (0..4).map(|i| pool.submit(move || i).unwrap()).collect();
    let s = pool.stats();
    assert_eq!((s.tasks_running, s.tasks_pending), (2, 4), "{s:?}");
    assert_eq!((s.workers_busy, s.workers_idle, s.workers_alive), (2, 0, 2));
    assert_balanced(&s);
    assert!(queued[0].cancel());
    // Cancel the queue before the held tasks end (so no worker takes it).
    pool.shutdown(false, true);
    gate.set();
    pool.shutdown(true, false);
    for f in held {
        f.result().unwrap();
    }
    assert!(queued.iter().all(|f| f.cancelled()));
    let s = pool.stats();
    assert_eq!(s.tasks_submitted, 5 + 3 + 2 + 2 + 4);
    assert_eq!(s.tasks_completed, 5 + 2);
    assert_eq!(s.tasks_failed, 3);
    assert_eq!(s.tasks_panicked, 2);
    assert_eq!(s.tasks_cancelled, 4);
    assert_eq!((s.tasks_pending, s.tasks_running), (0, 0));
    assert_eq!((s.workers_lost, s.tasks_retried), (0, 0));
    assert_eq!(s.workers_alive, 0, "shut down and joined");
    // Timing is off by default.
    assert_eq!((s.task_time_samples, s.task_time_p50_ns), (0, None));
    assert_balanced(&s);
}

#[test]
fn thread_pool_cancelled_while_queued_counts_once_discarded() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let go = Arc::new(Event::new());
    let g = go.clone();
    let held = pool.submit(move || g.wait()).unwrap();
    until("the task running", || pool.stats().tasks_running == 1);
    let queued = pool.submit(|| 1).unwrap();
    assert!(queued.cancel());
    go.set();
    held.result().unwrap();
    // The worker reaches the cancelled task, discards it, and is idle.
    until("the cancelled task discarded", || {
        let s = pool.stats();
        s.tasks_cancelled == 1 && s.workers_idle == 1
    });
    let s = pool.stats();
    assert_eq!((s.tasks_completed, s.tasks_pending), (1, 0), "{s:?}");
    assert_balanced(&s);
}

#[test]
fn thread_pool_histogram_brackets_task_times() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(2)
        .task_timing(true)
        .build()
        .unwrap();
    let futs: Vec<_> = (0..6)
        .map(|_| {
            pool.submit(|| std::thread::sleep(Duration::from_millis(20)))
                .unwrap()
        })
        .collect();
    for f in futs {
        f.result().unwrap();
    }
    until("all six timed", || pool.stats().task_time_samples == 6);
    let s = pool.stats();
    let (p50, p99, mean) = (
        s.task_time_p50_ns.unwrap(),
        s.task_time_p99_ns.unwrap(),
        s.task_time_mean_ns.unwrap(),
    );
    // A bucket's upper bound is at least the true time, at most twice it.
    assert!(p50 >= 20_000_000 && p99 >= p50, "{s:?}");
    assert!(mean >= 20_000_000, "{s:?}");
    assert!(p99 <= 20_000_000_000, "{s:?}");
}

#[test]
fn stats_serialize() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    pool.submit(|| ()).unwrap().result().unwrap();
    let s = pool.stats();
    let bytes = postcard::to_allocvec(&s).unwrap();
    assert_eq!(postcard::from_bytes::<PoolStats>(&bytes).unwrap(), s);
    let q = QueueStats::clone(&Queue::<u8>::new().stats());
    let bytes = postcard::to_allocvec(&q).unwrap();
    assert_eq!(postcard::from_bytes::<QueueStats>(&bytes).unwrap(), q);
}

#[test]
fn process_pool_counts_each_outcome() {
    let p = ProcessPoolExecutor::builder()
        .max_workers(2)
        .prefetch(0)
        .max_payload(1024)
        .build()
        .unwrap();
    for i in 0..5 {
        assert_eq!(p.submit(double::call(i)).unwrap().result(), Ok(i * 2));
    }
    for i in 0..2 {
        assert!(
            p.submit(boom::call(i))
                .unwrap()
                .exception()
                .unwrap()
                .is_panic()
        );
    }
    // Arguments over the payload limit: refused by submit, not counted.
    let big = "x".repeat(4096);
    assert!(p.submit(wait_for_file::call(big)).is_err());
    // A result over the limit: the worker answers TooLarge, a failure.
    let e = p
        .submit(big_result::call(4096))
        .unwrap()
        .exception()
        .unwrap();
    assert!(e.is_too_large(), "{e:?}");
    // Hold both workers; the tasks queued behind them are pending.
    let gate = temp_path("gate");
    let held: Vec<_> = (0..2)
        .map(|_| {
            p.submit(wait_for_file::call(gate.display().to_string()))
                .unwrap()
        })
        .collect();
    until("both tasks running", || p.stats().tasks_running == 2);
    let queued: Vec<_> = (0..3).map(|i| p.submit(double::call(i)).unwrap()).collect();
    let s = p.stats();
    assert_eq!((s.tasks_running, s.tasks_pending), (2, 3), "{s:?}");
    assert_eq!((s.workers_busy, s.workers_idle, s.workers_alive), (2, 0, 2));
    assert_balanced(&s);
    assert!(queued[0].cancel());
    std::fs::write(&gate, b"").unwrap();
    for f in &held {
        assert_eq!(f.result(), Ok(1));
    }
    assert_eq!(queued[1].result(), Ok(2));
    assert_eq!(queued[2].result(), Ok(4));
    std::fs::remove_file(&gate).unwrap();
    let s = p.stats();
    assert_eq!(s.tasks_submitted, 5 + 2 + 1 + 2 + 3);
    assert_eq!(s.tasks_completed, 5 + 2 + 2);
    assert_eq!(s.tasks_panicked, 2);
    assert_eq!(s.tasks_failed, 1);
    assert_eq!(s.tasks_cancelled, 1);
    assert_eq!((s.tasks_pending, s.tasks_running), (0, 0));
    assert_eq!((s.workers_lost, s.tasks_retried), (0, 0));
    // Every answered task is timed (the engine's own measure).
    assert_eq!(s.task_time_samples, 5 + 2 + 1 + 2 + 2);
    assert_balanced(&s);
    // Shut down with cancel_futures: the queued tasks count as cancelled.
    let gate = temp_path("gate2");
    let held: Vec<_> = (0..2)
        .map(|_| {
            p.submit(wait_for_file::call(gate.display().to_string()))
                .unwrap()
        })
        .collect();
    until("both tasks running again", || p.stats().tasks_running == 2);
    let queued: Vec<_> = (0..3).map(|i| p.submit(double::call(i)).unwrap()).collect();
    p.shutdown(false, true);
    std::fs::write(&gate, b"").unwrap();
    for f in &held {
        assert_eq!(f.result(), Ok(1));
    }
    assert!(queued.iter().all(|f| f.cancelled()));
    p.shutdown(true, false);
    std::fs::remove_file(&gate).unwrap();
    let s = p.stats();
    assert_eq!(s.tasks_cancelled, 1 + 3, "{s:?}");
    assert_eq!(s.tasks_completed, 9 + 2);
    assert_eq!(s.workers_alive, 0);
    assert_balanced(&s);
}

#[test]
fn pool_counts_each_outcome() {
    let pool = Pool::builder().processes(2).build().unwrap();
    assert_eq!(pool.apply(double::call(4)), Ok(8));
    assert!(pool.apply(boom::call(1)).unwrap_err().is_panic());
    // 10 items in chunks of 3: four tasks.
    let out = pool.map_chunked(double::call, 0..10u64, 3).unwrap();
    assert_eq!(out, (0..10).map(|i| i * 2).collect::<Vec<_>>());
    // A chunk with a panicking item counts once, as panicked.
    assert!(pool.map_chunked(boom::call, 0..2u64, 2).is_err());
    let s = pool.stats();
    assert_eq!(s.tasks_submitted, 1 + 1 + 4 + 1, "{s:?}");
    assert_eq!(s.tasks_completed, 1 + 4);
    assert_eq!(s.tasks_panicked, 2);
    assert_eq!((s.tasks_failed, s.tasks_cancelled), (0, 0));
    assert_eq!(s.workers_alive, 2);
    assert_eq!(s.task_time_samples, 7);
    assert_balanced(&s);
}

#[test]
fn process_pool_histogram_brackets_task_times() {
    let pool = Pool::builder().processes(2).build().unwrap();
    let out = pool
        .executor()
        .map_with(sleep_then::call, vec![20u64; 6], MapOptions::new())
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    assert_eq!(out, vec![20; 6]);
    let s = pool.stats();
    assert_eq!(s.task_time_samples, 6, "{s:?}");
    assert!(s.task_time_p50_ns.unwrap() >= 20_000_000, "{s:?}");
    assert!(s.task_time_mean_ns.unwrap() >= 10_000_000, "{s:?}");
    assert!(s.task_time_p99_ns.unwrap() <= 20_000_000_000, "{s:?}");
}

#[test]
fn stats_count_lost_workers() {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let p = ProcessPoolExecutor::builder()
        .max_workers(1)
        .retries(1)
        .on_task_start(move |t| {
            tx.lock().unwrap().send(t.pid).ok();
        })
        .build()
        .unwrap();
    let flag = temp_path("lost");
    let f = p
        .submit(block_first_run::call(flag.display().to_string()))
        .unwrap();
    let pid = rx.recv_timeout(common::LONG).expect("the task started");
    // The task itself says it runs (it made the flag), then its worker dies.
    until("the task running in its worker", || flag.exists());
    assert_eq!(p.stats().tasks_running, 1);
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    assert_eq!(f.result(), Ok(7), "the retry answers");
    std::fs::remove_file(&flag).unwrap();
    let s = p.stats();
    assert_eq!((s.workers_lost, s.tasks_retried), (1, 1), "{s:?}");
    assert_eq!(
        (s.tasks_submitted, s.tasks_completed, s.tasks_failed),
        (1, 1, 0)
    );
    assert_balanced(&s);
}

#[test]
fn queue_stats_are_exact() {
    fn check(s: QueueStats, qsize: u64, unfinished: u64, puts: u64, gets: u64) {
        assert_eq!(
            (s.qsize, s.unfinished, s.puts, s.gets),
            (qsize, unfinished, puts, gets),
            "{s:?}"
        );
    }
    let q = Queue::with_maxsize(3);
    check(q.stats(), 0, 0, 0, 0);
    for i in 0..3 {
        q.put(i).unwrap();
    }
    assert!(q.try_put(9).is_err(), "full: a refused put is not counted");
    check(q.stats(), 3, 3, 3, 0);
    q.get().unwrap();
    q.get().unwrap();
    q.task_done().unwrap();
    check(q.stats(), 1, 2, 3, 2);
    q.put(5).unwrap();
    // An immediate shutdown drops the two items and counts them done.
    q.shutdown(true);
    check(q.stats(), 0, 1, 4, 2);

    let q = LifoQueue::new();
    for i in 0..4 {
        q.put(i).unwrap();
    }
    q.get().unwrap();
    q.task_done().unwrap();
    check(q.stats(), 3, 3, 4, 1);
    q.shutdown(true);
    check(q.stats(), 0, 0, 4, 1);
    let q = PriorityQueue::new();
    q.put(3).unwrap();
    q.put(1).unwrap();
    assert_eq!(q.get().unwrap(), 1);
    check(q.stats(), 1, 2, 2, 1);

    let q = spindle::ipc::Queue::<u64>::with_maxsize(4).unwrap();
    for i in 0..4 {
        q.put(i).unwrap();
    }
    q.get().unwrap();
    q.task_done().unwrap();
    check(q.stats(), 3, 3, 4, 1);
    for _ in 0..3 {
        q.get().unwrap();
    }
    check(q.stats(), 0, 3, 4, 4);
}

#[test]
fn queue_stats_across_threads() {
    let q = Queue::with_maxsize(8);
    let n = 10_000u64;
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..n {
                q.put(i).unwrap();
            }
        });
        s.spawn(|| {
            for _ in 0..n {
                q.get().unwrap();
                q.task_done().unwrap();
            }
        });
    });
    let s = q.stats();
    assert_eq!((s.qsize, s.unfinished, s.puts, s.gets), (0, 0, n, n));
}
