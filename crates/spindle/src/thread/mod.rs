//! Threads with Python's `threading` model: names, idents, daemon flags,
//! `join` with a timeout, `current_thread()`/`enumerate()`, a cooperative
//! stop signal and per-instance thread-local values.
//!
//! # Which one should I use?
//!
//! | you want | use | Python |
//! |---|---|---|
//! | run a closure and get its value back | [`spawn`] / [`Thread::builder`]`.spawn(f)` → [`JoinHandle<T>`] | `Thread(target=f).start()` |
//! | create now, start later | [`Thread::new`] + [`Thread::start`] | `t = Thread(target=f); t.start()` |
//! | name, daemon flag, stack size | [`Builder`] | `Thread(name=..., daemon=...)`, `threading.stack_size()` |
//! | wait, possibly from several threads | [`Thread::join`], [`Thread::join_timeout`] | `t.join()`, `t.join(timeout)` |
//! | who am I, who is running | [`current_thread`], [`main_thread`], [`enumerate`], [`active_count`] | same names |
//! | ask a thread to stop | [`StopSource`] / [`StopToken`] | a `_running` flag polled by the thread |
//! | per-thread state | [`Local<T>`] | `threading.local()` |
//!
//! ```
//! use spindle::thread::{self, Thread};
//!
//! let h = Thread::builder().name("adder").spawn(|| {
//!     assert_eq!(thread::current_thread().name(), "adder");
//!     2 + 2
//! })?;
//! assert!(thread::enumerate().iter().any(|t| t.name() == "adder") || !h.is_alive());
//! assert_eq!(h.join()?, 4);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Daemon threads and process exit
//!
//! As in Python, when `main` returns the process waits for every running
//! non-daemon spindle thread, and does not wait for daemon threads (they are
//! killed when the process exits). Nothing has to be added to `main`:
//!
//! - The first time a spindle thread is started, spindle registers a C
//!   `atexit` handler. Rust's runtime calls the C library's `exit` when `main`
//!   returns, and `std::process::exit` calls it too, so the handler runs in
//!   both cases (not on `std::process::abort`, a signal, or a crash).
//! - The handler (Python's `threading._shutdown`) marks the main thread as
//!   finished (so `main_thread().join()` in a worker returns), then joins
//!   every non-daemon spindle thread still alive, again and again until none
//!   is left, so threads they start are waited for too. A thread that calls
//!   `std::process::exit` itself is not waited for.
//! - Daemon threads are not joined; `exit` then ends the process and them.
//!   As in Python, a non-daemon thread that never ends keeps the process
//!   from exiting: make such a thread a daemon, or stop it with a
//!   [`StopSource`].
//! - After `fork()`, the child has only the forking thread: a fork hook lets
//!   the child recognise the parent's threads, which it then neither lists,
//!   reports alive, nor waits for at exit (Python's `threading._after_fork`).
//!
//! A thread's daemon flag defaults to that of the thread creating it (as in
//! Python): threads started from `main` are non-daemon. Differences from
//! Python: `atexit` handlers registered after spindle's run before it (C runs
//! them in reverse order), whereas Python waits for threads before any
//! `atexit` callback.
//!
//! # Threads spindle did not start
//!
//! [`enumerate`] lists the main thread and started spindle threads. A thread
//! started otherwise (e.g. by `std::thread::spawn`, or libtest's test
//! threads) that calls [`current_thread`] appears as a dummy thread, as in
//! Python: [`Thread::is_dummy`] is true, it is a daemon, it is named after
//! its std name or "Dummy-N", and it is listed until it exits. Foreign
//! threads that never ask are not listed.
//!
//! # Idents
//!
//! [`Thread::ident`] is a spindle number (1 for the main thread), unique for
//! the life of the process, so unlike Python's it is never reused.
//! [`Thread::native_id`] is the kernel's id (the TID on Linux).

mod builder;
mod error;
mod handle;
mod join_handle;
mod lifecycle;
mod local;
mod pid;
mod registry;
mod stop;
mod sys;

use std::sync::atomic::{AtomicUsize, Ordering};

pub use builder::{Builder, spawn};
pub use error::{JoinError, JoinTimeoutError, SpawnError, StackSizeError, StartError};
pub use handle::Thread;
pub use join_handle::JoinHandle;
pub use local::Local;
pub use stop::{StopSource, StopToken};

/// The [`Thread`] of the caller. Mirrors `threading.current_thread()`.
///
/// For the main thread it is [`main_thread()`]; for a thread spindle did not
/// start it is a dummy thread (see the [module docs](self#threads-spindle-did-not-start)).
///
/// # Examples
///
/// ```
/// let h = spindle::thread::Thread::builder()
///     .name("Thread_1")
///     .spawn(|| spindle::thread::current_thread().name().to_owned())?;
/// assert_eq!(h.join()?, "Thread_1");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn current_thread() -> Thread {
    registry::current()
}

/// The process's main thread, named "MainThread", ident 1. Mirrors
/// `threading.main_thread()`.
///
/// # Examples
///
/// ```
/// let main = spindle::thread::main_thread();
/// assert_eq!(main.name(), "MainThread");
/// assert_eq!(main.ident(), Some(1));
/// ```
pub fn main_thread() -> Thread {
    registry::main_thread()
}

/// The threads alive now: the main thread, started spindle threads that have
/// not finished, and dummy threads. Mirrors `threading.enumerate()`; ordered
/// by ident (start order).
///
/// # Examples
///
/// ```
/// let all = spindle::thread::enumerate();
/// assert!(all.contains(&spindle::thread::main_thread()));
/// ```
pub fn enumerate() -> Vec<Thread> {
    registry::snapshot()
}

/// The number of threads [`enumerate`] would list. Mirrors
/// `threading.active_count()`.
///
/// # Examples
///
/// ```
/// assert!(spindle::thread::active_count() >= 1); // the main thread
/// ```
pub fn active_count() -> usize {
    registry::count()
}

/// The calling thread's ident ([`Thread::ident`]). Mirrors
/// `threading.get_ident()`.
pub fn get_ident() -> u64 {
    current_thread().ident().unwrap_or(0)
}

/// The kernel's id of the calling thread. Mirrors `threading.get_native_id()`.
pub fn get_native_id() -> u64 {
    sys::native_id()
}

/// Smallest stack size accepted by [`set_stack_size`] (Python's 32 KiB).
pub const MIN_STACK_SIZE: usize = 32 * 1024;

static STACK_SIZE: AtomicUsize = AtomicUsize::new(0);

/// The stack size in bytes for threads created from now on without an
/// explicit [`Builder::stack_size`]; 0 means the platform default. Mirrors
/// `threading.stack_size()`.
pub fn stack_size() -> usize {
    STACK_SIZE.load(Ordering::Relaxed)
}

/// Sets the stack size for threads created from now on (0: platform
/// default) and returns the previous setting. Mirrors
/// `threading.stack_size(size)`.
///
/// # Errors
///
/// [`StackSizeError`] for a size below [`MIN_STACK_SIZE`] other than 0
/// (Python raises `ValueError`).
///
/// # Examples
///
/// ```
/// use spindle::thread;
/// assert!(thread::set_stack_size(1024).is_err());
/// let before = thread::set_stack_size(256 * 1024)?;
/// thread::set_stack_size(before)?;
/// # Ok::<(), thread::StackSizeError>(())
/// ```
pub fn set_stack_size(size: usize) -> Result<usize, StackSizeError> {
    if size != 0 && size < MIN_STACK_SIZE {
        return Err(StackSizeError { size });
    }
    Ok(STACK_SIZE.swap(size, Ordering::Relaxed))
}
