//! `Pipe` and `Connection`: framed messages over a Unix socket pair.

use std::fmt;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::ConnectionError;
use super::fdpass;
use super::frame::{self, DEFAULT_MAX_FRAME, FrameError, Kind};

/// Creates a pair of connected [`Connection`]s (Python's
/// `multiprocessing.Pipe(duplex)`).
///
/// With `duplex = true` both ends send and receive. With `duplex = false` the
/// first end only receives and the second only sends, as in Python; using an
/// end the wrong way is [`ConnectionError::NotReadable`] /
/// [`ConnectionError::NotWritable`].
///
/// The ends cross into child processes by being captured by a `Fork` closure
/// or passed as arguments of a task call (their descriptors travel with the
/// bootstrap message).
///
/// # Errors
/// The operating system's error if no socket pair can be created.
///
/// # Examples
/// ```
/// use spindle::ipc::Pipe;
///
/// let (a, b) = Pipe(true)?;
/// a.send(&("hello", 42u32))?;
/// let got: (String, u32) = b.recv()?;
/// assert_eq!(got, ("hello".to_string(), 42));
/// drop(a);
/// assert!(b.recv::<u32>().unwrap_err().is_eof());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[allow(non_snake_case)]
pub fn Pipe(duplex: bool) -> io::Result<(Connection, Connection)> {
    let (a, b) = UnixStream::pair()?;
    if duplex {
        Ok((
            Connection::new(a, true, true),
            Connection::new(b, true, true),
        ))
    } else {
        a.shutdown(std::net::Shutdown::Write)?;
        b.shutdown(std::net::Shutdown::Read)?;
        Ok((
            Connection::new(a, true, false),
            Connection::new(b, false, true),
        ))
    }
}

/// One end of a [`Pipe`] (Python's `multiprocessing.connection.Connection`).
///
/// Messages are framed (see `process/README.md`): `send`/`recv` carry one
/// postcard-encoded serde value, `send_bytes`/`recv_bytes` one byte string.
/// Methods take `&self` and are safe to call from several threads: whole
/// messages are never interleaved. Dropping the end closes it (Python's
/// `close()`, which [`close`](Self::close) also spells); the peer then reads
/// [`ConnectionError::Eof`].
pub struct Connection {
    sock: UnixStream,
    readable: bool,
    writable: bool,
    max_frame: AtomicUsize,
    rlock: Mutex<()>,
    wlock: Mutex<()>,
}

impl Connection {
    fn new(sock: UnixStream, readable: bool, writable: bool) -> Connection {
        Connection {
            sock,
            readable,
            writable,
            max_frame: AtomicUsize::new(DEFAULT_MAX_FRAME),
            rlock: Mutex::new(()),
            wlock: Mutex::new(()),
        }
    }

    /// Whether this end can receive (Python's `readable`).
    pub fn readable(&self) -> bool {
        self.readable
    }

    /// Whether this end can send (Python's `writable`).
    pub fn writable(&self) -> bool {
        self.writable
    }

    /// Sets the largest message this end accepts (default 64 MiB). A longer
    /// message is rejected with [`ConnectionError::TooLarge`] before any of it
    /// is allocated, and skipped.
    pub fn set_max_frame(&self, bytes: usize) {
        self.max_frame.store(bytes, Ordering::Relaxed);
    }

    /// The current message size limit.
    pub fn max_frame(&self) -> usize {
        self.max_frame.load(Ordering::Relaxed)
    }

