//! `Pipe` and `Connection`: framed messages over OS pipes, with a socket
//! pair beside them for large payloads; or over one stream socket (the
//! connections of `Listener` and `Client`), every payload inline.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::{ConnectionError, RecvTimeoutError, TryRecvError};
use super::fdpass;
use super::frame::{
    self, DEFAULT_MAX_FRAME, FrameError, FrameReader, FrameWriter, HEADER_LEN, Kind,
};

/// Size of a connection's receive buffer (allocated on its first receive).
/// One `read` fills it with the next frame's header, a small payload and,
/// when the peer is ahead, the frames after it. Payload bytes past what the
/// buffer holds are read straight into the destination once at least half a
/// buffer of them is missing.
const RECV_BUF: usize = 16 * 1024;

/// A send scratch buffer that grew past this (a large `send`) is released
/// after use instead of being kept for the next message.
const KEEP_SEND_BUF: usize = 64 * 1024;

/// Payloads of at least this many bytes (a default pipe's capacity) travel
/// on the connection's socket pair; only their header goes through the pipe.
/// A pipe copies under one lock, so its writer and reader take turns; a
/// socket lets them copy at the same time (about twice the throughput for
/// 1 MiB messages).
const BULK_AT: usize = 64 * 1024;

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
/// The operating system's error if no pipe can be created.
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
    // One OS pipe per direction: a pipe wakes its reader faster than a
    // socket pair does (about half the round trip). Large payloads take the
    // socket pair instead (see `BULK_AT`).
    let (r1, w1) = os_pipe()?;
    let (s1, s2) = UnixStream::pair()?;
    if duplex {
        let (r2, w2) = os_pipe()?;
        Ok((
            Connection::new(Some(r1), Some(w2), Some(s1)),
            Connection::new(Some(r2), Some(w1), Some(s2)),
        ))
    } else {
        s1.shutdown(std::net::Shutdown::Write)?;
        s2.shutdown(std::net::Shutdown::Read)?;
        Ok((
            Connection::new(Some(r1), None, Some(s1)),
            Connection::new(None, Some(w1), Some(s2)),
        ))
    }
}

/// A close-on-exec OS pipe: (read end, write end).
fn os_pipe() -> io::Result<(File, File)> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    Ok((File::from(r), File::from(w)))
}

/// One end of a [`Pipe`], or of a socket connection made by
/// [`Listener::accept`](super::Listener::accept) or [`Client`](super::Client)
/// (Python's `multiprocessing.connection.Connection`).
///
/// A socket connection is duplex and carries every message inline over its
/// one socket (no bulk side channel); `fileno()` is that socket.
///
/// Messages are framed (see `ipc/README.md`): `send`/`recv` carry one
/// postcard-encoded serde value, `send_bytes`/`recv_bytes` one byte string.
/// Methods take `&self` and are safe to call from several threads: whole
/// messages are never interleaved. Dropping the end closes it (Python's
/// `close()`, which [`close`](Self::close) also spells); the peer then reads
/// [`ConnectionError::Eof`].
pub struct Connection {
    /// The read end of the pipe from the peer (`None`: send-only end),
    /// shared with the receive buffer's reader.
    rx: Option<Arc<File>>,
    /// The write end of the pipe to the peer (`None`: receive-only end).
    tx: Option<File>,
    /// This end of the socket pair that carries large payloads, in the same
    /// directions as the pipes (`None` on a connection over one stream
    /// socket: every payload travels inline, see [`Connection::from_stream`]).
    bulk: Option<UnixStream>,
    max_frame: AtomicUsize,
    /// Bytes received from the OS but not yet consumed (`rbuf`'s fill), kept
    /// outside its lock so that `poll` never waits for a blocked reader.
    buffered: AtomicUsize,
    /// The receive buffer; its lock also keeps readers from interleaving.
    rbuf: Mutex<RecvBuf>,
    /// The send scratch buffer; its lock also keeps writers from interleaving.
    wbuf: Mutex<Vec<u8>>,
    /// How descriptors travel on this end (`send_handle`).
    handles: Handles,
}

/// How a connection carries descriptors (`send_handle` / `recv_handle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Handles {
    /// It cannot: a one-way `Pipe` end, a TCP connection.
    #[default]
    No,
    /// A duplex `Pipe`: the descriptor goes on the bulk socket as a one-byte
    /// message, just before the `Handle` header in the pipe.
    Side,
    /// One Unix socket: the descriptor is attached to the `Handle` header.
    Inline,
}

impl Connection {
    fn new(rx: Option<File>, tx: Option<File>, bulk: Option<UnixStream>) -> Connection {
        let handles = match (&rx, &tx, &bulk) {
            (Some(_), Some(_), Some(_)) => Handles::Side,
            (Some(r), Some(_), None) if fdpass::is_unix_socket(r.as_fd()) => Handles::Inline,
            _ => Handles::No,
        };
        let rx = rx.map(Arc::new);
        Connection {
            rbuf: Mutex::new(RecvBuf::new(rx.clone(), handles)),
            rx,
            tx,
            bulk,
            max_frame: AtomicUsize::new(DEFAULT_MAX_FRAME),
            buffered: AtomicUsize::new(0),
            wbuf: Mutex::new(Vec::new()),
            handles,
        }
    }

    /// Whether this end can receive (Python's `readable`).
    pub fn readable(&self) -> bool {
        self.rx.is_some()
    }

    /// Whether this end can send (Python's `writable`).
    pub fn writable(&self) -> bool {
        self.tx.is_some()
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

    fn writer(&self) -> Result<&File, ConnectionError> {
        self.tx.as_ref().ok_or(ConnectionError::NotWritable)
    }

    /// Writes one frame whose header is `h`: header and payload with one
    /// system call, or, for a large payload, the header on the pipe and the
    /// payload on the socket. The caller holds the write lock.
    fn write_frame(&self, w: &File, h: [u8; HEADER_LEN], payload: &[u8]) -> io::Result<()> {
        if let (true, Some(bulk)) = (payload.len() >= BULK_AT, self.bulk.as_ref()) {
            FrameWriter::new(w).write_header(Kind::Bulk, payload.len())?;
            (&*bulk).write_all(payload)
        } else {
            // One `writev`: one system call, no copy.
            FrameWriter::new(w).write_parts(&h, payload)
        }
    }

    fn reader(&self) -> Result<&File, ConnectionError> {
        self.rx.as_deref().ok_or(ConnectionError::NotReadable)
    }

    /// Sends one serde value (Python's `send(obj)`, with postcard instead of
    /// pickle: nothing on the wire can run code when decoded).
    ///
    /// # Errors
    /// [`NotWritable`](ConnectionError::NotWritable) on a receive-only end,
    /// [`Encode`](ConnectionError::Encode) if the value cannot be encoded,
    /// [`Eof`](ConnectionError::Eof) if the peer is gone.
    pub fn send<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), ConnectionError> {
        let w = self.writer()?;
        let mut scratch = self.wbuf.lock();
        // The value is encoded right behind room for the header, so header
        // and payload leave in one `write`.
        let mut buf = std::mem::take(&mut *scratch);
        buf.clear();
        frame::push_value(&mut buf, Kind::Data, value).map_err(|e| match e {
            frame::FrameEncodeError::Encode(m) => ConnectionError::Encode(m),
            frame::FrameEncodeError::Io(e) => ConnectionError::from(e),
        })?;
        let sent = if buf.len() - HEADER_LEN >= BULK_AT {
            let (h, payload) = buf.split_at(HEADER_LEN);
            self.write_frame(w, h.try_into().expect("a header"), payload)
        } else {
            FrameWriter::new(w).write_encoded(&buf)
        };
        if buf.capacity() <= KEEP_SEND_BUF {
            *scratch = buf;
        }
        Ok(sent?)
    }

    /// Receives one serde value sent by [`send`](Self::send) (Python's `recv()`).
    ///
    /// # Errors
    /// [`Eof`](ConnectionError::Eof) once the peer closed and everything sent
    /// was read; [`Decode`](ConnectionError::Decode) if the message is not a
    /// `T`; [`NotReadable`](ConnectionError::NotReadable) on a send-only end.
    pub fn recv<T: DeserializeOwned>(&self) -> Result<T, ConnectionError> {
        let r = self.reader()?;
        let mut rb = self.rbuf.lock();
        let out = self.recv_locked(r, &mut rb);
        self.buffered.store(rb.settle(), Ordering::Release);
        out
    }

