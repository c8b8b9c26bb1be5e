//! `Thread`: a cheap, cloneable reference to one thread (Python's
//! `threading.Thread` object).

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::error::{JoinError, JoinTimeoutError, SpawnError, StartError};
use super::{Builder, local, registry, sys};

pub(super) type Job = Box<dyn FnOnce() + Send + 'static>;

/// What kind of thread a [`Thread`] stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Started through spindle.
    Spindle,
    /// The process's main thread (Python's `_MainThread`).
    Main,
    /// A thread spindle did not start (Python's `_DummyThread`).
    Dummy,
}

enum Status {
    New,
    Running,
    /// Finished; `Some(message)` if the closure panicked.
    Finished(Option<Arc<str>>),
}

struct State {
    status: Status,
    /// The process the thread runs in (`None` for the main thread and
    /// unstarted threads); see `registry::current_pid`.
    pid: Option<u32>,
    ident: Option<u64>,
    native_id: Option<u64>,
    job: Option<Job>,
}

impl State {
    /// Running, and in this process: in a forked child the parent's threads
    /// do not exist, and count as finished.
    fn running_here(&self) -> bool {
        matches!(self.status, Status::Running)
            && self.pid.is_none_or(|pid| pid == registry::current_pid())
    }
}

struct Inner {
    name: Box<str>,
    daemon: bool,
    kind: Kind,
    stack_size: Option<usize>,
    state: Mutex<State>,
    finished: Condvar,
}

