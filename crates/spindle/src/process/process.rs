//! `Process`: a child process running a task or, with `Fork`, a closure.
#![forbid(unsafe_code)]

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::boot::{Boot, ChildSpec, Outcome};
use super::children::{self, ChildState, End, Watch};
use super::current::{self, AuthKey, AuthKeyError, KeyState};
use super::error::{Kind, ProcessError};
use super::fork::{self, ForkTarget};
use super::task::{self, BULK_FROM, TaskCall};
use super::{entry, forkserver, pidfd, spawn};
use crate::futures::{Payload, TooLarge};
use crate::ipc::sealed::Sealed;

/// How a child process is started (Python's start methods).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartMethod {
    /// `fork()` the current process: fastest, runs closures, copies all memory.
    /// Dangerous in a multi-threaded program: locks held by other threads stay
    /// held in the child (see the module docs).
    Fork,
    /// Exec this program afresh; only the task and its arguments cross.
    Spawn,
    /// Ask a fork server (one fresh exec of this program, started on first
    /// use) to fork the child: as safe as `Spawn`, nearly as fast as `Fork`.
    /// The default, as in Python 3.14 on Linux.
    ForkServer,
}

impl StartMethod {
    /// Python's name: `"fork"`, `"spawn"` or `"forkserver"`.
    pub fn name(self) -> &'static str {
        match self {
            StartMethod::Fork => "fork",
            StartMethod::Spawn => "spawn",
            StartMethod::ForkServer => "forkserver",
        }
    }

    /// Every start method available here (Python's
    /// `get_all_start_methods()`).
    pub fn all() -> [StartMethod; 3] {
        [
            StartMethod::ForkServer,
            StartMethod::Spawn,
            StartMethod::Fork,
        ]
    }
}

static DEFAULT_METHOD: AtomicU8 = AtomicU8::new(2);

/// Sets the start method used when none is given (Python's
/// `set_start_method`, without its "context has already been set" error).
pub fn set_start_method(method: StartMethod) {
    DEFAULT_METHOD.store(method as u8, Ordering::Relaxed);
}

/// The start method used when none is given (Python's `get_start_method()`).
pub fn get_start_method() -> StartMethod {
    match DEFAULT_METHOD.load(Ordering::Relaxed) {
        0 => StartMethod::Fork,
        1 => StartMethod::Spawn,
        _ => StartMethod::ForkServer,
    }
}

/// A start method bound to a handle (Python's `get_context(method)`): its
/// processes start with that method.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    method: StartMethod,
}

/// A [`Context`] for `method` (Python's `multiprocessing.get_context`).
pub fn get_context(method: StartMethod) -> Context {
    Context { method }
}

impl Context {
    /// The context's start method.
    pub fn start_method(&self) -> StartMethod {
        self.method
    }

    /// A builder whose processes start with this context's method.
    pub fn process(&self) -> Builder {
        Process::builder().start_method(self.method)
    }
}

enum Target {
    Task(TaskCall),
    // The mutex only makes `Process` `Sync`: the closure is taken by `start`,
    // which has `&mut self`.
    Closure(std::sync::Mutex<Box<dyn FnOnce() + Send + 'static>>),
}

/// Configures a [`Process`] (Python's `Process(target, args, name, daemon)`
/// keyword arguments).
pub struct Builder {
    target: Option<Target>,
    name: Option<String>,
    daemon: bool,
    method: Option<StartMethod>,
    authkey: Option<AuthKey>,
    max_payload: usize,
}

impl Builder {
    /// Runs a task in the child: a `my_task::call(args..)` (a
    /// [`Call`](super::Call)) or any [`TaskCall`].
    pub fn task(mut self, call: impl Into<TaskCall>) -> Builder {
        self.target = Some(Target::Task(call.into()));
        self
    }

