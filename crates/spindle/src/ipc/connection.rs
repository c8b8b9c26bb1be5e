//! `Pipe` and `Connection`: framed messages over OS pipes, with a socket
//! pair beside them for large payloads.
#![forbid(unsafe_code)]

use std::fmt;
use std::fs::File;
use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::ConnectionError;
use super::fdpass;
use super::frame::{self, DEFAULT_MAX_FRAME, FrameError, HEADER_LEN, Kind};

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
            Connection::new(Some(r1), Some(w2), s1),
            Connection::new(Some(r2), Some(w1), s2),
        ))
    } else {
        s1.shutdown(std::net::Shutdown::Write)?;
        s2.shutdown(std::net::Shutdown::Read)?;
        Ok((
            Connection::new(Some(r1), None, s1),
            Connection::new(None, Some(w1), s2),
        ))
    }
}

/// A close-on-exec OS pipe: (read end, write end).
fn os_pipe() -> io::Result<(File, File)> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    Ok((File::from(r), File::from(w)))
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
    /// The read end of the pipe from the peer (`None`: send-only end).
    rx: Option<File>,
    /// The write end of the pipe to the peer (`None`: receive-only end).
    tx: Option<File>,
    /// This end of the socket pair that carries large payloads, in the same
    /// directions as the pipes.
    bulk: UnixStream,
    max_frame: AtomicUsize,
    /// Bytes received from the OS but not yet consumed (`rbuf`'s fill), kept
    /// outside its lock so that `poll` never waits for a blocked reader.
    buffered: AtomicUsize,
    /// The receive buffer; its lock also keeps readers from interleaving.
    rbuf: Mutex<RecvBuf>,
    /// The send scratch buffer; its lock also keeps writers from interleaving.
    wbuf: Mutex<Vec<u8>>,
}