    /// Receives one serde value if a whole message is waiting, without
    /// blocking (Python's `if conn.poll(): conn.recv()`).
    ///
    /// A message that has only partly arrived stays buffered for the next
    /// receive: nothing is lost.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`] if no whole message is waiting (or another
    /// thread is receiving on this end right now);
    /// [`TryRecvError::Failed`] with what [`recv`](Self::recv) would report
    /// (`Eof` once the peer closed and everything sent was read, `Decode`,
    /// ...).
    ///
    /// # Examples
    /// ```
    /// use spindle::ipc::{Pipe, TryRecvError};
    ///
    /// let (a, b) = Pipe(true)?;
    /// assert!(matches!(b.try_recv::<u32>(), Err(TryRecvError::Empty)));
    /// a.send(&7u32)?;
    /// assert_eq!(b.try_recv::<u32>()?, 7);
    /// drop(a);
    /// assert!(b.try_recv::<u32>().unwrap_err().is_eof());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_recv<T: DeserializeOwned>(&self) -> Result<T, TryRecvError> {
        match self.recv_until(Some(Instant::now()), |r, rb| self.recv_locked(r, rb)) {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(TryRecvError::Empty),
            Err(e) => Err(TryRecvError::Failed(e)),
        }
    }

    /// Receives one serde value, waiting at most `timeout` for it (Python's
    /// `if conn.poll(timeout): conn.recv()`). A timeout too long to
    /// represent waits forever.
    ///
    /// The wait is bounded even if a message is arriving when time runs out:
    /// what arrived of it stays buffered for the next receive.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`] if no whole message came in time;
    /// [`RecvTimeoutError::Failed`] with what [`recv`](Self::recv) would
    /// report.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use spindle::ipc::{Pipe, RecvTimeoutError};
    ///
    /// let (a, b) = Pipe(true)?;
    /// let err = b.recv_timeout::<u32>(Duration::from_millis(10)).unwrap_err();
    /// assert!(matches!(err, RecvTimeoutError::Timeout));
    /// a.send(&7u32)?;
    /// assert_eq!(b.recv_timeout::<u32>(Duration::from_secs(60))?, 7);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_timeout<T: DeserializeOwned>(
        &self,
        timeout: Duration,
    ) -> Result<T, RecvTimeoutError> {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.recv_deadline(deadline),
            None => self.recv().map_err(RecvTimeoutError::Failed),
        }
    }

    /// Receives one serde value, waiting until `deadline` at the latest
    /// (Python's `if conn.poll(timeout): conn.recv()`, with the timeout as an
    /// instant). What arrived of a message by then stays buffered.
    ///
    /// # Errors
    /// As [`recv_timeout`](Self::recv_timeout).
    pub fn recv_deadline<T: DeserializeOwned>(
        &self,
        deadline: Instant,
    ) -> Result<T, RecvTimeoutError> {
        match self.recv_until(Some(deadline), |r, rb| self.recv_locked(r, rb)) {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(RecvTimeoutError::Timeout),
            Err(e) => Err(RecvTimeoutError::Failed(e)),
        }
    }

    /// The body of `recv`, under the read lock.
    fn recv_locked<T: DeserializeOwned>(
        &self,
        r: &File,
        rb: &mut RecvBuf,
    ) -> Result<T, ConnectionError> {
        let p = rb.read_data_header(r, self.bulk.as_ref(), self.max_frame())?;
        // A payload already buffered whole is decoded in place.
        let decoded = if let Some(payload) = rb.take_whole(p) {
            Ok(postcard::from_bytes(payload))
        } else {
            rb.read_payload_vec(r, self.bulk.as_ref(), p)
                .map(|bytes| postcard::from_bytes(&bytes))
        };
        match decoded {
            Ok(v) => v.map_err(|e| ConnectionError::Decode(e.to_string())),
            Err(e) => Err(e.into()),
        }
    }

    /// Runs the receive `f` under the read lock once the next message can be
    /// read without blocking (or its reading fails at once: end of file, a
    /// bad frame), waiting until `deadline` (`None`: as long as it takes).
    /// `Ok(None)` if the deadline came first; then nothing is consumed, and
    /// what arrived of a message stays buffered for the next receive.
    fn recv_until<R>(
        &self,
        deadline: Option<Instant>,
        f: impl FnOnce(&File, &mut RecvBuf) -> Result<R, ConnectionError>,
    ) -> Result<Option<R>, ConnectionError> {
        let r = self.reader()?;
        let mut rb = match deadline {
            None => self.rbuf.lock(),
            Some(d) => match self.rbuf.try_lock_until(d) {
                Some(g) => g,
                None => return Ok(None),
            },
        };
        let out = match rb.ready(r, self.bulk.as_ref(), self.max_frame(), deadline) {
            Ok(true) => f(r, &mut rb).map(Some),
            Ok(false) => Ok(None),
            Err(e) => Err(e.into()),
        };
        self.buffered.store(rb.settle(), Ordering::Release);
        out
    }

    /// Sends a byte string as one message (Python's `send_bytes(buf)`).
    ///
    /// # Errors
    /// As [`send`](Self::send); a message over 4 GiB is an I/O error.
    pub fn send_bytes(&self, buf: &[u8]) -> Result<(), ConnectionError> {
        let w = self.writer()?;
        let h = frame::header(Kind::Data, buf.len())?;
        let _g = self.wbuf.lock();
        self.write_frame(w, h, buf)?;
        Ok(())
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

    /// Receives one message as bytes if a whole one is waiting, without
    /// blocking (Python's `if conn.poll(): conn.recv_bytes()`). A message
    /// that has only partly arrived stays buffered.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`] if no whole message is waiting (or another
    /// thread is receiving on this end right now);
    /// [`TryRecvError::Failed`] with what [`recv_bytes`](Self::recv_bytes)
    /// would report.
    pub fn try_recv_bytes(&self) -> Result<Vec<u8>, TryRecvError> {
        let limit = self.max_frame();
        match self.recv_until(Some(Instant::now()), |r, rb| {
            self.recv_bytes_locked(r, rb, limit)
        }) {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(TryRecvError::Empty),
            Err(e) => Err(TryRecvError::Failed(e)),
        }
    }

    /// Receives one message as bytes, waiting at most `timeout` (Python's
    /// `if conn.poll(timeout): conn.recv_bytes()`). A timeout too long to
    /// represent waits forever; what arrived of a message when time runs out
    /// stays buffered.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`] if no whole message came in time;
    /// [`RecvTimeoutError::Failed`] with what [`recv_bytes`](Self::recv_bytes)
    /// would report.
    pub fn recv_bytes_timeout(&self, timeout: Duration) -> Result<Vec<u8>, RecvTimeoutError> {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.recv_bytes_deadline(deadline),
            None => self.recv_bytes().map_err(RecvTimeoutError::Failed),
        }
    }

    /// Receives one message as bytes, waiting until `deadline` at the latest
    /// (Python's `if conn.poll(timeout): conn.recv_bytes()`, with the timeout
    /// as an instant). What arrived of a message by then stays buffered.
    ///
    /// # Errors
    /// As [`recv_bytes_timeout`](Self::recv_bytes_timeout).
    pub fn recv_bytes_deadline(&self, deadline: Instant) -> Result<Vec<u8>, RecvTimeoutError> {
        let limit = self.max_frame();
        match self.recv_until(Some(deadline), |r, rb| self.recv_bytes_locked(r, rb, limit)) {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(RecvTimeoutError::Timeout),
            Err(e) => Err(RecvTimeoutError::Failed(e)),
        }
    }

    /// The body of `recv_bytes_max`, under the read lock.
    fn recv_bytes_locked(
        &self,
        r: &File,
        rb: &mut RecvBuf,
        limit: usize,
    ) -> Result<Vec<u8>, ConnectionError> {
        let p = rb.read_data_header(r, self.bulk.as_ref(), limit)?;
        Ok(rb.read_payload_vec(r, self.bulk.as_ref(), p)?)
    }

    /// Receives one message of at most `max_len` bytes (Python's
    /// `recv_bytes(maxlength)`); a longer one is skipped without being
    /// allocated and reported as [`TooLarge`](ConnectionError::TooLarge).
    ///
    /// # Errors
    /// As [`recv_bytes`](Self::recv_bytes).
    pub fn recv_bytes_max(&self, max_len: usize) -> Result<Vec<u8>, ConnectionError> {
        let r = self.reader()?;
        let mut rb = self.rbuf.lock();
        let out = self.recv_bytes_locked(r, &mut rb, max_len.min(self.max_frame()));
        self.buffered.store(rb.settle(), Ordering::Release);
        out
    }

    /// Receives one message into `buf` and returns its length (Python's
    /// `recv_bytes_into(buffer)`).
    ///
    /// # Errors
    /// [`BufferTooShort`](ConnectionError::BufferTooShort) holding the whole
    /// message if it does not fit; otherwise as [`recv_bytes`](Self::recv_bytes).
    pub fn recv_bytes_into(&self, buf: &mut [u8]) -> Result<usize, ConnectionError> {
        let r = self.reader()?;
        let mut rb = self.rbuf.lock();
        let out = rb
            .read_data_header(r, self.bulk.as_ref(), self.max_frame())
            .and_then(|p| match buf.get_mut(..p.len) {
                Some(dst) => {
                    rb.read_payload(r, self.bulk.as_ref(), p, dst)?;
                    Ok(p.len)
                }
                None => {
                    let mut whole = vec![0u8; p.len];
                    rb.read_payload(r, self.bulk.as_ref(), p, &mut whole)?;
                    Err(ConnectionError::BufferTooShort(whole))
                }
            });
        self.buffered.store(rb.settle(), Ordering::Release);
        out
    }

    /// Whether a whole message, or the peer's end of file, is waiting, so
    /// that the next receive returns at once (Python's `poll()`). Never
    /// blocks; false also while another thread is receiving on this end.
    ///
    /// It reads what has arrived into the end's buffer (a message that is
    /// still arriving is kept there, never lost).
    ///
    /// # Errors
    /// [`NotReadable`](ConnectionError::NotReadable) on a send-only end; the
    /// operating system's error.
    pub fn poll(&self) -> Result<bool, ConnectionError> {
        self.poll_deadline(Instant::now())
    }

    /// Waits at most `timeout` until a whole message, or the peer's end of
    /// file, is waiting (Python's `poll(timeout)`); returns whether one is.
    /// A timeout too long to represent (`Duration::MAX`) waits forever, as
    /// Python's `poll(None)`.
    ///
    /// # Errors
    /// As [`poll`](Self::poll).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use spindle::ipc::Pipe;
    ///
    /// let (a, b) = Pipe(true)?;
    /// assert!(!b.poll_timeout(Duration::from_millis(10))?);
    /// a.send(&1u8)?;
    /// assert!(b.poll_timeout(Duration::from_secs(60))?);
    /// assert_eq!(b.recv::<u8>()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn poll_timeout(&self, timeout: Duration) -> Result<bool, ConnectionError> {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.poll_deadline(deadline),
            None => Ok(self.recv_until(None, |_, _| Ok(()))?.is_some()),
        }
    }

    /// Waits until `deadline` at the latest for a whole message, or the
    /// peer's end of file (Python's `poll(timeout)`, with the timeout as an
    /// instant); returns whether one is waiting.
    ///
    /// # Errors
    /// As [`poll`](Self::poll).
    pub fn poll_deadline(&self, deadline: Instant) -> Result<bool, ConnectionError> {
        Ok(self.recv_until(Some(deadline), |_, _| Ok(()))?.is_some())
    }

    /// Sends a file descriptor (a duplicate of `fd`: the caller keeps its
    /// own) to the process at the other end (Python's
    /// `multiprocessing.reduction.send_handle(conn, handle, destination_pid)`,
    /// without `destination_pid`, which only Windows needs). The peer takes
    /// it with [`recv_handle`](Self::recv_handle), in order with the other
    /// messages.
    ///
    /// Only a duplex [`Pipe`] end and a connection over a Unix socket
    /// ([`Listener`](super::Listener) / [`Client`](super::Client) on an
    /// `Address::Unix`) can carry one: the descriptor goes as `SCM_RIGHTS`
    /// on the socket (a `Pipe`'s side socket, just before the `Handle` frame
    /// that announces it in the pipe; a socket connection's own socket,
    /// attached to that frame). The receiver gets a new descriptor
    /// (close-on-exec) for the same open file.
    ///
    /// # Errors
    /// [`HandlesUnsupported`](ConnectionError::HandlesUnsupported) on a
    /// one-way `Pipe(false)` end or a TCP connection (nothing sent);
    /// [`NotWritable`](ConnectionError::NotWritable) on a receive-only end;
    /// [`Eof`](ConnectionError::Eof) if the peer is gone.
    ///
    /// # Examples
    /// ```
    /// use std::io::{Read, Write};
    /// use spindle::ipc::Pipe;
    ///
    /// let (a, b) = Pipe(true)?;
    /// let (mut r, w) = std::io::pipe()?;
    /// a.send_handle(&w)?;
    /// drop(w);
    /// let mut w = std::fs::File::from(b.recv_handle()?);
    /// w.write_all(b"through a passed descriptor")?;
    /// drop(w);
    /// let mut got = String::new();
    /// r.read_to_string(&mut got)?;
    /// assert_eq!(got, "through a passed descriptor");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_handle(&self, fd: impl AsFd) -> Result<(), ConnectionError> {
        let w = self.writer()?;
        let h = frame::header(Kind::Handle, 0)?;
        let fd = fd.as_fd();
        match (self.handles, self.bulk.as_ref()) {
            (Handles::Side, Some(bulk)) => {
                let _g = self.wbuf.lock();
                // The descriptor first: once the reader sees the header, it
                // is on the socket, and a bounded receive never waits for it.
                fdpass::send_fds(bulk, &[fd])?;
                FrameWriter::new(w).write_encoded(&h)?;
            }
            (Handles::Inline, _) => {
                let _g = self.wbuf.lock();
                fdpass::send_with_fd(w.as_fd(), &h, fd)?;
            }
            _ => return Err(ConnectionError::HandlesUnsupported),
        }
        Ok(())
    }

    /// Receives a descriptor sent by [`send_handle`](Self::send_handle)
    /// (Python's `multiprocessing.reduction.recv_handle(conn)`), as an
    /// owned, close-on-exec descriptor.
    ///
    /// Descriptors and messages share one ordered stream: this takes the
    /// next item, which must be a descriptor. If the next item is a plain
    /// message instead, this fails with
    /// [`NotAHandle`](ConnectionError::NotAHandle) as soon as that
    /// message's 8-byte header has arrived, **without consuming it**: the
    /// message stays first in line, whole, for the next `recv` /
    /// `recv_bytes` (or `poll`), so nothing is lost and the stream stays
    /// aligned. (Python has no such check: its `recv_handle` reads the
    /// message's bytes as a descriptor message and the stream is broken.)
    /// Conversely, a `recv` / `recv_bytes` that meets a descriptor closes it
    /// and fails with [`UnexpectedHandle`](ConnectionError::UnexpectedHandle),
    /// and a descriptor a foreign peer attaches to plain data is closed when
    /// the reader passes that data: none is ever leaked.
    ///
    /// # Errors
    /// [`NotAHandle`](ConnectionError::NotAHandle) (above);
    /// [`HandlesUnsupported`](ConnectionError::HandlesUnsupported) on a
    /// connection that cannot carry one (nothing read);
    /// [`Eof`](ConnectionError::Eof) once the peer closed and everything it
    /// sent was read; [`NotReadable`](ConnectionError::NotReadable) on a
    /// send-only end; [`Protocol`](ConnectionError::Protocol) for a `Handle`
    /// frame whose descriptor did not come (a foreign peer, or no free
    /// descriptor in this process: the kernel then drops it).
    pub fn recv_handle(&self) -> Result<OwnedFd, ConnectionError> {
        let r = self.reader()?;
        if self.handles == Handles::No {
            return Err(ConnectionError::HandlesUnsupported);
        }
        let mut rb = self.rbuf.lock();
        let out = rb.read_handle(r, self.bulk.as_ref());
        self.buffered.store(rb.settle(), Ordering::Release);
        out
    }

    /// [`recv_handle`](Self::recv_handle), waiting at most `timeout` for the
    /// descriptor. A timeout too long to represent waits forever.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`] if nothing came in time (nothing
    /// consumed); [`RecvTimeoutError::Failed`] with what `recv_handle`
    /// would report, [`NotAHandle`](ConnectionError::NotAHandle) included
    /// (known once the next message's header has arrived; the message is
    /// left in place).
    pub fn recv_handle_timeout(&self, timeout: Duration) -> Result<OwnedFd, RecvTimeoutError> {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.recv_handle_deadline(deadline),
            None => self.recv_handle().map_err(RecvTimeoutError::Failed),
        }
    }

    /// [`recv_handle`](Self::recv_handle), waiting until `deadline` at the
    /// latest.
    ///
    /// # Errors
    /// As [`recv_handle_timeout`](Self::recv_handle_timeout).
    pub fn recv_handle_deadline(&self, deadline: Instant) -> Result<OwnedFd, RecvTimeoutError> {
        let r = self.reader().map_err(RecvTimeoutError::Failed)?;
        if self.handles == Handles::No {
            return Err(RecvTimeoutError::Failed(
                ConnectionError::HandlesUnsupported,
            ));
        }
        let Some(mut rb) = self.rbuf.try_lock_until(deadline) else {
            return Err(RecvTimeoutError::Timeout);
        };
        let bulk = self.bulk.as_ref();
        let out = match rb.handle_ready(r, bulk, deadline) {
            Ok(true) => rb.read_handle(r, bulk).map_err(RecvTimeoutError::Failed),
            Ok(false) => Err(RecvTimeoutError::Timeout),
            Err(e) => Err(RecvTimeoutError::Failed(e.into())),
        };
        self.buffered.store(rb.settle(), Ordering::Release);
        out
    }

    /// Closes this end (Python's `close()`); the same as dropping it.
    pub fn close(self) {}

    /// The underlying descriptor (Python's `fileno()`): the read end's, or
    /// the write end's on a send-only end. A duplex end holds two
    /// descriptors, one pipe per direction; this one is the one to wait on
    /// for readability.
    pub fn fileno(&self) -> i32 {
        match (&self.rx, &self.tx) {
            (Some(r), _) => r.as_raw_fd(),
            (None, Some(w)) => w.as_raw_fd(),
            (None, None) => -1,
        }
    }

    pub(crate) fn from_fds(
        rx: Option<OwnedFd>,
        tx: Option<OwnedFd>,
        bulk: Option<OwnedFd>,
    ) -> Connection {
        Connection::new(
            rx.map(File::from),
            tx.map(File::from),
            bulk.map(UnixStream::from),
        )
    }

    /// A duplex connection over one connected stream socket (Unix or TCP,
    /// as [`Listener`](super::Listener) and [`Client`](super::Client) make):
    /// both directions use the same socket and there is no bulk side
    /// channel, so every payload travels inline as a `Data` frame (up to the
    /// receiver's [`max_frame`](Self::max_frame)). The descriptor should be
    /// close-on-exec (the standard library's sockets are).
    ///
    /// # Errors
    /// The operating system's error if the descriptor cannot be duplicated
    /// (one copy reads, one writes).
    pub(crate) fn from_stream(sock: OwnedFd) -> io::Result<Connection> {
        let rx = File::from(sock);
        // `try_clone` duplicates with `F_DUPFD_CLOEXEC`.
        let tx = rx.try_clone()?;
        Ok(Connection::new(Some(rx), Some(tx), None))
    }
}