    /// Runs a closure in the child; needs [`StartMethod::Fork`], which this
    /// selects unless another method is set afterwards.
    pub fn closure<F: FnOnce() + Send + 'static>(mut self, f: F) -> Builder {
        self.target = Some(Target::Closure(std::sync::Mutex::new(Box::new(f))));
        self.method.get_or_insert(StartMethod::Fork);
        self
    }

    /// The child's name (default `Process-N`, `Process-N:M` in a child).
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Makes the child a daemon: terminated when this process exits (also if
    /// this process is killed, through the parent-death signal), and not
    /// allowed to start children of its own.
    pub fn daemon(mut self, daemon: bool) -> Builder {
        self.daemon = daemon;
        self
    }

    /// The start method (default: [`get_start_method`]).
    pub fn start_method(mut self, method: StartMethod) -> Builder {
        self.method = Some(method);
        self
    }

    /// The child's authentication key (default: this process's).
    pub fn authkey(mut self, key: AuthKey) -> Builder {
        self.authkey = Some(key);
        self
    }

    /// The largest encoded task arguments `start` sends (spindle only;
    /// default [`DEFAULT_MAX_PAYLOAD`](super::DEFAULT_MAX_PAYLOAD), 2 GiB):
    /// over it, `start` fails with
    /// [`ProcessError::too_large`] before anything is started. Arguments
    /// from 256 KiB on reach a `Spawn` or `ForkServer` child in a sealed
    /// memfd, not through its bootstrap socket. Python has no such limit
    /// (memory only).
    pub fn max_payload(mut self, bytes: usize) -> Builder {
        self.max_payload = bytes;
        self
    }

    /// The process, not started yet.
    pub fn build(self) -> Process {
        Process {
            builder: Some(self),
            child: None,
            name: None,
            method: None,
            authkey: None,
            sentinel: None,
            closed: false,
        }
    }

    /// Builds and starts the process.
    ///
    /// # Errors
    /// As [`Process::start`].
    pub fn start(self) -> Result<Process, ProcessError> {
        let mut p = self.build();
        p.start()?;
        Ok(p)
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("name", &self.name)
            .field("daemon", &self.daemon)
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

/// A child process (Python's `multiprocessing.Process`).
///
/// Build it with [`Process::new`] (a task) or [`Process::builder`], then
/// [`start`](Self::start) and [`join`](Self::join). The target is a task
/// registered with `#[spindle::task]` (any start method) or, with
/// [`StartMethod::Fork`], a closure. A panic in the child comes back from
/// `join` as an error with its message; the exit code follows Python
/// ([`exitcode`](Self::exitcode)). Children are reaped by `join`, by
/// [`active_children`](super::active_children), by the next `start`, and at
/// exit (where daemons are terminated and the others waited for, as Python's
/// `atexit` hook does): none is left a zombie.
///
/// # Examples
/// ```
/// #[spindle::task]
/// fn square_check(n: u64) {
///     assert_eq!(n * n, 49, "wrong square");
/// }
///
/// use spindle::process::Process;
/// let mut p = Process::new(square_check::call(7));
/// p.start()?;
/// p.join()?;
/// assert_eq!(p.exitcode(), Some(0));
///
/// let mut bad = Process::new(square_check::call(8));
/// bad.start()?;
/// let err = bad.join().unwrap_err();
/// assert!(err.panic_message().unwrap().contains("wrong square"));
/// assert_eq!(bad.exitcode(), Some(1));
/// # Ok::<(), spindle::process::ProcessError>(())
/// ```
pub struct Process {
    builder: Option<Builder>,
    child: Option<Arc<ChildState>>,
    name: Option<String>,
    method: Option<StartMethod>,
    /// The key the child was given at `start` (or the failure it inherited).
    authkey: Option<KeyState>,
    /// A descriptor readable once the child ended, opened at `start`.
    sentinel: Option<Sentinel>,
    closed: bool,
}

/// What `start` could open for [`Process::sentinel`].
enum Sentinel {
    Fd(OwnedFd),
    /// The OS error `pidfd_open` (or the fallback pipe) gave.
    Failed(i32),
}

impl Process {
    /// A process that will run `call` (not started yet): a
    /// `my_task::call(args..)` (a [`Call`](super::Call)) or any [`TaskCall`].
    pub fn new(call: impl Into<TaskCall>) -> Process {
        Process::builder().task(call).build()
    }

    /// A builder for a process (Python's `Process(...)` keyword arguments).
    pub fn builder() -> Builder {
        Builder {
            target: None,
            name: None,
            daemon: false,
            method: None,
            authkey: None,
            max_payload: super::DEFAULT_MAX_PAYLOAD,
        }
    }

    /// Starts the child (Python's `start()`).
    ///
    /// # Errors
    /// [`is_already_started`](ProcessError::is_already_started) the second
    /// time; [`is_daemonic_children`](ProcessError::is_daemonic_children) in a
    /// daemon process; [`is_unknown_task`](ProcessError::is_unknown_task) if
    /// the task is not registered; [`is_needs_fork`](ProcessError::is_needs_fork)
    /// for a closure with another method; the OS error if no process can be
    /// made. A process without a target runs nothing and exits 0.
    pub fn start(&mut self) -> Result<(), ProcessError> {
        if self.closed {
            return Err(ProcessError::new(Kind::Closed));
        }
        let Some(b) = self.builder.take() else {
            return Err(ProcessError::new(Kind::AlreadyStarted));
        };
        if current::current_process().daemon() {
            self.builder = Some(b);
            return Err(ProcessError::new(Kind::DaemonicChildren));
        }
        children::cleanup();
        let method = b.method.unwrap_or_else(get_start_method);
        let target = b
            .target
            .unwrap_or_else(|| Target::Task(TaskCall::new::<task::__spindle_noop>(&())));
        if let Target::Task(call) = &target {
            if let Some(e) = &call.encode_error {
                return Err(ProcessError::new(Kind::Encode(e.clone())));
            }
            if task::lookup(&call.name).is_none() {
                return Err(ProcessError::new(Kind::UnknownTask(call.name.clone())));
            }
            if call.args.len() > b.max_payload {
                return Err(ProcessError::new(Kind::TooLarge(TooLarge::new(
                    Payload::Argument,
                    call.args.len() as u64,
                    b.max_payload as u64,
                ))));
            }
        }
        let id = current::next_child(b.name, b.daemon, b.authkey);
        let name = id.name.clone();
        let daemon = id.daemon;
        self.authkey = Some(id.authkey.clone());
        let (pid, watch) = match (method, target) {
            (StartMethod::Fork, Target::Task(call)) => {
                let (pid, ctl) = fork::start(ForkTarget::Task(call), id)?;
                (pid, Watch::Direct { ctl: Some(ctl) })
            }
            (StartMethod::Fork, Target::Closure(f)) => {
                let f = f
                    .into_inner()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let (pid, ctl) = fork::start(ForkTarget::Closure(f), id)?;
                (pid, Watch::Direct { ctl: Some(ctl) })
            }
            (_, Target::Closure(_)) => return Err(ProcessError::new(Kind::NeedsFork)),
            (StartMethod::Spawn, Target::Task(mut call)) => {
                let (args, bulk) = bulk_args(&mut call)?;
                let spec = ChildSpec {
                    id,
                    task: call.name.clone(),
                    args,
                    bulk,
                };
                entry::ensure_linked();
                let (pid, ctl) = spawn::exec_boot(&Boot::Child(spec), &call.fds, daemon)?;
                (pid, Watch::Direct { ctl: Some(ctl) })
            }
            (StartMethod::ForkServer, Target::Task(mut call)) => {
                let (args, bulk) = bulk_args(&mut call)?;
                let spec = ChildSpec {
                    id,
                    task: call.name.clone(),
                    args,
                    bulk,
                };
                entry::ensure_linked();
                let (pid, status) = forkserver::start(&spec, &call.fds)?;
                (pid, Watch::Served { status })
            }
        };
        let state = ChildState::new(pid, name.clone(), daemon, watch);
        // Opened before anything can reap the child (a fork-server child is
        // reaped by the server: if it is gone already, the pid is free and
        // the sentinel is ready at once).
        let fd = match pidfd::open(pid) {
            Ok(Some(fd)) => Ok(fd),
            Ok(None) => pidfd::ready(),
            Err(e) => Err(e),
        };
        self.sentinel = Some(match fd {
            Ok(fd) => Sentinel::Fd(fd),
            Err(e) => Sentinel::Failed(e.raw_os_error().unwrap_or(libc::EIO)),
        });
        children::register(state.clone());
        self.child = Some(state);
        self.name = Some(name);
        self.method = Some(method);
        Ok(())
    }

    fn child(&self) -> Result<&Arc<ChildState>, ProcessError> {
        match &self.child {
            Some(c) => Ok(c),
            None if self.closed => Err(ProcessError::new(Kind::Closed)),
            None => Err(ProcessError::new(Kind::NotStarted)),
        }
    }

    /// Releases what the `Process` holds (its sentinel descriptor, its
    /// entry among the children): Python's `close()`. Afterwards `start`,
    /// `join`, `terminate`, `kill`, `interrupt` and `sentinel` fail with
    /// [`is_closed`](ProcessError::is_closed), `pid` and `exitcode` are
    /// `None` and `is_alive` is false (Python raises `ValueError` from them
    /// all). Closing again does nothing.
    ///
    /// # Errors
    /// [`is_still_running`](ProcessError::is_still_running) if the child
    /// has not ended (Python's `ValueError: Cannot close a process while it
    /// is still running`); nothing is released then.
    ///
    /// # Examples
    /// ```
    /// use spindle::process::Process;
    ///
    /// #[spindle::task]
    /// fn nothing() {}
    ///
    /// let mut p = Process::new(nothing::call());
    /// p.start()?;
    /// p.join()?;
    /// p.close()?;
    /// assert!(p.join().unwrap_err().is_closed());
    /// # Ok::<(), spindle::process::ProcessError>(())
    /// ```
    pub fn close(&mut self) -> Result<(), ProcessError> {
        if let Some(c) = &self.child
            && c.poll_end().is_none()
        {
            return Err(ProcessError::new(Kind::StillRunning));
        }
        self.child = None;
        self.sentinel = None;
        self.builder = None;
        self.closed = true;
        children::cleanup();
        Ok(())
    }

    /// A descriptor that becomes readable when the child ends (Python's
    /// `sentinel`), to wait on with `poll(2)` / `epoll` beside other
    /// descriptors. It is a process descriptor (`pidfd_open(2)`) opened at
    /// `start`: readable once the child has ended, reaped or not, and never
    /// fooled by a reused pid. Reading it is not needed; call
    /// [`join`](Self::join) or [`is_alive`](Self::is_alive) to reap the
    /// child and learn how it ended.
    ///
    /// # Errors
    /// [`is_not_started`](ProcessError::is_not_started) before `start`,
    /// [`is_closed`](ProcessError::is_closed) after [`close`](Self::close),
    /// or the OS error if no descriptor could be opened at `start` (a
    /// kernel before 5.3, no descriptors left).
    pub fn sentinel(&self) -> Result<BorrowedFd<'_>, ProcessError> {
        self.child()?;
        match &self.sentinel {
            Some(Sentinel::Fd(fd)) => Ok(fd.as_fd()),
            Some(Sentinel::Failed(code)) => {
                Err(ProcessError::io(std::io::Error::from_raw_os_error(*code)))
            }
            None => Err(ProcessError::new(Kind::NotStarted)),
        }
    }

    /// Waits for the child to end (Python's `join()`).
    ///
    /// # Errors
    /// If the child did not end cleanly: its panic
    /// ([`is_panic`](ProcessError::is_panic), with the message), a task
    /// that could not run, or a non-zero exit code or signal
    /// ([`ProcessError::exitcode`]). [`is_not_started`](ProcessError::is_not_started)
    /// before `start` (Python's "can only join a started process").
    pub fn join(&mut self) -> Result<(), ProcessError> {
        self.join_until(None)
    }

    /// Reaps the child if it has ended, without waiting (Python's
    /// `p.join(0)`, or `is_alive()` followed by `join()`).
    ///
    /// # Errors
    /// [`is_still_running`](ProcessError::is_still_running) if the child has
    /// not ended yet (call it again later); otherwise as [`join`](Self::join).
    ///
    /// # Examples
    /// ```
    /// use spindle::ipc::{Connection, Pipe};
    /// use spindle::process::Process;
    ///
    /// #[spindle::task]
    /// fn wait_for_word(conn: Connection) {
    ///     let _ = conn.recv::<u8>();
    /// }
    ///
    /// let (ours, theirs) = Pipe(true)?;
    /// let mut p = Process::new(wait_for_word::call(theirs));
    /// p.start()?;
    /// assert!(p.try_join().unwrap_err().is_still_running());
    /// ours.send(&1u8)?;
    /// p.join()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_join(&mut self) -> Result<(), ProcessError> {
        match self.join_until(Some(Instant::now())) {
            Err(e) if e.is_timeout() => Err(ProcessError::new(Kind::StillRunning)),
            other => other,
        }
    }

    /// Waits at most `timeout` for the child to end (Python's
    /// `join(timeout)`). A timeout too long to represent waits forever.
    ///
    /// # Errors
    /// [`is_timeout`](ProcessError::is_timeout) if it is still running;
    /// otherwise as [`join`](Self::join).
    pub fn join_timeout(&mut self, timeout: Duration) -> Result<(), ProcessError> {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.join_deadline(deadline),
            None => self.join(),
        }
    }

