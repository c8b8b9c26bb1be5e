//! Tour section `thread`: `spindle::thread`, Python's `threading.Thread` and
//! friends, each result checked.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use spindle::thread::{self, JoinError, Local, StopSource, Thread};

use super::Tour;

/// Set in the environment of the child `spindle tour thread` that shows the
/// daemon semantics at exit.
const CHILD: &str = "SPINDLE_TOUR_THREAD_EXIT_CHILD";
const WORKER_LINE: &str = "worker (non-daemon): finished after main returned";
const DAEMON_LINE: &str = "worker (daemon): finished";
const DAEMON_STARTED: &str = "worker (daemon): started";

pub(crate) fn run(t: &mut Tour) {
    if std::env::var_os(CHILD).is_some() {
        start_exit_threads();
        return;
    }
    basics(t);
    join_timeout_and_panics(t);
    enumerate(t);
    stop_token(t);
    local(t);
    daemon_at_exit(t);
}

fn basics(t: &mut Tour) {
    t.say("Thread::new + start + join, as threading.Thread(target=...).start(); .join()");
    let th = Thread::builder().name("countdown").build(|| {
        for i in (1..=3).rev() {
            println!("    [{}] T-minus {i}", thread::current_thread().name());
        }
    });
    let before = th.is_alive();
    let started = th.start().is_ok();
    let joined = th.join().is_ok();
    t.check(
        "a thread is alive only between start() and its end",
        !before && started && joined && !th.is_alive(),
        format!("before start: {before}, after join: {}", th.is_alive()),
    );
    let again = th.start();
    t.check(
        "starting twice is an error (Python's RuntimeError)",
        again.as_ref().is_err_and(|e| e.is_already_started()),
        again.err().map(|e| e.to_string()).unwrap_or_default(),
    );
    let h = thread::spawn(|| (1..=100u64).sum::<u64>());
    let value = h.map(|h| h.join());
    t.check(
        "join() hands back the closure's value",
        matches!(value, Ok(Ok(5050))),
        format!("{value:?}"),
    );
    let main = thread::main_thread();
    let name = Thread::new(|| {}).name().to_owned();
    t.check(
        "names as in Python: MainThread, Thread-N",
        main.name() == "MainThread" && name.starts_with("Thread-"),
        format!("{}, {name}", main.name()),
    );
}

fn join_timeout_and_panics(t: &mut Tour) {
    t.say("join_timeout returns a typed Timeout instead of making you check is_alive()");
    let stop = StopSource::new();
    let token = stop.token();
    let th = Thread::new(move || token.wait());
    let _ = th.start();
    let t0 = Instant::now();
    let first = th.join_timeout(Duration::from_millis(20));
    let waited = t0.elapsed();
    stop.stop();
    let second = th.join_timeout(Duration::from_secs(60));
    t.check(
        "a blocked thread times out, and joins once released",
        first.as_ref().is_err_and(|e| e.is_timeout())
            && waited >= Duration::from_millis(20)
            && second.is_ok(),
        format!("first: {first:?} after {waited:.1?}, then: {second:?}"),
    );
    let res = quietly_panicking(|| {
        let h = Thread::builder()
            .name(QUIET)
            .spawn(|| -> u32 { panic!("disk on fire") });
        h.map(|h| h.join())
    });
    t.check(
        "a panic comes back from join() with its message",
        matches!(&res, Ok(Err(JoinError::Panicked(m))) if m == "disk on fire"),
        format!("{res:?}"),
    );
}

/// Threads with this name panic on purpose: the panic hook stays silent.
const QUIET: &str = "tour-panics-on-purpose";

/// Runs `f` with a panic hook that does not print the panics of `QUIET` threads.
fn quietly_panicking<R>(f: impl FnOnce() -> R) -> R {
    type Hook = Box<dyn Fn(&std::panic::PanicHookInfo<'_>) + Sync + Send>;
    let prev: Arc<Hook> = Arc::new(std::panic::take_hook());
    let p = Arc::clone(&prev);
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() != Some(QUIET) {
            p(info);
        }
    }));
    let r = f();
    let _ = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| prev(info)));
    r
}

fn enumerate(t: &mut Tour) {
    t.say("current_thread(), enumerate(), active_count()");
    let (tx, rx) = mpsc::channel::<()>();
    let h = Thread::builder()
        .name("listed")
        .spawn(move || {
            let _ = rx.recv();
            thread::current_thread().name().to_owned()
        })
        .expect("spawn");
    let listed = thread::enumerate().contains(h.thread());
    let count = thread::active_count();
    drop(tx);
    let th = h.thread().clone();
    let me = h.join();
    let gone = !thread::enumerate().contains(&th);
    t.check(
        "a running thread is listed, a joined one is not; it knows its name",
        listed && gone && me.as_deref() == Ok("listed"),
        format!("active_count while running: {count}, current_thread: {me:?}"),
    );
}