/// Where the current frame's payload is: `len` bytes, in the pipe (after
/// the header) or, for a `Bulk` frame, on the socket.
#[derive(Clone, Copy)]
struct Payload {
    len: usize,
    bulk: bool,
}

/// A connection's receive buffer: a [`FrameReader`] over the read pipe (or
/// socket), and what a bounded receive keeps between calls.
///
/// A bounded receive (`try_recv`, `recv_timeout`, `poll_*`, ...) consumes
/// nothing until the next message is whole: it leaves the frame's header
/// and the payload bytes that came through the pipe in `data` (which grows
/// for a pipe frame larger than [`RECV_BUF`], at most [`BULK_AT`] +
/// [`HEADER_LEN`]; on a socket connection up to the size limit, released
/// once consumed; an inline frame over the limit is dropped as it arrives
/// instead, see `dropping`), and keeps what came of a `Bulk` frame's payload from
/// the socket in `stash`. So a wait that runs out in the middle of a frame
/// loses nothing: the next receive, bounded or not, goes on from there.
struct RecvBuf {
    frames: FrameReader<Source>,
    stash: Stash,
    /// On a connection without a bulk socket: an inline frame over the
    /// limit whose header a bounded receive consumed, and whose payload is
    /// being dropped as it arrives (never buffered whole).
    dropping: Option<Dropping>,
    /// How this connection carries descriptors.
    handles: Handles,
}