    /// Waits for the child to end until `deadline` (Python's `join(timeout)`
    /// with the timeout as an instant).
    ///
    /// # Errors
    /// As [`join_timeout`](Self::join_timeout).
    pub fn join_deadline(&mut self, deadline: Instant) -> Result<(), ProcessError> {
        self.join_until(Some(deadline))
    }

    /// Waits until `deadline` (`None`: forever) and reports how the child
    /// ended.
    fn join_until(&mut self, deadline: Option<Instant>) -> Result<(), ProcessError> {
        let child = self.child()?;
        let Some(end) = child.wait(deadline) else {
            return Err(ProcessError::new(Kind::Timeout));
        };
        let outcome = child.take_outcome();
        match (end, outcome) {
            (_, Some(Err(e))) => Err(e),
            (End::Lost(m), _) => Err(ProcessError::new(Kind::Lost(m))),
            (End::Code(0), _) => Ok(()),
            (End::Code(_), Some(Ok(Outcome::Panicked(m)))) => {
                Err(ProcessError::new(Kind::Panicked(m)))
            }
            (End::Code(_), Some(Ok(Outcome::UnknownTask(n)))) => {
                Err(ProcessError::new(Kind::UnknownTask(n)))
            }
            (End::Code(_), Some(Ok(Outcome::ArgDecode(msg)))) => {
                Err(ProcessError::new(Kind::ArgDecode {
                    task: self.name().to_string(),
                    msg,
                }))
            }
            (End::Code(_), Some(Ok(Outcome::VersionMismatch(got)))) => {
                Err(ProcessError::new(Kind::VersionMismatch { got }))
            }
            (End::Code(c), _) if c < 0 => Err(ProcessError::new(Kind::Signaled(-c))),
            (End::Code(c), _) => Err(ProcessError::new(Kind::Exited(c))),
        }
    }

