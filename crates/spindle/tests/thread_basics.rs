//! Thread basics, ported from CPython's `Lib/test/test_threading.py`
//! (`ThreadTests`, `ThreadingExceptionTests`) and manually rewritten in Rust.
//! Each test names the CPython test whose behaviour it mirrors.
//!
//! Note: libtest runs each test on a thread it started itself, so inside a
//! test `current_thread()` is a dummy (foreign) thread, and threads created
//! without `.daemon(..)` inherit its daemon flag (true), as in Python.

mod common;

use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use spindle::thread::{
    self, JoinError, JoinHandle, JoinTimeoutError, Local, SpawnError, StartError, StopSource,
    StopToken, Thread,
};

use common::LONG;

/// A thread that blocks until the returned sender is dropped or sent to.
fn parked(builder: thread::Builder) -> (JoinHandle<()>, mpsc::Sender<()>) {
    let (tx, rx) = mpsc::channel::<()>();
    let h = builder
        .spawn(move || {
            let _ = rx.recv();
        })
        .unwrap();
    (h, tx)
}

// test_various_ops: names, idents, is_alive around start/join.
#[test]
fn various_ops() {
    const N: usize = if cfg!(miri) { 3 } else { 10 };
    let start = Arc::new(Barrier::new(N + 1));
    let finish = Arc::new(Barrier::new(N + 1));
    let mut threads = Vec::new();
    for i in 0..N {
        let (start, finish) = (Arc::clone(&start), Arc::clone(&finish));
        let t = Thread::builder()
            .name(format!("<thread {i}>"))
            .build(move || {
                start.wait();
                finish.wait();
            });
        assert_eq!(t.ident(), None, "ident before start");
        assert_eq!(t.native_id(), None, "native_id before start");
        assert!(!t.is_alive());
        assert!(format!("{t:?}").contains("initial"));
        t.start().unwrap();
        threads.push(t);
    }
    start.wait();
    let mut idents = Vec::new();
    for (i, t) in threads.iter().enumerate() {
        assert_eq!(t.name(), format!("<thread {i}>"));
        assert!(t.is_alive());
        assert!(format!("{t:?}").contains("started"));
        idents.push(t.ident().unwrap());
        assert!(t.native_id().is_some());
    }
    idents.sort_unstable();
    idents.dedup();
    assert_eq!(idents.len(), N, "idents are unique");
    finish.wait();
    for t in &threads {
        t.join().unwrap();
        assert!(!t.is_alive());
        assert!(format!("{t:?}").contains("stopped"));
        assert!(t.ident().is_some(), "ident kept after the end");
    }
}

// test_default_name / test_name: "Thread-N" increasing, explicit names kept.
#[test]
fn default_names_are_thread_n() {
    let a = Thread::new(|| {});
    let named = Thread::builder().name("Alice").build(|| {});
    let b = Thread::new(|| {});
    let num = |t: &Thread| -> u64 {
        let n = t.name().strip_prefix("Thread-").expect("default name");
        n.parse().unwrap()
    };
    assert!(num(&b) > num(&a));
    assert_eq!(named.name(), "Alice");
    // Names with a NUL byte are accepted (the OS name gets a space instead).
    let h = Thread::builder()
        .name("a\0b")
        .spawn(|| thread::current_thread().name().to_owned())
        .unwrap();
    assert_eq!(h.join().unwrap(), "a\0b");
}

// Python's `join()`: the value comes back (Python returns None).
#[test]
fn join_returns_the_value() {
    let h = thread::spawn(|| vec![1, 2, 3]).unwrap();
    assert_eq!(h.join().unwrap(), vec![1, 2, 3]);
    let h = Thread::builder().spawn(|| String::from("done")).unwrap();
    assert_eq!(h.join().unwrap(), "done");
}

