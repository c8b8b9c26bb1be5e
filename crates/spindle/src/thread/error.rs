//! Errors of the `thread` module.
//!
//! Python raises `RuntimeError` for every misuse of a `threading.Thread`
//! (starting twice, joining before start, joining the current thread); spindle
//! gives each condition its own variant so callers can match on it.
#![forbid(unsafe_code)]

use std::error::Error;
use std::fmt;
use std::io;

/// The operating system refused to create a thread.
///
/// Returned by [`Builder::spawn`](super::Builder::spawn). Mirrors the
/// `RuntimeError("can't start new thread")` of Python's `Thread.start()`.
/// The underlying [`io::Error`] is available through [`Error::source`].
#[derive(Debug)]
pub struct SpawnError {
    source: io::Error,
}

impl SpawnError {
    pub(crate) fn new(source: io::Error) -> Self {
        Self { source }
    }

    /// The OS error that prevented the thread from starting.
    pub fn io_error(&self) -> &io::Error {
        &self.source
    }
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "can't start new thread: {}", self.source)
    }
}

impl Error for SpawnError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.source)
    }
}

/// Why [`Thread::start`](super::Thread::start) failed.
#[derive(Debug)]
pub enum StartError {
    /// The thread was already started once (Python: `RuntimeError("threads can
    /// only be started once")`). The main thread and foreign ("dummy") threads
    /// count as started.
    AlreadyStarted,
    /// The operating system refused to create the thread. The thread stays
    /// unstarted and `start()` may be called again.
    Spawn(SpawnError),
}

impl StartError {
    /// `true` if the thread had already been started.
    pub fn is_already_started(&self) -> bool {
        matches!(self, StartError::AlreadyStarted)
    }
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::AlreadyStarted => f.write_str("threads can only be started once"),
            StartError::Spawn(e) => e.fmt(f),
        }
    }
}

impl Error for StartError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            StartError::AlreadyStarted => None,
            StartError::Spawn(e) => Some(e),
        }
    }
}

impl From<SpawnError> for StartError {
    fn from(e: SpawnError) -> Self {
        StartError::Spawn(e)
    }
}

/// Why a `join` failed.
///
/// Python's `Thread.join()` returns `None` even when the target raised; spindle
/// reports a panic in the thread as [`JoinError::Panicked`] with the panic
/// message, and turns Python's `RuntimeError`s into the other variants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinError {
    /// The thread's closure panicked; the panic message is carried along
    /// (`"Box<dyn Any>"` when the payload was not a string).
    Panicked(String),
    /// The thread was never started (Python: `RuntimeError("cannot join thread
    /// before it is started")`).
    NotStarted,
    /// A thread tried to join itself, which would wait forever (Python:
    /// `RuntimeError("cannot join current thread")`).
    CurrentThread,
}

impl JoinError {
    /// `true` if the thread panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, JoinError::Panicked(_))
    }

    /// The panic message, if the thread panicked.
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            JoinError::Panicked(m) => Some(m),
            _ => None,
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Panicked(m) => write!(f, "thread panicked: {m}"),
            JoinError::NotStarted => f.write_str("cannot join thread before it is started"),
            JoinError::CurrentThread => f.write_str("cannot join current thread"),
        }
    }
}

impl Error for JoinError {}

/// Why a `join_timeout` / `join_deadline` failed.
///
/// Python's `join(timeout)` returns `None` either way and leaves the caller to
/// check `is_alive()`; spindle returns [`JoinTimeoutError::Timeout`] instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinTimeoutError {
    /// The thread was still running when the time ran out. It keeps running;
    /// joining again later is fine.
    Timeout,
    /// The thread finished, but its closure panicked (message carried along).
    Panicked(String),
    /// The thread was never started.
    NotStarted,
    /// A thread tried to join itself.
    CurrentThread,
}

impl JoinTimeoutError {
    /// `true` if the wait timed out while the thread was still running.
    pub fn is_timeout(&self) -> bool {
        matches!(self, JoinTimeoutError::Timeout)
    }

    /// `true` if the thread panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, JoinTimeoutError::Panicked(_))
    }

    /// The panic message, if the thread panicked.
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            JoinTimeoutError::Panicked(m) => Some(m),
            _ => None,
        }
    }
}

impl From<JoinError> for JoinTimeoutError {
    fn from(e: JoinError) -> Self {
        match e {
            JoinError::Panicked(m) => JoinTimeoutError::Panicked(m),
            JoinError::NotStarted => JoinTimeoutError::NotStarted,
            JoinError::CurrentThread => JoinTimeoutError::CurrentThread,
        }
    }
}

impl fmt::Display for JoinTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinTimeoutError::Timeout => f.write_str("timed out waiting for the thread"),
            JoinTimeoutError::Panicked(m) => write!(f, "thread panicked: {m}"),
            JoinTimeoutError::NotStarted => f.write_str("cannot join thread before it is started"),
            JoinTimeoutError::CurrentThread => f.write_str("cannot join current thread"),
        }
    }
}

impl Error for JoinTimeoutError {}

/// An invalid size for [`set_stack_size`](super::set_stack_size).
///
/// Python raises `ValueError("size not valid: 32768 bytes")`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackSizeError {
    pub(crate) size: usize,
}

impl fmt::Display for StackSizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stack size not valid: {} bytes (0 or at least {} bytes)",
            self.size,
            super::MIN_STACK_SIZE
        )
    }
}

impl Error for StackSizeError {}
