//! The wire framing shared by every spindle IPC channel (see `ipc/README.md`).
//!
//! A frame is an 8-byte header followed by `len` payload bytes:
//!
//! | bytes | field | value |
//! |---|---|---|
//! | 0..2 | magic | `b"SP"` |
//! | 2 | version | [`PROTOCOL_VERSION`] |
//! | 3 | kind | what the payload is (user data, bootstrap, outcome, ...) |
//! | 4..8 | len | payload length, `u32` little endian |
//!
//! Payloads are postcard-encoded serde values or raw bytes. A reader checks the
//! magic, the version and the length against its limit *before* allocating the
//! payload; an oversized payload is skipped in bounded chunks so the stream
//! stays usable.
#![forbid(unsafe_code)]

use std::io::{self, IoSlice, Read, Write};

use serde::Serialize;

/// The version byte every spindle frame carries; a peer speaking another
/// version gets a typed version-mismatch error, never a misparse.
pub const PROTOCOL_VERSION: u8 = 2;

/// Default limit on one frame's payload (64 MiB), as in
/// [`Connection::set_max_frame`](super::Connection::set_max_frame).
pub const DEFAULT_MAX_FRAME: usize = 64 << 20;

pub(crate) const MAGIC: [u8; 2] = *b"SP";
pub(crate) const HEADER_LEN: usize = 8;

/// What a frame's payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    /// User bytes of a `Connection`.
    Data = 0,
    /// Parent → child bootstrap (`process::boot::Boot`).
    Boot = 1,
    /// Child → parent outcome of the target.
    Outcome = 2,
    /// Client → fork server request.
    Request = 3,
    /// Fork server → client reply.
    Reply = 4,
    /// Fork server → client: a child's wait status.
    Exit = 5,
    /// User bytes of a `Connection` whose payload travels on the
    /// connection's socket, not after the header.
    Bulk = 6,
    /// A descriptor (`Connection::send_handle`), no payload: on a
    /// connection over one Unix socket it is attached to this header
    /// (`SCM_RIGHTS`); on a duplex `Pipe` it went on the connection's
    /// socket, as a one-byte message, just before this header.
    Handle = 7,
    /// Manager handshake, server → client: the challenge (`manager::wire`).
    NetChallenge = 16,
    /// Manager handshake, client → server: the response.
    NetResponse = 17,
    /// Manager handshake, server → client: the welcome.
    NetWelcome = 18,
    /// Manager handshake, server → client: authentication failed.
    NetFailure = 19,
    /// A manager message after the handshake (MessagePack envelope).
    NetMessage = 20,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            0 => Kind::Data,
            1 => Kind::Boot,
            2 => Kind::Outcome,
            3 => Kind::Request,
            4 => Kind::Reply,
            5 => Kind::Exit,
            6 => Kind::Bulk,
            7 => Kind::Handle,
            16 => Kind::NetChallenge,
            17 => Kind::NetResponse,
            18 => Kind::NetWelcome,
            19 => Kind::NetFailure,
            20 => Kind::NetMessage,
            _ => return None,
        })
    }
}

/// Why a frame could not be read.
#[derive(Debug)]
pub(crate) enum FrameError {
    /// The peer closed the stream cleanly before a new frame.
    Eof,
    /// The payload is larger than the reader's limit (it was skipped).
    TooLarge { len: u64, limit: usize },
    /// Not a spindle frame (bad magic or kind, or truncated mid-frame).
    Protocol(String),
    /// A frame of another protocol version.
    Version { got: u8 },
    /// The operating system failed.
    Io(io::Error),
}

impl From<io::Error> for FrameError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            FrameError::Protocol("stream ended in the middle of a frame".into())
        } else {
            FrameError::Io(e)
        }
    }
}

/// Builds a frame header.
#[inline]
pub(crate) fn header(kind: Kind, len: usize) -> io::Result<[u8; HEADER_LEN]> {
    let len = u32::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame larger than 4 GiB"))?;
    let mut h = [0u8; HEADER_LEN];
    h[..2].copy_from_slice(&MAGIC);
    h[2] = PROTOCOL_VERSION;
    h[3] = kind as u8;
    h[4..].copy_from_slice(&len.to_le_bytes());
    Ok(h)
}

/// Writes one frame (header and payload), retrying short writes: one
/// `writev` of both, so a frame that fits the pipe or socket lands whole
/// with one system call and no copy.
pub(crate) fn write_frame(w: impl Write, kind: Kind, payload: &[u8]) -> io::Result<()> {
    FrameWriter::new(w).write_frame(kind, payload)
}