    /// Whether the child has been started and has not ended (Python's
    /// `is_alive()`); reaps it if it ended.
    pub fn is_alive(&self) -> bool {
        self.child.as_ref().is_some_and(|c| c.poll_end().is_none())
    }

    /// Python's `exitcode`: `None` before start and while running, then the
    /// exit code (0 on success, 1 after a panic), or minus the number of the
    /// signal that killed it.
    pub fn exitcode(&self) -> Option<i32> {
        match self.child.as_ref()?.poll_end()? {
            End::Code(c) => Some(c),
            End::Lost(_) => None,
        }
    }

    /// Sends SIGTERM (Python's `terminate()`); nothing if it already ended.
    ///
    /// # Errors
    /// [`is_not_started`](ProcessError::is_not_started) before `start`.
    pub fn terminate(&self) -> Result<(), ProcessError> {
        self.child()?.signal(Signal::SIGTERM)
    }

    /// Sends SIGKILL (Python's `kill()`); nothing if it already ended.
    ///
    /// # Errors
    /// [`is_not_started`](ProcessError::is_not_started) before `start`.
    pub fn kill(&self) -> Result<(), ProcessError> {
        self.child()?.signal(Signal::SIGKILL)
    }

    /// Sends SIGINT (Python 3.14's `interrupt()`); nothing if it already
    /// ended. A spindle child keeps the default action of SIGINT, so it ends
    /// with exit code -2 (Python's child raises `KeyboardInterrupt` and, if
    /// nothing catches it, exits with code 1).
    ///
    /// # Errors
    /// [`is_not_started`](ProcessError::is_not_started) before `start`.
    pub fn interrupt(&self) -> Result<(), ProcessError> {
        self.child()?.signal(Signal::SIGINT)
    }