// Python prints the traceback and join() returns; spindle returns the message.
#[test]
fn panic_message_comes_back() {
    let h = thread::spawn(|| -> u32 { panic!("static message") }).unwrap();
    assert_eq!(
        h.join().unwrap_err(),
        JoinError::Panicked("static message".into())
    );
    let h = thread::spawn(|| -> u32 { panic!("formatted {}", 42) }).unwrap();
    assert_eq!(h.join().unwrap_err().panic_message(), Some("formatted 42"));
    let h = thread::spawn(|| std::panic::panic_any(7_u8)).unwrap();
    assert!(h.join().unwrap_err().is_panic());
    // Every joiner of the shared Thread sees it, and after a timeout wait.
    let t = Thread::new(|| panic!("boom"));
    t.start().unwrap();
    let err = t.join_timeout(LONG).unwrap_err();
    assert_eq!(err.panic_message(), Some("boom"));
    assert_eq!(t.join().unwrap_err().panic_message(), Some("boom"));
    assert!(!t.is_alive());
}

// test_join_with_timeout (one-sided): a blocked thread times out, then joins.
#[test]
fn join_timeout_on_a_running_thread() {
    let (h, tx) = parked(Thread::builder());
    let t0 = Instant::now();
    let err = h.join_timeout(Duration::from_millis(20)).unwrap_err();
    assert_eq!(err, JoinTimeoutError::Timeout);
    assert!(err.is_timeout());
    assert!(t0.elapsed() >= Duration::from_millis(20));
    assert!(h.is_alive(), "still alive after a timed-out join");
    let deadline = Instant::now() + Duration::from_millis(5);
    assert!(h.join_deadline(deadline).unwrap_err().is_timeout());
    assert!(Instant::now() >= deadline);
    drop(tx);
    h.join_timeout(LONG).unwrap();
    assert!(!h.is_alive());
    h.join().unwrap();
}

// A zero timeout on a finished thread succeeds; a deadline in the past too.
#[test]
fn join_timeout_on_a_finished_thread() {
    let h = thread::spawn(|| 5).unwrap();
    h.thread().join().unwrap();
    h.join_timeout(Duration::ZERO).unwrap();
    h.join_deadline(Instant::now() - Duration::from_millis(1))
        .ok();
    assert_eq!(h.join().unwrap(), 5);
}

// Many threads may join one thread (Python's join from several threads).
#[test]
fn join_from_several_threads() {
    let (h, tx) = parked(Thread::builder());
    let joiners: Vec<_> = (0..4)
        .map(|_| {
            let t = h.thread().clone();
            thread::spawn(move || t.join()).unwrap()
        })
        .collect();
    drop(tx);
    for j in joiners {
        j.join().unwrap().unwrap();
    }
    h.join().unwrap();
}

// ThreadingExceptionTests.test_start_thread_again
#[test]
fn start_twice_is_an_error() {
    let t = Thread::new(|| {});
    t.start().unwrap();
    assert!(matches!(t.start(), Err(StartError::AlreadyStarted)));
    t.join().unwrap();
    let err = t.start().unwrap_err();
    assert!(err.is_already_started());
    assert_eq!(err.to_string(), "threads can only be started once");
    // The main thread and dummy threads are already started.
    assert!(
        thread::main_thread()
            .start()
            .unwrap_err()
            .is_already_started()
    );
    assert!(
        thread::current_thread()
            .start()
            .unwrap_err()
            .is_already_started()
    );
}

// ThreadingExceptionTests.test_joining_inactive_thread
#[test]
fn join_before_start_is_an_error() {
    let t = Thread::new(|| {});
    assert_eq!(t.join(), Err(JoinError::NotStarted));
    assert_eq!(t.join_timeout(LONG), Err(JoinTimeoutError::NotStarted));
    t.start().unwrap();
    t.join().unwrap();
}

