//! Errors of `spindle::ipc`.
#![forbid(unsafe_code)]

use std::fmt;
use std::io;

use super::frame::{FrameError, PROTOCOL_VERSION};

/// Why a [`Connection`](super::Connection) operation failed.
///
/// Mirrors the exceptions of Python's `multiprocessing.connection.Connection`:
/// `EOFError` is [`Eof`](Self::Eof), `BufferTooShort` is
/// [`BufferTooShort`](Self::BufferTooShort), the `OSError`s of a one-way pipe
/// used the wrong way are [`NotReadable`](Self::NotReadable) and
/// [`NotWritable`](Self::NotWritable).
#[non_exhaustive]
pub enum ConnectionError {
    /// The peer closed its end (or exited) and nothing is left to read
    /// (Python's `EOFError`).
    Eof,
    /// This end was created send-only (`Pipe(false)`'s second end).
    NotReadable,
    /// This end was created receive-only (`Pipe(false)`'s first end).
    NotWritable,
    /// A message is longer than this end's limit; it was skipped without being
    /// allocated, and the connection stays usable.
    TooLarge {
        /// The announced length of the message.
        len: u64,
        /// The limit in force.
        limit: usize,
    },
    /// The buffer given to `recv_bytes_into` is too small; the whole message
    /// is handed back (Python's `BufferTooShort`, whose `args[0]` is the message).
    BufferTooShort(Vec<u8>),
    /// `send_bytes_at` was given an offset/size outside the buffer (Python's
    /// `ValueError`).
    OutOfRange {
        /// The requested offset.
        offset: usize,
        /// The requested size.
        size: usize,
        /// The buffer's length.
        len: usize,
    },
    /// The peer speaks another version of the spindle wire protocol.
    VersionMismatch {
        /// The peer's version byte.
        got: u8,
        /// Ours.
        expected: u8,
    },
    /// The bytes on the wire are not a spindle frame.
    Protocol(String),
    /// The value could not be encoded.
    Encode(String),
    /// The message could not be decoded as the requested type.
    Decode(String),
    /// The operating system failed.
    Io(io::Error),
}

impl ConnectionError {
    /// True for [`Eof`](Self::Eof): the peer is gone.
    pub fn is_eof(&self) -> bool {
        matches!(self, ConnectionError::Eof)
    }
}

impl From<io::Error> for ConnectionError {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => ConnectionError::Eof,
            _ => ConnectionError::Io(e),
        }
    }
}

impl From<FrameError> for ConnectionError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::Eof => ConnectionError::Eof,
            FrameError::TooLarge { len, limit } => ConnectionError::TooLarge { len, limit },
            FrameError::Protocol(m) => ConnectionError::Protocol(m),
            FrameError::Version { got } => ConnectionError::VersionMismatch {
                got,
                expected: PROTOCOL_VERSION,
            },
            FrameError::Io(e) => ConnectionError::from(e),
        }
    }
}

impl fmt::Debug for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionError::BufferTooShort(m) => {
                write!(f, "BufferTooShort({} bytes)", m.len())
            }
            other => fmt::Display::fmt(other, f),
        }
    }
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionError::Eof => f.write_str("end of file: the peer closed the connection"),
            ConnectionError::NotReadable => f.write_str("connection is write-only"),
            ConnectionError::NotWritable => f.write_str("connection is read-only"),
            ConnectionError::TooLarge { len, limit } => {
                write!(
                    f,
                    "message of {len} bytes exceeds the limit of {limit} bytes"
                )
            }
            ConnectionError::BufferTooShort(m) => {
                write!(f, "buffer too short for a message of {} bytes", m.len())
            }
            ConnectionError::OutOfRange { offset, size, len } => write!(
                f,
                "offset {offset} + size {size} is outside a buffer of {len} bytes"
            ),
            ConnectionError::VersionMismatch { got, expected } => write!(
                f,
                "peer speaks spindle wire version {got}, expected {expected}"
            ),
            ConnectionError::Protocol(m) => write!(f, "protocol error: {m}"),
            ConnectionError::Encode(m) => write!(f, "cannot encode the value: {m}"),
            ConnectionError::Decode(m) => write!(f, "cannot decode the message: {m}"),
            ConnectionError::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

impl std::error::Error for ConnectionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnectionError::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// Why an item could not be put on a [`Queue`](super::Queue); the item is
/// handed back.
pub enum PutError<T> {
    /// The bounded queue stayed full (`try_put`, `put_timeout`; Python's
    /// `queue.Full`).
    Full(T),
    /// The queue was shut down (Python's `queue.ShutDown`).
    ShutDown(T),
    /// The item could not be encoded or sent.
    Failed(T, String),
}

impl<T> PutError<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        match self {
            PutError::Full(t) | PutError::ShutDown(t) | PutError::Failed(t, _) => t,
        }
    }
}

impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Full(_) => f.write_str("Full(..)"),
            PutError::ShutDown(_) => f.write_str("ShutDown(..)"),
            PutError::Failed(_, m) => write!(f, "Failed(.., {m:?})"),
        }
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Full(_) => f.write_str("queue is full"),
            PutError::ShutDown(_) => f.write_str("queue is shut down"),
            PutError::Failed(_, m) => write!(f, "cannot put the item: {m}"),
        }
    }
}

impl<T> std::error::Error for PutError<T> {}

/// Why no item could be taken from a [`Queue`](super::Queue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GetError {
    /// Nothing came in time (`try_get`, `get_timeout`; Python's `queue.Empty`).
    Empty,
    /// The queue was shut down and is empty (Python's `queue.ShutDown`).
    ShutDown,
    /// An item could not be received or decoded (it is consumed).
    Failed(String),
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetError::Empty => f.write_str("queue is empty"),
            GetError::ShutDown => f.write_str("queue is shut down"),
            GetError::Failed(m) => write!(f, "cannot get an item: {m}"),
        }
    }
}

impl std::error::Error for GetError {}

/// `task_done` was called more times than items were put (Python's
/// `ValueError`): the same error as the thread queues'.
pub use crate::queue::TaskDoneError;
