//! The `ForkServer` start method: one fresh exec of this program that forks
//! children on request (Python's `multiprocessing.forkserver`).
//!
//! Client → server: a `Request` frame (the child's [`ChildSpec`]) with the
//! descriptors attached: first the child's status socket, then the task's own.
//! Server → client on the control socket: a `Reply` frame, `Ok(pid)` or
//! `Err(message)`. Server → client on the status socket, once the child has
//! been reaped: an `Exit` frame with its Python-style exit code. The child
//! writes its `Outcome` frame on the same status socket before it exits, so
//! the two writers never interleave.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicI32, Ordering};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::{ForkResult, Pid};
use parking_lot::Mutex;

use super::boot::{self, Boot, ChildSpec};
use super::children::wait_code;
use super::current;
use super::error::{Kind, ProcessError};
use crate::ipc::fdpass;
use crate::ipc::frame::{self, FrameError, HEADER_LEN, Kind as FrameKind};

struct Server {
    ctl: UnixStream,
    pid: u32,
}

static SERVER: Mutex<Option<Server>> = Mutex::new(None);

/// Locks the client's server slot (held across `fork`; a forked child
/// empties its copy).
pub(crate) fn lock() -> parking_lot::MutexGuard<'static, Option<impl Sized>> {
    SERVER.lock()
}

/// Asks the fork server (started on first use) for a child running `spec`;
/// returns its pid and our end of its status socket.
pub(crate) fn start(spec: &ChildSpec, fds: &[OwnedFd]) -> Result<(u32, UnixStream), ProcessError> {
    let payload =
        postcard::to_allocvec(spec).map_err(|e| ProcessError::io(std::io::Error::other(e)))?;
    let mut server = SERVER.lock();
    // One retry: a server that died (killed, say) is replaced.
    for attempt in 0..2 {
        if server.is_none() {
            let (pid, ctl) = super::spawn::exec_boot(&Boot::ForkServer, &[], false)?;
            *server = Some(Server { ctl, pid });
        }
        let srv = server.as_ref().expect("just set");
        match request(&srv.ctl, &payload, fds) {
            Ok(r) => return r,
            Err(e) if attempt == 0 => {
                let _ = e;
                let dead = server.take().expect("set");
                let _ = nix::sys::signal::kill(Pid::from_raw(dead.pid as i32), Signal::SIGKILL);
                let _ = waitpid(Pid::from_raw(dead.pid as i32), None);
            }
            Err(e) => return Err(e.into()),
        }
    }
    unreachable!("the loop returns on its second attempt")
}

/// Sends one request; the outer error means the server is unusable.
fn request(
    ctl: &UnixStream,
    payload: &[u8],
    fds: &[OwnedFd],
) -> std::io::Result<Result<(u32, UnixStream), ProcessError>> {
    let (ours, theirs) = UnixStream::pair()?;
    let mut all = Vec::with_capacity(fds.len() + 1);
    all.push(theirs.as_fd().try_clone_to_owned()?);
    for fd in fds {
        all.push(fd.try_clone()?);
    }
    let h = frame::header(FrameKind::Request, payload.len())?;
    let mut msg = h.to_vec();
    msg.extend_from_slice(payload);
    fdpass::send_with_fds(ctl, &msg, &all)?;
    drop(all);
    drop(theirs);
    match frame::read_frame(ctl, 1 << 20) {
        Ok((FrameKind::Reply, bytes)) => {
            match postcard::from_bytes::<Result<u32, String>>(&bytes) {
                Ok(Ok(pid)) => Ok(Ok((pid, ours))),
                Ok(Err(m)) => Ok(Err(ProcessError::io(std::io::Error::other(m)))),
                Err(e) => Err(std::io::Error::other(e)),
            }
        }
        Ok((k, _)) => Err(std::io::Error::other(format!(
            "fork server sent a {k:?} frame"
        ))),
        Err(FrameError::Version { got }) => {
            Ok(Err(ProcessError::new(Kind::VersionMismatch { got })))
        }
        Err(e) => Err(std::io::Error::other(format!("fork server gone: {e:?}"))),
    }
}

static SIGCHLD_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_sigchld(_: libc::c_int) {
    let fd = SIGCHLD_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; the byte is on our stack.
        // A full pipe (EAGAIN) already means "wake up".
        unsafe {
            libc::write(fd, [1u8].as_ptr().cast(), 1);
        }
    }
}