/// Appends one frame of `kind` carrying `value` (postcard) to `out`: the
/// value is encoded straight behind room left for the header, which is
/// filled in after. Frames appended together leave with one write
/// ([`FrameWriter::write_encoded`]). On error `out` is left empty (the
/// encoder consumed it).
#[inline]
pub(crate) fn push_value<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    kind: Kind,
    value: &T,
) -> Result<(), FrameEncodeError> {
    let at = out.len();
    out.extend_from_slice(&[0; HEADER_LEN]);
    *out = postcard::to_extend(value, std::mem::take(out))
        .map_err(|e| FrameEncodeError::Encode(e.to_string()))?;
    let h = header(kind, out.len() - at - HEADER_LEN).map_err(FrameEncodeError::Io)?;
    out[at..at + HEADER_LEN].copy_from_slice(&h);
    Ok(())
}

/// Why [`push_value`] failed.
#[derive(Debug)]
pub(crate) enum FrameEncodeError {
    /// The value cannot be encoded (postcard's message).
    Encode(String),
    /// The payload is 4 GiB or more (`InvalidInput`).
    Io(io::Error),
}

impl std::fmt::Display for FrameEncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameEncodeError::Encode(m) => f.write_str(m),
            FrameEncodeError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// The writing side of a frame stream: whole frames, short writes and
/// interruptions retried. `W` is usually `&File` or `&UnixStream` (writes
/// take `&self` on those), so making one per send costs nothing.
#[derive(Debug)]
pub(crate) struct FrameWriter<W> {
    inner: W,
}

impl<W: Write> FrameWriter<W> {
    #[inline]
    pub(crate) fn new(inner: W) -> FrameWriter<W> {
        FrameWriter { inner }
    }

    /// One frame: header and payload with one `writev` (no copy).
    #[inline]
    pub(crate) fn write_frame(&mut self, kind: Kind, payload: &[u8]) -> io::Result<()> {
        let h = header(kind, payload.len())?;
        self.write_parts(&h, payload)
    }

