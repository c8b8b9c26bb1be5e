//! Errors of the queue operations. Each failed put hands its item back.
#![forbid(unsafe_code)]

use std::error::Error;
use std::fmt;

/// The queue was shut down: Python's `queue.ShutDown`.
///
/// Returned by [`get`](super::Queue::get) once the queue is shut down and
/// holds no more items (or at once after an immediate shutdown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ShutDown;

impl fmt::Display for ShutDown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("queue is shut down")
    }
}

impl Error for ShutDown {}

/// A blocking [`put`](super::Queue::put) failed because the queue is shut
/// down; the item is handed back. Python raises `queue.ShutDown`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PutError<T>(pub T);

impl<T> PutError<T> {
    /// The item that could not be put.
    pub fn into_inner(self) -> T {
        self.0
    }
}

/// Why a [`try_put`](super::Queue::try_put) failed; the item is handed back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TryPutError<T> {
    /// The queue is at its `maxsize`: Python's `queue.Full`.
    Full(T),
    /// The queue is shut down: Python's `queue.ShutDown`.
    ShutDown(T),
}

/// Why a [`put_timeout`](super::Queue::put_timeout) or
/// [`put_deadline`](super::Queue::put_deadline) failed; the item is handed back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PutTimeoutError<T> {
    /// The queue stayed full until the deadline: Python's `queue.Full`.
    Timeout(T),
    /// The queue is (or became, while waiting) shut down: Python's `queue.ShutDown`.
    ShutDown(T),
}

/// Why a [`try_get`](super::Queue::try_get) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TryGetError {
    /// The queue holds no item right now: Python's `queue.Empty`.
    Empty,
    /// The queue is shut down and holds no more items: Python's `queue.ShutDown`.
    ShutDown,
}

/// Why a [`get_timeout`](super::Queue::get_timeout) or
/// [`get_deadline`](super::Queue::get_deadline) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GetTimeoutError {
    /// No item came before the deadline: Python's `queue.Empty`.
    Timeout,
    /// The queue is shut down and holds no more items: Python's `queue.ShutDown`.
    ShutDown,
}

/// [`task_done`](super::Queue::task_done) was called more times than items
/// were put: Python's `ValueError('task_done() called too many times')`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TaskDoneError;

impl fmt::Display for TaskDoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("task_done() called too many times")
    }
}

impl Error for TaskDoneError {}

/// [`join_timeout`](super::Queue::join_timeout) gave up with tasks still
/// unfinished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct JoinTimeoutError;

impl fmt::Display for JoinTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("timed out waiting for unfinished tasks")
    }
}

impl Error for JoinTimeoutError {}

macro_rules! item_error {
    ($name:ident { $($variant:ident => $msg:literal),* }) => {
        impl<T> $name<T> {
            /// The item that could not be put.
            pub fn into_inner(self) -> T {
                match self {
                    $($name::$variant(item) => item,)*
                }
            }
        }
        impl<T> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $($name::$variant(_) => f.write_str(concat!(stringify!($variant), "(..)")),)*
                }
            }
        }
        impl<T> fmt::Display for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $($name::$variant(_) => f.write_str($msg),)*
                }
            }
        }
        impl<T> Error for $name<T> {}
    };
}

item_error!(TryPutError { Full => "queue is full", ShutDown => "queue is shut down" });
item_error!(PutTimeoutError {
    Timeout => "timed out waiting for room in the queue",
    ShutDown => "queue is shut down"
});

impl<T> TryPutError<T> {
    /// Whether the queue was full.
    pub fn is_full(&self) -> bool {
        matches!(self, TryPutError::Full(_))
    }
    /// Whether the queue was shut down.
    pub fn is_shutdown(&self) -> bool {
        matches!(self, TryPutError::ShutDown(_))
    }
}

impl<T> PutTimeoutError<T> {
    /// Whether the wait timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, PutTimeoutError::Timeout(_))
    }
    /// Whether the queue was shut down.
    pub fn is_shutdown(&self) -> bool {
        matches!(self, PutTimeoutError::ShutDown(_))
    }
}

impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PutError(..)")
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("queue is shut down")
    }
}

impl<T> Error for PutError<T> {}

impl fmt::Display for TryGetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryGetError::Empty => f.write_str("queue is empty"),
            TryGetError::ShutDown => f.write_str("queue is shut down"),
        }
    }
}

impl Error for TryGetError {}

impl fmt::Display for GetTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetTimeoutError::Timeout => f.write_str("timed out waiting for an item"),
            GetTimeoutError::ShutDown => f.write_str("queue is shut down"),
        }
    }
}

impl Error for GetTimeoutError {}

impl From<ShutDown> for TryGetError {
    fn from(_: ShutDown) -> Self {
        TryGetError::ShutDown
    }
}

impl From<ShutDown> for GetTimeoutError {
    fn from(_: ShutDown) -> Self {
        GetTimeoutError::ShutDown
    }
}

impl<T> From<PutError<T>> for TryPutError<T> {
    fn from(e: PutError<T>) -> Self {
        TryPutError::ShutDown(e.0)
    }
}

impl<T> From<PutError<T>> for PutTimeoutError<T> {
    fn from(e: PutError<T>) -> Self {
        PutTimeoutError::ShutDown(e.0)
    }
}
