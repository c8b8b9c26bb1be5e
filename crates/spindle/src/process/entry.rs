//! How a re-executed binary knows it is a spindle child.
//!
//! A static constructor (an `.init_array` entry, run by the dynamic loader
//! before `main`) checks the `SPINDLE_BOOT` environment variable. In a normal
//! run it is absent and the constructor returns at once. In a spawned child it
//! names the inherited socket the parent will send the [`Boot`] frame on; the
//! constructor then runs the child (or the fork server) and exits, so the
//! program's `main` — or the test harness, or a doc test's body — never runs
//! in the child. The user adds no line to `main`.
//!
//! The top of the child side: it uses boot.rs (the protocol), children.rs
//! and forkserver.rs; none of them uses it. The start paths of `Process`
//! call [`ensure_linked`].

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::panic::catch_unwind;

use super::boot::{Boot, ENV, FAILED, Outcome, read_boot, run_child, send_outcome};
use super::{children, current, forkserver};
use crate::ipc::frame::FrameError;

#[used]
#[unsafe(link_section = ".init_array")]
static BOOT_CTOR: extern "C" fn() = boot_ctor;

/// Keeps the constructor in the link: every start path calls this, so a
/// program that can start a child also carries the code that boots one.
pub(crate) fn ensure_linked() {
    std::hint::black_box(&raw const BOOT_CTOR);
}

extern "C" fn boot_ctor() {
    let Some(val) = std::env::var_os(ENV) else {
        return;
    };
    // From here on we are a spindle child and never return to the loader:
    // `main` must not run. Any panic below ends the process with FAILED.
    let code = catch_unwind(|| boot(val)).unwrap_or(FAILED);
    std::process::exit(code);
}

fn boot(val: std::ffi::OsString) -> i32 {
    // SAFETY: constructors run before `main`, on the only thread of the
    // process, so nothing can read the environment concurrently.
    unsafe { std::env::remove_var(ENV) };
    // Rust's runtime ignores SIGPIPE before `main`; we run before it.
    // SAFETY: installing SIG_IGN has no handler code to be unsafe about.
    unsafe {
        let _ = nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigIgn,
        );
    }
    let Some(fd) = val
        .to_str()
        .and_then(|s| s.parse::<i32>().ok())
        .filter(|fd| *fd > 2)
    else {
        eprintln!("spindle: bad {ENV} value {val:?}");
        return FAILED;
    };
    // SAFETY: the parent cleared close-on-exec on exactly this descriptor for
    // us (see spawn.rs) and nothing else in this fresh process owns it.
    let ctl = UnixStream::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let _ = nix::fcntl::fcntl(
        &ctl,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    );
    let (boot, fds) = match read_boot(&ctl) {
        Ok(b) => b,
        Err(FrameError::Version { got }) => {
            send_outcome(&ctl, &Outcome::VersionMismatch(got));
            return FAILED;
        }
        // The parent went away before telling us anything: nothing to do.
        Err(_) => return FAILED,
    };
    match boot {
        Boot::Child(spec) => {
            current::become_child(&mut current::lock_me(), spec.id.clone());
            let code = run_child(&spec, fds, &ctl);
            children::at_exit();
            code
        }
        Boot::ForkServer => forkserver::serve(ctl),
    }
}
