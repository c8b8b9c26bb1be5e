//! Which spindle threads are alive, who the calling thread is, and the exit
//! hook that waits for non-daemon threads (Python's `threading._active`,
//! `current_thread()` and `threading._shutdown`).
#![forbid(unsafe_code)]

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Once};

use parking_lot::Mutex;

use super::handle::{Kind, Status, Thread};
use super::pid::{self, current_pid};
use super::sys;

/// The ident of the main thread; spindle idents are never reused.
pub(super) const MAIN_IDENT: u64 = 1;

static NEXT_IDENT: AtomicU64 = AtomicU64::new(MAIN_IDENT + 1);
static NEXT_DUMMY: AtomicU64 = AtomicU64::new(1);

static MAIN: LazyLock<Thread> = LazyLock::new(new_main);

/// The main thread's `Thread` (Python's `_MainThread`).
fn new_main() -> Thread {
    let native = sys::main_native_id();
    let ident = Some(MAIN_IDENT);
    Thread::with(
        "MainThread".into(),
        false,
        Kind::Main,
        None,
        Status::Running,
        ident,
        native,
        None,
    )
}

/// Live threads by ident: started spindle threads, the main thread, and foreign
/// threads that asked for `current_thread()`.
static ACTIVE: LazyLock<Mutex<BTreeMap<u64, Thread>>> = LazyLock::new(|| {
    let mut map = BTreeMap::new();
    map.insert(MAIN_IDENT, MAIN.clone());
    Mutex::new(map)
});

/// Holds the calling thread's `Thread`; for a foreign thread its drop (at
/// thread exit) marks the dummy finished and unregisters it.
struct CurrentSlot(Thread);

impl Drop for CurrentSlot {
    fn drop(&mut self) {
        if self.0.kind() == Kind::Dummy {
            self.0.finish(None);
        }
    }
}

thread_local! {
    static CURRENT: OnceCell<CurrentSlot> = const { OnceCell::new() };
}

pub(super) fn next_ident() -> u64 {
    NEXT_IDENT.fetch_add(1, Ordering::Relaxed)
}

pub(super) fn main_thread() -> Thread {
    MAIN.clone()
}

pub(super) fn register(t: &Thread, ident: u64) {
    ACTIVE.lock().insert(ident, t.clone());
}

pub(super) fn unregister(ident: u64) {
    // Drop the removed Thread outside the lock.
    let removed = ACTIVE.lock().remove(&ident);
    drop(removed);
}

/// The threads alive in this process (a forked child does not list the
/// parent's threads).
pub(super) fn snapshot() -> Vec<Thread> {
    let pid = current_pid();
    let active = ACTIVE.lock();
    active
        .values()
        .filter(|t| t.lives_in(pid))
        .cloned()
        .collect()
}

pub(super) fn count() -> usize {
    let pid = current_pid();
    ACTIVE.lock().values().filter(|t| t.lives_in(pid)).count()
}

/// Called first thing in a new spindle thread.
pub(super) fn set_current(t: &Thread) {
    let _ = CURRENT.try_with(|c| c.set(CurrentSlot(t.clone())));
}

/// Whether `t` is the calling thread, without registering a dummy.
pub(super) fn is_current(t: &Thread) -> bool {
    if t.kind() == Kind::Main {
        return sys::is_main_thread();
    }
    CURRENT
        .try_with(|c| c.get().is_some_and(|slot| slot.0 == *t))
        .unwrap_or(false)
}

pub(super) fn current() -> Thread {
    let found = CURRENT.try_with(|c| c.get_or_init(new_current).0.clone());
    // During thread-local destruction: an unregistered stand-in.
    found.unwrap_or_else(|_| {
        if sys::is_main_thread() {
            main_thread()
        } else {
            Thread::new_dummy(dummy_name(), next_ident(), sys::native_id(), current_pid())
        }
    })
}

fn new_current() -> CurrentSlot {
    if sys::is_main_thread() {
        return CurrentSlot(main_thread());
    }
    let ident = next_ident();
    let t = Thread::new_dummy(dummy_name(), ident, sys::native_id(), current_pid());
    register(&t, ident);
    CurrentSlot(t)
}

/// A foreign thread keeps the name Rust knows it by; unnamed ones are
/// "Dummy-N" as in Python.
fn dummy_name() -> String {
    match std::thread::current().name() {
        Some(n) => n.to_owned(),
        None => format!("Dummy-{}", NEXT_DUMMY.fetch_add(1, Ordering::Relaxed)),
    }
}

static EXIT_HOOK: Once = Once::new();

/// Installs (once) the exit hook that waits for non-daemon threads, and the
/// fork hook that tells a forked child which threads it really has.
pub(super) fn ensure_exit_hook() {
    EXIT_HOOK.call_once(|| {
        pid::refresh();
        // Without the hooks (non-unix), non-daemon threads are not waited for.
        let _installed = sys::at_fork_child(after_fork_in_child) && sys::at_exit(run_exit_hook);
    });
}

/// In a forked child only the forking thread exists: threads of the parent
/// are recognised by their process id, so they are neither listed, alive,
/// joined nor waited for at exit (Python's `threading._after_fork`).
extern "C" fn after_fork_in_child() {
    pid::refresh();
}

extern "C" fn run_exit_hook() {
    // Unwinding out of an `extern "C"` function aborts; swallow any panic.
    let _ = std::panic::catch_unwind(wait_for_non_daemon_threads);
}

/// Python's `threading._shutdown()`: mark the main thread finished, then wait
/// until no non-daemon spindle thread is left (threads they start included).
fn wait_for_non_daemon_threads() {
    MAIN.finish(None);
    // Thread-locals may already be destroyed here, so identify the exiting
    // thread by its kernel id (`exit` may be called from a spindle thread).
    let me = sys::native_id();
    loop {
        let waiting: Vec<Thread> = snapshot()
            .into_iter()
            .filter(|t| t.kind() == Kind::Spindle && !t.is_daemon())
            .filter(|t| t.native_id_now() != Some(me))
            .collect();
        if waiting.is_empty() {
            break;
        }
        for t in waiting {
            t.wait_finished();
        }
    }
}