/// The fork server's loop (runs in the booted process, single-threaded,
/// before `main`); returns the exit code when the client goes away.
pub(crate) fn serve(ctl: UnixStream) -> i32 {
    let Ok((wake_r, wake_w)) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
    else {
        return boot::FAILED;
    };
    SIGCHLD_PIPE.store(wake_w.as_raw_fd(), Ordering::Relaxed);
    let action = SigAction::new(
        SigHandler::Handler(on_sigchld),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler only calls write(2) on a descriptor that stays
    // open while the server runs.
    if unsafe { sigaction(Signal::SIGCHLD, &action) }.is_err() {
        return boot::FAILED;
    }
    let mut running: HashMap<i32, UnixStream> = HashMap::new();
    loop {
        let mut fds = [
            PollFd::new(ctl.as_fd(), PollFlags::POLLIN),
            PollFd::new(wake_r.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return boot::FAILED,
        }
        let ctl_ready = fds[0].any().unwrap_or(false);
        let mut drain = [0u8; 64];
        while nix::unistd::read(&wake_r, &mut drain).is_ok_and(|n| n > 0) {}
        reap(&mut running);
        if ctl_ready {
            match serve_one(&ctl, &wake_r, &wake_w) {
                Ok(Some((pid, status))) => {
                    running.insert(pid, status);
                }
                Ok(None) => {}
                // The client closed its end (or sent garbage): stop serving.
                Err(_) => return 0,
            }
        }
    }
}

/// Reaps finished children and tells their parents.
fn reap(running: &mut HashMap<i32, UnixStream>) {
    loop {
        match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            Ok(ws) => match (ws.pid(), wait_code(ws)) {
                (Some(pid), Some(code)) => {
                    if let Some(status) = running.remove(&pid.as_raw())
                        && let Ok(bytes) = postcard::to_allocvec(&code)
                    {
                        let _ = frame::write_frame(&status, FrameKind::Exit, &bytes);
                    }
                }
                _ => return,
            },
            Err(_) => return,
        }
    }
}

/// Reads one request and forks its child; `Ok(None)` if the request was
/// answered with an error.
fn serve_one(
    ctl: &UnixStream,
    wake_r: &OwnedFd,
    wake_w: &OwnedFd,
) -> Result<Option<(i32, UnixStream)>, FrameError> {
    let mut h = [0u8; HEADER_LEN];
    let mut fds = fdpass::recv_exact_with_fds(ctl, &mut h).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => FrameError::Eof,
        _ => FrameError::Io(e),
    })?;
    let (kind, len) = frame::parse_header(&h)?;
    if kind != FrameKind::Request || len > frame::DEFAULT_MAX_FRAME {
        return Err(FrameError::Protocol("expected a request".into()));
    }
    let mut payload = vec![0u8; len];
    std::io::Read::read_exact(&mut &*ctl, &mut payload)?;
    let reply = |r: Result<u32, String>| -> Result<(), FrameError> {
        let bytes = postcard::to_allocvec(&r).map_err(|e| FrameError::Protocol(e.to_string()))?;
        Ok(frame::write_frame(ctl, FrameKind::Reply, &bytes)?)
    };
    let spec: ChildSpec = match postcard::from_bytes(&payload) {
        Ok(s) => s,
        Err(e) => {
            reply(Err(format!("bad request: {e}")))?;
            return Ok(None);
        }
    };
    if fds.is_empty() {
        reply(Err("request without a status socket".into()))?;
        return Ok(None);
    }
    let status = UnixStream::from(fds.remove(0));
    let server_pid = nix::unistd::getpid();
    // SAFETY: the server is single-threaded (it runs in the constructor of a
    // fresh exec and starts no thread), so the child inherits no held lock.
    // The child branch ends in `exit` and never returns here.
    match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => {
            let _ = unsafe_reset_sigchld();
            SIGCHLD_PIPE.store(-1, Ordering::Relaxed);
            // The copies of the control socket and wake pipe stay open in the
            // child until it exits; it never uses them (shutting the socket
            // down would cut the server off too).
            let _ = (wake_r, wake_w);
            let code = run_served_child(spec, fds, &status, server_pid);
            std::process::exit(code)
        }
        Ok(ForkResult::Parent { child }) => {
            drop(fds);
            reply(Ok(child.as_raw() as u32))?;
            Ok(Some((child.as_raw(), status)))
        }
        Err(e) => {
            reply(Err(format!("fork failed: {e}")))?;
            Ok(None)
        }
    }
}

fn unsafe_reset_sigchld() -> nix::Result<SigHandler> {
    // SAFETY: restoring the default disposition installs no handler code.
    unsafe { nix::sys::signal::signal(Signal::SIGCHLD, SigHandler::SigDfl) }
}

fn run_served_child(
    spec: ChildSpec,
    fds: Vec<OwnedFd>,
    status: &UnixStream,
    server_pid: Pid,
) -> i32 {
    // `server_pid` was read before the fork: if the server died since, the
    // check below sees a different parent and the daemon ends at once.
    if spec.id.daemon {
        let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM);
        if nix::unistd::getppid() != server_pid {
            return boot::FAILED;
        }
    }
    current::become_child(&mut current::lock_me(), spec.id.clone());
    let code = boot::run_child(&spec, fds, status);
    super::children::at_exit();
    code
}
