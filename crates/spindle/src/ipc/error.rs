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
    /// `send_handle` / `recv_handle` on a connection that cannot carry a
    /// descriptor: a one-way `Pipe(false)` end or a TCP connection (Python
    /// fails there too, with an `OSError` from the socket calls). Only a
    /// duplex [`Pipe`](super::Pipe) and a connection over a Unix socket
    /// ([`Listener`](super::Listener) / [`Client`](super::Client) on an
    /// `Address::Unix`) can.
    HandlesUnsupported,
    /// `recv_handle` found a plain message next, not a descriptor. That
    /// message was not consumed: the next `recv` / `recv_bytes` returns it.
    NotAHandle,
    /// A receive of a message found a descriptor sent by `send_handle`
    /// instead. The descriptor was closed and its frame consumed; the next
    /// receive goes on with the message after it.
    UnexpectedHandle,
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
            ConnectionError::HandlesUnsupported => f.write_str(
                "this connection cannot carry a descriptor (only a duplex Pipe or a \
                 connection over a Unix socket can)",
            ),
            ConnectionError::NotAHandle => f.write_str(
                "the next message is plain data, not a descriptor (left for the next receive)",
            ),
            ConnectionError::UnexpectedHandle => {
                f.write_str("a descriptor came where a message was expected (it was closed)")
            }
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

/// Why [`Connection::try_recv`](super::Connection::try_recv) or
/// [`try_recv_bytes`](super::Connection::try_recv_bytes) returned no
/// message.
#[derive(Debug)]
pub enum TryRecvError {
    /// No whole message is waiting now (Python's `poll()` is false), or
    /// another thread is receiving on this end. Nothing was consumed.
    Empty,
    /// The receive failed as the blocking one would:
    /// [`Eof`](ConnectionError::Eof) once the peer closed and everything it
    /// sent was read, a message that does not decode, and so on.
    Failed(ConnectionError),
}

/// Why [`Connection::recv_timeout`](super::Connection::recv_timeout) (or
/// another bounded receive) returned no message.
#[derive(Debug)]
pub enum RecvTimeoutError {
    /// No whole message came before the deadline. Nothing was consumed; what
    /// arrived of a message stays buffered for the next receive.
    Timeout,
    /// The receive failed as the blocking one would:
    /// [`Eof`](ConnectionError::Eof) once the peer closed and everything it
    /// sent was read, a message that does not decode, and so on.
    Failed(ConnectionError),
}

impl TryRecvError {
    /// True for [`Empty`](Self::Empty).
    pub fn is_empty(&self) -> bool {
        matches!(self, TryRecvError::Empty)
    }

    /// True if the peer is gone ([`ConnectionError::Eof`]).
    pub fn is_eof(&self) -> bool {
        matches!(self, TryRecvError::Failed(e) if e.is_eof())
    }
}

impl RecvTimeoutError {
    /// True for [`Timeout`](Self::Timeout).
    pub fn is_timeout(&self) -> bool {
        matches!(self, RecvTimeoutError::Timeout)
    }

    /// True if the peer is gone ([`ConnectionError::Eof`]).
    pub fn is_eof(&self) -> bool {
        matches!(self, RecvTimeoutError::Failed(e) if e.is_eof())
    }
}

impl From<ConnectionError> for TryRecvError {
    fn from(e: ConnectionError) -> Self {
        TryRecvError::Failed(e)
    }
}

impl From<ConnectionError> for RecvTimeoutError {
    fn from(e: ConnectionError) -> Self {
        RecvTimeoutError::Failed(e)
    }
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("no message is waiting"),
            TryRecvError::Failed(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvTimeoutError::Timeout => f.write_str("timed out waiting for a message"),
            RecvTimeoutError::Failed(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for TryRecvError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TryRecvError::Empty => None,
            // Transparent: the message is already `e`'s.
            TryRecvError::Failed(e) => std::error::Error::source(e),
        }
    }
}

impl std::error::Error for RecvTimeoutError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RecvTimeoutError::Timeout => None,
            // Transparent: the message is already `e`'s.
            RecvTimeoutError::Failed(e) => std::error::Error::source(e),
        }
    }
}

