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

use std::io::{self, Read, Write};

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

/// Writes one frame (header and payload), retrying short writes.
pub(crate) fn write_frame(mut w: impl Write, kind: Kind, payload: &[u8]) -> io::Result<()> {
    let h = header(kind, payload.len())?;
    if payload.len() <= 16 * 1024 {
        // One write for small frames: one syscall, and the frame lands whole.
        let mut buf = Vec::with_capacity(HEADER_LEN + payload.len());
        buf.extend_from_slice(&h);
        buf.extend_from_slice(payload);
        w.write_all(&buf)
    } else {
        w.write_all(&h)?;
        w.write_all(payload)
    }
}

/// Parses a header; `Ok((kind, len))` once magic and version are checked.
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
