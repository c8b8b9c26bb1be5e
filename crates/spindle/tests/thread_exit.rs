//! Daemon semantics at process exit, mirroring CPython's
//! `test_threading.ThreadJoinOnShutdown` and `test_join_nondaemon_on_shutdown`:
//! when `main` returns, the process waits for non-daemon threads and not for
//! daemon threads.
//!
//! This test has its own `main` (`harness = false` in Cargo.toml) so that
//! the children really return from `main` with no line added to it. The
//! parent re-executes this binary with `SPINDLE_EXIT_CHILD=<mode>` and reads
//! the child's output.

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use spindle::thread::{self, StopSource, Thread};

const MODE: &str = "SPINDLE_EXIT_CHILD";

fn main() {
    match std::env::var(MODE).ok().as_deref() {
        None => parent(),
        Some("nondaemon") => child_nondaemon(),
        Some("nested") => child_nested(),
        Some("daemon") => child_daemon(),
        Some("process_exit") => child_process_exit(),
        Some("fork") => child_fork(),
        Some(other) => panic!("unknown mode {other}"),
    }
}

/// A non-daemon thread outlives `main`: it waits until `main` has returned
/// (`main_thread().join()` returns once the exit hook runs), then prints.
fn child_nondaemon() {
    let t = Thread::new(|| {
        thread::main_thread().join().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        println!("worker: finished after main returned");
    });
    assert!(!t.is_daemon(), "threads started from main are non-daemon");
    t.start().unwrap();
    println!("main: returning");
}

/// A non-daemon thread started by a non-daemon thread after `main` returned
/// is waited for too.
fn child_nested() {
    thread::spawn(|| {
        thread::main_thread().join().unwrap();
        let outer = thread::current_thread();
        let inner = Thread::builder().name("inner").build(move || {
            outer.join().unwrap();
            std::thread::sleep(Duration::from_millis(50));
            println!("inner: finished");
        });
        assert!(!inner.is_daemon());
        inner.start().unwrap();
        println!("outer: started inner");
    })
    .unwrap();
    println!("main: returning");
}

/// Only a daemon thread, blocked forever: the process exits without it.
fn child_daemon() {
    let stop = StopSource::new(); // never stopped
    let token = stop.token();
    let (tx, rx) = std::sync::mpsc::channel();
    let h = Thread::builder()
        .daemon(true)
        .spawn(move || {
            println!("daemon: started");
            tx.send(()).unwrap();
            token.wait();
            println!("daemon: finished");
        })
        .unwrap();
    rx.recv().unwrap();
    assert!(h.is_alive());
    std::mem::forget(stop);
    println!("main: returning");
}

/// `std::process::exit` also waits for non-daemon threads (Python's
/// `sys.exit` does), and keeps the exit code.
fn child_process_exit() {
    thread::spawn(|| {
        thread::main_thread().join().unwrap();
        println!("worker: finished after exit was called");
    })
    .unwrap();
    println!("main: exiting with 3");
    std::process::exit(3);
}

/// After `fork()`, the child has none of the parent's threads: a running
/// non-daemon thread of the parent is not alive, not listed, joins at once,
/// and the child's exit does not wait for it (Python's `_after_fork`).
#[cfg(unix)]
fn child_fork() {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let t = Thread::builder().name("parent-worker").build(move || {
        let _ = rx.recv();
        println!("parent-worker: finished");
    });
    t.start().unwrap();
    assert!(!t.is_daemon());
    // SAFETY: the child only checks a few spindle values, writes to stdout
    // with `libc::write` and exits; no lock the other thread may hold is used.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let ok = !t.is_alive()
            && !thread::enumerate().contains(&t)
            && t.join().is_ok()
            && thread::active_count() == 1;
        let msg: &[u8] = if ok {
            b"forked child: parent's thread absent\n"
        } else {
            b"forked child: WRONG\n"
        };
        // SAFETY: writing a valid buffer to fd 1.
        unsafe { libc::write(1, msg.as_ptr().cast(), msg.len()) };
        std::process::exit(if ok { 7 } else { 1 }); // runs the exit hook
    }
    let started = Instant::now();
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child with a valid status pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            // SAFETY: killing our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("forked child hung at exit");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 7,
        "status {status}"
    );
    println!("main: forked child exited 7");
    tx.send(()).unwrap();
}

#[cfg(not(unix))]
fn child_fork() {
    println!("forked child: parent's thread absent");
    println!("main: forked child exited 7");
    println!("parent-worker: finished");
}

/// Runs this binary in `mode`; kills it and fails after a generous limit.
fn run_child(mode: &str) -> (ExitStatus, String, Duration) {
    let exe = std::env::current_exe().unwrap();
    let started = Instant::now();
    let mut child = Command::new(exe)
        .env(MODE, mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let limit = Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("child {mode} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = started.elapsed();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    (status, out, elapsed)
}

fn parent() {
    let (status, out, _) = run_child("nondaemon");
    assert!(status.success(), "{status}: {out}");
    assert_eq!(
        out,
        "main: returning\nworker: finished after main returned\n"
    );
    println!("ok: non-daemon thread waited for after main returned");

    let (status, out, _) = run_child("nested");
    assert!(status.success(), "{status}: {out}");
    assert_eq!(
        out,
        "main: returning\nouter: started inner\ninner: finished\n"
    );
    println!("ok: non-daemon thread started during exit waited for");

    let (status, out, elapsed) = run_child("daemon");
    assert!(status.success(), "{status}: {out}");
    assert_eq!(out, "daemon: started\nmain: returning\n");
    assert!(
        elapsed < Duration::from_secs(30),
        "daemon child took {elapsed:?}"
    );
    println!("ok: daemon thread not waited for ({elapsed:?})");

    let (status, out, _) = run_child("process_exit");
    assert_eq!(status.code(), Some(3), "{out}");
    assert_eq!(
        out,
        "main: exiting with 3\nworker: finished after exit was called\n"
    );
    println!("ok: std::process::exit waits for non-daemon threads");

    let (status, out, _) = run_child("fork");
    assert!(status.success(), "{status}: {out}");
    assert_eq!(
        out,
        "forked child: parent's thread absent\nmain: forked child exited 7\nparent-worker: finished\n"
    );
    println!("ok: a forked child neither lists nor waits for the parent's threads");
}