/// Why an operation on an [`ipc::Queue`](super::Queue) failed: what the
/// thread queues report for the same call, or a failure that only a queue
/// between processes can have.
///
/// `E` is the very error type of the thread queues' operation (see
/// [`crate::queue`]), so a timeout never reads as "full" or "empty":
///
/// | operation | `E` |
/// |---|---|
/// | `put` | [`PutError<T>`](crate::queue::PutError) (shut down) |
/// | `try_put` | [`TryPutError<T>`](crate::queue::TryPutError) (`Full`, `ShutDown`) |
/// | `put_timeout`, `put_deadline` | [`PutTimeoutError<T>`](crate::queue::PutTimeoutError) (`Timeout`, `ShutDown`) |
/// | `get` | [`ShutDown`](crate::queue::ShutDown) |
/// | `try_get` | [`TryGetError`](crate::queue::TryGetError) (`Empty`, `ShutDown`) |
/// | `get_timeout`, `get_deadline` | [`GetTimeoutError`](crate::queue::GetTimeoutError) (`Timeout`, `ShutDown`) |
///
/// [`Item`](Self::Item) is the extra failure: the item could not be encoded
/// or decoded, is too large, or the operating system failed while moving it
/// ([`ItemError`]). A put hands its item back in both variants (`T` is the
/// item's type: [`into_inner`](Self::into_inner)); for a get `T` is `()`,
/// the undecodable item being consumed.
///
/// Through the [`BlockingQueue`](crate::queue::BlockingQueue) trait, whose
/// errors are the thread queues', an [`Item`](Self::Item) failure reads as
/// the queue being shut down (the trait's rule for a transport that failed).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use spindle::ipc::{Queue, QueueError};
/// use spindle::queue::{PutTimeoutError, TryGetError, TryPutError};
///
/// let q = Queue::with_maxsize(1)?;
/// q.put(1u32).unwrap();
/// assert!(matches!(q.try_put(2), Err(QueueError::Queue(TryPutError::Full(2)))));
/// let err = q.put_timeout(3, Duration::from_millis(10)).unwrap_err();
/// assert!(matches!(err, QueueError::Queue(PutTimeoutError::Timeout(_))));
/// assert_eq!(err.into_inner(), 3);
/// assert_eq!(q.try_get().unwrap(), 1);
/// assert!(matches!(q.try_get(), Err(QueueError::Queue(TryGetError::Empty))));
/// # Ok::<(), std::io::Error>(())
/// ```
pub enum QueueError<E, T = ()> {
    /// The queue refused as a thread queue would (full, empty, timed out,
    /// shut down); `E` holds the item of a put.
    Queue(E),
    /// The item could not cross between processes.
    Item(ItemError<T>),
}

impl<E, T> QueueError<E, T> {
    /// The thread queues' error, if the failure is one of theirs.
    pub fn queue_error(&self) -> Option<&E> {
        match self {
            QueueError::Queue(e) => Some(e),
            QueueError::Item(_) => None,
        }
    }

    /// The item's error, if the item could not cross between processes.
    pub fn item_error(&self) -> Option<&ItemError<T>> {
        match self {
            QueueError::Queue(_) => None,
            QueueError::Item(e) => Some(e),
        }
    }
}

impl<E, T> From<E> for QueueError<E, T> {
    fn from(e: E) -> Self {
        QueueError::Queue(e)
    }
}

impl<T> QueueError<crate::queue::PutError<T>, T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        match self {
            QueueError::Queue(e) => e.into_inner(),
            QueueError::Item(e) => e.into_inner(),
        }
    }

    /// Whether the queue was shut down.
    pub fn is_shutdown(&self) -> bool {
        matches!(self, QueueError::Queue(_))
    }
}

impl<T> QueueError<crate::queue::TryPutError<T>, T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        match self {
            QueueError::Queue(e) => e.into_inner(),
            QueueError::Item(e) => e.into_inner(),
        }
    }

    /// Whether the queue was full.
    pub fn is_full(&self) -> bool {
        matches!(self, QueueError::Queue(e) if e.is_full())
    }

    /// Whether the queue was shut down.
    pub fn is_shutdown(&self) -> bool {
        matches!(self, QueueError::Queue(e) if e.is_shutdown())
    }
}

impl<T> QueueError<crate::queue::PutTimeoutError<T>, T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        match self {
            QueueError::Queue(e) => e.into_inner(),
            QueueError::Item(e) => e.into_inner(),
        }
    }

    /// Whether the wait for room timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, QueueError::Queue(e) if e.is_timeout())
    }

    /// Whether the queue was shut down.
    pub fn is_shutdown(&self) -> bool {
        matches!(self, QueueError::Queue(e) if e.is_shutdown())
    }
}

