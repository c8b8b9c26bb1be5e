//! The children of this process: their exit status, reaping, the atexit
//! clean-up, and `active_children`.

use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
use nix::unistd::Pid;
use parking_lot::Mutex;

use super::boot::Outcome;
use super::error::{Kind, ProcessError};
use crate::ipc::frame::{self, FrameError, Kind as FrameKind};
use crate::ipc::wait_readable;

/// How a child ended.
#[derive(Debug, Clone)]
pub(crate) enum End {
    /// Python-style exit code: the code, or minus the signal.
    Code(i32),
    /// Unknown: the fork server that owned it died.
    Lost(String),
}

/// How the parent learns a child's end.
#[derive(Debug)]
pub(crate) enum Watch {
    /// Our own child (fork, spawn): `waitpid`; `ctl` carries its outcome.
    Direct { ctl: Option<UnixStream> },
    /// A fork-server child: the server sends its wait status on `status`.
    Served { status: UnixStream },
}

#[derive(Debug)]
struct Status {
    end: Option<End>,
    outcome: Option<Result<Outcome, ProcessError>>,
}

/// Shared between a `Process` handle and the registry of children.
#[derive(Debug)]
pub(crate) struct ChildState {
    pub(crate) pid: u32,
    pub(crate) name: String,
    pub(crate) daemon: bool,
    watch: Watch,
    status: Mutex<Status>,
}

pub(crate) fn wait_code(ws: WaitStatus) -> Option<i32> {
    match ws {
        WaitStatus::Exited(_, c) => Some(c),
        WaitStatus::Signaled(_, s, _) => Some(-(s as i32)),
        _ => None,
    }
}

impl ChildState {
    pub(crate) fn new(pid: u32, name: String, daemon: bool, watch: Watch) -> Arc<ChildState> {
        Arc::new(ChildState {
            pid,
            name,
            daemon,
            watch,
            status: Mutex::new(Status {
                end: None,
                outcome: None,
            }),
        })
    }

    fn nix_pid(&self) -> Pid {
        Pid::from_raw(self.pid as i32)
    }

    /// The end if known, reaping without blocking.
    pub(crate) fn poll_end(&self) -> Option<End> {
        let mut st = self.status.lock();
        if st.end.is_some() {
            return st.end.clone();
        }
        match &self.watch {
            Watch::Direct { ctl } => match waitpid(self.nix_pid(), Some(WaitPidFlag::WNOHANG)) {
                Ok(ws) => {
                    if let Some(code) = wait_code(ws) {
                        st.end = Some(End::Code(code));
                        if let Some(ctl) = ctl {
                            st.outcome = read_outcome_after_exit(ctl);
                        }
                    }
                }
                // Not our child any more (reaped elsewhere): nothing to learn.
                Err(nix::errno::Errno::ECHILD) => {
                    st.end = Some(End::Lost("reaped by someone else".into()));
                }
                Err(_) => {}
            },
            Watch::Served { status } => {
                while st.end.is_none() {
                    match wait_readable(status.as_fd(), Some(Instant::now())) {
                        Ok(true) => {}
                        _ => break,
                    }
                    match frame::read_frame(status, 1 << 20) {
                        Ok((FrameKind::Outcome, bytes)) => {
                            st.outcome = Some(decode_outcome(&bytes))
                        }
                        Ok((FrameKind::Exit, bytes)) => {
                            let code = postcard::from_bytes::<i32>(&bytes).unwrap_or(-1);
                            st.end = Some(End::Code(code));
                        }
                        Ok((k, _)) => {
                            st.end = Some(End::Lost(format!("unexpected {k:?} frame")));
                        }
                        Err(FrameError::Version { got }) => {
                            st.outcome =
                                Some(Err(ProcessError::new(Kind::VersionMismatch { got })));
                            st.end = Some(End::Lost("version mismatch".into()));
                        }
                        Err(e) => {
                            st.end = Some(End::Lost(format!("fork server gone ({e:?})")));
                        }
                    }
                }
            }
        }
        st.end.clone()
    }

    /// Waits for the end until `deadline` (`None`: forever).
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> Option<End> {
        loop {
            if let Some(end) = self.poll_end() {
                return Some(end);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return None;
            }
            match (&self.watch, deadline) {
                (Watch::Direct { .. }, None) => {
                    // Block until it exits without reaping; `poll_end` reaps
                    // under the lock so only one caller ever reaps.
                    let _ = waitid(
                        Id::Pid(self.nix_pid()),
                        WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT,
                    );
                }
                (Watch::Direct { ctl }, Some(d)) => {
                    // The child's end of `ctl` closes when it exits: wake then,
                    // or every 10 ms in case a grandchild inherited that end.
                    let slice = d.min(Instant::now() + Duration::from_millis(10));
                    match ctl {
                        Some(c) if matches!(wait_readable(c.as_fd(), Some(slice)), Ok(false)) => {}
                        _ => std::thread::sleep(
                            Duration::from_micros(200)
                                .min(d.saturating_duration_since(Instant::now())),
                        ),
                    }
                }
                (Watch::Served { status }, d) => {
                    let _ = wait_readable(status.as_fd(), d);
                }
            }
        }
    }