    /// Sends one serde value (Python's `send(obj)`, with postcard instead of
    /// pickle: nothing on the wire can run code when decoded).
    ///
    /// # Errors
    /// [`NotWritable`](ConnectionError::NotWritable) on a receive-only end,
    /// [`Encode`](ConnectionError::Encode) if the value cannot be encoded,
    /// [`Eof`](ConnectionError::Eof) if the peer is gone.
    pub fn send<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), ConnectionError> {
        let bytes =
            postcard::to_allocvec(value).map_err(|e| ConnectionError::Encode(e.to_string()))?;
        self.send_bytes(&bytes)
    }

    /// Receives one serde value sent by [`send`](Self::send) (Python's `recv()`).
    ///
    /// # Errors
    /// [`Eof`](ConnectionError::Eof) once the peer closed and everything sent
    /// was read; [`Decode`](ConnectionError::Decode) if the message is not a
    /// `T`; [`NotReadable`](ConnectionError::NotReadable) on a send-only end.
    pub fn recv<T: DeserializeOwned>(&self) -> Result<T, ConnectionError> {
        let bytes = self.recv_bytes()?;
        postcard::from_bytes(&bytes).map_err(|e| ConnectionError::Decode(e.to_string()))
    }

    /// Sends a byte string as one message (Python's `send_bytes(buf)`).
    ///
    /// # Errors
    /// As [`send`](Self::send); a message over 4 GiB is an I/O error.
    pub fn send_bytes(&self, buf: &[u8]) -> Result<(), ConnectionError> {
        if !self.writable {
            return Err(ConnectionError::NotWritable);
        }
        let _g = self.wlock.lock();
        frame::write_frame(&self.sock, Kind::Data, buf).map_err(ConnectionError::from)
    }

    /// Sends `size` bytes of `buf` from `offset` (all the rest if `size` is
    /// `None`), as Python's `send_bytes(buf, offset, size)`.
    ///
    /// # Errors
    /// [`OutOfRange`](ConnectionError::OutOfRange) if the range is outside
    /// `buf` (Python's `ValueError`), otherwise as [`send_bytes`](Self::send_bytes).
    pub fn send_bytes_at(
        &self,
        buf: &[u8],
        offset: usize,
        size: Option<usize>,
    ) -> Result<(), ConnectionError> {
        let size = size.unwrap_or_else(|| buf.len().saturating_sub(offset));
        match offset.checked_add(size) {
            Some(end) if end <= buf.len() => self.send_bytes(&buf[offset..end]),
            _ => Err(ConnectionError::OutOfRange {
                offset,
                size,
                len: buf.len(),
            }),
        }
    }

    /// Receives one message as bytes (Python's `recv_bytes()`), up to the
    /// end's limit ([`set_max_frame`](Self::set_max_frame)).
    ///
    /// # Errors
    /// [`Eof`](ConnectionError::Eof), [`TooLarge`](ConnectionError::TooLarge),
    /// [`NotReadable`](ConnectionError::NotReadable), protocol errors.
    pub fn recv_bytes(&self) -> Result<Vec<u8>, ConnectionError> {
        self.recv_bytes_max(self.max_frame())
    }

    /// Receives one message of at most `max_len` bytes (Python's
    /// `recv_bytes(maxlength)`); a longer one is skipped without being
    /// allocated and reported as [`TooLarge`](ConnectionError::TooLarge).
    ///
    /// # Errors
    /// As [`recv_bytes`](Self::recv_bytes).
    pub fn recv_bytes_max(&self, max_len: usize) -> Result<Vec<u8>, ConnectionError> {
        if !self.readable {
            return Err(ConnectionError::NotReadable);
        }
        let _g = self.rlock.lock();
        let limit = max_len.min(self.max_frame());
        let (kind, bytes) = frame::read_frame(&self.sock, limit)?;
        expect_data(kind)?;
        Ok(bytes)
    }

    /// Receives one message into `buf` and returns its length (Python's
    /// `recv_bytes_into(buffer)`).
    ///
    /// # Errors
    /// [`BufferTooShort`](ConnectionError::BufferTooShort) holding the whole
    /// message if it does not fit; otherwise as [`recv_bytes`](Self::recv_bytes).
    pub fn recv_bytes_into(&self, buf: &mut [u8]) -> Result<usize, ConnectionError> {
        if !self.readable {
            return Err(ConnectionError::NotReadable);
        }
        let _g = self.rlock.lock();
        let (kind, len) = frame::read_header(&self.sock)?;
        if len > self.max_frame() {
            frame::skip(&self.sock, len)?;
            return Err(FrameError::TooLarge {
                len: len as u64,
                limit: self.max_frame(),
            }
            .into());
        }
        expect_data(kind)?;
        if len > buf.len() {
            let mut whole = vec![0u8; len];
            (&self.sock)
                .read_exact(&mut whole)
                .map_err(FrameError::from)?;
            return Err(ConnectionError::BufferTooShort(whole));
        }
        (&self.sock)
            .read_exact(&mut buf[..len])
            .map_err(FrameError::from)?;
        Ok(len)
    }

    /// Waits up to `timeout` for something to read (Python's `poll(timeout)`;
    /// `Duration::ZERO` only checks). True if a message, or the peer's end of
    /// file, is waiting: a following `recv` will not block.
    ///
    /// # Errors
    /// [`NotReadable`](ConnectionError::NotReadable) on a send-only end.
    pub fn poll(&self, timeout: Duration) -> Result<bool, ConnectionError> {
        if !self.readable {
            return Err(ConnectionError::NotReadable);
        }
        Ok(wait_readable(
            self.sock.as_fd(),
            Instant::now().checked_add(timeout),
        )?)
    }

    /// Closes this end (Python's `close()`); the same as dropping it.
    pub fn close(self) {}

    /// The underlying descriptor (Python's `fileno()`).
    pub fn fileno(&self) -> i32 {
        self.sock.as_raw_fd()
    }

    pub(crate) fn from_fd(fd: OwnedFd, readable: bool, writable: bool) -> Connection {
        Connection::new(UnixStream::from(fd), readable, writable)
    }
}

fn expect_data(kind: Kind) -> Result<(), ConnectionError> {
    if kind == Kind::Data {
        Ok(())
    } else {
        Err(ConnectionError::Protocol(format!(
            "unexpected {kind:?} frame on a Connection"
        )))
    }
}

/// Waits until `fd` is readable (or hung up) or `deadline` passes (`None`:
/// forever). Returns whether it is readable.
pub(crate) fn wait_readable(
    fd: std::os::fd::BorrowedFd<'_>,
    deadline: Option<Instant>,
) -> io::Result<bool> {
    loop {
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                // Round up so a short wait never becomes a busy zero-timeout poll.
                let ms = left.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32;
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ok(false);
                }
            }
            Ok(_) => return Ok(true),
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("fd", &self.sock.as_raw_fd())
            .field("readable", &self.readable)
            .field("writable", &self.writable)
            .finish()
    }
}

/// A `Connection` encodes as its descriptor's index in the task call being
/// built; it can only be encoded as an argument of a task call.
impl Serialize for Connection {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let index = fdpass::export(self.sock.as_fd()).map_err(serde::ser::Error::custom)?;
        (index, self.readable, self.writable).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Connection {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (index, readable, writable) = <(u32, bool, bool)>::deserialize(d)?;
        let fd = fdpass::import(index).map_err(serde::de::Error::custom)?;
        Ok(Connection::from_fd(fd, readable, writable))
    }
}
