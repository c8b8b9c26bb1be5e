//! Process tests, ported from CPython's `Lib/test/_test_multiprocessing.py`
//! (`_TestProcess`, `_TestSubclassingProcess`, `TestStartMethod`) and
//! manually rewritten in Rust for spindle. Every child blocks only on a
//! `Connection` the test holds, so a failing test releases its children by
//! unwinding; every join is bounded.

mod common;

use std::time::{Duration, Instant};

use spindle::ipc::{Connection, Pipe};
use spindle::process::{
    Fork, Process, StartMethod, Task, TaskCall, active_children, current_process, fork,
    get_context, parent_process,
};

use common::{LONG, start};

/// The methods tests iterate over.
const METHODS: [StartMethod; 3] = [
    StartMethod::ForkServer,
    StartMethod::Spawn,
    StartMethod::Fork,
];

fn wait_gone(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if common::gone(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

#[spindle::task]
fn check_identity(name: String, parent_pid: u32, authkey: Vec<u8>) {
    let me = current_process();
    assert_eq!(me.name(), name);
    assert_eq!(me.pid(), std::process::id());
    assert!(!me.daemon());
    assert_eq!(me.authkey().unwrap().to_vec(), authkey);
    let parent = parent_process().expect("a child has a parent");
    assert_eq!(parent.pid(), parent_pid);
    assert_eq!(parent.name(), "MainProcess");
}

/// CPython `_TestProcess.test_process`: name, pid, is_alive, exitcode,
/// authkey, current/parent process seen from the child.
#[test]
fn process_basics() {
    for m in METHODS {
        let key = [7u8; 32];
        let mut p = Process::builder()
            .task(check_identity::call(
                "kid".into(),
                std::process::id(),
                key.to_vec(),
            ))
            .name("kid")
            .authkey(key)
            .start_method(m)
            .build();
        assert_eq!(p.exitcode(), None);
        assert!(!p.is_alive());
        assert_eq!(p.pid(), None);
        assert!(p.join().unwrap_err().is_not_started());
        p.start().unwrap();
        assert!(p.start().unwrap_err().is_already_started());
        assert!(p.pid().is_some());
        assert_eq!(p.name(), "kid");
        assert_eq!(p.authkey().unwrap(), key);
        p.join_timeout(LONG).unwrap();
        assert_eq!(p.exitcode(), Some(0), "{m:?}");
        assert!(!p.is_alive());
        assert!(common::gone(p.pid().unwrap()), "reaped after join");
    }
}

#[spindle::task]
fn inherits_authkey(expected: Vec<u8>) {
    assert_eq!(current_process().authkey().unwrap().to_vec(), expected);
}

#[test]
fn authkey_is_inherited_and_default_names_count() {
    let key = current_process().authkey().unwrap().to_vec();
    let mut p = start(inherits_authkey::call(key), StartMethod::ForkServer);
    assert!(p.name().starts_with("Process-"), "{}", p.name());
    p.join_timeout(LONG).unwrap();
}

#[spindle::task]
fn exit_with(code: i32) {
    std::process::exit(code);
}

#[spindle::task]
fn panic_with(msg: String) {
    panic!("{msg}");
}

#[spindle::task]
fn block_on(conn: Connection) {
    // Returns when the test sends or drops its end.
    let _ = conn.recv::<u8>();
}

/// CPython `_TestProcess.test_exitcode` family: normal, failed,
/// sys.exit(n), terminated, killed.
#[test]
fn exitcodes() {
    for m in METHODS {
        let mut p = start(exit_with::call(3), m);
        let e = p.join_timeout(LONG).unwrap_err();
        assert_eq!((e.exitcode(), p.exitcode()), (Some(3), Some(3)), "{m:?}");

        let mut p = start(panic_with::call("boom in child".into()), m);
        let e = p.join_timeout(LONG).unwrap_err();
        assert!(e.is_panic(), "{m:?}: {e}");
        assert_eq!(e.panic_message(), Some("boom in child"));
        assert_eq!(p.exitcode(), Some(1));

        let (_hold, theirs) = Pipe(true).unwrap();
        let mut p = start(block_on::call(theirs), m);
        assert!(p.is_alive());
        p.terminate().unwrap();
        let e = p.join_timeout(LONG).unwrap_err();
        assert_eq!(e.exitcode(), Some(-15), "{m:?}: {e}");
        assert_eq!(p.exitcode(), Some(-15));
        p.terminate().unwrap(); // already ended: no-op, as in Python

        let (_hold, theirs) = Pipe(true).unwrap();
        let mut p = start(block_on::call(theirs), m);
        p.kill().unwrap();
        assert_eq!(p.join_timeout(LONG).unwrap_err().exitcode(), Some(-9));
    }
}

/// CPython `test_lose_target_ref`-style: a child killed before it could read
/// its bootstrap never hangs the parent.
#[test]
fn child_killed_at_once_does_not_hang() {
    for m in [StartMethod::Spawn, StartMethod::ForkServer] {
        let (_hold, theirs) = Pipe(true).unwrap();
        let mut p = start(block_on::call(theirs), m);
        p.kill().unwrap();
        let e = p.join_timeout(LONG).unwrap_err();
        assert_eq!(e.exitcode(), Some(-9), "{m:?}: {e}");
    }
}

/// CPython `_TestProcess.test_terminate` join-timeout part.
#[test]
fn join_timeout_and_is_alive() {
    for m in METHODS {
        let (hold, theirs) = Pipe(true).unwrap();
        let mut p = start(block_on::call(theirs), m);
        let t = Instant::now();
        let e = p.join_timeout(Duration::from_millis(50)).unwrap_err();
        assert!(e.is_timeout());
        assert!(t.elapsed() >= Duration::from_millis(50));
        assert!(p.is_alive());
        assert_eq!(p.exitcode(), None);
        hold.send(&1u8).unwrap();
        p.join_timeout(LONG).unwrap();
        assert!(!p.is_alive());
        assert_eq!(p.exitcode(), Some(0));
    }
}

/// `p.join(0)`: `try_join` never waits, and a running child reads as still
/// running, not as a timeout; `join_deadline` takes an `Instant`.
#[test]
fn try_join_and_join_deadline() {
    for m in METHODS {
        let (hold, theirs) = Pipe(true).unwrap();
        let mut p = start(block_on::call(theirs), m);
        let e = p.try_join().unwrap_err();
        assert!(e.is_still_running() && !e.is_timeout(), "{m:?}: {e}");
        let t = Instant::now();
        let e = p
            .join_deadline(Instant::now() + Duration::from_millis(50))
            .unwrap_err();
        assert!(e.is_timeout() && !e.is_still_running(), "{m:?}: {e}");
        assert!(t.elapsed() >= Duration::from_millis(50));
        hold.send(&1u8).unwrap();
        p.join_deadline(Instant::now() + LONG).unwrap();
        // Ended and reaped: `try_join` reports how, at once.
        p.try_join().unwrap();
        assert_eq!(p.exitcode(), Some(0));

        let mut p = start(exit_with::call(3), m);
        p.join_timeout(LONG).unwrap_err();
        assert_eq!(p.try_join().unwrap_err().exitcode(), Some(3), "{m:?}");
    }
    let mut p = Process::new(exit_with::call(0));
    assert!(p.try_join().unwrap_err().is_not_started());
    assert!(
        p.join_deadline(Instant::now())
            .unwrap_err()
            .is_not_started()
    );
}

#[test]
fn unknown_task_and_bad_args_are_typed_errors() {
    let e = Process::new(TaskCall::from_raw("no::such::task", vec![]))
        .start()
        .unwrap_err();
    assert!(e.is_unknown_task(), "{e}");
    for m in METHODS {
        // A u64 is not a (String,).
        let call = TaskCall::from_raw(<panic_with as Task>::NAME, vec![0xff; 3]);
        let mut p = start(call, m);
        let e = p.join_timeout(LONG).unwrap_err();
        assert!(e.is_arg_decode(), "{m:?}: {e}");
        assert_eq!(p.exitcode(), Some(1));
    }
}

#[spindle::task]
fn daemon_tries_child() {
    assert!(current_process().daemon());
    let e = Process::new(exit_with::call(0)).start().unwrap_err();
    assert!(e.is_daemonic_children());
}

/// CPython: "daemonic processes are not allowed to have children".
#[test]
fn daemon_cannot_have_children() {
    for m in METHODS {
        let mut p = Process::builder()
            .task(daemon_tries_child::call())
            .daemon(true)
            .start_method(m)
            .start()
            .unwrap();
        assert!(p.daemon());
        p.join_timeout(LONG).unwrap();
    }
}

#[spindle::task]
fn middle(report: Connection, hold: Connection, method: u8) {
    let m = StartMethod::all()[method as usize];
    let p = Process::builder()
        .task(block_on::call(hold))
        .daemon(true)
        .start_method(m)
        .start()
        .unwrap();
    report.send(&p.pid().unwrap()).unwrap();
    // Wait for the word to exit normally (or be killed meanwhile).
    let _ = report.recv::<u8>();
}

/// CPython `test_daemon` / `_exit_function`: a daemon child ends with its
/// parent, whether the parent exits normally or is killed (parent-death
/// signal).
#[test]
fn daemon_dies_with_parent() {
    for (mi, m) in StartMethod::all().into_iter().enumerate().take(2) {
        for killed in [false, true] {
            let (report, report_child) = Pipe(true).unwrap();
            let (_hold, hold_child) = Pipe(true).unwrap();
            let mut mid = start(
                middle::call(report_child, hold_child, mi as u8),
                StartMethod::Spawn,
            );
            let daemon_pid: u32 = report.recv().unwrap();
            assert!(!common::gone(daemon_pid));
            if killed {
                mid.kill().unwrap();
                assert_eq!(mid.join_timeout(LONG).unwrap_err().exitcode(), Some(-9));
            } else {
                report.send(&1u8).unwrap();
                mid.join_timeout(LONG).unwrap();
            }
            assert!(
                wait_gone(daemon_pid),
                "{m:?} killed={killed}: daemon survived"
            );
        }
    }
}

/// CPython `test_active_children`.
#[test]
fn active_children_lists_running_ones() {
    let mut procs = Vec::new();
    let mut holds = Vec::new();
    for _ in 0..3 {
        let (hold, theirs) = Pipe(true).unwrap();
        procs.push(start(block_on::call(theirs), StartMethod::ForkServer));
        holds.push(hold);
    }
    let pids: Vec<u32> = procs.iter().map(|p| p.pid().unwrap()).collect();
    let active: Vec<u32> = active_children().iter().map(|c| c.pid).collect();
    assert!(pids.iter().all(|p| active.contains(p)));
    drop(holds);
    for p in &mut procs {
        p.join_timeout(LONG).unwrap();
    }
    let active: Vec<u32> = active_children().iter().map(|c| c.pid).collect();
    assert!(pids.iter().all(|p| !active.contains(p)));
}

/// CPython `test_args_argument`-style with a closure under Fork, and memory
/// isolation (Python's "global n stays 100 in the parent").
#[test]
fn fork_closure_and_isolation() {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(100);
    let (a, b) = Pipe(true).unwrap();
    let mut p = Process::builder()
        .closure(move || {
            N.fetch_add(1, Ordering::SeqCst);
            b.send(&N.load(Ordering::SeqCst)).unwrap();
        })
        .start()
        .unwrap();
    assert_eq!(p.start_method(), Some(StartMethod::Fork));
    assert_eq!(a.recv::<u64>().unwrap(), 101);
    p.join_timeout(LONG).unwrap();
    assert_eq!(N.load(Ordering::SeqCst), 100);
    // The parent's copy of `b` was dropped with the closure: end of file.
    assert!(a.recv::<u64>().unwrap_err().is_eof());

    let mut p = Process::builder()
        .closure(|| panic!("closure failed"))
        .start()
        .unwrap();
    assert_eq!(
        p.join_timeout(LONG).unwrap_err().panic_message(),
        Some("closure failed")
    );

    let e = Process::builder()
        .closure(|| {})
        .start_method(StartMethod::Spawn)
        .start()
        .unwrap_err();
    assert!(e.is_needs_fork());
}

#[test]
fn contexts() {
    for m in StartMethod::all() {
        let ctx = get_context(m);
        assert_eq!(ctx.start_method(), m);
        let mut p = ctx.process().task(exit_with::call(0)).start().unwrap();
        p.join_timeout(LONG).unwrap();
        assert_eq!(p.start_method(), Some(m));
    }
    assert_eq!(StartMethod::ForkServer.name(), "forkserver");
}

#[spindle::task]
fn fork_in_child() {
    // A spawned child is single-threaded, so `fork()` is allowed there.
    match fork().unwrap() {
        Fork::Child => std::process::exit(7),
        Fork::Parent(child) => assert_eq!(child.wait().unwrap(), 7),
    }
    // The bounded and non-blocking waits of a forked child.
    let (hold, theirs) = Pipe(true).unwrap();
    match fork().unwrap() {
        Fork::Child => {
            let _ = theirs.recv::<u8>();
            std::process::exit(8)
        }
        Fork::Parent(child) => {
            drop(theirs);
            let e = child.try_wait().unwrap_err();
            assert!(e.is_still_running() && !e.is_timeout(), "{e}");
            let t = Instant::now();
            let e = child.wait_timeout(Duration::from_millis(50)).unwrap_err();
            assert!(e.is_timeout() && !e.is_still_running(), "{e}");
            assert!(t.elapsed() >= Duration::from_millis(50));
            hold.send(&1u8).unwrap();
            assert_eq!(child.wait_deadline(Instant::now() + LONG).unwrap(), 8);
            assert_eq!(child.try_wait().unwrap(), 8);
        }
    }
}

/// Python's `os.fork()`: refused with threads, allowed without.
#[test]
fn fork_helper() {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let t = std::thread::spawn(move || rx.recv());
    assert!(fork().unwrap_err().is_multi_threaded());
    tx.send(()).unwrap();
    t.join().unwrap().unwrap();
    let mut p = start(fork_in_child::call(), StartMethod::Spawn);
    p.join_timeout(LONG).unwrap();
}

#[test]
fn send_sync() {
    fn is_send<T: Send>() {}
    fn is_sync<T: Sync>() {}
    is_send::<Process>();
    is_sync::<Process>();
    is_send::<Connection>();
    is_sync::<Connection>();
    is_send::<spindle::process::ProcessError>();
    is_sync::<spindle::process::ProcessError>();
}

/// A child forked while another thread of the parent holds stdout's lock
/// (in the child that lock is held for good: its holder was not copied)
/// still ends: its last flush of the standard streams is bounded.
#[test]
fn a_forked_child_ends_though_another_thread_held_stdout_at_the_fork() {
    use std::sync::mpsc;
    let (held_tx, held_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let _out = std::io::stdout().lock();
        held_tx.send(()).unwrap();
        let _ = release_rx.recv();
    });
    held_rx.recv().unwrap();
    let mut p = Process::builder()
        .closure(|| {})
        .start_method(StartMethod::Fork)
        .start()
        .unwrap();
    let joined = p.join_timeout(LONG);
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    joined.unwrap();
    assert_eq!(p.exitcode(), Some(0));
}

/// Python's `Process.close()` and `sentinel` (issue 16 §6): close refuses a
/// running child, then every method reports a closed object; the sentinel
/// is a descriptor `poll(2)` sees readable once the child ended.
#[test]
fn close_and_sentinel() {
    use std::os::fd::AsFd;

    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

    for m in METHODS {
        let (ours, theirs) = Pipe(true).unwrap();
        let mut p = start(block_on::call(theirs), m);
        let readable = |p: &Process, ms: u16| {
            let fd = p.sentinel().unwrap();
            let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
            poll(&mut fds, PollTimeout::from(ms)).unwrap() == 1
        };
        assert!(!readable(&p, 0), "{m:?}: running");
        let e = p.close().unwrap_err();
        assert!(e.is_still_running(), "{m:?}: {e}");
        assert!(p.is_alive(), "close refused: the process is untouched");
        ours.send(&1u8).unwrap();
        assert!(
            readable(&p, 30_000),
            "{m:?}: the sentinel is ready at the end"
        );
        p.join_timeout(LONG).unwrap();
        p.close().unwrap();
        p.close().unwrap(); // again: nothing
        assert!(p.join().unwrap_err().is_closed());
        assert!(p.try_join().unwrap_err().is_closed());
        assert!(p.terminate().unwrap_err().is_closed());
        assert!(p.interrupt().unwrap_err().is_closed());
        assert!(p.sentinel().unwrap_err().is_closed());
        assert!(p.start().unwrap_err().is_closed());
        assert_eq!(p.pid(), None);
        assert_eq!(p.exitcode(), None);
        assert!(!p.is_alive());
    }
    let p = Process::new(exit_with::call(0));
    assert!(p.sentinel().unwrap_err().is_not_started());
}

/// Python 3.14's `Process.interrupt()`: SIGINT, whose default action ends
/// a spindle child with exit code -2.
#[test]
fn interrupt_sends_sigint() {
    for m in METHODS {
        let (_ours, theirs) = Pipe(true).unwrap();
        let mut p = start(block_on::call(theirs), m);
        assert!(
            Process::new(exit_with::call(0))
                .interrupt()
                .unwrap_err()
                .is_not_started()
        );
        p.interrupt().unwrap();
        let e = p.join_timeout(LONG).unwrap_err();
        assert_eq!(e.exitcode(), Some(-2), "{m:?}: {e}");
        assert_eq!(p.exitcode(), Some(-2));
    }
}

#[spindle::task]
fn parent_alive(report: Connection) {
    let alive = parent_process().expect("a child").is_alive();
    report.send(&alive).unwrap();
}

#[spindle::task]
fn report_when_parent_dies(report: Connection) {
    let parent = parent_process().expect("a child");
    let deadline = Instant::now() + Duration::from_secs(30);
    while parent.is_alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    report.send(&!parent.is_alive()).unwrap();
}

#[spindle::task]
fn start_orphan_and_vanish(report: Connection, method: u8) {
    let m = StartMethod::all()[method as usize];
    let _orphan = Process::builder()
        .task(report_when_parent_dies::call(report))
        .start_method(m)
        .start()
        .unwrap();
    // End now, without the exit hook that would wait for the child.
    nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL).unwrap();
}

/// Python's `parent_process().is_alive()`: true while the parent runs,
/// false once it ended (a grandchild whose parent vanished sees it).
#[test]
fn parent_process_is_alive() {
    assert!(parent_process().is_none());
    for (i, m) in StartMethod::all().into_iter().enumerate() {
        let (ours, theirs) = Pipe(true).unwrap();
        let mut p = start(parent_alive::call(theirs), m);
        assert!(ours.recv_timeout::<bool>(LONG).unwrap(), "{m:?}");
        p.join_timeout(LONG).unwrap();

        let (ours, theirs) = Pipe(true).unwrap();
        let mut p = start(start_orphan_and_vanish::call(theirs, i as u8), m);
        assert_eq!(p.join_timeout(LONG).unwrap_err().exitcode(), Some(-9));
        assert!(
            ours.recv_timeout::<bool>(LONG).unwrap(),
            "{m:?}: the orphan saw its parent end"
        );
    }
}