    /// The outcome frame the child sent, if any (after the end is known).
    pub(crate) fn take_outcome(&self) -> Option<Result<Outcome, ProcessError>> {
        self.status.lock().outcome.take()
    }

    /// Sends `sig` unless the child is already reaped.
    pub(crate) fn signal(&self, sig: Signal) -> Result<(), ProcessError> {
        let st = self.status.lock();
        if st.end.is_some() {
            return Ok(());
        }
        match kill(self.nix_pid(), sig) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

fn decode_outcome(bytes: &[u8]) -> Result<Outcome, ProcessError> {
    postcard::from_bytes(bytes)
        .map_err(|e| ProcessError::new(Kind::Lost(format!("bad outcome frame: {e}"))))
}

/// Reads the outcome a reaped child left in `ctl`, never blocking.
fn read_outcome_after_exit(ctl: &UnixStream) -> Option<Result<Outcome, ProcessError>> {
    ctl.set_nonblocking(true).ok()?;
    match frame::read_frame(ctl, 1 << 20) {
        Ok((FrameKind::Outcome, bytes)) => Some(decode_outcome(&bytes)),
        Err(FrameError::Version { got }) => {
            Some(Err(ProcessError::new(Kind::VersionMismatch { got })))
        }
        _ => None,
    }
}

static CHILDREN: Mutex<Vec<Arc<ChildState>>> = Mutex::new(Vec::new());
static ATEXIT: Once = Once::new();

/// Registers a started child (and the exit handler on first use).
pub(crate) fn register(child: Arc<ChildState>) {
    ATEXIT.call_once(|| {
        // SAFETY: `at_exit` is a plain `extern "C" fn()` that stays valid for
        // the whole program; atexit only stores the pointer.
        unsafe {
            libc::atexit(at_exit);
        }
    });
    let mut kids = CHILDREN.lock();
    kids.retain(|c| c.poll_end().is_none());
    kids.push(child);
}

/// Locks the registry (held across `fork` so the child's copy is consistent).
pub(crate) fn lock() -> parking_lot::MutexGuard<'static, Vec<Arc<ChildState>>> {
    CHILDREN.lock()
}

/// Reaps finished children (Python's `_cleanup`).
pub(crate) fn cleanup() {
    CHILDREN.lock().retain(|c| c.poll_end().is_none());
}

/// A child that is still running, as listed by [`active_children`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveChild {
    /// Its process id.
    pub pid: u32,
    /// Its name.
    pub name: String,
    /// Whether it is a daemon.
    pub daemon: bool,
}

/// The children of this process that are still alive, reaping those that
/// ended (Python's `multiprocessing.active_children()`, which returns the
/// `Process` objects; spindle returns their pid, name and daemon flag).
///
/// # Examples
/// ```
/// assert!(spindle::process::active_children().is_empty());
/// ```
pub fn active_children() -> Vec<ActiveChild> {
    let mut kids = CHILDREN.lock();
    kids.retain(|c| c.poll_end().is_none());
    kids.iter()
        .map(|c| ActiveChild {
            pid: c.pid,
            name: c.name.clone(),
            daemon: c.daemon,
        })
        .collect()
}

/// What Python's `multiprocessing.util._exit_function` does: terminate the
/// daemon children, then wait for the others. Runs at `exit` and at the end
/// of every spindle child.
pub(crate) extern "C" fn at_exit() {
    // Like Python's feeder threads, queued items are sent before we go.
    crate::ipc::flush_all();
    // Another thread may be inside a registry operation as the process exits:
    // wait briefly rather than deadlock.
    let Some(mut g) = CHILDREN.try_lock_for(Duration::from_millis(500)) else {
        return;
    };
    let kids: Vec<_> = std::mem::take(&mut *g);
    drop(g);
    for c in kids.iter().filter(|c| c.daemon) {
        let _ = c.signal(Signal::SIGTERM);
    }
    // A daemon that ignores or blocks SIGTERM would hold the exit forever
    // (Python's does): SIGKILL those still alive after the grace period.
    let grace = Instant::now() + DAEMON_EXIT_GRACE;
    for c in kids.iter().filter(|c| c.daemon) {
        if c.wait(Some(grace)).is_none() {
            let _ = c.signal(Signal::SIGKILL);
        }
    }
    for c in &kids {
        c.wait(None);
    }
}

/// How long the exit hook lets daemon children react to SIGTERM before it
/// SIGKILLs them.
const DAEMON_EXIT_GRACE: Duration = Duration::from_secs(1);