    /// The child's process id once started (Python's `pid`).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.pid)
    }

    /// The child's name (Python's `name`); before start, the builder's name
    /// or `""` if it will get a default one.
    pub fn name(&self) -> &str {
        match (&self.name, &self.builder) {
            (Some(n), _) => n,
            (None, Some(b)) => b.name.as_deref().unwrap_or(""),
            (None, None) => "",
        }
    }

    /// Whether the child is (or will be) a daemon (Python's `daemon`).
    pub fn daemon(&self) -> bool {
        match (&self.child, &self.builder) {
            (Some(c), _) => c.daemon,
            (None, Some(b)) => b.daemon,
            (None, None) => false,
        }
    }

    /// The start method used, once started.
    pub fn start_method(&self) -> Option<StartMethod> {
        self.method
    }

    /// The child's authentication key (Python's `authkey`): the one given
    /// to [`Builder::authkey`], else this process's.
    ///
    /// # Errors
    /// [`AuthKeyError`] if no key was given and this process has none (its
    /// OS random source failed, see [`CurrentProcess::authkey`](super::CurrentProcess::authkey)).
    pub fn authkey(&self) -> Result<AuthKey, AuthKeyError> {
        if let Some(k) = &self.authkey {
            return k.clone();
        }
        match self.builder.as_ref().and_then(|b| b.authkey) {
            Some(k) => Ok(k),
            None => current::current_process().authkey().copied(),
        }
    }
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match (&self.child, self.exitcode()) {
            (None, _) if self.closed => "closed".to_string(),
            (None, _) => "initial".to_string(),
            (Some(_), None) if self.is_alive() => "started".to_string(),
            (Some(_), c) => format!("stopped exitcode={c:?}"),
        };
        f.debug_struct("Process")
            .field("name", &self.name())
            .field("pid", &self.pid())
            .field("state", &state)
            .field("daemon", &self.daemon())
            .finish()
    }
}

/// The arguments for a spawned child's boot frame: inline if small; else a
/// sealed memfd appended to the call's descriptors (the child maps it), and
/// its length.
fn bulk_args(call: &mut TaskCall) -> Result<(Vec<u8>, Option<u64>), ProcessError> {
    if call.args.len() < BULK_FROM {
        return Ok((call.args.clone(), None));
    }
    let sealed = Sealed::copy_of(&call.args)?;
    let n = sealed.len() as u64;
    call.fds.push(sealed.into_fd());
    Ok((Vec::new(), Some(n)))
}