impl Connection {
    fn new(rx: Option<File>, tx: Option<File>, bulk: UnixStream) -> Connection {
        Connection {
            rx,
            tx,
            bulk,
            max_frame: AtomicUsize::new(DEFAULT_MAX_FRAME),
            buffered: AtomicUsize::new(0),
            rbuf: Mutex::new(RecvBuf::default()),
            wbuf: Mutex::new(Vec::new()),
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
        if payload.len() >= BULK_AT {
            let mut h = h;
            h[3] = Kind::Bulk as u8;
            write_all(w, &h)?;
            (&self.bulk).write_all(payload)
        } else {
            // One `writev`: one system call, no copy.
            write_all_vectored(w, &mut [IoSlice::new(&h), IoSlice::new(payload)])
        }
    }

    fn reader(&self) -> Result<&File, ConnectionError> {
        self.rx.as_ref().ok_or(ConnectionError::NotReadable)
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
        buf.extend_from_slice(&[0u8; HEADER_LEN]);
        let mut buf =
            postcard::to_extend(value, buf).map_err(|e| ConnectionError::Encode(e.to_string()))?;
        let h = frame::header(Kind::Data, buf.len() - HEADER_LEN)?;
        let sent = if buf.len() - HEADER_LEN >= BULK_AT {
            self.write_frame(w, h, &buf[HEADER_LEN..])
        } else {
            buf[..HEADER_LEN].copy_from_slice(&h);
            write_all(w, &buf)
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
        let res = rb.read_data_header(r, &self.bulk, self.max_frame());
        let out = match res {
            Ok(p) => {
                // A payload already buffered whole is decoded in place.
                let decoded = if let Some(payload) = rb.take_whole(p) {
                    Ok(postcard::from_bytes(payload))
                } else {
                    rb.read_payload_vec(r, &self.bulk, p)
                        .map(|bytes| postcard::from_bytes(&bytes))
                };
                match decoded {
                    Ok(v) => v.map_err(|e| ConnectionError::Decode(e.to_string())),
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(e),
        };
        self.buffered.store(rb.avail(), Ordering::Release);
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

    /// Receives one message of at most `max_len` bytes (Python's
    /// `recv_bytes(maxlength)`); a longer one is skipped without being
    /// allocated and reported as [`TooLarge`](ConnectionError::TooLarge).
    ///
    /// # Errors
    /// As [`recv_bytes`](Self::recv_bytes).
    pub fn recv_bytes_max(&self, max_len: usize) -> Result<Vec<u8>, ConnectionError> {
        let r = self.reader()?;
        let mut rb = self.rbuf.lock();
        let limit = max_len.min(self.max_frame());
        let out = rb
            .read_data_header(r, &self.bulk, limit)
            .and_then(|p| Ok(rb.read_payload_vec(r, &self.bulk, p)?));
        self.buffered.store(rb.avail(), Ordering::Release);
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
            .read_data_header(r, &self.bulk, self.max_frame())
            .and_then(|p| match buf.get_mut(..p.len) {
                Some(dst) => {
                    rb.read_payload(r, &self.bulk, p, dst)?;
                    Ok(p.len)
                }
                None => {
                    let mut whole = vec![0u8; p.len];
                    rb.read_payload(r, &self.bulk, p, &mut whole)?;
                    Err(ConnectionError::BufferTooShort(whole))
                }
            });
        self.buffered.store(rb.avail(), Ordering::Release);
        out
    }

    /// Waits up to `timeout` for something to read (Python's `poll(timeout)`;
    /// `Duration::ZERO` only checks). True if a message, or the peer's end of
    /// file, is waiting: a following `recv` will not block.
    ///
    /// # Errors
    /// [`NotReadable`](ConnectionError::NotReadable) on a send-only end.
    pub fn poll(&self, timeout: Duration) -> Result<bool, ConnectionError> {
        let r = self.reader()?;
        // Bytes already taken from the OS are invisible to poll(2).
        if self.buffered.load(Ordering::Acquire) > 0 {
            return Ok(true);
        }
        Ok(wait_readable(
            r.as_fd(),
            Instant::now().checked_add(timeout),
        )?)
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

    pub(crate) fn from_fds(rx: Option<OwnedFd>, tx: Option<OwnedFd>, bulk: OwnedFd) -> Connection {
        Connection::new(
            rx.map(File::from),
            tx.map(File::from),
            UnixStream::from(bulk),
        )
    }
}

/// Writes all of `buf`, retrying short writes and interruptions.
fn write_all(mut w: &File, buf: &[u8]) -> io::Result<()> {
    w.write_all(buf)
}

/// Writes all of `bufs` with `writev`, retrying short writes and interruptions.
fn write_all_vectored(mut w: &File, mut bufs: &mut [IoSlice<'_>]) -> io::Result<()> {
    while !bufs.is_empty() {
        match w.write_vectored(bufs) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Where the current frame's payload is: `len` bytes, in the pipe (after
/// the header) or, for a `Bulk` frame, on the socket.
#[derive(Clone, Copy)]
struct Payload {
    len: usize,
    bulk: bool,
}

/// A connection's receive buffer: `data[pos..end]` was read from the pipe
/// and not consumed yet.
#[derive(Default)]
struct RecvBuf {
    data: Vec<u8>,
    pos: usize,
    end: usize,
}

impl RecvBuf {
    fn avail(&self) -> usize {
        self.end - self.pos
    }

    /// One `read` into the free part of the buffer; `Ok(0)` at end of file.
    fn fill(&mut self, mut r: &File) -> io::Result<usize> {
        if self.data.is_empty() {
            self.data = vec![0u8; RECV_BUF];
        }
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
        } else if self.data.len() - self.end < HEADER_LEN {
            // Only a partial frame is left near the end: move it to the front.
            self.data.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        spin_until_readable(r);
        loop {
            match r.read(&mut self.data[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads the next frame's header; `Ok((kind, len))`.
    fn read_header(&mut self, r: &File) -> Result<(Kind, usize), FrameError> {
        while self.avail() < HEADER_LEN {
            if self.fill(r)? == 0 {
                return Err(if self.avail() == 0 {
                    FrameError::Eof
                } else {
                    FrameError::Protocol("stream ended inside a frame header".into())
                });
            }
        }
        let mut h = [0u8; HEADER_LEN];
        h.copy_from_slice(&self.data[self.pos..self.pos + HEADER_LEN]);
        self.pos += HEADER_LEN;
        frame::parse_header(&h)
    }

    /// Reads the next header of a data frame whose payload fits `limit`.
    /// A payload over the limit, or of another kind, is skipped (never
    /// allocated) and reported.
    fn read_data_header(
        &mut self,
        r: &File,
        bulk: &UnixStream,
        limit: usize,
    ) -> Result<Payload, ConnectionError> {
        let (kind, len) = self.read_header(r)?;
        let p = Payload {
            len,
            bulk: kind == Kind::Bulk,
        };
        if len > limit {
            self.skip(r, bulk, p)?;
            return Err(FrameError::TooLarge {
                len: len as u64,
                limit,
            }
            .into());
        }
        if kind != Kind::Data && kind != Kind::Bulk {
            self.skip(r, bulk, p)?;
            return Err(ConnectionError::Protocol(format!(
                "unexpected {kind:?} frame on a Connection"
            )));
        }
        Ok(p)
    }

    /// The payload `p` if it is all buffered (consuming it).
    fn take_whole(&mut self, p: Payload) -> Option<&[u8]> {
        if p.bulk || self.avail() < p.len {
            return None;
        }
        let start = self.pos;
        self.pos += p.len;
        Some(&self.data[start..start + p.len])
    }

    /// Copies buffered bytes into `dst`; returns how many.
    fn take_into(&mut self, dst: &mut [u8]) -> usize {
        let n = self.avail().min(dst.len());
        dst[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        n
    }

    /// Fills `dst` (`p.len` bytes) with the current frame's payload.
    fn read_payload(
        &mut self,
        mut r: &File,
        bulk: &UnixStream,
        p: Payload,
        dst: &mut [u8],
    ) -> Result<(), FrameError> {
        if p.bulk {
            // Straight from the socket; an end of file there is mid-frame.
            return Ok((&*bulk).read_exact(dst)?);
        }
        let mut got = self.take_into(dst);
        while got < dst.len() {
            let n = if dst.len() - got >= RECV_BUF / 2 {
                // Large remainder: straight into place, no copy.
                match r.read(&mut dst[got..]) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(FrameError::Io(e)),
                }
            } else {
                match self.fill(r)? {
                    0 => 0,
                    _ => self.take_into(&mut dst[got..]),
                }
            };
            if n == 0 {
                return Err(FrameError::Protocol(
                    "stream ended in the middle of a frame".into(),
                ));
            }
            got += n;
        }
        Ok(())
    }

    /// The current frame's payload as a new vector.
    fn read_payload_vec(
        &mut self,
        r: &File,
        bulk: &UnixStream,
        p: Payload,
    ) -> Result<Vec<u8>, FrameError> {
        if p.bulk {
            // Read into the vector's spare capacity: no zeroing of a large
            // buffer that is about to be overwritten.
            let mut v = Vec::with_capacity(p.len);
            bulk.take(p.len as u64).read_to_end(&mut v)?;
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
    fn skip(&mut self, r: &File, bulk: &UnixStream, p: Payload) -> Result<(), FrameError> {
        if p.bulk {
            return frame::skip(bulk, p.len);
        }
        let mut len = p.len;
        loop {
            let n = self.avail().min(len);
            self.pos += n;
            len -= n;
            if len == 0 {
                return Ok(());
            }
            if self.fill(r)? == 0 {
                return Err(FrameError::Protocol(
                    "stream ended in the middle of a frame".into(),
                ));
            }
        }
    }
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
        let export = |f: &Option<File>| {
            f.as_ref()
                .map(|f| fdpass::export(f.as_fd()))
                .transpose()
                .map_err(serde::ser::Error::custom)
        };
        let bulk = fdpass::export(self.bulk.as_fd()).map_err(serde::ser::Error::custom)?;
        (export(&self.rx)?, export(&self.tx)?, bulk).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Connection {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (rx, tx, bulk) = <(Option<u32>, Option<u32>, u32)>::deserialize(d)?;
        if rx.is_none() && tx.is_none() {
            return Err(serde::de::Error::custom("a Connection with no pipe"));
        }
        let import = |i: Option<u32>| {
            i.map(fdpass::import)
                .transpose()
                .map_err(serde::de::Error::custom)
        };
        let bulk = fdpass::import(bulk).map_err(serde::de::Error::custom)?;
        Ok(Connection::from_fds(import(rx)?, import(tx)?, bulk))
    }
}
