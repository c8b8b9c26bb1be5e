//! The `Spawn` start method: a fresh exec of the current executable, told by
//! `SPINDLE_BOOT` to be a child (see entry.rs).
//!
//! The executable is `/proc/self/exe`, unless `SPINDLE_EXE` names another
//! file: under valgrind `/proc/self/exe` is valgrind's tool, so
//! `.ci/valgrind` sets `SPINDLE_EXE` to the test binary and children (and
//! the fork server) run it, traced with `--trace-children=yes`.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use nix::sys::signal::Signal;

use super::boot::{self, Boot};
use super::error::ProcessError;
use crate::ipc::fdpass;
use crate::ipc::frame::{self, Kind};

/// The environment variable that names the executable to re-exec instead
/// of `/proc/self/exe` (see the module docs).
pub(crate) const EXE_ENV: &str = "SPINDLE_EXE";

/// What a child execs: `SPINDLE_EXE` if set and not empty, else
/// `/proc/self/exe`.
fn exe() -> std::ffi::OsString {
    std::env::var_os(EXE_ENV)
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "/proc/self/exe".into())
}

/// Execs this program as a spindle child; returns its pid and our end of the
/// control socket, over which `boot` (and `fds`) have been sent.
pub(crate) fn exec_boot(
    boot: &Boot,
    fds: &[OwnedFd],
    daemon: bool,
) -> Result<(u32, UnixStream), ProcessError> {
    let payload =
        postcard::to_allocvec(boot).map_err(|e| ProcessError::io(std::io::Error::other(e)))?;
    let (ours, theirs) = UnixStream::pair()?;
    let child_fd = theirs.as_raw_fd();
    let parent_pid = nix::unistd::getpid();
    let mut cmd = Command::new(exe());
    if let Some(arg0) = std::env::args_os().next() {
        cmd.arg0(arg0);
    }
    cmd.env(boot::ENV, child_fd.to_string())
        .stdin(Stdio::null());
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe system calls (fcntl, prctl, getppid); it allocates
    // nothing and takes no lock.
    unsafe {
        cmd.pre_exec(move || {
            // Let exactly this descriptor survive the exec.
            // SAFETY: `child_fd` is open: `theirs` lives until after spawn.
            let fd = std::os::fd::BorrowedFd::borrow_raw(child_fd);
            fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty()))?;
            if daemon {
                nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)?;
                if nix::unistd::getppid() != parent_pid {
                    return Err(std::io::Error::other("parent exited during spawn"));
                }
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    let pid = child.id();
    // `Child` neither waits nor kills on drop: the pid is reaped by us.
    drop(child);
    drop(theirs);
    let h = frame::header(Kind::Boot, payload.len())?;
    let mut msg = Vec::with_capacity(h.len() + payload.len());
    msg.extend_from_slice(&h);
    msg.extend_from_slice(&payload);
    match fdpass::send_with_fds(&ours, &msg, fds) {
        Ok(()) => {}
        // The child died before reading: `join` will report how it ended.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid as i32), None);
            return Err(e.into());
        }
    }
    Ok((pid, ours))
}