/// A reference to one thread: its name, ident, daemon flag and liveness, and
/// a way to wait for it. Mirrors Python's `threading.Thread`.
///
/// `Thread` is cheap to clone and every clone refers to the same thread, so
/// any number of threads can [`join`](Thread::join) it, as in Python.
/// [`current_thread`](super::current_thread), [`main_thread`](super::main_thread)
/// and [`enumerate`](super::enumerate) hand out `Thread`s.
///
/// Two ways to run code in a thread:
/// - Python's form: [`Thread::new`] creates an unstarted thread,
///   [`start`](Thread::start) starts it, [`join`](Thread::join) waits. The
///   closure returns nothing (Python ignores the target's return value).
/// - Rust's form: [`Thread::builder`]`.spawn(f)` starts at once and returns a
///   [`JoinHandle<T>`](super::JoinHandle) whose `join()` returns the closure's value.
///
/// # Examples
///
/// ```
/// use spindle::thread::Thread;
///
/// let t = Thread::new(|| println!("T-minus 10"));
/// assert!(!t.is_alive());
/// t.start()?;
/// t.join()?;
/// assert!(!t.is_alive());
/// assert!(t.start().unwrap_err().is_already_started());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Thread {
    inner: Arc<Inner>,
}

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

    pub(super) fn new_spindle(
        name: String,
        daemon: bool,
        stack_size: Option<usize>,
        job: Job,
    ) -> Thread {
        Thread::with(
            name,
            daemon,
            Kind::Spindle,
            stack_size,
            Status::New,
            None,
            None,
            Some(job),
        )
    }

    pub(super) fn new_main() -> Thread {
        let native = sys::main_native_id();
        let ident = Some(registry::MAIN_IDENT);
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

    pub(super) fn new_dummy(name: String, ident: u64, native_id: u64, pid: u32) -> Thread {
        let (ident, native) = (Some(ident), Some(native_id));
        let t = Thread::with(
            name,
            true,
            Kind::Dummy,
            None,
            Status::Running,
            ident,
            native,
            None,
        );
        t.inner.state.lock().pid = Some(pid);
        t
    }

    #[allow(clippy::too_many_arguments)]
    fn with(
        name: String,
        daemon: bool,
        kind: Kind,
        stack_size: Option<usize>,
        status: Status,
        ident: Option<u64>,
        native_id: Option<u64>,
        job: Option<Job>,
    ) -> Thread {
        let state = State {
            status,
            pid: None,
            ident,
            native_id,
            job,
        };
        let inner = Inner {
            name: name.into_boxed_str(),
            daemon,
            kind,
            stack_size,
            state: Mutex::new(state),
            finished: Condvar::new(),
        };
        Thread {
            inner: Arc::new(inner),
        }
    }

    pub(super) fn kind(&self) -> Kind {
        self.inner.kind
    }

    /// Starts the thread. Mirrors `Thread.start()`.
    ///
    /// On return the thread is alive (it may already have finished by the
    /// time the caller looks), has an [`ident`](Thread::ident) and is listed
    /// by [`enumerate`](super::enumerate).
    ///
    /// # Errors
    ///
    /// [`StartError::AlreadyStarted`] if it was started before (also for the
    /// main thread and foreign threads); [`StartError::Spawn`] if the OS could
    /// not create a thread, in which case it stays unstarted.
    ///
    /// # Examples
    ///
    /// ```
    /// let t = spindle::thread::Thread::new(|| {});
    /// t.start()?;
    /// assert!(t.ident().is_some());
    /// t.join()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start(&self) -> Result<(), StartError> {
        let ident = {
            let mut st = self.inner.state.lock();
            if !matches!(st.status, Status::New) || st.job.is_none() {
                return Err(StartError::AlreadyStarted);
            }
            let ident = registry::next_ident();
            st.status = Status::Running;
            st.ident = Some(ident);
            st.pid = Some(registry::current_pid());
            ident
        };
        registry::ensure_exit_hook();
        registry::register(self, ident);
        // The OS name must not contain NUL; spindle keeps the full name.
        let mut os = std::thread::Builder::new().name(self.inner.name.replace('\0', " "));
        if let Some(size) = self.inner.stack_size {
            os = os.stack_size(size);
        }
        let me = self.clone();
        match os.spawn(move || me.bootstrap()) {
            Ok(handle) => {
                drop(handle); // detached: joining goes through `finished`
                Ok(())
            }
            Err(e) => {
                registry::unregister(ident);
                let mut st = self.inner.state.lock();
                st.status = Status::New;
                st.ident = None;
                self.inner.finished.notify_all();
                Err(StartError::Spawn(SpawnError::new(e)))
            }
        }
    }

    /// Runs in the new OS thread.
    fn bootstrap(self) {
        registry::set_current(&self);
        let job = {
            let mut st = self.inner.state.lock();
            st.native_id = Some(sys::native_id());
            self.inner.finished.notify_all();
            st.job.take()
        };
        // Marks the thread finished even if something below unwinds.
        let mut guard = FinishGuard {
            thread: &self,
            panic: None,
        };
        if let Some(job) = job
            && let Err(payload) = panic::catch_unwind(AssertUnwindSafe(job))
        {
            guard.panic = Some(panic_message(&*payload).into());
        }
        // Python drops a thread's `local` values before join() returns.
        let _ = panic::catch_unwind(local::clear_current_thread);
    }

    /// Marks the thread finished (waking joiners) and unregisters it.
    /// Unregistered first, so a joiner never sees it listed afterwards.
    pub(super) fn finish(&self, panic: Option<Arc<str>>) {
        if let Some(ident) = self.ident() {
            registry::unregister(ident);
        }
        let mut st = self.inner.state.lock();
        st.status = Status::Finished(panic);
        self.inner.finished.notify_all();
    }

    /// Waits until the thread has finished. Mirrors `Thread.join()`, which
    /// any number of threads may call.
    ///
    /// # Errors
    ///
    /// [`JoinError::Panicked`] with the message if the closure panicked (Python
    /// returns normally and prints the traceback), [`JoinError::NotStarted`]
    /// before [`start`](Thread::start), [`JoinError::CurrentThread`] when a
    /// thread joins itself.
    ///
    /// # Examples
    ///
    /// ```
    /// let t = spindle::thread::Thread::new(|| panic!("boom"));
    /// t.start()?;
    /// assert_eq!(t.join().unwrap_err().panic_message(), Some("boom"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join(&self) -> Result<(), JoinError> {
        match self.wait(None) {
            Ok(()) => Ok(()),
            Err(JoinTimeoutError::Panicked(m)) => Err(JoinError::Panicked(m)),
            Err(JoinTimeoutError::NotStarted) => Err(JoinError::NotStarted),
            Err(JoinTimeoutError::CurrentThread) => Err(JoinError::CurrentThread),
            Err(JoinTimeoutError::Timeout) => unreachable!("join without a deadline timed out"),
        }
    }

    /// Waits at most `timeout` for the thread to finish. Mirrors
    /// `Thread.join(timeout)`, but reports a timeout instead of leaving the
    /// caller to check `is_alive()`.
    ///
    /// # Errors
    ///
    /// [`JoinTimeoutError::Timeout`] if the thread is still running; the
    /// other variants as for [`join`](Thread::join).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use spindle::thread::{StopSource, Thread};
    ///
    /// let stop = StopSource::new();
    /// let token = stop.token();
    /// let t = Thread::new(move || token.wait());
    /// t.start()?;
    /// assert!(t.join_timeout(Duration::from_millis(10)).unwrap_err().is_timeout());
    /// stop.stop();
    /// t.join_timeout(Duration::from_secs(60))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), JoinTimeoutError> {
        self.wait(Instant::now().checked_add(timeout))
    }

    /// Waits until `deadline` at most for the thread to finish; see
    /// [`join_timeout`](Thread::join_timeout).
    ///
    /// # Errors
    ///
    /// As for [`join_timeout`](Thread::join_timeout).
    pub fn join_deadline(&self, deadline: Instant) -> Result<(), JoinTimeoutError> {
        self.wait(Some(deadline))
    }

    fn wait(&self, deadline: Option<Instant>) -> Result<(), JoinTimeoutError> {
        if registry::is_current(self) {
            return Err(JoinTimeoutError::CurrentThread);
        }
        let mut st = self.inner.state.lock();
        loop {
            match &st.status {
                Status::New => return Err(JoinTimeoutError::NotStarted),
                Status::Finished(None) => return Ok(()),
                Status::Finished(Some(m)) => return Err(JoinTimeoutError::Panicked(m.to_string())),
                Status::Running if !st.running_here() => return Ok(()),
                Status::Running => match deadline {
                    None => self.inner.finished.wait(&mut st),
                    Some(at) => {
                        if self.inner.finished.wait_until(&mut st, at).timed_out()
                            && matches!(st.status, Status::Running)
                        {
                            return Err(JoinTimeoutError::Timeout);
                        }
                    }
                },
            }
        }
    }

    /// Waits for the end of a running thread, ignoring how it ended.
    pub(super) fn wait_finished(&self) {
        let mut st = self.inner.state.lock();
        while st.running_here() {
            self.inner.finished.wait(&mut st);
        }
    }

    /// `true` from [`start`](Thread::start) until the closure has returned
    /// (or panicked). Mirrors `Thread.is_alive()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let t = spindle::thread::Thread::new(|| {});
    /// assert!(!t.is_alive());
    /// t.start()?;
    /// t.join()?;
    /// assert!(!t.is_alive());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_alive(&self) -> bool {
        self.inner.state.lock().running_here()
    }

    /// The thread's name. Mirrors `Thread.name`: "MainThread" for the main
    /// thread, "Thread-N" unless one was given.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// `true` for a daemon thread: the process does not wait for it at exit.
    /// Mirrors `Thread.daemon`.
    pub fn is_daemon(&self) -> bool {
        self.inner.daemon
    }

    /// `true` for a thread spindle did not start and that is not the main
    /// thread (Python's `_DummyThread`).
    pub fn is_dummy(&self) -> bool {
        self.inner.kind == Kind::Dummy
    }

    /// The thread's identifier, `None` before it is started. Mirrors
    /// `Thread.ident`; unlike Python's, spindle idents are never reused. The
    /// main thread's ident is 1.
    pub fn ident(&self) -> Option<u64> {
        self.inner.state.lock().ident
    }

    /// The kernel's id for the thread (Linux: its TID), `None` before it is
    /// started. Mirrors `Thread.native_id`. Right after
    /// [`start`](Thread::start) this waits the few microseconds until the new
    /// thread has reported it.
    pub fn native_id(&self) -> Option<u64> {
        let mut st = self.inner.state.lock();
        while st.native_id.is_none() && st.running_here() {
            self.inner.finished.wait(&mut st);
        }
        st.native_id
    }

    /// Whether the thread is (or was) one of process `pid`'s.
    pub(super) fn lives_in(&self, pid: u32) -> bool {
        self.inner.kind == Kind::Main || self.inner.state.lock().pid == Some(pid)
    }

    pub(super) fn native_id_now(&self) -> Option<u64> {
        self.inner.state.lock().native_id
    }
}

struct FinishGuard<'a> {
    thread: &'a Thread,
    panic: Option<Arc<str>>,
}

impl Drop for FinishGuard<'_> {
    fn drop(&mut self) {
        self.thread.finish(self.panic.take());
    }
}

/// The message of a panic payload (`&str` or `String`), as Python prints the
/// exception of a failed thread.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_owned()
    }
}

impl PartialEq for Thread {
    /// Two `Thread`s are equal when they refer to the same thread.
    fn eq(&self, other: &Thread) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for Thread {}

impl fmt::Debug for Thread {
    /// Python's repr: `<Thread(name, started daemon 12)>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.inner.state.lock();
        let status = match st.status {
            Status::New => "initial",
            Status::Running => "started",
            Status::Finished(_) => "stopped",
        };
        write!(f, "<Thread({}, {status}", self.inner.name)?;
        if self.inner.daemon {
            f.write_str(" daemon")?;
        }
        if let Some(id) = st.ident {
            write!(f, " {id}")?;
        }
        f.write_str(")>")
    }
}
