//! Process pools never hang: workers killed, aborted or crashed mid-task, a
//! task over its time limit, and a chaos run — 2,000 short tasks while 20
//! workers are killed at random moments — and a worker that runs out of
//! memory. (Python's `Pool` hangs forever in these cases and its
//! `ProcessPoolExecutor` breaks for good.) Every test that could hang has a
//! watchdog that aborts the run instead.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, raise};
use nix::unistd::Pid;
use spindle::futures::{Executor, FutureError, as_completed};
use spindle::process::{Pool, ProcessPoolExecutor};

use common::sleep_ms;

#[spindle::task]
fn work(n: u64) -> u64 {
    std::thread::sleep(Duration::from_micros(500 + n % 7 * 100));
    n * 3
}

#[spindle::task]
fn die(how: String) -> u64 {
    match how.as_str() {
        "kill" => {
            raise(Signal::SIGKILL).ok();
        }
        "segv" => {
            raise(Signal::SIGSEGV).ok();
        }
        "abort" => std::process::abort(),
        _ => std::process::exit(3),
    }
    unreachable!()
}

/// Runs out of memory: the address space is capped (RLIMIT_AS) well below
/// what the task then asks for, so the allocation fails and Rust aborts the
/// process ("memory allocation failed"), as a worker that exhausts memory
/// does. (The kernel's OOM killer sends SIGKILL instead: the "kill" case.)
#[spindle::task]
fn exhaust_memory(mib: u64) -> u64 {
    let mut cap = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` through a valid pointer.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut cap) }, 0);
    // A soft limit at or below the hard one is always allowed: the cap is
    // certain, so the task can never really exhaust the machine's memory.
    cap.rlim_cur = (64 << 20).min(cap.rlim_max);
    // SAFETY: setrlimit reads one valid `rlimit`; it only limits this
    // process's later allocations.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &cap) }, 0);
    let mut hog: Vec<Vec<u8>> = Vec::new();
    for _ in 0..mib {
        hog.push(vec![1u8; 1 << 20]);
    }
    hog.len() as u64
}

/// Allocates and fills `mib` MiB, then frees them.
#[spindle::task]
fn allocate(mib: u64) -> u64 {
    let hog: Vec<Vec<u8>> = (0..mib).map(|_| vec![1u8; 1 << 20]).collect();
    hog.iter().map(|v| v.len() as u64).sum::<u64>() >> 20
}

/// Kills its own worker the first time (when `flag` does not exist yet, it
/// creates it), then returns 7: proof that a retry ran it again.
#[spindle::task]
fn die_once(flag: String) -> u64 {
    if std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&flag)
        .is_ok()
    {
        raise(Signal::SIGKILL).ok();
    }
    7
}

/// An initializer that fails once `flag` exists: the first workers start,
/// a replacement does not.
#[spindle::task]
fn init_unless(flag: String) {
    assert!(
        !std::path::Path::new(&flag).exists(),
        "the replacement's initializer fails on purpose"
    );
}

#[test]
fn dying_worker_fails_its_task_with_worker_lost_and_is_replaced() {
    let _hang = Watchdog::new(Duration::from_secs(120));
    let p = ProcessPoolExecutor::builder()
        .max_workers(2)
        .build()
        .unwrap();
    for (how, code) in [("kill", -9), ("segv", -11), ("abort", -6), ("exit", 3)] {
        let e = p
            .submit(die::call(how.into()))
            .unwrap()
            .result()
            .unwrap_err();
        let FutureError::WorkerLost(w) = &e else {
            panic!("{how}: {e:?}")
        };
        assert_eq!(w.exitcode(), Some(code), "{how}");
        assert!(!w.is_task_timeout());
        // The pool keeps serving.
        assert_eq!(p.submit(work::call(2)).unwrap().result(), Ok(6));
    }
    // One task at a time: workers start on demand, so one slot served them
    // all, its worker replaced after each death.
    assert!(p.wait_for_workers_timeout(1, Duration::from_secs(10)));
    assert_eq!(p.workers_lost(), 4);
}

#[test]
fn a_worker_out_of_memory_is_lost_and_replaced() {
    let _hang = Watchdog::new(Duration::from_secs(120));
    let p = Pool::new(2).unwrap();
    let others: Vec<_> = (0..10)
        .map(|i| p.apply_async(work::call(i)).unwrap())
        .collect();
    let e = p.apply(exhaust_memory::call(4096)).unwrap_err();
    let spindle::futures::FutureError::WorkerLost(w) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(w.exitcode(), Some(-6), "aborted on the failed allocation");
    for (i, r) in others.into_iter().enumerate() {
        assert_eq!(r.get(), Ok(i as u64 * 3));
    }
    // The cap died with its worker: memory-hungry work runs again, on the
    // survivor or the replacement.
    assert!(p.wait_for_workers_timeout(2, Duration::from_secs(20)));
    for _ in 0..4 {
        assert_eq!(p.apply(allocate::call(256)), Ok(256));
    }
    assert_eq!(p.apply(work::call(4)), Ok(12));
}

// A replacement worker whose initializer fails breaks the pool with that
// reason — queued tasks fail, new submissions are refused — instead of
// leaving the pool one worker short, or hanging.
#[test]
fn a_replacement_that_cannot_start_breaks_the_pool_clearly() {
    let _hang = Watchdog::new(Duration::from_secs(120));
    let flag = std::env::temp_dir().join(format!("spindle-init-flag-{}", std::process::id()));
    let _ = std::fs::remove_file(&flag);
    let p = ProcessPoolExecutor::builder()
        .max_workers(1)
        .initializer(init_unless::call(flag.display().to_string()))
        .build()
        .unwrap();
    assert_eq!(p.submit(work::call(1)).unwrap().result(), Ok(3));
    std::fs::write(&flag, b"").unwrap();
    let victim = p.submit(sleep_ms::call(60_000)).unwrap();
    let queued = p.submit(work::call(2)).unwrap();
    while !victim.running() {
        std::thread::yield_now();
    }
    let pid = p.worker_pids()[0];
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    assert!(victim.result().unwrap_err().is_worker_lost());
    let e = queued.result().unwrap_err();
    let FutureError::BrokenPool(b) = &e else {
        panic!("{e:?}")
    };
    assert!(b.reason().contains("fails on purpose"), "{b:?}");
    assert!(p.submit(work::call(3)).unwrap_err().is_broken());
    std::fs::remove_file(&flag).unwrap();
}

#[test]
fn other_tasks_survive_a_death() {
    let _hang = Watchdog::new(Duration::from_secs(120));
    let p = Pool::new(2).unwrap();
    let before: Vec<_> = (0..20)
        .map(|i| p.apply_async(work::call(i)).unwrap())
        .collect();
    let bad = p.apply_async(die::call("kill".into())).unwrap();
    let after: Vec<_> = (20..40)
        .map(|i| p.apply_async(work::call(i)).unwrap())
        .collect();
    assert!(bad.get().unwrap_err().is_worker_lost());
    for (i, r) in before.into_iter().chain(after).enumerate() {
        assert_eq!(r.get(), Ok(i as u64 * 3));
    }
}

#[test]
fn task_timeout_kills_and_replaces_the_worker() {
    let _hang = Watchdog::new(Duration::from_secs(120));
    let p = ProcessPoolExecutor::builder()
        .max_workers(1)
        .task_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let t0 = Instant::now();
    let e = p
        .submit(sleep_ms::call(60_000))
        .unwrap()
        .result()
        .unwrap_err();
    assert!(e.is_task_timeout(), "{e:?}");
    assert!(e.is_worker_lost());
    assert!(t0.elapsed() >= Duration::from_millis(200));
    assert!(t0.elapsed() < Duration::from_secs(30));
    assert_eq!(p.submit(sleep_ms::call(1)).unwrap().result(), Ok(1));
}

#[test]
fn retries_rerun_a_task_whose_worker_died() {
    let _hang = Watchdog::new(Duration::from_secs(120));
    let p = ProcessPoolExecutor::builder()
        .max_workers(2)
        .retries(2)
        .build()
        .unwrap();
    // Kill the worker running a long task; with retries it runs again.
    let f = p.submit(sleep_ms::call(300)).unwrap();
    while !f.running() {
        std::thread::yield_now();
    }
    let pids = p.worker_pids();
    // Which worker runs it is not known: kill both (nothing else runs).
    for pid in pids {
        kill(Pid::from_raw(pid as i32), Signal::SIGKILL).ok();
    }
    assert_eq!(f.result(), Ok(300));
    assert!(p.workers_lost() >= 1);
}

#[test]
fn pool_retries_rerun_a_task_whose_worker_died() {
    let _hang = Watchdog::new(Duration::from_secs(120));
    let flag = std::env::temp_dir().join(format!("spindle-die-once-{}", std::process::id()));
    let _ = std::fs::remove_file(&flag);
    let p = Pool::builder().processes(1).retries(1).build().unwrap();
    // The first run kills its worker; the retry, on the replacement, answers.
    assert_eq!(p.apply(die_once::call(flag.display().to_string())), Ok(7));
    assert!(flag.exists(), "the first run happened");
    std::fs::remove_file(&flag).unwrap();
    // One retry only: a task that kills its worker every time is lost.
    let e = p.apply(die::call("kill".into())).unwrap_err();
    assert!(e.is_worker_lost(), "{e:?}");
}

// Tasks sent ahead to a worker that dies never started: they run elsewhere
// (here: on the replacement), only the running one is lost.
#[test]
fn prefetched_tasks_of_a_dead_worker_are_requeued() {
    let _hang = Watchdog::new(Duration::from_secs(120));
    let p = ProcessPoolExecutor::builder()
        .max_workers(1)
        .prefetch(3)
        .build()
        .unwrap();
    let victim = p.submit(sleep_ms::call(60_000)).unwrap();
    while !victim.running() {
        std::thread::yield_now();
    }
    let queued: Vec<_> = (0..3).map(|i| p.submit(work::call(i)).unwrap()).collect();
    // All three were sent ahead to the busy worker (prefetch 3).
    assert!(queued.iter().all(|f| f.running()));
    let pid = p.worker_pids()[0];
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    assert!(victim.result().unwrap_err().is_worker_lost());
    for (i, f) in queued.iter().enumerate() {
        assert_eq!(f.result(), Ok(i as u64 * 3));
    }
    assert_eq!(p.workers_lost(), 1);
}

/// Fails the whole test run (abort, with a message) if it is not dropped
/// within `limit`: a pool that hangs must not stall CI.
struct Watchdog(Option<std::sync::mpsc::Sender<()>>);

impl Watchdog {
    fn new(limit: Duration) -> Watchdog {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
                eprintln!("pool_chaos: a test hung for {limit:?}");
                std::process::abort();
            }
        });
        Watchdog(Some(tx))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.0.take());
    }
}

/// A tiny xorshift generator (no `rand` dependency).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn chaos(retries: u32) {
    const TASKS: u64 = 2_000;
    const KILLS: usize = 20;
    const WORKERS: usize = 4;
    let p = ProcessPoolExecutor::builder()
        .max_workers(WORKERS)
        .retries(retries)
        .build()
        .unwrap();
    let finished = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let submit = |i: u64| {
        let f = p.submit(work::call(i)).unwrap();
        let finished = finished.clone();
        f.add_done_callback(move |_| {
            finished.fetch_add(1, Ordering::SeqCst);
        });
        f
    };
    let mut futs: Vec<_> = (0..TASKS).map(submit).collect();
    let _hang = Watchdog::new(Duration::from_secs(300));
    let killed_all = AtomicBool::new(false);
    let (ok, lost, killed) = std::thread::scope(|s| {
        let killer = s.spawn(|| {
            let seed = u64::from(std::process::id()) | 1;
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            // Each worker is killed once at most: a dead worker's pid stays
            // listed until its slot thread has seen it die, and a second
            // signal to it (or to its zombie) would count a kill that
            // killed nothing.
            let mut victims = std::collections::HashSet::new();
            while victims.len() < KILLS {
                std::thread::sleep(Duration::from_micros(rng.next() % 10_000));
                let live: Vec<u32> = p
                    .worker_pids()
                    .into_iter()
                    .filter(|pid| !victims.contains(pid))
                    .collect();
                if live.is_empty() {
                    continue;
                }
                let pid = live[(rng.next() % live.len() as u64) as usize];
                if kill(Pid::from_raw(pid as i32), Signal::SIGKILL).is_ok() {
                    victims.insert(pid);
                }
            }
            killed_all.store(true, Ordering::SeqCst);
            victims.len()
        });
        // Every kill lands while tasks run: should the 2,000 run out first
        // (a slow machine), more are fed, a few dozen in flight at a time.
        while !killed_all.load(Ordering::SeqCst) {
            if futs.len() - finished.load(Ordering::SeqCst) < 2 * WORKERS {
                let next = futs.len() as u64;
                futs.extend((next..next + 4 * WORKERS as u64).map(submit));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut ok = 0;
        let mut lost = 0;
        for f in as_completed(&futs) {
            match f.result() {
                Ok(_) => ok += 1,
                Err(FutureError::WorkerLost(_)) => lost += 1,
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        (ok, lost, killer.join().unwrap())
    });
    assert!(futs.len() >= TASKS as usize);
    assert_eq!(ok + lost, futs.len());
    assert_eq!(killed, KILLS);
    assert!(lost <= killed, "lost {lost} > killed {killed}");
    if retries == 0 {
        // Every kill hit a running task or an idle worker; all ended.
        assert!(p.workers_lost() as usize <= killed);
    }
    for (i, f) in futs.iter().enumerate() {
        if let Ok(v) = f.result() {
            assert_eq!(v, i as u64 * 3);
        }
    }
    // Back to full size, and still serving.
    assert!(p.wait_for_workers_timeout(WORKERS, Duration::from_secs(20)));
    assert_eq!(p.submit(work::call(5)).unwrap().result(), Ok(15));
    eprintln!(
        "chaos(retries={retries}): {} tasks, ok {ok}, lost {lost}, killed {killed}",
        futs.len()
    );
}

#[test]
fn chaos_2000_tasks_20_kills() {
    chaos(0);
}

#[test]
fn chaos_with_retries() {
    chaos(3);
}

// The pool says which worker a task started on, so a test (or a user) can
// kill exactly that worker: the task is then lost or, with retries, re-run.
#[test]
fn on_task_start_names_the_worker_a_lost_task_was_running_on() {
    let _hang = Watchdog::new(Duration::from_secs(120));
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let p = ProcessPoolExecutor::builder()
        .max_workers(1)
        .retries(1)
        .on_task_start(move |s| {
            tx.lock().unwrap().send((s.pid, s.task)).ok();
        })
        .build()
        .unwrap();
    let f = p.submit(sleep_ms::call(200)).unwrap();
    let (pid, task) = rx.recv().unwrap();
    assert_eq!(p.worker_pids(), [pid]);
    assert!(task.ends_with("sleep_ms"), "{task}");
    // Killed whether it has read the task yet or not: the task counts as
    // started, so it is re-run (once) on the replacement.
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    assert_eq!(f.result(), Ok(200));
    let (again, _) = rx.recv().unwrap();
    assert_ne!(again, pid, "the retry ran on the replacement");
    assert_eq!((p.workers_lost(), p.tasks_retried()), (1, 1));
    // Past its retries, the task fails with the reason.
    let f = p.submit(sleep_ms::call(60_000)).unwrap();
    let (pid, _) = rx.recv().unwrap();
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    let (pid, _) = rx.recv().unwrap();
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    assert!(f.result().unwrap_err().is_worker_lost());
    assert_eq!((p.workers_lost(), p.tasks_retried()), (3, 2));
    // Tasks sent ahead are reported once each, when they start.
    let n = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let p = ProcessPoolExecutor::builder()
        .max_workers(1)
        .prefetch(4)
        .on_task_start({
            let n = n.clone();
            move |_| {
                n.fetch_add(1, Ordering::SeqCst);
            }
        })
        .build()
        .unwrap();
    let fs: Vec<_> = (0..20).map(|i| p.submit(work::call(i)).unwrap()).collect();
    for f in fs {
        f.result().unwrap();
    }
    // Each is reported before its answer is handed out.
    assert_eq!(n.load(Ordering::SeqCst), 20);
    assert_eq!(p.tasks_retried(), 0);
}

// `Pool` forwards the hook and the counts of the executor it wraps.
#[test]
fn pool_on_task_start_and_tasks_retried() {
    let _hang = Watchdog::new(Duration::from_secs(120));
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let p = Pool::builder()
        .processes(1)
        .retries(1)
        .on_task_start(move |s| {
            tx.lock().unwrap().send((s.pid, s.task)).ok();
        })
        .build()
        .unwrap();
    let r = p.apply_async(sleep_ms::call(200)).unwrap();
    let (pid, task) = rx.recv().unwrap();
    assert!(task.ends_with("sleep_ms"), "{task}");
    assert_eq!((p.workers_lost(), p.tasks_retried()), (0, 0));
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    assert_eq!(r.get(), Ok(200));
    let (again, _) = rx.recv().unwrap();
    assert_ne!(again, pid, "the retry ran on the replacement");
    assert_eq!((p.workers_lost(), p.tasks_retried()), (1, 1));
}