/// What a connection's [`FrameReader`] reads: the read pipe, or the socket
/// of a connection over one Unix socket, where every read is a `recvmsg`
/// that collects descriptors.
struct Source {
    file: Option<Arc<File>>,
    collect_fds: bool,
    /// Bytes of the stream read so far (into the buffer or straight into a
    /// destination): minus the buffered ones, the stream offset of the next
    /// unread byte. Counted only while collecting descriptors (the only use
    /// of offsets).
    taken: u64,
    /// Descriptors received and not yet claimed, each with the stream
    /// offset just past the read that brought it. The kernel hands a
    /// message's descriptors to the read that takes its first byte and ends
    /// that read with the message, so a descriptor attached to the `Handle`
    /// header at offset `h` comes with an offset in `h+1..=h+8`; any other
    /// is a stray, closed once the reader is past it.
    fds: VecDeque<(u64, OwnedFd)>,
}

impl Source {
    fn file(&self) -> io::Result<&File> {
        self.file
            .as_deref()
            .ok_or_else(|| io::Error::other("a send-only Connection has nothing to read"))
    }
}

impl Read for Source {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut r = self.file()?;
        if !self.collect_fds {
            // A pipe (or TCP): no descriptors, and no offsets to keep.
            return r.read(buf);
        }
        self.read_collecting(buf)
    }
}

impl Source {
    /// A `recvmsg` that queues the descriptors it brings, with the stream
    /// offset past it.
    #[cold]
    fn read_collecting(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut fds = Vec::new();
        let n = fdpass::recv_some_with_fds(self.file()?.as_fd(), buf, &mut fds)?;
        self.taken += n as u64;
        let e = self.taken;
        self.fds.extend(fds.into_iter().map(|fd| (e, fd)));
        Ok(n)
    }
}

/// An oversized inline frame being dropped (see [`RecvBuf::dropping`]).
#[derive(Clone, Copy)]
struct Dropping {
    /// Payload bytes still to drop.
    left: usize,
    /// The payload's length and the limit it broke, for the `TooLarge`
    /// error the frame ends with.
    len: usize,
    limit: usize,
}

/// The payload bytes a bounded receive took from the socket for the `Bulk`
/// frame whose header is next in the buffer.
#[derive(Default)]
struct Stash {
    /// Bytes taken so far.
    got: usize,
    /// They fill `bytes[..got]`, a buffer of the payload's length, unless
    /// the payload is over the limit in force when it began to arrive: then
    /// they are dropped as they come (never allocated) and `over` holds that
    /// limit, for the `TooLarge` error the frame ends with.
    bytes: Vec<u8>,
    over: Option<usize>,
}

/// What the next message still needs before it can be read without
/// blocking.
enum Need {
    /// Nothing: reading it returns (or fails) at once.
    Nothing,
    /// More of the pipe, until this many bytes from `pos` are buffered.
    Pipe(usize),
    /// More of the socket, until the stash holds this many bytes.
    Bulk(usize),
    /// An inline frame of this length over the limit, on a connection
    /// without a bulk socket: to be dropped as it arrives.
    TooLarge(usize),
    /// More payload bytes of the frame being dropped.
    Drop,
    /// A `Handle` frame of a duplex `Pipe`: its descriptor on the socket.
    HandleFd,
}