impl QueueError<crate::queue::ShutDown> {
    /// Whether the queue was shut down (and empty).
    pub fn is_shutdown(&self) -> bool {
        matches!(self, QueueError::Queue(_))
    }
}

impl QueueError<crate::queue::TryGetError> {
    /// Whether the queue held no item.
    pub fn is_empty(&self) -> bool {
        matches!(self, QueueError::Queue(crate::queue::TryGetError::Empty))
    }

    /// Whether the queue was shut down (and empty).
    pub fn is_shutdown(&self) -> bool {
        matches!(self, QueueError::Queue(crate::queue::TryGetError::ShutDown))
    }
}

impl QueueError<crate::queue::GetTimeoutError> {
    /// Whether no item came before the deadline.
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            QueueError::Queue(crate::queue::GetTimeoutError::Timeout)
        )
    }

    /// Whether the queue was shut down (and empty).
    pub fn is_shutdown(&self) -> bool {
        matches!(
            self,
            QueueError::Queue(crate::queue::GetTimeoutError::ShutDown)
        )
    }
}

impl<E: fmt::Debug, T> fmt::Debug for QueueError<E, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueError::Queue(e) => f.debug_tuple("Queue").field(e).finish(),
            QueueError::Item(e) => f.debug_tuple("Item").field(e).finish(),
        }
    }
}

impl<E: fmt::Display, T> fmt::Display for QueueError<E, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueError::Queue(e) => fmt::Display::fmt(e, f),
            QueueError::Item(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl<E: std::error::Error, T> std::error::Error for QueueError<E, T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // Transparent: the message is already the inner error's.
        match self {
            QueueError::Queue(e) => e.source(),
            QueueError::Item(e) => std::error::Error::source(e),
        }
    }
}

/// An item that could not cross between processes through an
/// [`ipc::Queue`](super::Queue) (the [`Item`](QueueError::Item) failure):
/// why, in [`kind`](Self::kind), and for a put the item itself
/// ([`into_inner`](Self::into_inner)).
pub struct ItemError<T = ()> {
    item: T,
    kind: ItemErrorKind,
}

/// Why an item could not cross between processes.
#[derive(Debug)]
#[non_exhaustive]
pub enum ItemErrorKind {
    /// The item could not be encoded (postcard); nothing was put.
    Encode(String),
    /// The encoded item is larger than a queue carries; nothing was put.
    TooLarge {
        /// The encoded length.
        len: usize,
        /// The largest a queue carries.
        limit: usize,
    },
    /// The item taken does not decode as the queue's item type (it is
    /// consumed).
    Decode(String),
    /// The queue's shared state did not hold what it announced (a malformed
    /// slot, an item announced that never arrived): the item is lost.
    Corrupt(String),
    /// The operating system failed while moving the item.
    Io(io::Error),
    /// This process closed the queue with
    /// [`close`](super::Queue::close): it puts and gets nothing more
    /// through it (Python's `ValueError: Queue ... is closed`). Nothing was
    /// put or taken.
    Closed,
}

impl<T> ItemError<T> {
    pub(crate) fn new(item: T, kind: ItemErrorKind) -> ItemError<T> {
        ItemError { item, kind }
    }

    /// Why the item could not cross.
    pub fn kind(&self) -> &ItemErrorKind {
        &self.kind
    }

    /// The item a put could not put (`()` for a get).
    pub fn into_inner(self) -> T {
        self.item
    }
}

impl<T> fmt::Debug for ItemError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ItemError")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for ItemErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ItemErrorKind::Encode(m) => write!(f, "cannot encode the item: {m}"),
            ItemErrorKind::TooLarge { len, limit } => write!(
                f,
                "encoded item of {len} bytes exceeds the limit of {limit} bytes"
            ),
            ItemErrorKind::Decode(m) => write!(f, "cannot decode the item: {m}"),
            ItemErrorKind::Corrupt(m) => write!(f, "queue corrupt: {m}"),
            ItemErrorKind::Io(e) => write!(f, "I/O error moving the item: {e}"),
            ItemErrorKind::Closed => f.write_str("this process closed the queue"),
        }
    }
}

impl<T> fmt::Display for ItemError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.kind, f)
    }
}

impl<T> std::error::Error for ItemError<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ItemErrorKind::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// `task_done` was called more times than items were put (Python's
/// `ValueError`): the same error as the thread queues'.
pub use crate::queue::TaskDoneError;