// ThreadingExceptionTests.test_joining_current_thread
#[test]
fn join_current_thread_is_an_error() {
    assert_eq!(
        thread::current_thread().join(),
        Err(JoinError::CurrentThread)
    );
    let h = thread::spawn(|| {
        let me = thread::current_thread();
        (me.join(), me.join_timeout(LONG))
    })
    .unwrap();
    let (a, b) = h.join().unwrap();
    assert_eq!(a, Err(JoinError::CurrentThread));
    assert_eq!(b, Err(JoinTimeoutError::CurrentThread));
}

// test_enumerate_after_join / test_limbo_cleanup: listed while running
// (from start() on), gone once joined.
#[test]
fn enumerate_and_active_count_track_running_threads() {
    let (h, tx) = parked(Thread::builder().name("enumerated"));
    let all = thread::enumerate();
    assert!(all.contains(h.thread()));
    assert!(all.contains(&thread::main_thread()));
    assert!(thread::active_count() >= 2);
    drop(tx);
    let t = h.thread().clone();
    h.join().unwrap();
    assert!(
        !thread::enumerate().contains(&t),
        "finished threads are not listed"
    );
    // Counting: an unstarted thread is not listed, a started one is.
    let pending = Thread::new(|| {});
    assert!(!thread::enumerate().contains(&pending));
}

// current_thread() inside a spindle thread is that thread.
#[test]
fn current_thread_inside_a_thread() {
    let h = Thread::builder()
        .name("me")
        .spawn(|| {
            let me = thread::current_thread();
            (
                me.name().to_owned(),
                me.ident(),
                me.native_id(),
                thread::get_native_id(),
                me.is_dummy(),
            )
        })
        .unwrap();
    let ident = h.ident();
    let native = h.native_id();
    let (name, id, nid, get_nid, dummy) = h.join().unwrap();
    assert_eq!(name, "me");
    assert_eq!(id, ident);
    assert_eq!(nid, native);
    assert_eq!(Some(get_nid), native);
    assert!(!dummy);
}

// test_main_thread: "MainThread", ident 1, alive, not the (libtest) test thread.
#[test]
fn main_thread_is_mainthread() {
    let main = thread::main_thread();
    assert_eq!(main.name(), "MainThread");
    assert_eq!(main.ident(), Some(1));
    assert!(main.is_alive());
    assert!(!main.is_daemon());
    assert!(!main.is_dummy());
    assert_eq!(main, thread::main_thread());
    let from_thread = thread::spawn(thread::main_thread).unwrap().join().unwrap();
    assert_eq!(from_thread, main);
    #[cfg(target_os = "linux")]
    assert_eq!(main.native_id(), Some(u64::from(std::process::id())));
}