    /// A frame whose header `h` was built already (`header`), with one
    /// `writev`.
    #[inline]
    pub(crate) fn write_parts(&mut self, h: &[u8; HEADER_LEN], payload: &[u8]) -> io::Result<()> {
        let mut bufs = [IoSlice::new(h), IoSlice::new(payload)];
        let mut bufs = &mut bufs[..];
        while !bufs.is_empty() {
            match self.inner.write_vectored(bufs) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut bufs, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// A header alone: the frame's payload travels elsewhere (a `Bulk`
    /// frame's on the connection's socket) or there is none.
    #[inline]
    pub(crate) fn write_header(&mut self, kind: Kind, len: usize) -> io::Result<()> {
        self.inner.write_all(&header(kind, len)?)
    }

    /// Whole frames already encoded by [`push_value`], with one `write`.
    #[inline]
    pub(crate) fn write_encoded(&mut self, frames: &[u8]) -> io::Result<()> {
        self.inner.write_all(frames)
    }
}

/// The reading side of a frame stream: `R` read through a buffer that one
/// `read` fills with the next header, a small payload and whatever frames
/// follow, handed out without further system calls.
///
/// The buffer only ever holds bytes of the stream: a limit is checked on
/// the header *before* anything of the payload's size is allocated, an
/// oversized payload is skipped through the buffer
/// ([`skip`](Self::skip)) or refused, as the caller decides, and
/// [`buffered`](Self::buffered) shows what is already read, so a caller that
/// `poll`s the descriptor first knows a frame waiting in the buffer is
/// readable though the descriptor is not.
#[derive(Debug)]
pub(crate) struct FrameReader<R> {
    inner: R,
    /// Unread bytes are `buf[pos..end]`; allocated at the first read.
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// The buffer's usual size (it grows for a frame larger than it).
    cap: usize,
}

impl<R: Read> FrameReader<R> {
    /// A reader whose buffer holds `cap` bytes (allocated at the first read).
    #[inline]
    pub(crate) fn new(inner: R, cap: usize) -> FrameReader<R> {
        FrameReader {
            inner,
            buf: Vec::new(),
            pos: 0,
            end: 0,
            cap,
        }
    }

    #[inline]
    pub(crate) fn get_ref(&self) -> &R {
        &self.inner
    }

    #[inline]
    pub(crate) fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// The bytes read and not consumed yet.
    #[inline]
    pub(crate) fn buffered(&self) -> &[u8] {
        &self.buf[self.pos..self.end]
    }

    /// How many bytes are read and not consumed yet.
    #[inline]
    pub(crate) fn avail(&self) -> usize {
        self.end - self.pos
    }

    /// The buffer's current size (grown for a large frame).
    pub(crate) fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Consumes `n` buffered bytes (at most [`avail`](Self::avail)).
    #[inline]
    pub(crate) fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.avail());
        self.pos += n;
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
        }
    }

    /// The next header, parsed, if it is buffered (not consumed).
    #[inline]
    pub(crate) fn peek_header(&self) -> Option<Result<(Kind, usize), FrameError>> {
        let h: &[u8; HEADER_LEN] = self.buffered().get(..HEADER_LEN)?.try_into().ok()?;
        Some(parse_header(h))
    }

    /// The length (header and payload) of the frame at the front if it is
    /// buffered whole; its header's error if it is bad.
    #[inline]
    pub(crate) fn whole_frame(&self) -> Result<Option<usize>, FrameError> {
        match self.peek_header() {
            None => Ok(None),
            Some(Err(e)) => Err(e),
            Some(Ok((_, len))) => {
                Ok((self.avail() >= HEADER_LEN + len).then_some(HEADER_LEN + len))
            }
        }
    }

    /// One `read` into the free part of the buffer (a partial frame near
    /// its end is moved to the front first); `Ok(0)` at end of file.
    #[inline]
    pub(crate) fn fill(&mut self) -> io::Result<usize> {
        if self.buf.is_empty() {
            self.buf = vec![0u8; self.cap];
        }
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
        } else if self.buf.len() - self.end < HEADER_LEN {
            self.compact();
        }
        self.read_more()
    }

    /// One `read` after making room for `total` bytes from the front of the
    /// unread ones (growing the buffer for a frame larger than it);
    /// `Ok(0)` at end of file.
    #[inline]
    pub(crate) fn fill_to(&mut self, total: usize) -> io::Result<usize> {
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
        }
        if self.buf.len() - self.pos < total {
            self.compact();
            if self.buf.len() < total {
                self.buf.resize(total.max(self.cap), 0);
            }
        }
        self.read_more()
    }

    #[inline]
    fn compact(&mut self) {
        self.buf.copy_within(self.pos..self.end, 0);
        self.end -= self.pos;
        self.pos = 0;
    }

    #[inline]
    fn read_more(&mut self) -> io::Result<usize> {
        loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Gives back a buffer grown past `keep` bytes once it is empty.
    #[inline]
    pub(crate) fn shrink(&mut self, keep: usize) {
        if self.avail() == 0 && self.buf.len() > keep {
            self.buf = Vec::new();
            self.pos = 0;
            self.end = 0;
        }
    }

    /// Reads (blocking, through `before_read` before each `read`) until a
    /// header is buffered, and consumes it. A clean end of file before it
    /// is [`FrameError::Eof`].
    #[inline]
    pub(crate) fn read_header_with(
        &mut self,
        mut before_read: impl FnMut(&R),
    ) -> Result<(Kind, usize), FrameError> {
        while self.avail() < HEADER_LEN {
            before_read(&self.inner);
            if self.fill()? == 0 {
                return Err(if self.avail() == 0 {
                    FrameError::Eof
                } else {
                    FrameError::Protocol("stream ended inside a frame header".into())
                });
            }
        }
        let mut h = [0u8; HEADER_LEN];
        h.copy_from_slice(&self.buf[self.pos..self.pos + HEADER_LEN]);
        self.consume(HEADER_LEN);
        parse_header(&h)
    }

    /// The next `len` bytes if they are all buffered (consuming them).
    #[inline]
    pub(crate) fn take_whole(&mut self, len: usize) -> Option<&[u8]> {
        if self.avail() < len {
            return None;
        }
        let start = self.pos;
        // Not `consume`: the bytes are handed out from where they are.
        self.pos += len;
        Some(&self.buf[start..start + len])
    }

    /// Copies buffered bytes into `dst`; returns how many.
    #[inline]
    pub(crate) fn take_into(&mut self, dst: &mut [u8]) -> usize {
        let n = self.avail().min(dst.len());
        dst[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.consume(n);
        n
    }

    /// Fills `dst` with the next bytes of the stream: buffered ones first,
    /// then a remainder of at least half a buffer straight into `dst` (no
    /// copy), a smaller one through the buffer. An end of file is a
    /// protocol error (the stream ended inside a frame).
    pub(crate) fn read_exact_into(
        &mut self,
        dst: &mut [u8],
        mut before_read: impl FnMut(&R),
    ) -> Result<(), FrameError> {
        let mut got = self.take_into(dst);
        while got < dst.len() {
            let n = if dst.len() - got >= self.cap / 2 {
                match self.inner.read(&mut dst[got..]) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(FrameError::Io(e)),
                }
            } else {
                before_read(&self.inner);
                match self.fill()? {
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

    /// Consumes the next `len` bytes through the buffer, never allocating
    /// them.
    pub(crate) fn skip(&mut self, mut len: usize) -> Result<(), FrameError> {
        loop {
            let n = self.avail().min(len);
            self.consume(n);
            len -= n;
            if len == 0 {
                return Ok(());
            }
            if self.fill()? == 0 {
                return Err(FrameError::Protocol(
                    "stream ended in the middle of a frame".into(),
                ));
            }
        }
    }
}

/// Parses a header; `Ok((kind, len))` once magic and version are checked.
#[inline]
pub(crate) fn parse_header(h: &[u8; HEADER_LEN]) -> Result<(Kind, usize), FrameError> {
    if h[..2] != MAGIC {
        return Err(FrameError::Protocol(format!(
            "bad frame magic {:02x}{:02x}",
            h[0], h[1]
        )));
    }
    if h[2] != PROTOCOL_VERSION {
        return Err(FrameError::Version { got: h[2] });
    }
    let kind = Kind::from_u8(h[3])
        .ok_or_else(|| FrameError::Protocol(format!("unknown frame kind {}", h[3])))?;
    let len = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize;
    Ok((kind, len))
}

/// Reads a header; a clean EOF before its first byte is `FrameError::Eof`.
pub(crate) fn read_header(mut r: impl Read) -> Result<(Kind, usize), FrameError> {
    let mut h = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        match r.read(&mut h[got..]) {
            Ok(0) if got == 0 => return Err(FrameError::Eof),
            Ok(0) => {
                return Err(FrameError::Protocol(
                    "stream ended inside a frame header".into(),
                ));
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(FrameError::Io(e)),
        }
    }
    parse_header(&h)
}

/// Reads and discards `len` bytes in bounded chunks (never allocating `len`).
pub(crate) fn skip(mut r: impl Read, mut len: usize) -> Result<(), FrameError> {
    let mut scratch = [0u8; 8192];
    while len > 0 {
        let n = len.min(scratch.len());
        r.read_exact(&mut scratch[..n])?;
        len -= n;
    }
    Ok(())
}

/// Reads one whole frame whose payload may not exceed `limit` bytes.
pub(crate) fn read_frame(mut r: impl Read, limit: usize) -> Result<(Kind, Vec<u8>), FrameError> {
    let (kind, len) = read_header(&mut r)?;
    if len > limit {
        skip(&mut r, len)?;
        return Err(FrameError::TooLarge {
            len: len as u64,
            limit,
        });
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf)?;
    Ok((kind, buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_limits() {
        let mut wire = Vec::new();
        write_frame(&mut wire, Kind::Data, b"hello").unwrap();
        write_frame(&mut wire, Kind::Data, &[7u8; 100]).unwrap();
        write_frame(&mut wire, Kind::Outcome, b"x").unwrap();
        let mut r = &wire[..];
        assert_eq!(
            read_frame(&mut r, 10).unwrap(),
            (Kind::Data, b"hello".to_vec())
        );
        // Too large: rejected, skipped, and the next frame still reads.
        assert!(matches!(
            read_frame(&mut r, 10),
            Err(FrameError::TooLarge {
                len: 100,
                limit: 10
            })
        ));
        assert_eq!(
            read_frame(&mut r, 10).unwrap(),
            (Kind::Outcome, b"x".to_vec())
        );
        assert!(matches!(read_frame(&mut r, 10), Err(FrameError::Eof)));
    }

    /// A reader that hands out at most `chunk` bytes per `read` and counts
    /// the calls.
    struct Trickle<'a> {
        data: &'a [u8],
        chunk: usize,
        reads: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.reads += 1;
            let n = self.data.len().min(self.chunk).min(buf.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    /// Frames written together (`push_value`, `write_frame`) come out of
    /// one `read` one by one; a header is seen before its payload is read
    /// or allocated; an oversized payload is skipped through the buffer; a
    /// large remainder goes straight into its destination.
    #[test]
    fn frame_reader_and_writer() {
        let mut wire = Vec::new();
        for i in 0..10u32 {
            push_value(&mut wire, Kind::Data, &(i, "x")).unwrap();
        }
        let big = vec![5u8; 100_000];
        FrameWriter::new(&mut wire)
            .write_frame(Kind::Data, &big)
            .unwrap();
        FrameWriter::new(&mut wire)
            .write_frame(Kind::Outcome, b"end")
            .unwrap();
        let mut r = FrameReader::new(
            Trickle {
                data: &wire,
                chunk: usize::MAX,
                reads: 0,
            },
            4096,
        );
        assert!(r.peek_header().is_none());
        assert_eq!(r.fill().unwrap(), 4096);
        for i in 0..10u32 {
            let len = r.whole_frame().unwrap().expect("buffered whole");
            let f = r.take_whole(len).unwrap();
            let v: (u32, &str) = postcard::from_bytes(&f[HEADER_LEN..]).unwrap();
            assert_eq!(v, (i, "x"));
        }
        assert_eq!(r.get_ref().reads, 1, "ten frames, one read");
        // The big frame's header is buffered, its payload is not.
        assert!(matches!(r.peek_header(), Some(Ok((Kind::Data, 100_000)))));
        assert_eq!(r.whole_frame().unwrap(), None);
        assert_eq!(r.read_header_with(|_| {}).unwrap(), (Kind::Data, 100_000));
        let mut dst = vec![0u8; 100_000];
        let reads = r.get_ref().reads;
        r.read_exact_into(&mut dst, |_| {}).unwrap();
        assert_eq!(dst, big);
        assert!(r.get_ref().reads - reads <= 2, "straight into place");
        assert_eq!(r.read_header_with(|_| {}).unwrap(), (Kind::Outcome, 3));
        r.skip(3).unwrap();
        assert!(matches!(r.read_header_with(|_| {}), Err(FrameError::Eof)));
        assert!(r.capacity() <= 4096, "never grew");

        // Bytes arriving a few at a time; a frame larger than the buffer
        // grows it (`fill_to`), and `shrink` gives it back once consumed.
        let mut r = FrameReader::new(
            Trickle {
                data: &wire,
                chunk: 3,
                reads: 0,
            },
            64,
        );
        for _ in 0..10 {
            while r.whole_frame().unwrap().is_none() {
                let need = match r.peek_header() {
                    Some(Ok((_, len))) => HEADER_LEN + len,
                    _ => HEADER_LEN,
                };
                assert!(r.fill_to(need).unwrap() > 0);
            }
            let len = r.whole_frame().unwrap().unwrap();
            r.take_whole(len).unwrap();
        }
        while r.whole_frame().unwrap().is_none() {
            r.fill_to(HEADER_LEN + 100_000).unwrap();
        }
        assert!(r.capacity() >= HEADER_LEN + 100_000);
        r.take_whole(HEADER_LEN + 100_000).unwrap();
        r.shrink(1024);
        assert_eq!(r.capacity(), 0);
        r.read_header_with(|_| {}).unwrap();
        assert_eq!(r.buffered().len(), r.avail());
        r.skip(3).unwrap();
        assert!(matches!(r.read_header_with(|_| {}), Err(FrameError::Eof)));

        // A stream cut inside a payload is a protocol error, not end of file.
        let mut r = FrameReader::new(&wire[..HEADER_LEN + 2], 64);
        let (_, len) = r.read_header_with(|_| {}).unwrap();
        assert!(matches!(r.skip(len), Err(FrameError::Protocol(_))));
    }

    #[test]
    fn bad_headers_are_typed_errors() {
        let mut h = header(Kind::Data, 0).unwrap();
        h[2] = 9;
        assert!(matches!(
            read_frame(&h[..], 10),
            Err(FrameError::Version { got: 9 })
        ));
        let mut h = header(Kind::Data, 0).unwrap();
        h[0] = b'X';
        assert!(matches!(
            read_frame(&h[..], 10),
            Err(FrameError::Protocol(_))
        ));
        let h = header(Kind::Data, 0).unwrap();
        assert!(matches!(
            read_frame(&h[..5], 10),
            Err(FrameError::Protocol(_))
        ));
        // A huge announced length with no payload does not allocate 4 GiB.
        let mut h = header(Kind::Data, 0).unwrap();
        h[4..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            read_frame(&h[..], 10),
            Err(FrameError::Protocol(_))
        ));
    }
}