fn stop_token(t: &mut Tour) {
    t.say("StopSource/StopToken: the Cookbook's CountdownTask.terminate(), without the 5 s sleep");
    let stop = StopSource::new();
    let token = stop.token();
    let (tx, rx) = mpsc::channel();
    let h = thread::spawn(move || {
        let mut n = 10;
        while !token.is_stopped() && n > 0 {
            n -= 1;
            let _ = tx.send(n);
            token.wait_timeout(Duration::from_secs(5)); // time.sleep(5), cut short
        }
        n
    });
    let _ = rx.recv(); // the first tick happened
    let t0 = Instant::now();
    stop.stop();
    let left = h.map(|h| h.join());
    let took = t0.elapsed();
    t.check(
        "terminate() stops the countdown at once, mid-sleep",
        matches!(left, Ok(Ok(n)) if n > 0) && took < Duration::from_secs(5),
        format!("stopped {took:.1?} after terminate(), {left:?} ticks left"),
    );
}

/// Counts live values to show when a `Local` drops them.
struct Tracked(Arc<AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

static STUDENT: Local<String> = Local::new(String::new);

fn local(t: &mut Tour) {
    t.say("Local<T>: threading.local(), one value per thread");
    let handles: Vec<_> = ["Alice", "Bob"]
        .into_iter()
        .map(|name| {
            Thread::builder()
                .name(format!("Thread-{}", &name[..1]))
                .spawn(move || {
                    STUDENT.set(name.to_owned());
                    format!("{} has {}", thread::current_thread().name(), STUDENT.get())
                })
        })
        .collect();
    let seen: Vec<String> = handles
        .into_iter()
        .filter_map(|h| h.ok()?.join().ok())
        .collect();
    t.check(
        "each thread sees its own local.student; main's is untouched",
        seen == ["Thread-A has Alice", "Thread-B has Bob"] && STUDENT.get().is_empty(),
        seen.join(", "),
    );
    let live = Arc::new(AtomicUsize::new(0));
    let l = Arc::new(Local::new(|| None::<Tracked>));
    let (l2, live2) = (Arc::clone(&l), Arc::clone(&live));
    let h = thread::spawn(move || {
        live2.fetch_add(1, Ordering::SeqCst);
        l2.set(Some(Tracked(Arc::clone(&live2))));
    });
    let joined = h.map(|h| h.join().is_ok());
    t.check(
        "a thread's value is dropped when it ends, before join() returns",
        matches!(joined, Ok(true)) && live.load(Ordering::SeqCst) == 0,
        format!("live values after join: {}", live.load(Ordering::SeqCst)),
    );
}

/// In the child: a non-daemon thread that finishes only after `main` has
/// returned, and a daemon thread that never finishes.
fn start_exit_threads() {
    let _ = Thread::builder().daemon(false).spawn(|| {
        let _ = thread::main_thread().join(); // returns once main has returned
        println!("{WORKER_LINE}");
    });
    let (tx, rx) = mpsc::channel();
    let _ = Thread::builder().daemon(true).spawn(move || {
        println!("{DAEMON_STARTED}");
        let _ = tx.send(());
        StopSource::new().token().wait(); // never stopped
        println!("{DAEMON_LINE}");
    });
    let _ = rx.recv(); // the daemon is running when main returns
}

fn daemon_at_exit(t: &mut Tour) {
    t.say("daemon threads: at exit the process waits for non-daemon threads only");
    t.say("(a child `spindle tour thread` starts one of each and returns from main)");
    let Ok(exe) = std::env::current_exe() else {
        t.check("find the spindle binary", false, "current_exe failed");
        return;
    };
    let started = Instant::now();
    let child = Command::new(exe)
        .args(["tour", "thread"])
        .env(CHILD, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        t.check(
            "start the child process",
            false,
            format!("{:?}", child.err()),
        );
        return;
    };
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() < Duration::from_secs(30) => {
                std::thread::sleep(Duration::from_millis(5));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let took = started.elapsed();
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut out);
    }
    let summary = out.find("checks passed");
    let worker = out.find(WORKER_LINE);
    t.check(
        "the non-daemon thread's output appears after main returned",
        status.is_some_and(|s| s.success())
            && matches!((summary, worker), (Some(s), Some(w)) if w > s),
        format!(
            "child exit code {:?} after {took:.1?}",
            status.and_then(|s| s.code())
        ),
    );
    t.check(
        "the daemon thread is not waited for: the child exits without it",
        status.is_some() && out.contains(DAEMON_STARTED) && !out.contains(DAEMON_LINE),
        format!("daemon line printed: {}", out.contains(DAEMON_LINE)),
    );
}