// test_ident_of_no_threading_threads: a foreign thread gets a dummy Thread
// with an ident, listed until it exits.
#[test]
fn foreign_threads_are_dummies() {
    let (tx, rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let foreign = std::thread::spawn(move || {
        let me = thread::current_thread();
        tx.send(me.clone()).unwrap();
        let _ = done_rx.recv();
        assert_eq!(thread::current_thread(), me, "same Thread on each call");
        thread::get_ident()
    });
    let dummy = rx.recv().unwrap();
    assert!(dummy.is_dummy());
    assert!(dummy.is_daemon());
    assert!(dummy.is_alive());
    assert!(dummy.name().starts_with("Dummy-"), "{}", dummy.name());
    assert!(thread::enumerate().contains(&dummy));
    drop(done_tx);
    let ident = foreign.join().unwrap();
    assert_eq!(Some(ident), dummy.ident());
    dummy.join_timeout(LONG).unwrap(); // ends with its thread
    assert!(!thread::enumerate().contains(&dummy));
    // libtest's named thread keeps its std name.
    let me = thread::current_thread();
    assert!(me.is_dummy());
    assert!(
        me.name().contains("foreign_threads_are_dummies"),
        "{}",
        me.name()
    );
}

// test_daemon_param: explicit flag, and inheritance from the creating thread.
#[test]
fn daemon_flag_and_inheritance() {
    assert!(Thread::builder().daemon(true).build(|| {}).is_daemon());
    assert!(!Thread::builder().daemon(false).build(|| {}).is_daemon());
    // Created from a dummy (this libtest thread): daemon, as in Python.
    assert!(Thread::new(|| {}).is_daemon());
    // Created from a non-daemon / daemon spindle thread: inherits.
    let inherit = |daemon: bool| {
        Thread::builder()
            .daemon(daemon)
            .spawn(|| Thread::new(|| {}).is_daemon())
            .unwrap()
            .join()
            .unwrap()
    };
    assert!(!inherit(false));
    assert!(inherit(true));
    let t = Thread::builder().daemon(true).name("d").build(|| {});
    assert!(format!("{t:?}").contains("daemon"));
}

// threading.stack_size(): invalid sizes are refused; a deep recursion runs
// in a thread with a big explicit stack.
#[test]
fn stack_size() {
    assert_eq!(
        thread::set_stack_size(100).unwrap_err().to_string(),
        "stack size not valid: 100 bytes (0 or at least 32768 bytes)"
    );
    fn depth(n: u64) -> u64 {
        let pad = std::hint::black_box([0u8; 1024]);
        if n == 0 {
            u64::from(pad[0])
        } else {
            1 + depth(n - 1)
        }
    }
    let h = Thread::builder()
        .stack_size(64 * 1024 * 1024)
        .spawn(|| depth(if cfg!(miri) { 10 } else { 20_000 }))
        .unwrap();
    assert!(h.join().unwrap() >= 10);
}

// A stress run: many short threads, all joined, none left listed.
#[test]
fn many_threads() {
    const N: usize = if cfg!(miri) { 10 } else { 200 };
    let handles: Vec<_> = (0..N)
        .map(|i| thread::spawn(move || i * 2).unwrap())
        .collect();
    let ts: Vec<Thread> = handles.iter().map(|h| h.thread().clone()).collect();
    let sum: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sum, N * (N - 1));
    let live = thread::enumerate();
    assert!(ts.iter().all(|t| !live.contains(t)));
}

// Dropping the JoinHandle detaches the thread; it still runs and can be joined.
#[test]
fn dropped_handle_detaches() {
    let (tx, rx) = mpsc::channel();
    let h = thread::spawn(move || tx.send(thread::current_thread()).unwrap()).unwrap();
    let t = h.thread().clone();
    drop(h);
    assert_eq!(rx.recv().unwrap(), t);
    t.join_timeout(LONG).unwrap();
}

#[test]
fn send_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Thread>();
    send_sync::<JoinHandle<u32>>();
    send::<JoinHandle<std::cell::Cell<u32>>>();
    send_sync::<StopSource>();
    send_sync::<StopToken>();
    send_sync::<Local<std::cell::Cell<u32>>>();
    send_sync::<Local<String>>();
    send_sync::<JoinError>();
    send_sync::<JoinTimeoutError>();
    send_sync::<StartError>();
    send_sync::<SpawnError>();
}

// A failed start (the OS refuses a 1 PiB stack) is a typed error; the thread
// stays unstarted and unlisted (Python: RuntimeError "can't start new thread").
#[test]
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
fn spawn_failure_is_a_typed_error() {
    if cfg!(miri) {
        return;
    }
    let t = Thread::builder().stack_size(1 << 50).build(|| {});
    let err = t.start().unwrap_err();
    assert!(matches!(err, StartError::Spawn(_)), "{err:?}");
    assert!(
        err.to_string().starts_with("can't start new thread"),
        "{err}"
    );
    assert!(!t.is_alive());
    assert_eq!(t.ident(), None);
    assert_eq!(t.join(), Err(JoinError::NotStarted));
    assert!(!thread::enumerate().contains(&t));
    let err = Thread::builder()
        .stack_size(1 << 50)
        .spawn(|| 1)
        .unwrap_err();
    assert!(std::error::Error::source(&err).is_some());
}
