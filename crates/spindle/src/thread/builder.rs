//! `Builder`: the keyword arguments of Python's `threading.Thread(...)`.
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::error::{SpawnError, StartError};
use super::{JoinHandle, Thread, current_thread, stack_size};

/// Counter behind the default names "Thread-1", "Thread-2", ... (Python's
/// `threading._counter`, advanced only for unnamed threads).
static NEXT_NAME: AtomicU64 = AtomicU64::new(1);

// The constructors of `Thread` that go through a `Builder`, beside it (so
// that handle.rs, which the builder uses, does not name the builder).
impl Thread {
    /// Creates an unstarted thread that will run `f`, with a default name
    /// ("Thread-N") and the daemon flag of the calling thread. Mirrors
    /// `threading.Thread(target=f)`.
    ///
    /// # Examples
    ///
    /// ```
    /// let t = spindle::thread::Thread::new(|| {});
    /// assert!(t.name().starts_with("Thread-"));
    /// assert_eq!(t.ident(), None);
    /// ```
    pub fn new<F>(f: F) -> Thread
    where
        F: FnOnce() + Send + 'static,
    {
        Builder::new().build(f)
    }

    /// A [`Builder`] to set the name, daemon flag and stack size.
    pub fn builder() -> Builder {
        Builder::new()
    }
}

/// Configures a thread before it is created: name, daemon flag, stack size.
/// Mirrors the keyword arguments of `threading.Thread(name=..., daemon=...)`
/// and `threading.stack_size()`.
///
/// # Examples
///
/// ```
/// use spindle::thread::Thread;
///
/// let h = Thread::builder().name("worker").daemon(true).spawn(|| 6 * 7)?;
/// assert_eq!(h.name(), "worker");
/// assert!(h.is_daemon());
/// assert_eq!(h.join()?, 42);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
#[must_use = "a Builder does nothing until `spawn` or `build` is called"]
pub struct Builder {
    name: Option<String>,
    daemon: Option<bool>,
    stack_size: Option<usize>,
}

impl Builder {
    /// A builder with Python's defaults: name "Thread-N", daemon flag of the
    /// creating thread, the process-wide stack size.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the thread (Python's `name=`). The name is also given to the OS
    /// thread (NUL characters replaced by spaces there), so it shows in
    /// debuggers and panic messages.
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Sets the daemon flag (Python's `daemon=`). When `main` returns, the
    /// process waits for non-daemon threads and does not wait for daemon ones
    /// (see the [module docs](super#daemon-threads-and-process-exit)). By
    /// default a thread inherits the flag of the thread that creates it: the
    /// main thread is non-daemon, foreign threads count as daemon.
    pub fn daemon(mut self, daemon: bool) -> Builder {
        self.daemon = Some(daemon);
        self
    }

    /// Sets the new thread's stack size in bytes (the platform rounds it up
    /// to its minimum and page size). Defaults to
    /// [`stack_size()`](super::stack_size), or the platform default.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Creates the thread without starting it: Python's
    /// `t = Thread(target=f, ...)`; call [`Thread::start`] later.
    ///
    /// # Examples
    ///
    /// ```
    /// let t = spindle::thread::Thread::builder().name("later").build(|| {});
    /// assert!(!t.is_alive());
    /// t.start()?;
    /// t.join()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build<F>(self, f: F) -> Thread
    where
        F: FnOnce() + Send + 'static,
    {
        self.build_job(Box::new(f))
    }

    fn build_job(self, job: super::handle::Job) -> Thread {
        let name = self
            .name
            .unwrap_or_else(|| format!("Thread-{}", NEXT_NAME.fetch_add(1, Ordering::Relaxed)));
        let daemon = self.daemon.unwrap_or_else(|| current_thread().is_daemon());
        let stack = self.stack_size.or(match stack_size() {
            0 => None,
            n => Some(n),
        });
        Thread::new_spindle(name, daemon, stack, job)
    }

    /// Creates and starts a thread running `f`; the returned handle's
    /// [`join`](JoinHandle::join) gives back `f`'s value.
    ///
    /// # Errors
    ///
    /// [`SpawnError`] if the OS could not create the thread.
    ///
    /// # Examples
    ///
    /// ```
    /// let h = spindle::thread::Thread::builder().spawn(|| "done")?;
    /// assert_eq!(h.join()?, "done");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn<F, T>(self, f: F) -> Result<JoinHandle<T>, SpawnError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let slot = Arc::new(Mutex::new(None));
        let out = Arc::clone(&slot);
        let thread = self.build_job(Box::new(move || {
            let value = f();
            *out.lock() = Some(value);
        }));
        match thread.start() {
            Ok(()) => Ok(JoinHandle::new(thread, slot)),
            Err(StartError::Spawn(e)) => Err(e),
            Err(StartError::AlreadyStarted) => unreachable!("a fresh thread is unstarted"),
        }
    }
}

/// Starts a thread running `f` with the default [`Builder`] settings.
///
/// # Errors
///
/// [`SpawnError`] if the OS could not create the thread.
///
/// # Examples
///
/// ```
/// let h = spindle::thread::spawn(|| 1 + 1)?;
/// assert_eq!(h.join()?, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn spawn<F, T>(f: F) -> Result<JoinHandle<T>, SpawnError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Builder::new().spawn(f)
}
