//! The `Fork` start method and the `fork()` helper.

use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::ForkResult;

use super::boot::{self, Outcome};
use super::children::{self, ChildState, Watch};
use super::current::{self, Identity};
use super::error::{Kind, ProcessError};
use super::task::TaskCall;
use crate::ipc::fdpass;

/// What a forked child runs.
pub(crate) enum ForkTarget {
    Task(TaskCall),
    Closure(Box<dyn FnOnce() + Send + 'static>),
}

/// How long a forked child tries to flush stdout and stderr before it exits
/// anyway (see [`boot::finish_forked`]).
const FORKED_FLUSH_LIMIT: Duration = Duration::from_millis(500);

/// Forks a child that runs `target` and exits; returns its pid and our end of
/// its outcome socket.
pub(crate) fn start(target: ForkTarget, id: Identity) -> Result<(u32, UnixStream), ProcessError> {
    let (ours, theirs) = UnixStream::pair()?;
    let daemon = id.daemon;
    let parent_pid = nix::unistd::getpid();
    // Hold our own locks across the fork so the child's copies are
    // consistent (the pthread_atfork pattern); both sides release them.
    let mut me = current::lock_me();
    let mut kids = children::lock();
    let mut server = super::forkserver::lock();
    // SAFETY: the child branch below never returns into the caller: it runs
    // the target under `catch_unwind` and ends with `_exit`. Locks held by
    // other threads at the moment of the fork stay locked in the child; this
    // is the documented danger of the Fork method in a multi-threaded
    // program (see README.md), as in Python.
    match unsafe { nix::unistd::fork() }? {
        ForkResult::Child => {
            let code = catch_unwind(AssertUnwindSafe(move || {
                drop(ours);
                kids.clear();
                drop(kids);
                // The parent's fork server is the parent's: ours starts anew.
                server.take();
                drop(server);
                current::become_child(&mut me, id);
                // The descriptor watching the parent stays open below.
                let parent_fd = me.as_ref().and_then(current::Me::parent_fd);
                drop(me);
                if let ForkTarget::Task(call) = &target {
                    // A task says which descriptors it needs: close the rest,
                    // so that copies of the parent's pipes (its end of this
                    // very task's Connection, or another thread's) do not
                    // keep them open and block end-of-file.
                    let mut keep: Vec<RawFd> = call.fds.iter().map(AsRawFd::as_raw_fd).collect();
                    keep.push(theirs.as_raw_fd());
                    keep.extend(parent_fd);
                    close_other_fds(&keep);
                }
                if daemon {
                    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM);
                    if nix::unistd::getppid() != parent_pid {
                        return boot::FAILED;
                    }
                }
                let outcome = match target {
                    ForkTarget::Closure(f) => boot::run_guarded(move || {
                        f();
                        Ok(Vec::<u8>::new())
                    }),
                    ForkTarget::Task(call) => match super::task::lookup(&call.name) {
                        None => Outcome::UnknownTask(call.name.clone()),
                        Some(entry) => boot::run_guarded(|| {
                            fdpass::provide(call.fds, || entry.invoke(&call.args))
                        }),
                    },
                };
                let code = boot::finish_forked(&theirs, outcome, FORKED_FLUSH_LIMIT);
                children::at_exit();
                code
            }))
            .unwrap_or(boot::FAILED);
            // SAFETY: `_exit` ends the process at once, skipping the parent's
            // atexit handlers and destructors, which belong to the parent.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(server);
            drop(kids);
            drop(me);
            // Dropping `target` closes the parent's copies of what the child
            // took (a Connection captured by the closure, say).
            drop(target);
            drop(theirs);
            Ok((child.as_raw() as u32, ours))
        }
    }
}

/// Closes every descriptor above 2 not in `keep` (in a forked child).
fn close_other_fds(keep: &[RawFd]) {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<RawFd> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    for fd in fds {
        if fd > 2 && !keep.contains(&fd) {
            // SAFETY: in the forked child, the objects owning these
            // descriptors are copies of the parent's that this child never
            // uses nor drops (it ends with `_exit`), so nothing will use or
            // close these numbers again. Closing the directory's own, already
            // closed descriptor fails harmlessly with EBADF.
            unsafe {
                libc::close(fd);
            }
        }
    }
}

/// What [`fork`] returns in each process (Python's `os.fork()` returns the
/// child's pid in the parent and 0 in the child).
#[derive(Debug)]
pub enum Fork {
    /// In the parent: the child.
    Parent(ForkedChild),
    /// In the child.
    Child,
}