impl RecvBuf {
    fn new(rx: Option<Arc<File>>, handles: Handles) -> RecvBuf {
        let source = Source {
            file: rx,
            collect_fds: handles == Handles::Inline,
            taken: 0,
            fds: VecDeque::new(),
        };
        RecvBuf {
            frames: FrameReader::new(source, RECV_BUF),
            stash: Stash::default(),
            dropping: None,
            handles,
        }
    }

    fn avail(&self) -> usize {
        self.frames.avail()
    }

    fn fds(&mut self) -> &mut VecDeque<(u64, OwnedFd)> {
        &mut self.frames.get_mut().fds
    }

    /// Bytes received from the OS and not handed out yet (a frame being
    /// dropped counts as one: it is not over).
    fn pending(&self) -> usize {
        self.avail()
            + self.stash.got
            + usize::from(self.dropping.is_some())
            + self.frames.get_ref().fds.len()
    }

    /// The stream offset of the next unread byte; kept only on a
    /// connection that collects descriptors (see `Source::taken`).
    fn offset(&self) -> u64 {
        self.frames.get_ref().taken - self.avail() as u64
    }

    /// Closes the received descriptors that came with bytes already
    /// consumed: strays (no `Handle` frame claimed them).
    #[inline]
    fn close_stray_fds(&mut self) {
        if self.frames.get_ref().fds.is_empty() {
            // (Also the only case without offsets: a pipe end.)
            return;
        }
        let at = self.offset();
        let fds = self.fds();
        while fds.front().is_some_and(|(e, _)| *e <= at) {
            fds.pop_front();
        }
    }

    /// The descriptor of the `Handle` frame whose header was just consumed.
    fn take_handle_fd(&mut self, bulk: Option<&UnixStream>) -> Result<OwnedFd, ConnectionError> {
        match self.handles {
            Handles::Side => fdpass::recv_one_fd(side(bulk)?).map_err(|e| {
                ConnectionError::Protocol(format!(
                    "a Handle frame whose descriptor did not come on the socket: {e}"
                ))
            }),
            Handles::Inline => {
                // The header's stream offset (offsets are kept when
                // collecting descriptors).
                let h = self.offset() - HEADER_LEN as u64;
                let fds = self.fds();
                while fds.front().is_some_and(|(e, _)| *e <= h) {
                    fds.pop_front();
                }
                let fd = match fds.front() {
                    Some((e, _)) if *e <= h + HEADER_LEN as u64 => fds.pop_front().map(|x| x.1),
                    _ => None,
                };
                // More than one with the header (a foreign peer): closed.
                self.close_stray_fds();
                fd.ok_or_else(|| {
                    ConnectionError::Protocol(
                        "a Handle frame without a descriptor (the peer attached none, \
                         or this process had no descriptor free)"
                            .into(),
                    )
                })
            }
            Handles::No => Err(ConnectionError::Protocol(
                "a Handle frame on a connection that cannot carry descriptors".into(),
            )),
        }
    }

    /// Consumes the rest of a `Handle` frame whose header (of payload `len`)
    /// a message receive just read: closes its descriptor, and returns the
    /// error that receive reports.
    fn discard_handle(&mut self, bulk: Option<&UnixStream>, len: usize) -> ConnectionError {
        if len > 0 {
            // No spindle peer sends one: not ours, skipped.
            if let Err(e) = self.skip(bulk, Payload { len, bulk: false }) {
                return e.into();
            }
            self.close_stray_fds();
            return ConnectionError::Protocol(format!(
                "a Handle frame with a payload of {len} bytes"
            ));
        }
        match self.take_handle_fd(bulk) {
            Ok(fd) => {
                drop(fd);
                ConnectionError::UnexpectedHandle
            }
            Err(e) => e,
        }
    }

    /// Waits until `recv_handle` can run without blocking: a header is
    /// buffered (or a frame is being dropped, or end of file) and, for a
    /// `Handle` frame of a duplex `Pipe`, its descriptor is on the socket.
    /// False if `deadline` came first; nothing is consumed either way.
    fn handle_ready(
        &mut self,
        r: &File,
        bulk: Option<&UnixStream>,
        deadline: Instant,
    ) -> io::Result<bool> {
        while self.dropping.is_none() && self.avail() < HEADER_LEN {
            if !wait_readable(r.as_fd(), Some(deadline))? {
                return Ok(false);
            }
            if self.frames.fill_to(HEADER_LEN)? == 0 {
                return Ok(true);
            }
        }
        if self.dropping.is_none()
            && self.handles == Handles::Side
            && matches!(self.peek_header(), Some(Ok((Kind::Handle, 0))))
        {
            return wait_readable(side(bulk)?.as_fd(), Some(deadline));
        }
        Ok(true)
    }

    /// The buffered next header, parsed, without consuming it.
    fn peek_header(&self) -> Option<Result<(Kind, usize), FrameError>> {
        self.frames.peek_header()
    }

    /// `recv_handle` under the read lock: the next frame must be a `Handle`
    /// frame; a message is left in place (`NotAHandle`).
    fn read_handle(
        &mut self,
        r: &File,
        bulk: Option<&UnixStream>,
    ) -> Result<OwnedFd, ConnectionError> {
        if self.dropping.is_some() {
            // An oversized message a bounded receive began to drop: the next
            // message receive reports it.
            return Err(ConnectionError::NotAHandle);
        }
        self.close_stray_fds();
        while self.avail() < HEADER_LEN {
            if self.fill(r)? == 0 {
                return Err(if self.avail() == 0 {
                    ConnectionError::Eof
                } else {
                    FrameError::Protocol("stream ended inside a frame header".into()).into()
                });
            }
        }
        match self.peek_header().expect("a header is buffered") {
            Ok((Kind::Handle, len)) => {
                self.frames.consume(HEADER_LEN);
                if len > 0 {
                    return Err(self.discard_handle(bulk, len));
                }
                self.take_handle_fd(bulk)
            }
            Ok(_) => Err(ConnectionError::NotAHandle),
            Err(e) => {
                // As a message receive: the bad header is consumed.
                self.frames.consume(HEADER_LEN);
                Err(e.into())
            }
        }
    }

    /// Releases a buffer that grew past a pipe frame's size (a large inline
    /// frame of a socket connection) once it is empty; returns
    /// [`pending`](Self::pending).
    #[inline]
    fn settle(&mut self) -> usize {
        self.close_stray_fds();
        if self.frames.capacity() > BULK_AT + HEADER_LEN {
            self.frames.shrink(BULK_AT + HEADER_LEN);
        }
        self.pending()
    }

    /// What the next message still needs (see [`Need`]); `inline` is true on
    /// a connection without a bulk socket, `limit` its size limit.
    fn need(&self, inline: bool, limit: usize) -> Need {
        if let Some(d) = self.dropping {
            return if d.left > 0 {
                Need::Drop
            } else {
                Need::Nothing
            };
        }
        let Some(header) = self.frames.peek_header() else {
            return Need::Pipe(HEADER_LEN);
        };
        match header {
            // A bad header: reading it reports the error at once.
            Err(_) => Need::Nothing,
            // No bulk socket to read it from: reading it is a protocol error.
            Ok((Kind::Bulk, _)) if inline => Need::Nothing,
            // A descriptor: on a duplex pipe it is on the socket (sent before
            // the header; waited for all the same); on a Unix socket it came
            // with the header.
            Ok((Kind::Handle, 0)) if self.handles == Handles::Side => Need::HandleFd,
            Ok((Kind::Handle, 0)) => Need::Nothing,
            Ok((Kind::Bulk, len)) if self.stash.got < len => Need::Bulk(len),
            Ok((Kind::Bulk, _)) => Need::Nothing,
            // No Connection sends that much through the pipe (it goes on the
            // socket, see `BULK_AT`), so this is no spindle peer's frame: it
            // is left to the read, which may wait for it.
            Ok((_, len)) if len >= BULK_AT && !inline => Need::Nothing,
            // On a socket connection a large inline frame is legitimate; one
            // over the limit (of any kind) is dropped as it comes, never
            // buffered.
            Ok((_, len)) if inline && len > limit => Need::TooLarge(len),
            Ok((_, len)) if self.avail() < HEADER_LEN + len => Need::Pipe(HEADER_LEN + len),
            Ok(_) => Need::Nothing,
        }
    }

