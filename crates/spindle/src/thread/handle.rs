//! `Thread`: a cheap, cloneable reference to one thread (Python's
//! `threading.Thread` object).
#![forbid(unsafe_code)]

use std::fmt;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use super::pid;

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

pub(super) enum Status {
    New,
    Running,
    /// Finished; `Some(message)` if the closure panicked.
    Finished(Option<Arc<str>>),
}

pub(super) struct State {
    pub(super) status: Status,
    /// The process the thread runs in (`None` for the main thread and
    /// unstarted threads); see `pid::current_pid`.
    pub(super) pid: Option<u32>,
    pub(super) ident: Option<u64>,
    pub(super) native_id: Option<u64>,
    pub(super) job: Option<Job>,
}

impl State {
    /// Running, and in this process: in a forked child the parent's threads
    /// do not exist, and count as finished.
    pub(super) fn running_here(&self) -> bool {
        matches!(self.status, Status::Running)
            && self.pid.is_none_or(|pid| pid == pid::current_pid())
    }
}

pub(super) struct Inner {
    pub(super) name: Box<str>,
    pub(super) daemon: bool,
    pub(super) kind: Kind,
    pub(super) stack_size: Option<usize>,
    pub(super) state: Mutex<State>,
    /// Notified when `state` changes: started, native id known, finished.
    pub(super) finished: Condvar,
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
    pub(super) inner: Arc<Inner>,
}

impl Thread {
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
    pub(super) fn with(
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