/// A child made by [`fork`]; it is reaped by [`wait`](Self::wait), or at exit.
#[derive(Debug)]
pub struct ForkedChild {
    state: std::sync::Arc<ChildState>,
}

impl ForkedChild {
    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.state.pid
    }

    /// Waits for the child and returns its Python-style exit code (the code,
    /// or minus the signal that killed it; Python's `os.waitpid` +
    /// `os.waitstatus_to_exitcode`).
    ///
    /// # Errors
    /// [`is_lost`](ProcessError::is_lost) if someone else reaped it.
    pub fn wait(&self) -> Result<i32, ProcessError> {
        self.wait_until(None)
    }

    /// Reaps the child if it has ended, without waiting (Python's
    /// `os.waitpid(pid, os.WNOHANG)`), and returns its exit code.
    ///
    /// # Errors
    /// [`is_still_running`](ProcessError::is_still_running) if it has not
    /// ended yet; otherwise as [`wait`](Self::wait).
    pub fn try_wait(&self) -> Result<i32, ProcessError> {
        match self.wait_until(Some(Instant::now())) {
            Err(e) if e.is_timeout() => Err(ProcessError::new(Kind::StillRunning)),
            other => other,
        }
    }

    /// Waits at most `timeout` for the child to end and returns its exit
    /// code (spindle only: `os.waitpid` has no timeout). A timeout too long
    /// to represent waits forever.
    ///
    /// # Errors
    /// [`is_timeout`](ProcessError::is_timeout) if it is still running;
    /// otherwise as [`wait`](Self::wait).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<i32, ProcessError> {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.wait_deadline(deadline),
            None => self.wait(),
        }
    }

    /// Waits until `deadline` for the child to end and returns its exit code
    /// (spindle only, as [`wait_timeout`](Self::wait_timeout)).
    ///
    /// # Errors
    /// As [`wait_timeout`](Self::wait_timeout).
    pub fn wait_deadline(&self, deadline: Instant) -> Result<i32, ProcessError> {
        self.wait_until(Some(deadline))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<i32, ProcessError> {
        match self.state.wait(deadline) {
            Some(children::End::Code(c)) => Ok(c),
            Some(children::End::Lost(m)) => Err(ProcessError::new(Kind::Lost(m))),
            None => Err(ProcessError::new(Kind::Timeout)),
        }
    }
}

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(1, |d| d.count())
}

/// Forks the current process, like Python's `os.fork()`, but only when that
/// is safe: the process must have a single thread, so no lock can be left
/// held in the child.
///
/// The child continues from this call with a copy of the parent's memory;
/// it should end with [`std::process::exit`]. Its spindle identity is
/// unchanged (as in Python); its list of children starts empty.
///
/// # Errors
/// [`is_multi_threaded`](ProcessError::is_multi_threaded) if the process has
/// more than one thread (then start a [`Process`](super::Process) with the
/// `Fork` method, which documents the risk, or use `Spawn`); the OS error if
/// the fork fails.
///
/// # Examples
/// ```
/// use spindle::process::{fork, Fork};
///
/// // Doc tests (and cargo test) run several threads, so this refuses here;
/// // in a single-threaded program it returns Parent and Child.
/// match fork() {
///     Ok(Fork::Parent(child)) => assert_eq!(child.wait()?, 0),
///     Ok(Fork::Child) => std::process::exit(0),
///     Err(e) => assert!(e.is_multi_threaded()),
/// }
/// # Ok::<(), spindle::process::ProcessError>(())
/// ```
pub fn fork() -> Result<Fork, ProcessError> {
    let n = thread_count();
    if n > 1 {
        return Err(ProcessError::new(Kind::MultiThreaded(n)));
    }
    let mut kids = children::lock();
    // SAFETY: the process has one thread (checked above, and only this thread
    // could start another), so no lock is held by a thread that would vanish
    // in the child; the child continues as an ordinary single-threaded program.
    match unsafe { nix::unistd::fork() }? {
        ForkResult::Child => {
            kids.clear();
            Ok(Fork::Child)
        }
        ForkResult::Parent { child } => {
            drop(kids);
            let me = current::current_process();
            let state = ChildState::new(
                child.as_raw() as u32,
                format!("{}-fork", me.name()),
                false,
                Watch::Direct { ctl: None },
            );
            children::register(state.clone());
            Ok(Fork::Parent(ForkedChild { state }))
        }
    }
}