    /// Reads what has arrived until the next message can be read without
    /// blocking (or its reading fails at once: end of file, a bad frame),
    /// waiting until `deadline` (`None`: as long as it takes). False if the
    /// deadline came first; nothing is consumed either way.
    fn ready(
        &mut self,
        r: &File,
        bulk: Option<&UnixStream>,
        limit: usize,
        deadline: Option<Instant>,
    ) -> io::Result<bool> {
        loop {
            match self.need(bulk.is_none(), limit) {
                Need::Nothing => return Ok(true),
                Need::TooLarge(len) => {
                    self.frames.consume(HEADER_LEN);
                    self.dropping = Some(Dropping {
                        left: len,
                        len,
                        limit,
                    });
                }
                Need::Drop => {
                    if self.drop_buffered() {
                        continue;
                    }
                    if !wait_readable(r.as_fd(), deadline)? {
                        return Ok(false);
                    }
                    // End of file: the read reports it.
                    if self.frames.fill_to(RECV_BUF)? == 0 {
                        return Ok(true);
                    }
                }
                Need::Pipe(total) => {
                    if !wait_readable(r.as_fd(), deadline)? {
                        return Ok(false);
                    }
                    // End of file: the read reports it.
                    if self.frames.fill_to(total)? == 0 {
                        return Ok(true);
                    }
                }
                Need::HandleFd => {
                    return wait_readable(side(bulk)?.as_fd(), deadline);
                }
                Need::Bulk(len) => {
                    let bulk = side(bulk)?;
                    if !wait_readable(bulk.as_fd(), deadline)? {
                        return Ok(false);
                    }
                    if self.stash_more(bulk, len, limit)? == 0 {
                        return Ok(true);
                    }
                }
            }
        }
    }

    /// Drops buffered payload bytes of the frame being dropped; true if
    /// there were any.
    fn drop_buffered(&mut self) -> bool {
        let avail = self.avail();
        let Some(d) = &mut self.dropping else {
            return false;
        };
        let n = avail.min(d.left);
        d.left -= n;
        self.frames.consume(n);
        n > 0
    }

