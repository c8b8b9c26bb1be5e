//! Errors of `spindle::process`.
#![forbid(unsafe_code)]

use std::fmt;
use std::io;

use crate::futures::TooLarge;

/// Why a process operation failed, or how a child ended badly.
///
/// Opaque, with predicates (as `tokio::task::JoinError`): Python raises
/// different exceptions (`AssertionError`, `ValueError`, `TimeoutError`) or
/// leaves it to `exitcode`; spindle reports each case here, typed.
pub struct ProcessError {
    kind: Kind,
}

#[derive(Debug)]
pub(crate) enum Kind {
    NotStarted,
    AlreadyStarted,
    DaemonicChildren,
    NeedsFork,
    MultiThreaded(usize),
    UnknownTask(String),
    ArgDecode { task: String, msg: String },
    Encode(String),
    Panicked(String),
    Exited(i32),
    Signaled(i32),
    VersionMismatch { got: u8 },
    Lost(String),
    Timeout,
    StillRunning,
    Closed,
    TooLarge(TooLarge),
    Io(io::Error),
}

impl ProcessError {
    pub(crate) fn new(kind: Kind) -> ProcessError {
        ProcessError { kind }
    }

    pub(crate) fn io(e: impl Into<io::Error>) -> ProcessError {
        ProcessError::new(Kind::Io(e.into()))
    }

    /// A bounded wait (`join_timeout`, `join_deadline`, `wait_timeout`,
    /// `wait_deadline`) ran out before the child ended.
    pub fn is_timeout(&self) -> bool {
        matches!(self.kind, Kind::Timeout)
    }

    /// A non-blocking `try_join` / `try_wait` found the child still running
    /// (nothing was waited for, so this is not a timeout).
    pub fn is_still_running(&self) -> bool {
        matches!(self.kind, Kind::StillRunning)
    }

    /// The child's target panicked; see [`panic_message`](Self::panic_message).
    pub fn is_panic(&self) -> bool {
        matches!(self.kind, Kind::Panicked(_))
    }

    /// The panic message of a child whose target panicked.
    pub fn panic_message(&self) -> Option<&str> {
        match &self.kind {
            Kind::Panicked(m) => Some(m),
            _ => None,
        }
    }

    /// No task of that name is registered in this program.
    pub fn is_unknown_task(&self) -> bool {
        matches!(self.kind, Kind::UnknownTask(_))
    }

    /// The child could not decode the task's arguments.
    pub fn is_arg_decode(&self) -> bool {
        matches!(self.kind, Kind::ArgDecode { .. })
    }

    /// A peer spoke another version of the spindle wire protocol.
    pub fn is_version_mismatch(&self) -> bool {
        matches!(self.kind, Kind::VersionMismatch { .. })
    }

    /// A daemon process tried to start a child (Python's `AssertionError:
    /// daemonic processes are not allowed to have children`).
    pub fn is_daemonic_children(&self) -> bool {
        matches!(self.kind, Kind::DaemonicChildren)
    }

    /// A closure target needs the `Fork` start method.
    pub fn is_needs_fork(&self) -> bool {
        matches!(self.kind, Kind::NeedsFork)
    }

    /// `fork()` refused because the process has several threads.
    pub fn is_multi_threaded(&self) -> bool {
        matches!(self.kind, Kind::MultiThreaded(_))
    }

    /// The process was never started.
    pub fn is_not_started(&self) -> bool {
        matches!(self.kind, Kind::NotStarted)
    }

    /// The `Process` was closed with [`close`](super::Process::close)
    /// (Python's `ValueError: process object is closed`).
    pub fn is_closed(&self) -> bool {
        matches!(self.kind, Kind::Closed)
    }

    /// `start` was called twice (Python: "cannot start a process twice").
    pub fn is_already_started(&self) -> bool {
        matches!(self.kind, Kind::AlreadyStarted)
    }

    /// The child's fate is unknown: its fork server died.
    pub fn is_lost(&self) -> bool {
        matches!(self.kind, Kind::Lost(_))
    }

    /// The size and limit, if the task's encoded arguments were over the
    /// builder's [`max_payload`](super::Builder::max_payload) (nothing was
    /// started).
    pub fn too_large(&self) -> Option<&TooLarge> {
        match &self.kind {
            Kind::TooLarge(t) => Some(t),
            _ => None,
        }
    }

    /// The child's Python-style exit code if it ended badly: the code it
    /// exited with (1 after a panic), or minus the signal that killed it.
    pub fn exitcode(&self) -> Option<i32> {
        match self.kind {
            Kind::Exited(c) => Some(c),
            Kind::Signaled(s) => Some(-s),
            Kind::Panicked(_) | Kind::ArgDecode { .. } => Some(1),
            _ => None,
        }
    }
}

impl From<io::Error> for ProcessError {
    fn from(e: io::Error) -> Self {
        ProcessError::io(e)
    }
}

impl From<nix::errno::Errno> for ProcessError {
    fn from(e: nix::errno::Errno) -> Self {
        ProcessError::io(e)
    }
}

impl fmt::Debug for ProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ProcessError").field(&self.kind).finish()
    }
}

impl fmt::Display for ProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::NotStarted => f.write_str("process was not started"),
            Kind::AlreadyStarted => f.write_str("cannot start a process twice"),
            Kind::DaemonicChildren => {
                f.write_str("daemonic processes are not allowed to have children")
            }
            Kind::NeedsFork => f.write_str("a closure target needs the Fork start method"),
            Kind::MultiThreaded(n) => {
                write!(f, "refusing to fork a process with {n} threads")
            }
            Kind::UnknownTask(n) => write!(f, "no task named {n:?} is registered"),
            Kind::ArgDecode { task, msg } => {
                write!(f, "task {task:?} could not decode its arguments: {msg}")
            }
            Kind::Encode(m) => write!(f, "cannot encode the task's arguments: {m}"),
            Kind::Panicked(m) => write!(f, "child panicked: {m}"),
            Kind::Exited(c) => write!(f, "child exited with code {c}"),
            Kind::Signaled(s) => write!(f, "child was killed by signal {s}"),
            Kind::VersionMismatch { got } => write!(
                f,
                "peer speaks spindle wire version {got}, expected {}",
                crate::ipc::PROTOCOL_VERSION
            ),
            Kind::Lost(m) => write!(f, "child lost: {m}"),
            Kind::Timeout => f.write_str("timed out waiting for the child"),
            Kind::StillRunning => f.write_str("the child is still running"),
            Kind::Closed => f.write_str("the process object is closed"),
            Kind::TooLarge(t) => fmt::Display::fmt(t, f),
            Kind::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

impl std::error::Error for ProcessError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            Kind::Io(e) => Some(e),
            _ => None,
        }
    }
}
