//! The child side's protocol: what a spawned process is asked to be
//! ([`Boot`]), how any child runs its target and reports the [`Outcome`].
//! The constructor that reads the [`Boot`] frame before `main` is in
//! entry.rs.
#![forbid(unsafe_code)]

use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::current::Identity;
use super::task::{self, ArgBytes, OutPolicy, RunFault};
use crate::ipc::fdpass;
use crate::ipc::frame::{self, FrameError, HEADER_LEN, Kind};
use crate::ipc::sealed::{Mapped, MappedSlice};
use crate::util::panic_text;

/// The environment variable that marks a spindle child: `SPINDLE_BOOT=<fd>`.
pub(crate) const ENV: &str = "SPINDLE_BOOT";

/// Exit code of a child whose target panicked or could not run (Python's 1
/// for an uncaught exception).
pub(crate) const FAILED: i32 = 1;

/// What a spawned process is asked to be.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Boot {
    /// Run one task and exit.
    Child(ChildSpec),
    /// Become the fork server of the parent.
    ForkServer,
}

/// A child to run: its identity, its task and the task's encoded arguments
/// (descriptors travel beside, `nfds` of them).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ChildSpec {
    pub(crate) id: Identity,
    pub(crate) task: String,
    pub(crate) args: Vec<u8>,
    /// Large arguments are not in `args` but in a sealed memfd, the last
    /// descriptor passed: its length.
    pub(crate) bulk: Option<u64>,
}

/// What the child reports before exiting.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Outcome {
    /// The target returned.
    Done,
    /// The target panicked with this message.
    Panicked(String),
    /// No task of this name in the child's registry.
    UnknownTask(String),
    /// The arguments did not decode.
    ArgDecode(String),
    /// The child received a frame of another protocol version.
    VersionMismatch(u8),
}

/// Reads the bootstrap frame and the descriptors attached to it.
pub(crate) fn read_boot(ctl: &UnixStream) -> Result<(Boot, Vec<OwnedFd>), FrameError> {
    let mut h = [0u8; HEADER_LEN];
    let fds = fdpass::recv_exact_with_fds(ctl, &mut h).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => FrameError::Eof,
        _ => FrameError::Io(e),
    })?;
    let (kind, len) = frame::parse_header(&h)?;
    if kind != Kind::Boot || len > frame::DEFAULT_MAX_FRAME {
        return Err(FrameError::Protocol(format!(
            "expected a boot frame, got {kind:?}"
        )));
    }
    let mut payload = vec![0u8; len];
    std::io::Read::read_exact(&mut &*ctl, &mut payload)?;
    let boot = postcard::from_bytes(&payload).map_err(|e| FrameError::Protocol(e.to_string()))?;
    Ok((boot, fds))
}

/// Runs the task of `spec` with its descriptors, reports on `ctl`, returns
/// the exit code. Identity is already installed.
pub(crate) fn run_child(spec: &ChildSpec, mut fds: Vec<OwnedFd>, ctl: &UnixStream) -> i32 {
    let outcome = match task::lookup(&spec.task) {
        None => Outcome::UnknownTask(spec.task.clone()),
        Some(entry) => {
            let args = match spec.bulk {
                None => Ok(ArgBytes::Borrowed(&spec.args)),
                Some(n) => fds
                    .pop()
                    .ok_or_else(|| std::io::Error::other("no descriptor came with them"))
                    .and_then(|fd| Mapped::open(fd, n as usize))
                    .and_then(|m| MappedSlice::new(&std::sync::Arc::new(m), 0, n))
                    .map(ArgBytes::Mapped)
                    .map_err(|e| format!("the large arguments could not be mapped: {e}")),
            };
            match args {
                Ok(args) => run_guarded(|| {
                    fdpass::provide(fds, || {
                        entry.invoke_with(args, OutPolicy::INLINE, &mut None)
                    })
                }),
                Err(m) => Outcome::ArgDecode(m),
            }
        }
    };
    finish(ctl, outcome)
}

/// Runs a target, catching a panic.
pub(crate) fn run_guarded<R>(f: impl FnOnce() -> Result<R, RunFault>) -> Outcome {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(_)) => Outcome::Done,
        Ok(Err(RunFault::Decode(m))) => Outcome::ArgDecode(m),
        Ok(Err(RunFault::Encode(m) | RunFault::Io(m))) => {
            Outcome::Panicked(format!("cannot encode the result: {m}"))
        }
        Ok(Err(RunFault::TooLarge { size, limit })) => Outcome::Panicked(format!(
            "the result of {size} bytes exceeds the limit of {limit} bytes"
        )),
        Err(payload) => Outcome::Panicked(truncated(panic_text(&*payload))),
    }
}

/// Sends the outcome, flushes the standard streams and returns the matching
/// exit code.
pub(crate) fn finish(ctl: &UnixStream, outcome: Outcome) -> i32 {
    let code = outcome_code(&outcome);
    send_outcome(ctl, &outcome);
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    code
}

/// [`finish`] in a child made by `fork()` from a process that may have other
/// threads: one of them may have held the lock of stdout or stderr at the
/// moment of the fork, and in the child that lock is never released, so the
/// flush runs on a helper thread and is given up after `limit`.
pub(crate) fn finish_forked(ctl: &UnixStream, outcome: Outcome, limit: Duration) -> i32 {
    let code = outcome_code(&outcome);
    send_outcome(ctl, &outcome);
    let (done, flushed) = mpsc::channel();
    let flusher = std::thread::Builder::new().spawn(move || {
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        let _ = done.send(());
    });
    if flusher.is_ok() {
        let _ = flushed.recv_timeout(limit);
    }
    code
}

fn outcome_code(outcome: &Outcome) -> i32 {
    if matches!(outcome, Outcome::Done) {
        0
    } else {
        FAILED
    }
}

pub(crate) fn send_outcome(ctl: &UnixStream, outcome: &Outcome) {
    if let Ok(bytes) = postcard::to_allocvec(outcome) {
        // The parent may be gone: nothing to do about it.
        let _ = frame::write_frame(ctl, Kind::Outcome, &bytes);
    }
}

/// A panic message truncated to 16 KiB, so the outcome frame always fits in
/// the socket buffer.
fn truncated(mut m: String) -> String {
    if m.len() > 16 * 1024 {
        let mut cut = 16 * 1024;
        while !m.is_char_boundary(cut) {
            cut -= 1;
        }
        m.truncate(cut);
    }
    m
}