    /// One `read` of the socket into the stash of a `Bulk` payload of `len`
    /// bytes; the bytes read (0 at end of file). Called once the socket is
    /// readable, so it does not block.
    fn stash_more(&mut self, mut bulk: &UnixStream, len: usize, limit: usize) -> io::Result<usize> {
        let s = &mut self.stash;
        if s.got == 0 {
            s.over = (len > limit).then_some(limit);
            if s.over.is_none() && s.bytes.len() != len {
                s.bytes = vec![0u8; len];
            }
        }
        let mut scratch = [0u8; 8192];
        let dst = match s.over {
            Some(_) => {
                let n = (len - s.got).min(scratch.len());
                &mut scratch[..n]
            }
            None => &mut s.bytes[s.got..len],
        };
        loop {
            match bulk.read(dst) {
                Ok(n) => {
                    s.got += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// One `read` into the free part of the buffer, after polling the pipe
    /// for [`READ_SPIN`]; `Ok(0)` at end of file.
    fn fill(&mut self, r: &File) -> io::Result<usize> {
        spin_until_readable(r);
        self.frames.fill()
    }

    /// Reads the next frame's header; `Ok((kind, len))`.
    fn read_header(&mut self, r: &File) -> Result<(Kind, usize), FrameError> {
        self.close_stray_fds();
        self.frames.read_header_with(|_| spin_until_readable(r))
    }

    /// Reads the next header of a data frame whose payload fits `limit`.
    /// A payload over the limit, or of another kind, is skipped (never
    /// allocated) and reported.
    fn read_data_header(
        &mut self,
        r: &File,
        bulk: Option<&UnixStream>,
        limit: usize,
    ) -> Result<Payload, ConnectionError> {
        // The payload of an oversized inline frame whose header a bounded
        // receive consumed: drop the rest of it, report it.
        if let Some(d) = self.dropping {
            while self.dropping.is_some_and(|d| d.left > 0) {
                if !self.drop_buffered() && self.fill(r)? == 0 {
                    self.dropping = None;
                    return Err(FrameError::Protocol(
                        "stream ended in the middle of a frame".into(),
                    )
                    .into());
                }
            }
            self.dropping = None;
            return Err(FrameError::TooLarge {
                len: d.len as u64,
                limit: d.limit,
            }
            .into());
        }
        let (kind, len) = self.read_header(r)?;
        if kind == Kind::Handle {
            return Err(self.discard_handle(bulk, len));
        }
        if kind == Kind::Bulk && bulk.is_none() {
            // Its payload is not in this stream: only the header is consumed.
            return Err(ConnectionError::Protocol(
                "a Bulk frame on a connection over one socket (which has no bulk channel)".into(),
            ));
        }
        let p = Payload {
            len,
            bulk: kind == Kind::Bulk,
        };
        // Part of this payload was dropped by a bounded receive that found
        // it over the limit then: it can only be skipped.
        if let (true, Some(limit)) = (p.bulk, self.stash.over) {
            self.skip(bulk, p)?;
            return Err(FrameError::TooLarge {
                len: len as u64,
                limit,
            }
            .into());
        }
        if len > limit {
            self.skip(bulk, p)?;
            return Err(FrameError::TooLarge {
                len: len as u64,
                limit,
            }
            .into());
        }
        if kind != Kind::Data && kind != Kind::Bulk {
            self.skip(bulk, p)?;
            return Err(ConnectionError::Protocol(format!(
                "unexpected {kind:?} frame on a Connection"
            )));
        }
        Ok(p)
    }

    /// The payload `p` if it is all buffered (consuming it).
    fn take_whole(&mut self, p: Payload) -> Option<&[u8]> {
        if p.bulk {
            return None;
        }
        self.frames.take_whole(p.len)
    }

    /// Fills `dst` (`p.len` bytes) with the current frame's payload.
    fn read_payload(
        &mut self,
        r: &File,
        bulk: Option<&UnixStream>,
        p: Payload,
        dst: &mut [u8],
    ) -> Result<(), FrameError> {
        if p.bulk {
            // What a bounded receive stashed, then straight from the socket;
            // an end of file there is mid-frame.
            let stash = std::mem::take(&mut self.stash);
            let got = stash.got.min(stash.bytes.len()).min(dst.len());
            dst[..got].copy_from_slice(&stash.bytes[..got]);
            return Ok(side(bulk)?.read_exact(&mut dst[got..])?);
        }
        // Buffered bytes, then a large remainder straight into place.
        self.frames.read_exact_into(dst, |_| spin_until_readable(r))
    }

    /// The current frame's payload as a new vector.
    fn read_payload_vec(
        &mut self,
        r: &File,
        bulk: Option<&UnixStream>,
        p: Payload,
    ) -> Result<Vec<u8>, FrameError> {
        if p.bulk {
            // What a bounded receive stashed, then the rest read into the
            // vector's spare capacity: no zeroing of a large buffer that is
            // about to be overwritten.
            let stash = std::mem::take(&mut self.stash);
            let mut v = stash.bytes;
            v.truncate(stash.got.min(p.len));
            v.reserve_exact(p.len - v.len());
            side(bulk)?
                .take((p.len - v.len()) as u64)
                .read_to_end(&mut v)?;
            if v.len() < p.len {
                return Err(FrameError::Protocol(
                    "stream ended in the middle of a frame".into(),
                ));
            }
            return Ok(v);
        }
        let mut v = vec![0u8; p.len];
        self.read_payload(r, bulk, p, &mut v)?;
        Ok(v)
    }

    /// Consumes payload `p` in buffer-sized reads, never allocating it.
    fn skip(&mut self, bulk: Option<&UnixStream>, p: Payload) -> Result<(), FrameError> {
        if p.bulk {
            let stash = std::mem::take(&mut self.stash);
            return frame::skip(side(bulk)?, p.len - stash.got.min(p.len));
        }
        self.frames.skip(p.len)
    }
}

/// The bulk socket of a connection that has one; a `Bulk` frame is only
/// read on such a connection (`read_data_header` refuses it elsewhere).
fn side(bulk: Option<&UnixStream>) -> io::Result<&UnixStream> {
    bulk.ok_or_else(|| io::Error::other("a Bulk frame on a connection without a bulk socket"))
}

/// How long a reader polls before it blocks in `read`: waking a process
/// that sleeps costs tens of microseconds on a virtual machine's idle CPU,
/// more than a request/reply exchange takes; a peer that answers within
/// this budget is met awake.
const READ_SPIN: Duration = Duration::from_micros(30);

/// Polls `r` without blocking for up to [`READ_SPIN`]; returns as soon as
/// it is readable (or hung up). Spurious returns only cost the budget.
fn spin_until_readable(r: &File) {
    let mut start = None;
    loop {
        let mut fds = [PollFd::new(r.as_fd(), PollFlags::POLLIN)];
        if !matches!(poll(&mut fds, PollTimeout::ZERO), Ok(0)) {
            return;
        }
        let t0 = *start.get_or_insert_with(Instant::now);
        if t0.elapsed() >= READ_SPIN {
            return;
        }
        // The peer may be waiting for this very CPU.
        std::thread::yield_now();
    }
}

/// Waits until `fd` is readable (or hung up) or `deadline` passes (`None`:
/// forever). Returns whether it is readable.
pub(crate) fn wait_readable(
    fd: std::os::fd::BorrowedFd<'_>,
    deadline: Option<Instant>,
) -> io::Result<bool> {
    loop {
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match poll(&mut fds, super::wait::poll_timeout(deadline)) {
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

impl super::wait::Waitable for Connection {
    /// The read end's descriptor.
    fn wait_fd(&self) -> io::Result<std::os::fd::BorrowedFd<'_>> {
        self.rx.as_ref().map(AsFd::as_fd).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "a send-only Connection has nothing to wait for",
            )
        })
    }

    /// Bytes already read from the OS and not yet handed out.
    fn ready_now(&self) -> bool {
        self.buffered.load(Ordering::Acquire) > 0
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("rx", &self.rx.as_ref().map(AsRawFd::as_raw_fd))
            .field("tx", &self.tx.as_ref().map(AsRawFd::as_raw_fd))
            .finish()
    }
}

/// A `Connection` encodes as its descriptors' indices (pipes and socket) in the task call being
/// built; it can only be encoded as an argument of a task call. An end
/// holding received bytes it has not handed out yet cannot be encoded: those
/// bytes would be lost to the receiving process.
impl Serialize for Connection {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let pending = self.buffered.load(Ordering::Acquire);
        if pending > 0 {
            return Err(serde::ser::Error::custom(format!(
                "this Connection holds {pending} received bytes not read yet; \
                 receive them before passing it to another process"
            )));
        }
        let export = |f: Option<&File>| {
            f.map(|f| fdpass::export(f.as_fd()))
                .transpose()
                .map_err(serde::ser::Error::custom)
        };
        let bulk = self
            .bulk
            .as_ref()
            .map(|b| fdpass::export(b.as_fd()))
            .transpose()
            .map_err(serde::ser::Error::custom)?;
        (export(self.rx.as_deref())?, export(self.tx.as_ref())?, bulk).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Connection {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (rx, tx, bulk) = <(Option<u32>, Option<u32>, Option<u32>)>::deserialize(d)?;
        if rx.is_none() && tx.is_none() {
            return Err(serde::de::Error::custom("a Connection with no pipe"));
        }
        let import = |i: Option<u32>| {
            i.map(fdpass::import)
                .transpose()
                .map_err(serde::de::Error::custom)
        };
        Ok(Connection::from_fds(
            import(rx)?,
            import(tx)?,
            import(bulk)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(60);

    /// Writes raw bytes to a pipe end (frames made by hand).
    fn write_all(mut w: &File, buf: &[u8]) -> io::Result<()> {
        w.write_all(buf)
    }

    fn pending(c: &Connection) -> usize {
        c.buffered.load(Ordering::Acquire)
    }

    /// A pipe frame larger than the receive buffer, of which only part has
    /// arrived: bounded receives give up without consuming it, and the next
    /// receive gets it whole.
    #[test]
    fn a_bounded_receive_keeps_a_partial_pipe_frame() {
        let (a, b) = Pipe(true).unwrap();
        let msg: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        let w = a.tx.as_ref().unwrap();
        write_all(w, &frame::header(Kind::Data, msg.len()).unwrap()).unwrap();
        write_all(w, &msg[..1000]).unwrap();
        assert!(b.try_recv_bytes().unwrap_err().is_empty());
        assert!(!b.poll().unwrap());
        let t = Instant::now();
        let e = b.recv_bytes_timeout(Duration::from_millis(20)).unwrap_err();
        assert!(e.is_timeout(), "{e}");
        assert!(t.elapsed() >= Duration::from_millis(20));
        assert_eq!(pending(&b), HEADER_LEN + 1000);
        write_all(w, &msg[1000..30_000]).unwrap();
        assert!(b.try_recv::<u8>().unwrap_err().is_empty());
        assert_eq!(pending(&b), HEADER_LEN + 30_000);
        write_all(w, &msg[30_000..]).unwrap();
        a.send(&"next").unwrap();
        assert!(b.poll().unwrap());
        assert_eq!(b.try_recv_bytes().unwrap(), msg);
        assert_eq!(b.recv_timeout::<String>(LONG).unwrap(), "next");
        assert_eq!(pending(&b), 0);
    }

    /// Writes a `Bulk` frame of `msg` by hand: its header and the first
    /// `first` payload bytes, the rest by the returned closure.
    fn partial_bulk<'a>(
        a: &'a Connection,
        msg: &'a [u8],
        first: usize,
    ) -> impl FnOnce() + Send + 'a {
        write_all(
            a.tx.as_ref().unwrap(),
            &frame::header(Kind::Bulk, msg.len()).unwrap(),
        )
        .unwrap();
        a.bulk.as_ref().unwrap().write_all(&msg[..first]).unwrap();
        move || a.bulk.as_ref().unwrap().write_all(&msg[first..]).unwrap()
    }

    /// A bulk frame whose payload is still coming on the socket: what a
    /// bounded receive took of it is kept, and whichever receive comes next
    /// (bounded or not, into a vector, a value or a buffer) finishes it.
    #[test]
    fn a_bounded_receive_keeps_a_partial_bulk_frame() {
        let msg: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        for finish in 0..4 {
            let (a, b) = Pipe(true).unwrap();
            let rest = partial_bulk(&a, &msg, 50_000);
            assert!(b.try_recv_bytes().unwrap_err().is_empty());
            let t = Instant::now();
            let e = b.recv_timeout::<u8>(Duration::from_millis(20)).unwrap_err();
            assert!(e.is_timeout(), "{e}");
            assert!(t.elapsed() >= Duration::from_millis(20));
            assert!(!b.poll().unwrap());
            assert_eq!(pending(&b), HEADER_LEN + 50_000);
            std::thread::scope(|s| {
                // More than a socket holds: it is written while we read.
                s.spawn(rest);
                match finish {
                    0 => assert_eq!(b.recv_bytes().unwrap(), msg),
                    1 => assert_eq!(b.recv_bytes_timeout(LONG).unwrap(), msg),
                    2 => {
                        let mut buf = vec![0u8; msg.len() + 1];
                        assert_eq!(b.recv_bytes_into(&mut buf).unwrap(), msg.len());
                        assert_eq!(buf[..msg.len()], msg[..]);
                    }
                    _ => {
                        assert!(b.poll_timeout(LONG).unwrap());
                        assert_eq!(b.try_recv_bytes().unwrap(), msg);
                    }
                }
            });
            assert_eq!(pending(&b), 0);
            a.send(&5u8).unwrap();
            assert_eq!(b.recv::<u8>().unwrap(), 5);
        }
    }

    /// A bulk payload over the limit when it began to arrive is dropped as it
    /// comes (never allocated) and ends as `TooLarge`, even if the limit was
    /// raised meanwhile; the connection stays usable.
    #[test]
    fn a_partial_bulk_frame_over_the_limit_is_skipped() {
        let msg = vec![7u8; 300_000];
        let (a, b) = Pipe(true).unwrap();
        b.set_max_frame(100_000);
        let rest = partial_bulk(&a, &msg, 50_000);
        assert!(b.try_recv_bytes().unwrap_err().is_empty());
        assert!(b.rbuf.lock().stash.bytes.is_empty(), "not allocated");
        b.set_max_frame(1 << 20);
        std::thread::scope(|s| {
            s.spawn(rest);
            assert!(matches!(
                b.recv_bytes(),
                Err(ConnectionError::TooLarge {
                    len: 300_000,
                    limit: 100_000
                })
            ));
        });
        a.send_bytes(b"ok").unwrap();
        assert_eq!(b.try_recv_bytes().unwrap(), b"ok");
    }

    /// A connection over one socket pair, and the raw peer socket.
    fn socket_connection() -> (Connection, UnixStream) {
        let (s1, s2) = UnixStream::pair().unwrap();
        (Connection::from_stream(OwnedFd::from(s1)).unwrap(), s2)
    }

    /// On a socket connection an inline frame over the limit is dropped as
    /// it arrives by a bounded receive (the buffer stays small), and a large
    /// legitimate one is buffered whole, then the buffer is released.
    #[test]
    fn a_socket_connection_drops_oversized_frames_and_releases_large_buffers() {
        let (b, mut raw) = socket_connection();
        b.set_max_frame(100_000);
        raw.write_all(&frame::header(Kind::Data, 300_000).unwrap())
            .unwrap();
        raw.write_all(&[7u8; 50_000]).unwrap();
        assert!(b.try_recv_bytes().unwrap_err().is_empty());
        assert!(
            b.rbuf.lock().frames.capacity() <= RECV_BUF,
            "buffered, not dropped"
        );
        assert!(pending(&b) > 0);
        std::thread::scope(|s| {
            // More than the socket holds: written while we read.
            s.spawn(|| {
                (&raw).write_all(&[7u8; 250_000]).unwrap();
                (&raw)
                    .write_all(&frame::header(Kind::Data, 2).unwrap())
                    .unwrap();
                (&raw).write_all(b"ok").unwrap();
            });
            assert!(matches!(
                b.recv_bytes_timeout(LONG),
                Err(RecvTimeoutError::Failed(ConnectionError::TooLarge {
                    len: 300_000,
                    limit: 100_000
                }))
            ));
        });
        assert!(b.rbuf.lock().frames.capacity() <= RECV_BUF);
        assert_eq!(b.recv_bytes_timeout(LONG).unwrap(), b"ok");

        b.set_max_frame(DEFAULT_MAX_FRAME);
        let big = vec![3u8; 200_000];
        std::thread::scope(|s| {
            s.spawn(|| {
                (&raw)
                    .write_all(&frame::header(Kind::Data, big.len()).unwrap())
                    .unwrap();
                (&raw).write_all(&big).unwrap();
            });
            assert_eq!(b.recv_bytes_timeout(LONG).unwrap(), big);
        });
        assert!(
            b.rbuf.lock().frames.capacity() <= BULK_AT + HEADER_LEN,
            "kept"
        );
        assert_eq!(pending(&b), 0);
    }

    /// A frame of another kind over the limit on a socket connection is
    /// dropped as it arrives too (a peer cannot make a bounded receive
    /// buffer what it announces), and reported as `TooLarge`.
    #[test]
    fn a_socket_connection_drops_an_oversized_frame_of_any_kind() {
        let (b, raw) = socket_connection();
        b.set_max_frame(1000);
        (&raw)
            .write_all(&frame::header(Kind::Boot, 100_000).unwrap())
            .unwrap();
        (&raw).write_all(&[1u8; 20_000]).unwrap();
        assert!(!b.poll().unwrap());
        assert!(
            b.rbuf.lock().frames.capacity() <= RECV_BUF,
            "buffered, not dropped"
        );
        std::thread::scope(|s| {
            s.spawn(|| {
                (&raw).write_all(&[1u8; 80_000]).unwrap();
                (&raw)
                    .write_all(&frame::header(Kind::Data, 1).unwrap())
                    .unwrap();
                (&raw).write_all(&[9]).unwrap();
            });
            assert!(matches!(
                b.recv_bytes_timeout(LONG),
                Err(RecvTimeoutError::Failed(ConnectionError::TooLarge {
                    len: 100_000,
                    limit: 1000
                }))
            ));
        });
        assert_eq!(b.recv_bytes_timeout(LONG).unwrap(), [9]);
    }

    /// Whether every write end of the pipe `r` reads from is closed.
    fn hung_up(r: &std::io::PipeReader) -> bool {
        let mut fds = [PollFd::new(r.as_fd(), PollFlags::POLLHUP)];
        poll(&mut fds, PollTimeout::ZERO).unwrap();
        fds[0]
            .revents()
            .is_some_and(|e| e.contains(PollFlags::POLLHUP))
    }

    /// A foreign peer of a Unix-socket connection attaching descriptors to
    /// plain frames: each is closed once the reader is past the bytes it
    /// came with, whichever receive reads them (blocking or bounded), and
    /// the messages arrive intact. A `Handle` frame without a descriptor is
    /// a protocol error, and the stream goes on.
    #[test]
    fn stray_descriptors_on_a_socket_connection_are_closed() {
        let (b, raw) = socket_connection();
        let mut frames = Vec::new();
        for i in 0..3u8 {
            let mut f = frame::header(Kind::Data, 3).unwrap().to_vec();
            f.extend_from_slice(&[i; 3]);
            frames.push(f);
        }
        let (r, w) = std::io::pipe().unwrap();
        // On a header, inside a payload, and on the next header too.
        fdpass::send_with_fd(raw.as_fd(), &frames[0], w.as_fd()).unwrap();
        (&raw).write_all(&frames[1][..10]).unwrap();
        fdpass::send_with_fd(raw.as_fd(), &frames[1][10..], w.as_fd()).unwrap();
        fdpass::send_with_fd(raw.as_fd(), &frames[2], w.as_fd()).unwrap();
        drop(w);
        assert_eq!(b.recv_bytes().unwrap(), [0; 3]);
        assert_eq!(b.try_recv_bytes().unwrap(), [1; 3]);
        assert_eq!(b.recv_bytes_timeout(LONG).unwrap(), [2; 3]);
        assert!(b.rbuf.lock().frames.get_ref().fds.is_empty());
        assert!(hung_up(&r), "a stray descriptor was kept");
        assert_eq!(pending(&b), 0);

        // A Handle frame with no descriptor attached.
        (&raw)
            .write_all(&frame::header(Kind::Handle, 0).unwrap())
            .unwrap();
        (&raw).write_all(&frames[0]).unwrap();
        assert!(matches!(b.recv_handle(), Err(ConnectionError::Protocol(_))));
        assert_eq!(b.recv_bytes().unwrap(), [0; 3]);
        // Two descriptors on one Handle frame: the first is taken, the
        // second closed.
        let (mut r1, w1) = std::io::pipe().unwrap();
        let (r2, w2) = std::io::pipe().unwrap();
        let h = frame::header(Kind::Handle, 0).unwrap();
        let sent = nix::sys::socket::sendmsg::<()>(
            raw.as_raw_fd(),
            &[std::io::IoSlice::new(&h)],
            &[nix::sys::socket::ControlMessage::ScmRights(&[
                w1.as_raw_fd(),
                w2.as_raw_fd(),
            ])],
            nix::sys::socket::MsgFlags::empty(),
            None,
        )
        .unwrap();
        assert_eq!(sent, HEADER_LEN);
        drop((w1, w2));
        let got = b.recv_handle().unwrap();
        assert!(hung_up(&r2), "the second descriptor was kept");
        File::from(got).write_all(b"first").unwrap();
        let mut s = String::new();
        r1.read_to_string(&mut s).unwrap();
        assert_eq!(s, "first");
    }

    /// A receive in progress on another thread: `try_recv` does not wait for
    /// it.
    #[test]
    fn try_recv_does_not_wait_for_another_reader() {
        let (a, b) = Pipe(true).unwrap();
        let guard = b.rbuf.lock();
        a.send(&1u8).unwrap();
        std::thread::scope(|s| {
            let got = s.spawn(|| b.try_recv::<u8>()).join().unwrap();
            assert!(got.unwrap_err().is_empty());
            let t = Instant::now();
            let got = s
                .spawn(|| b.recv_timeout::<u8>(Duration::from_millis(20)))
                .join()
                .unwrap();
            assert!(got.unwrap_err().is_timeout());
            assert!(t.elapsed() >= Duration::from_millis(20));
        });
        drop(guard);
        assert_eq!(b.try_recv::<u8>().unwrap(), 1);
    }
}
