//! Tour section `pool`: process pools that never hang — map over a Pool,
//! then a worker killed on purpose in the middle of a task: the task fails
//! with `WorkerLost`, the other tasks go on, the pool is back to full size.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use spindle::futures::{Executor, FutureError};
use spindle::process::{Pool, ProcessPoolExecutor};

use super::Tour;

#[spindle::task]
fn square(x: u64) -> u64 {
    x * x
}

/// Writes its worker's pid to `path`, then works "forever" (until killed).
#[spindle::task]
fn long_job(path: String) -> u64 {
    std::fs::write(&path, std::process::id().to_string()).ok();
    std::thread::sleep(Duration::from_secs(60));
    0
}

#[spindle::task]
fn slow(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

fn read_pid(path: &PathBuf, deadline: Instant) -> Option<u32> {
    while Instant::now() < deadline {
        if let Some(pid) = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.parse().ok())
        {
            return Some(pid);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    None
}

pub(crate) fn run(t: &mut Tour) {
    t.say("Pool(2).map(square, range(20)): the workers are separate processes");
    let pool = match Pool::new(2) {
        Ok(p) => p,
        Err(e) => {
            t.check("a pool of 2 worker processes starts", false, e.to_string());
            return;
        }
    };
    let got = pool.map(square::call, 0..20u64);
    let want: Vec<u64> = (0..20).map(|x| x * x).collect();
    t.check(
        "map returns every result, in input order",
        got.as_ref() == Ok(&want),
        format!("{:?}…", got.as_ref().map(|v| &v[..5])),
    );

    t.say("now a long task, and kill -9 its worker in the middle of it");
    let path = std::env::temp_dir().join(format!("spindle-tour-pool-{}.pid", std::process::id()));
    std::fs::remove_file(&path).ok();
    let before = pool.worker_pids();
    let victim = match pool.apply_async(long_job::call(path.display().to_string())) {
        Ok(r) => r,
        Err(e) => {
            t.check("the long task is accepted", false, e.to_string());
            return;
        }
    };
    let others: Vec<_> = (0..10u64)
        .filter_map(|i| pool.apply_async(slow::call(i)).ok())
        .collect();
    let Some(pid) = read_pid(&path, Instant::now() + Duration::from_secs(5)) else {
        t.check("the long task started", false, "no pid reported");
        return;
    };
    std::fs::remove_file(&path).ok();
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).ok();
    t.say(format!("killed worker {pid} (workers were {before:?})"));
    let err = victim.get_timeout(Duration::from_secs(10));
    let lost = matches!(&err, Err(FutureError::WorkerLost(w)) if w.pid() == pid && w.exitcode() == Some(-9));
    t.check(
        "its task fails with WorkerLost (Python's Pool would hang forever)",
        lost,
        match &err {
            Err(e) => e.to_string(),
            Ok(v) => format!("unexpected value {v}"),
        },
    );
    let others_ok = others
        .iter()
        .enumerate()
        .all(|(i, r)| r.get_timeout(Duration::from_secs(10)) == Ok(i as u64));
    t.check("the 10 other tasks all completed", others_ok, "");
    let next = pool.apply(square::call(12));
    t.check(
        "the next task succeeds",
        next == Ok(144),
        format!("{next:?}"),
    );
    let full = pool.wait_for_workers_timeout(2, Duration::from_secs(5));
    let after = pool.worker_pids();
    t.check(
        "the pool is back to full size with a new worker",
        full && after.len() == 2 && !after.contains(&pid),
        format!("workers now {after:?}"),
    );

    t.say("ProcessPoolExecutor with task_timeout(100 ms): an overrunning task is stopped");
    let Ok(ex) = ProcessPoolExecutor::builder()
        .max_workers(1)
        .task_timeout(Duration::from_millis(100))
        .build()
    else {
        t.check("an executor starts", false, "");
        return;
    };
    let r = ex.submit(slow::call(30_000)).map(|f| f.result());
    let timed_out = matches!(&r, Ok(Err(e)) if e.is_task_timeout());
    t.check(
        "the task fails with a time-limit error, its worker is replaced",
        timed_out && ex.submit(square::call(3)).map(|f| f.result()).ok() == Some(Ok(9)),
        format!("{r:?}"),
    );
}
