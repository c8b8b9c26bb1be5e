//! Process descriptors (`pidfd_open(2)`, Linux 5.3+): a descriptor that
//! becomes readable when its process ends. They back
//! [`Process::sentinel`](super::Process::sentinel) and
//! [`ParentProcess::is_alive`](super::ParentProcess::is_alive).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Instant;

use nix::fcntl::OFlag;

/// A descriptor for process `pid`, readable once it has ended (close-on-exec,
/// as `pidfd_open` makes it); `Ok(None)` if there is no such process.
pub(crate) fn open(pid: u32) -> io::Result<Option<OwnedFd>> {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return Ok(None);
    };
    // SAFETY: `pidfd_open(pid, 0)` reads no memory of ours; it returns a new
    // descriptor or -1 with `errno` set.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ESRCH) => Ok(None),
            _ => Err(e),
        };
    }
    let fd = i32::try_from(fd).map_err(|_| io::Error::other("pidfd_open: bad descriptor"))?;
    // SAFETY: the kernel has just returned `fd`; nothing else owns it.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// A descriptor that is readable at once (a pipe whose write end is closed):
/// the sentinel of a process that had ended before one could be opened.
pub(crate) fn ready() -> io::Result<OwnedFd> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    drop(w);
    Ok(r)
}

/// Whether the process behind `fd` has ended (the descriptor is readable),
/// without waiting.
pub(crate) fn ended(fd: BorrowedFd<'_>) -> bool {
    crate::ipc::wait_readable(fd, Some(Instant::now())).unwrap_or(false)
}

/// How a child watches its parent (see `ParentProcess::is_alive`).
#[derive(Debug, Clone)]
pub(crate) enum ParentWatch {
    /// A process descriptor opened when the child started.
    Fd(Arc<OwnedFd>),
    /// The parent had already ended when the child started.
    Gone,
    /// No descriptor could be opened (an old kernel, no descriptors left):
    /// fall back on `kill(pid, 0)`, which a reused pid can fool.
    Pid(u32),
}

impl ParentWatch {
    /// Watches process `pid`.
    pub(crate) fn of(pid: u32) -> ParentWatch {
        match open(pid) {
            Ok(Some(fd)) => ParentWatch::Fd(Arc::new(fd)),
            Ok(None) => ParentWatch::Gone,
            Err(_) => ParentWatch::Pid(pid),
        }
    }

    /// Whether the watched process is still running.
    pub(crate) fn is_alive(&self) -> bool {
        match self {
            ParentWatch::Fd(fd) => !ended(fd.as_fd()),
            ParentWatch::Gone => false,
            ParentWatch::Pid(pid) => i32::try_from(*pid)
                .is_ok_and(|p| nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), None).is_ok()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::{ParentWatch, ended, open, ready};

    /// The unsafe `pidfd_open` call: a descriptor for a live process is not
    /// readable, becomes readable when it ends, and a pid that names no
    /// process gives `None`.
    #[test]
    fn pidfd_reports_the_end_of_a_process() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep runs");
        let fd = match open(child.id()) {
            Ok(fd) => fd.expect("a live process"),
            // No pidfd_open (a kernel before 5.3, or valgrind before 3.20,
            // which runs this test in CI): the watch falls back on the pid.
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
                let watch = ParentWatch::of(child.id());
                assert!(matches!(watch, ParentWatch::Pid(_)), "{watch:?}");
                assert!(watch.is_alive());
                child.kill().unwrap();
                child.wait().unwrap();
                assert!(!watch.is_alive());
                assert!(ended(ready().unwrap().as_fd()));
                return;
            }
            Err(e) => panic!("pidfd_open: {e}"),
        };
        assert!(!ended(fd.as_fd()));
        assert!(ParentWatch::of(child.id()).is_alive());
        child.kill().unwrap();
        // Readable once it died, even before it is reaped.
        crate::ipc::wait_readable(fd.as_fd(), None).unwrap();
        assert!(ended(fd.as_fd()));
        child.wait().unwrap();
        assert!(ended(fd.as_fd()));
        // pid_max is at most 2^22: this pid names nothing.
        assert!(open(i32::MAX as u32).unwrap().is_none());
        assert!(!ParentWatch::of(i32::MAX as u32).is_alive());
        assert!(ended(ready().unwrap().as_fd()));
        assert!(ParentWatch::of(std::process::id()).is_alive());
    }
}
