//! The manager's transport: sockets, the authenticated handshake, and
//! framed messages with a MAC each. `docs/PROTOCOL.md` gives it byte by
//! byte; this is the short form.
//!
//! Both ends hold the same authkey `k` (at least [`MIN_AUTHKEY`] bytes).
//! The client proves first:
//!
//! 1. S→C `Challenge {versions, nonce: Ns, mac}`;
//! 2. C→S `Response {version: v, nonce: Nc, mac, digest}` with
//!    `digest = HMAC-SHA256(k, "spindle-c" ‖ v ‖ Ns ‖ Nc)`, and in the same
//!    write the client's first message (already under its session key);
//! 3. S→C `Welcome {digest}` with `digest = HMAC-SHA256(k, "spindle-s" ‖
//!    transcript)`, or `Failure {code, reason}` and the socket is closed.
//!
//! Handshake messages are MessagePack maps (`rmp_serde::to_vec_named`) in
//! `ipc::frame` frames of the `Net*` kinds, at most [`PREAUTH_MAX_FRAME`]
//! bytes. After the handshake each direction has its own key
//! (HKDF-SHA256 of `k`, salt `Ns ‖ Nc`), and every frame carries the first
//! 16 bytes of HMAC-SHA256(key, seq ‖ header ‖ payload), `seq` a 64-bit
//! count of the frames sent that way (never on the wire). A frame that
//! fails its check (altered, replayed, reordered, forged) is
//! [`ManagerError::Protocol`] and its [`FrameSource`] refuses every later
//! frame. This is integrity and authentication, not secrecy.
//!
//! The [`Acceptor`] runs no thread per socket: [`Acceptor::accept`] is a
//! `poll(2)` loop over the listening socket, an eventfd that
//! [`Closer::close`] writes, and every socket still authenticating, each a
//! small non-blocking state machine ([`Pending`]) with a deadline. At most
//! [`WireConfig::max_preauth`] sockets authenticate at once; one more is
//! closed as soon as it is accepted.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, BufReader, IoSlice, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::eventfd::{EfdFlags, EventFd};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::error::ManagerError;
use crate::ipc::Address;
use crate::ipc::frame::{self, FrameError, HEADER_LEN, Kind};

#[cfg(test)]
mod tests;

/// Largest frame after authentication (16 MiB).
#[allow(unreachable_pub)] // public limits, for `manager` to re-export
pub const MAX_FRAME: usize = 16 << 20;
/// Largest frame before authentication (256 B).
#[allow(unreachable_pub)] // public limits, for `manager` to re-export
pub const PREAUTH_MAX_FRAME: usize = 256;
/// How long an unauthenticated socket may take to authenticate (5 s).
#[allow(unreachable_pub)] // public limits, for `manager` to re-export
pub const PREAUTH_TIMEOUT: Duration = Duration::from_secs(5);
/// At most this many sockets are authenticating at once (64).
#[allow(unreachable_pub)] // public limits, for `manager` to re-export
pub const MAX_PREAUTH: usize = 64;
/// Authkeys shorter than this are refused (16 bytes).
#[allow(unreachable_pub)] // public limits, for `manager` to re-export
pub const MIN_AUTHKEY: usize = 16;

/// The transport version this code speaks (the `v` of the handshake).
pub(crate) const WIRE_VERSION: u8 = 1;
/// Every transport version this code speaks, offered in the challenge.
const VERSIONS: &[u8] = &[WIRE_VERSION];
/// At most this many versions in a challenge.
const MAX_VERSIONS: usize = 32;
/// The length of `Ns` and `Nc`.
pub(crate) const NONCE_LEN: usize = 32;
/// The length of the handshake's digests (HMAC-SHA256, untruncated).
pub(crate) const DIGEST_LEN: usize = 32;
/// The length of a frame's MAC (HMAC-SHA256 truncated).
pub(crate) const TAG_LEN: usize = 16;
const CLIENT_LABEL: &[u8] = b"spindle-c";
const SERVER_LABEL: &[u8] = b"spindle-s";
const C2S_INFO: &[u8] = b"spindle-c2s";
const S2C_INFO: &[u8] = b"spindle-s2c";
/// A payload up to this size is copied behind its header into one buffer;
/// a larger one goes out with one `writev` (no copy).
const COPY_MAX: usize = 64 * 1024;
/// The read side's buffer.
const READ_BUF: usize = 64 * 1024;
/// A rejected socket's pending input read before it is closed (so the
/// close sends FIN, not RST, and the peer reads the `Failure`).
const DRAIN_MAX: usize = 64 * 1024;
/// The longest `reason` in a `Failure`.
const REASON_MAX: usize = 160;
/// New sockets taken from the listening socket per turn of the loop.
const ACCEPT_BATCH: usize = 256;

type HmacSha256 = Hmac<Sha256>;

/// How a transport is set up.
#[derive(Clone, Debug)]
pub(crate) struct WireConfig {
    /// Whether every frame after the handshake carries a MAC. Both ends
    /// must agree: a mismatch fails the handshake.
    pub(crate) mac: bool,
    /// The largest frame accepted after the handshake.
    pub(crate) max_frame: usize,
    /// How long a socket may take to authenticate ([`PREAUTH_TIMEOUT`]);
    /// on the client, how long it waits for each handshake message.
    pub(crate) preauth_timeout: Duration,
    /// At most this many sockets authenticate at once ([`MAX_PREAUTH`]).
    pub(crate) max_preauth: usize,
}

impl Default for WireConfig {
    fn default() -> Self {
        WireConfig {
            mac: true,
            max_frame: MAX_FRAME,
            preauth_timeout: PREAUTH_TIMEOUT,
            max_preauth: MAX_PREAUTH,
        }
    }
}

/// A connected TCP or Unix stream socket.
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    pub(crate) fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
        })
    }

    /// Shuts both directions down: a thread blocked reading it wakes.
    pub(crate) fn shutdown(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(Shutdown::Both),
            Stream::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }

    /// Whether the peer has closed its end (or the socket failed), without
    /// reading anything: `poll` with `POLLRDHUP`.
    pub(crate) fn peer_gone(&self) -> bool {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let rdhup = PollFlags::from_bits_retain(libc::POLLRDHUP);
        let mut fds = [PollFd::new(self.fd(), rdhup)];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(0) => false,
            Ok(_) => fds[0]
                .revents()
                .is_some_and(|r| r.intersects(rdhup | PollFlags::POLLHUP | PollFlags::POLLERR)),
            Err(_) => true,
        }
    }

    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Unix(s) => s.as_fd(),
        }
    }

    fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_nonblocking(on),
            Stream::Unix(s) => s.set_nonblocking(on),
        }
    }

    fn shutdown_write(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(Shutdown::Write),
            Stream::Unix(s) => s.shutdown(Shutdown::Write),
        };
    }

    /// Read and write timeouts (the client's handshake deadline).
    fn set_timeouts(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => {
                s.set_read_timeout(t)?;
                s.set_write_timeout(t)
            }
            Stream::Unix(s) => {
                s.set_read_timeout(t)?;
                s.set_write_timeout(t)
            }
        }
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

/// Writes on a Unix socket use `MSG_NOSIGNAL` as the standard library's
/// TCP writes do: a peer that left is `EPIPE`, never `SIGPIPE` (which
/// would kill a host process that does not ignore it).
impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        use nix::sys::socket::{MsgFlags, send};
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => {
                send(s.as_raw_fd(), buf, MsgFlags::MSG_NOSIGNAL).map_err(io::Error::from)
            }
        }
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        use nix::sys::socket::{MsgFlags, UnixAddr, sendmsg};
        match self {
            Stream::Tcp(s) => s.write_vectored(bufs),
            Stream::Unix(s) => {
                sendmsg::<UnixAddr>(s.as_raw_fd(), bufs, &[], MsgFlags::MSG_NOSIGNAL, None)
                    .map_err(io::Error::from)
            }
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes every slice, retrying short writes (`Write::write_all_vectored`
/// is not stable).
fn write_all_vectored(w: &mut impl Write, mut bufs: &mut [IoSlice<'_>]) -> io::Result<()> {
    IoSlice::advance_slices(&mut bufs, 0);
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

// ---------------------------------------------------------------------------
// Keys and MACs.

fn hmac_key(key: &[u8]) -> HmacSha256 {
    <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes a key of any length")
}

fn check_key(key: &[u8]) -> Result<(), ManagerError> {
    if key.len() < MIN_AUTHKEY {
        return Err(ManagerError::auth(format!(
            "an authkey of {} bytes is too short: at least {MIN_AUTHKEY} are required",
            key.len()
        )));
    }
    Ok(())
}

/// A nonce from the operating system; none is a typed error, never a
/// guessable fallback.
fn nonce() -> Result<[u8; NONCE_LEN], ManagerError> {
    let mut n = [0u8; NONCE_LEN];
    getrandom::fill(&mut n).map_err(|e| {
        ManagerError::Io(io::Error::other(format!(
            "no random bytes from the operating system for the handshake nonce: {e}"
        )))
    })?;
    Ok(n)
}

/// `HMAC-SHA256(k, "spindle-c" ‖ v ‖ Ns ‖ Nc)`, not finalized.
fn client_digest(key: &[u8], v: u8, ns: &[u8], nc: &[u8]) -> HmacSha256 {
    let mut m = hmac_key(key);
    m.update(CLIENT_LABEL);
    m.update(&[v]);
    m.update(ns);
    m.update(nc);
    m
}

/// `HMAC-SHA256(k, "spindle-s" ‖ transcript)`, not finalized. The
/// transcript is every field of the challenge and the response:
/// `count(versions) ‖ versions ‖ mac_s ‖ Ns ‖ v ‖ mac_c ‖ Nc ‖ digest_c`
/// (`count` and each version one byte, each `mac` flag one byte 0 or 1).
fn server_digest(key: &[u8], ch: &Challenge, resp: &Response) -> HmacSha256 {
    let mut m = hmac_key(key);
    m.update(SERVER_LABEL);
    // A decoded challenge has at most MAX_VERSIONS versions.
    m.update(&[ch.versions.len().min(255) as u8]);
    m.update(&ch.versions);
    m.update(&[u8::from(ch.mac)]);
    m.update(&ch.nonce);
    m.update(&[resp.version]);
    m.update(&[u8::from(resp.mac)]);
    m.update(&resp.nonce);
    m.update(&resp.digest);
    m
}

/// The two session keys, keyed HMAC states ready to clone per frame.
struct SessionKeys {
    c2s: HmacSha256,
    s2c: HmacSha256,
}

/// `PRK = HKDF-Extract(salt = Ns ‖ Nc, IKM = k)`; the client → server key
/// is `HKDF-Expand(PRK, "spindle-c2s", 32)`, the other `"spindle-s2c"`.
fn session_keys(key: &[u8], ns: &[u8], nc: &[u8]) -> SessionKeys {
    let mut salt = [0u8; 2 * NONCE_LEN];
    salt[..NONCE_LEN].copy_from_slice(ns);
    salt[NONCE_LEN..].copy_from_slice(nc);
    let hk = Hkdf::<Sha256>::new(Some(&salt), key);
    let mut c2s = [0u8; 32];
    let mut s2c = [0u8; 32];
    hk.expand(C2S_INFO, &mut c2s)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    hk.expand(S2C_INFO, &mut s2c)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    SessionKeys {
        c2s: hmac_key(&c2s),
        s2c: hmac_key(&s2c),
    }
}

/// The MAC of one frame: HMAC-SHA256(key, seq as u64 LE ‖ header ‖
/// payload), not finalized.
fn frame_mac(key: &HmacSha256, seq: u64, header: &[u8], payload: &[u8]) -> HmacSha256 {
    let mut m = key.clone();
    m.update(&seq.to_le_bytes());
    m.update(header);
    m.update(payload);
    m
}

/// Checks a frame's 16-byte MAC in constant time.
fn verify_tag(
    key: &HmacSha256,
    seq: u64,
    header: &[u8],
    payload: &[u8],
    tag: &[u8],
) -> Result<(), ManagerError> {
    if tag.len() != TAG_LEN {
        return Err(ManagerError::protocol(format!(
            "a frame MAC of {} bytes (expected {TAG_LEN})",
            tag.len()
        )));
    }
    frame_mac(key, seq, header, payload)
        .verify_truncated_left(tag)
        .map_err(|_| {
            ManagerError::protocol(format!(
                "frame {seq} failed its MAC check (altered, replayed, reordered or forged)"
            ))
        })
}

// ---------------------------------------------------------------------------
// Handshake messages.

/// Server → client: the versions the server speaks, its nonce `Ns`, and
/// whether it puts a MAC on frames.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Challenge {
    pub(crate) versions: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub(crate) nonce: Vec<u8>,
    pub(crate) mac: bool,
}

/// Client → server: the version chosen, the client's nonce `Nc`, its MAC
/// setting and its proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Response {
    pub(crate) version: u8,
    #[serde(with = "serde_bytes")]
    pub(crate) nonce: Vec<u8>,
    pub(crate) mac: bool,
    #[serde(with = "serde_bytes")]
    pub(crate) digest: Vec<u8>,
}

/// Server → client: the server's proof over the whole transcript.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Welcome {
    #[serde(with = "serde_bytes")]
    pub(crate) digest: Vec<u8>,
}

/// Server → client: the handshake failed; the server closes the socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Failure {
    /// `auth`, `mac`, `version` or `protocol`.
    pub(crate) code: String,
    pub(crate) reason: String,
}

impl Failure {
    /// What the client reports for it.
    fn into_error(self) -> ManagerError {
        if self.code == "auth" {
            ManagerError::auth(format!(
                "the server refused this client's authkey: {}",
                self.reason
            ))
        } else {
            ManagerError::protocol(format!(
                "the server refused the handshake ({}): {}",
                self.code, self.reason
            ))
        }
    }
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, ManagerError> {
    rmp_serde::to_vec_named(v).map_err(ManagerError::codec)
}

/// Decodes one handshake message: the whole body, nothing after it.
fn decode_msg<T: DeserializeOwned>(what: &str, body: &[u8]) -> Result<T, ManagerError> {
    if body.len() > PREAUTH_MAX_FRAME {
        return Err(ManagerError::TooLarge {
            size: body.len() as u64,
            limit: PREAUTH_MAX_FRAME as u64,
        });
    }
    let mut rest = body;
    let mut de = rmp_serde::Deserializer::new(&mut rest);
    let v = T::deserialize(&mut de)
        .map_err(|e| ManagerError::protocol(format!("a malformed {what}: {e}")))?;
    drop(de);
    if !rest.is_empty() {
        return Err(ManagerError::protocol(format!(
            "{} bytes after the {what}",
            rest.len()
        )));
    }
    Ok(v)
}

fn check_nonce(what: &str, n: &[u8]) -> Result<(), ManagerError> {
    if n.len() != NONCE_LEN {
        return Err(ManagerError::protocol(format!(
            "a {what} nonce of {} bytes (expected {NONCE_LEN})",
            n.len()
        )));
    }
    Ok(())
}

/// A digest of any other length is another algorithm (16 bytes: MD5, as
/// Python accepted before 3.12): refused, never answered or downgraded.
fn check_digest(what: &str, d: &[u8]) -> Result<(), ManagerError> {
    if d.len() != DIGEST_LEN {
        return Err(ManagerError::auth(format!(
            "the {what} carries a digest of {} bytes: only HMAC-SHA256 ({DIGEST_LEN} bytes) is accepted",
            d.len()
        )));
    }
    Ok(())
}

/// Decodes a challenge's body.
pub(crate) fn decode_challenge(body: &[u8]) -> Result<Challenge, ManagerError> {
    let c: Challenge = decode_msg("challenge", body)?;
    check_nonce("challenge", &c.nonce)?;
    if c.versions.is_empty() || c.versions.len() > MAX_VERSIONS {
        return Err(ManagerError::protocol(format!(
            "a challenge offering {} versions (1 to {MAX_VERSIONS} expected)",
            c.versions.len()
        )));
    }
    Ok(c)
}

/// Decodes a response's body.
pub(crate) fn decode_response(body: &[u8]) -> Result<Response, ManagerError> {
    let r: Response = decode_msg("response", body)?;
    check_nonce("response", &r.nonce)?;
    check_digest("response", &r.digest)?;
    Ok(r)
}

/// Decodes a welcome's body.
pub(crate) fn decode_welcome(body: &[u8]) -> Result<Welcome, ManagerError> {
    let w: Welcome = decode_msg("welcome", body)?;
    check_digest("welcome", &w.digest)?;
    Ok(w)
}

/// Decodes a failure's body.
pub(crate) fn decode_failure(body: &[u8]) -> Result<Failure, ManagerError> {
    decode_msg("failure", body)
}

/// Why the server refuses a response: the `Failure` code it sends, and the
/// error.
#[derive(Debug)]
pub(crate) struct Rejection {
    pub(crate) code: &'static str,
    pub(crate) error: ManagerError,
}

/// The server's check of a response to `ch` (pure): the version, the MAC
/// setting, and the client's proof (in constant time).
pub(crate) fn verify_response(
    key: &[u8],
    ch: &Challenge,
    body: &[u8],
) -> Result<Response, Rejection> {
    let r = decode_response(body).map_err(|error| Rejection {
        code: if error.is_auth() { "auth" } else { "protocol" },
        error,
    })?;
    if !ch.versions.contains(&r.version) {
        return Err(Rejection {
            code: "version",
            error: ManagerError::protocol(format!(
                "the client chose transport version {}; this server speaks {:?}",
                r.version, ch.versions
            )),
        });
    }
    if r.mac != ch.mac {
        return Err(Rejection {
            code: "mac",
            error: mac_mismatch(ch.mac),
        });
    }
    client_digest(key, r.version, &ch.nonce, &r.nonce)
        .verify_slice(&r.digest)
        .map_err(|_| Rejection {
            code: "auth",
            error: ManagerError::auth("the client's digest is wrong: it does not hold the authkey"),
        })?;
    Ok(r)
}

fn mac_mismatch(server_mac: bool) -> ManagerError {
    let on_off = |b: bool| if b { "on" } else { "off" };
    ManagerError::protocol(format!(
        "per-frame MACs are {} on the server and {} on the client: both ends must agree",
        on_off(server_mac),
        on_off(!server_mac)
    ))
}

/// A handshake frame: header and body.
fn preauth_frame(kind: Kind, body: &[u8]) -> Result<Vec<u8>, ManagerError> {
    debug_assert!(body.len() <= PREAUTH_MAX_FRAME);
    let h = frame::header(kind, body.len()).map_err(ManagerError::from_io)?;
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&h);
    out.extend_from_slice(body);
    Ok(out)
}

fn failure_frame(code: &str, reason: &str) -> Vec<u8> {
    let mut end = reason.len().min(REASON_MAX);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let f = Failure {
        code: code.to_string(),
        reason: reason[..end].to_string(),
    };
    encode(&f)
        .and_then(|b| preauth_frame(Kind::NetFailure, &b))
        .unwrap_or_default()
}

fn frame_error(e: FrameError) -> ManagerError {
    match e {
        FrameError::Eof => ManagerError::gone("connection closed"),
        FrameError::TooLarge { len, limit } => ManagerError::TooLarge {
            size: len,
            limit: limit as u64,
        },
        FrameError::Protocol(m) => ManagerError::protocol(m),
        FrameError::Version { got } => {
            ManagerError::protocol(format!("peer speaks frame protocol version {got}"))
        }
        FrameError::Io(e) => ManagerError::from_io(e),
    }
}

// ---------------------------------------------------------------------------
// Frames after the handshake.

/// Checks a header after the handshake and returns its payload length
/// (without the MAC).
pub(crate) fn check_header(
    h: &[u8; HEADER_LEN],
    tagged: bool,
    max_frame: usize,
) -> Result<usize, ManagerError> {
    let (kind, len) = frame::parse_header(h).map_err(frame_error)?;
    if kind != Kind::NetMessage {
        return Err(ManagerError::protocol(format!(
            "a {kind:?} frame after the handshake"
        )));
    }
    let tag = if tagged { TAG_LEN } else { 0 };
    let Some(plen) = len.checked_sub(tag) else {
        return Err(ManagerError::protocol(format!(
            "a frame of {len} bytes is shorter than its MAC"
        )));
    };
    if plen > max_frame {
        return Err(ManagerError::TooLarge {
            size: plen as u64,
            limit: max_frame as u64,
        });
    }
    Ok(plen)
}

/// Parses one whole frame after the handshake (pure): header, payload and
/// MAC under `key` with sequence number `seq`. Returns the payload. (The
/// fuzz tests' entry to the frame checks.)
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) fn open_frame<'a>(
    key: Option<&HmacSha256>,
    seq: u64,
    max_frame: usize,
    frame: &'a [u8],
) -> Result<&'a [u8], ManagerError> {
    let Some(h) = frame.first_chunk::<HEADER_LEN>() else {
        return Err(ManagerError::protocol("a frame shorter than its header"));
    };
    let plen = check_header(h, key.is_some(), max_frame)?;
    let body = &frame[HEADER_LEN..];
    let tl = if key.is_some() { TAG_LEN } else { 0 };
    if body.len() != plen + tl {
        return Err(ManagerError::protocol(format!(
            "a frame announcing {} bytes carries {}",
            plen + tl,
            body.len()
        )));
    }
    let (payload, tag) = body.split_at(plen);
    if let Some(k) = key {
        verify_tag(k, seq, h, payload, tag)?;
    }
    Ok(payload)
}

/// The write half of an established session.
pub(crate) struct FrameSink {
    stream: Stream,
    buf: Vec<u8>,
    /// This direction's key (keyed once; cloned per frame), `None` without
    /// MACs.
    key: Option<HmacSha256>,
    /// The sequence number of the next frame.
    seq: u64,
    max_frame: usize,
}

impl fmt::Debug for FrameSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameSink")
            .field("stream", &self.stream)
            .field("mac", &self.key.is_some())
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl FrameSink {
    /// Sends one message (one frame, one system call). A payload over
    /// `max_frame` is [`ManagerError::TooLarge`] and nothing is sent.
    pub(crate) fn send(&mut self, payload: &[u8]) -> Result<(), ManagerError> {
        if payload.len() <= COPY_MAX {
            self.seal_into_buf(payload)?;
            return self
                .stream
                .write_all(&self.buf)
                .map_err(ManagerError::from_io);
        }
        let (h, tag) = self.seal(payload)?;
        let tl = self.tag_len();
        write_all_vectored(
            &mut self.stream,
            &mut [
                IoSlice::new(&h),
                IoSlice::new(payload),
                IoSlice::new(&tag[..tl]),
            ],
        )
        .map_err(ManagerError::from_io)
    }

    fn tag_len(&self) -> usize {
        if self.key.is_some() { TAG_LEN } else { 0 }
    }

    /// The header and MAC of the next frame (counts it).
    fn seal(&mut self, payload: &[u8]) -> Result<([u8; HEADER_LEN], [u8; TAG_LEN]), ManagerError> {
        if payload.len() > self.max_frame {
            return Err(ManagerError::TooLarge {
                size: payload.len() as u64,
                limit: self.max_frame as u64,
            });
        }
        let h = frame::header(Kind::NetMessage, payload.len() + self.tag_len())
            .map_err(ManagerError::Io)?;
        let mut tag = [0u8; TAG_LEN];
        if let Some(k) = &self.key {
            let seq = self.seq;
            self.seq = seq
                .checked_add(1)
                .ok_or_else(|| ManagerError::Limit("2^64 frames on one session".into()))?;
            tag.copy_from_slice(&frame_mac(k, seq, &h, payload).finalize().into_bytes()[..TAG_LEN]);
        }
        Ok((h, tag))
    }

    /// Builds the next frame whole in `self.buf`.
    fn seal_into_buf(&mut self, payload: &[u8]) -> Result<(), ManagerError> {
        let (h, tag) = self.seal(payload)?;
        let tl = self.tag_len();
        self.buf.clear();
        self.buf.extend_from_slice(&h);
        self.buf.extend_from_slice(payload);
        self.buf.extend_from_slice(&tag[..tl]);
        Ok(())
    }
}

/// The read half of an established session.
pub(crate) struct FrameSource {
    reader: BufReader<Stream>,
    max_frame: usize,
    key: Option<HmacSha256>,
    /// The sequence number the next frame must carry.
    seq: u64,
    /// Set once a receive failed: nothing after it is trusted (a bad
    /// frame), or the stream stopped at an unknown place (the peer left,
    /// an I/O error): (whether the peer left, why).
    broken: Option<(bool, String)>,
}

impl fmt::Debug for FrameSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameSource")
            .field("stream", self.reader.get_ref())
            .field("mac", &self.key.is_some())
            .field("seq", &self.seq)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl FrameSource {
    /// Receives one message into `buf` (replacing its contents). A peer
    /// that closed cleanly is [`ManagerError::ServerGone`]. A frame that
    /// fails its checks (MAC, kind, size) is an error, and so is every
    /// call after it (the same `ServerGone` after the peer left, a
    /// `Protocol` error after anything else): the caller closes the
    /// connection.
    pub(crate) fn recv(&mut self, buf: &mut Vec<u8>) -> Result<(), ManagerError> {
        if let Some((gone, why)) = &self.broken {
            let m = format!("the connection is unusable after an earlier failure ({why})");
            return Err(if *gone {
                ManagerError::gone(m)
            } else {
                ManagerError::protocol(m)
            });
        }
        let r = self.recv_frame(buf);
        if let Err(e) = &r {
            buf.clear();
            self.broken = Some((e.is_server_gone(), e.to_string()));
        }
        r
    }

    fn recv_frame(&mut self, buf: &mut Vec<u8>) -> Result<(), ManagerError> {
        let mut h = [0u8; HEADER_LEN];
        let n = loop {
            match self.reader.read(&mut h) {
                Ok(0) => return Err(ManagerError::gone("the peer closed the connection")),
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ManagerError::from_io(e)),
            }
        };
        self.reader
            .read_exact(&mut h[n..])
            .map_err(ManagerError::from_io)?;
        let plen = check_header(&h, self.key.is_some(), self.max_frame)?;
        buf.clear();
        buf.resize(plen, 0);
        self.reader.read_exact(buf).map_err(ManagerError::from_io)?;
        if let Some(k) = &self.key {
            let mut tag = [0u8; TAG_LEN];
            self.reader
                .read_exact(&mut tag)
                .map_err(ManagerError::from_io)?;
            verify_tag(k, self.seq, &h, buf, &tag)?;
            self.seq = self
                .seq
                .checked_add(1)
                .ok_or_else(|| ManagerError::Limit("2^64 frames on one session".into()))?;
        }
        Ok(())
    }
}

/// An established, authenticated session.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) sink: FrameSink,
    pub(crate) source: FrameSource,
    /// The client's first message, which came with its handshake response
    /// (server side; empty on the client side).
    pub(crate) first: Vec<u8>,
    /// A clone of the socket, to shut it down or ask whether the peer left.
    pub(crate) stream: Stream,
    /// The peer's address, for messages.
    #[allow(dead_code)]
    pub(crate) peer: String,
}

/// The two halves of a session over `stream`: `send`/`recv` are this end's
/// keys and the next sequence numbers.
fn halves(
    stream: &Stream,
    cfg: &WireConfig,
    send: (Option<HmacSha256>, u64),
    recv: (Option<HmacSha256>, u64),
) -> io::Result<(FrameSink, FrameSource)> {
    let reader = BufReader::with_capacity(READ_BUF, stream.try_clone()?);
    Ok((
        FrameSink {
            stream: stream.try_clone()?,
            buf: Vec::new(),
            key: send.0,
            seq: send.1,
            max_frame: cfg.max_frame,
        },
        FrameSource {
            reader,
            max_frame: cfg.max_frame,
            key: recv.0,
            seq: recv.1,
            broken: None,
        },
    ))
}

// ---------------------------------------------------------------------------
// The client.

/// Connects to a manager server, authenticates with `key`, and sends
/// `first` (the first request) in the same write as the handshake's
/// response. Returns once the server's welcome is verified: a server that
/// refuses our key, or one that does not hold it, is
/// [`ManagerError::Auth`] here.
pub(crate) fn connect(
    addr: &Address,
    key: &[u8],
    cfg: &WireConfig,
    first: &[u8],
) -> Result<Session, ManagerError> {
    check_key(key)?;
    let stream = match addr {
        Address::Tcp(a) => {
            let s = TcpStream::connect(a).map_err(|e| connect_error(addr, e))?;
            s.set_nodelay(true)?;
            Stream::Tcp(s)
        }
        Address::Unix(p) => {
            Stream::Unix(UnixStream::connect(p).map_err(|e| connect_error(addr, e))?)
        }
    };
    client_handshake(stream, addr.to_string(), key, cfg, first)
}

/// The client's side of the handshake on a connected `stream`.
fn client_handshake(
    mut stream: Stream,
    peer: String,
    key: &[u8],
    cfg: &WireConfig,
    first: &[u8],
) -> Result<Session, ManagerError> {
    stream.set_timeouts(Some(cfg.preauth_timeout))?;
    let mut reader = BufReader::with_capacity(READ_BUF, stream.try_clone()?);
    let body = read_preauth(&mut reader, Kind::NetChallenge, cfg)?;
    let ch = decode_challenge(&body)?;
    if !ch.versions.contains(&WIRE_VERSION) {
        return Err(ManagerError::protocol(format!(
            "the server speaks transport versions {:?}; this client speaks {WIRE_VERSION}",
            ch.versions
        )));
    }
    if ch.mac != cfg.mac {
        return Err(mac_mismatch(ch.mac));
    }
    let nc = nonce()?;
    let digest = client_digest(key, WIRE_VERSION, &ch.nonce, &nc)
        .finalize()
        .into_bytes();
    let resp = Response {
        version: WIRE_VERSION,
        nonce: nc.to_vec(),
        mac: cfg.mac,
        digest: digest.to_vec(),
    };
    let (send_key, recv_key) = if cfg.mac {
        let k = session_keys(key, &ch.nonce, &nc);
        (Some(k.c2s), Some(k.s2c))
    } else {
        (None, None)
    };
    let mut sink = FrameSink {
        stream: stream.try_clone()?,
        buf: Vec::new(),
        key: send_key,
        seq: 0,
        max_frame: cfg.max_frame,
    };
    // One write: the response, then the first message (sequence number 0).
    let mut out = preauth_frame(Kind::NetResponse, &encode(&resp)?)?;
    sink.seal_into_buf(first)?;
    out.extend_from_slice(&sink.buf);
    sink.buf = Vec::new();
    stream.write_all(&out).map_err(|e| handshake_io(e, cfg))?;
    let body = read_preauth(&mut reader, Kind::NetWelcome, cfg)?;
    let w = decode_welcome(&body)?;
    server_digest(key, &ch, &resp)
        .verify_slice(&w.digest)
        .map_err(|_| {
            ManagerError::auth(
                "the server's welcome does not prove it holds the authkey \
                 (a server with another key, or not a spindle manager)",
            )
        })?;
    stream.set_timeouts(None)?;
    let source = FrameSource {
        reader,
        max_frame: cfg.max_frame,
        key: recv_key,
        seq: 0,
        broken: None,
    };
    Ok(Session {
        sink,
        source,
        first: Vec::new(),
        stream,
        peer,
    })
}

/// A read or write of the client's handshake failed.
fn handshake_io(e: io::Error, cfg: &WireConfig) -> ManagerError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ManagerError::Io(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "the server did not go on with the handshake within {:?}",
                cfg.preauth_timeout
            ),
        )),
        io::ErrorKind::UnexpectedEof => ManagerError::gone(
            "the server closed the connection in the middle of a handshake message",
        ),
        _ => ManagerError::from_io(e),
    }
}

/// Reads one handshake frame of kind `want` (a `Failure` is its error).
fn read_preauth(r: &mut impl Read, want: Kind, cfg: &WireConfig) -> Result<Vec<u8>, ManagerError> {
    let mut h = [0u8; HEADER_LEN];
    let n = loop {
        match r.read(&mut h) {
            Ok(0) => {
                return Err(ManagerError::gone(
                    "the server closed the connection during the handshake \
                     (it may be at its limit of unauthenticated connections)",
                ));
            }
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(handshake_io(e, cfg)),
        }
    };
    r.read_exact(&mut h[n..])
        .map_err(|e| handshake_io(e, cfg))?;
    let (kind, len) = frame::parse_header(&h).map_err(frame_error)?;
    if len > PREAUTH_MAX_FRAME {
        return Err(ManagerError::TooLarge {
            size: len as u64,
            limit: PREAUTH_MAX_FRAME as u64,
        });
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).map_err(|e| handshake_io(e, cfg))?;
    if kind == Kind::NetFailure {
        return Err(decode_failure(&body)?.into_error());
    }
    if kind != want {
        return Err(ManagerError::protocol(format!(
            "a {kind:?} frame where the handshake expects {want:?}"
        )));
    }
    Ok(body)
}

fn connect_error(addr: &Address, e: io::Error) -> ManagerError {
    match e.kind() {
        io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound => {
            ManagerError::gone(format!("no manager at {addr}: {e}"))
        }
        _ => ManagerError::Io(e),
    }
}

// ---------------------------------------------------------------------------
// The server.

#[derive(Debug)]
enum Bound {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Bound {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Bound::Tcp(l) => l.as_fd(),
            Bound::Unix(l) => l.as_fd(),
        }
    }
}

/// What an [`Acceptor`] has done, readable from any thread while it
/// accepts ([`Acceptor::counters`]).
#[derive(Debug, Default)]
pub(crate) struct WireCounters {
    accepted: AtomicU64,
    failed: AtomicU64,
    timed_out: AtomicU64,
    refused: AtomicU64,
    pending: AtomicU64,
}

impl WireCounters {
    /// Sockets that authenticated and were handed out.
    pub(crate) fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }
    /// Sockets that failed the handshake (wrong key, garbage, a frame over
    /// its limit, a peer that closed) and were closed.
    pub(crate) fn failed(&self) -> u64 {
        self.failed.load(Ordering::SeqCst)
    }
    /// Sockets closed because they had not authenticated by the deadline.
    pub(crate) fn timed_out(&self) -> u64 {
        self.timed_out.load(Ordering::SeqCst)
    }
    /// Sockets closed at once because `max_preauth` were authenticating.
    pub(crate) fn refused(&self) -> u64 {
        self.refused.load(Ordering::SeqCst)
    }
    /// Sockets authenticating now.
    pub(crate) fn pending(&self) -> u64 {
        self.pending.load(Ordering::SeqCst)
    }
}

/// The shared state of an acceptor and its closers.
#[derive(Debug)]
struct Wake {
    closed: AtomicBool,
    fd: EventFd,
}

/// A bound server socket that hands out authenticated sessions.
pub(crate) struct Acceptor {
    bound: Bound,
    address: Address,
    cfg: WireConfig,
    key: Vec<u8>,
    wake: Arc<Wake>,
    pending: Vec<Pending>,
    ready: VecDeque<Session>,
    counters: Arc<WireCounters>,
}

impl fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acceptor")
            .field("address", &self.address)
            .field("cfg", &self.cfg)
            .field("pending", &self.pending.len())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl Acceptor {
    /// Binds `addr` (port 0: any free port). A second server on a bound
    /// address or an existing path is an error (`Io`, `AddrInUse`).
    pub(crate) fn bind(
        addr: &Address,
        key: &[u8],
        cfg: WireConfig,
    ) -> Result<Acceptor, ManagerError> {
        check_key(key)?;
        let wake = Arc::new(Wake {
            closed: AtomicBool::new(false),
            fd: EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
                .map_err(|e| ManagerError::Io(e.into()))?,
        });
        let (bound, address) = match addr {
            Address::Tcp(a) => {
                let l = TcpListener::bind(a).map_err(ManagerError::Io)?;
                l.set_nonblocking(true).map_err(ManagerError::Io)?;
                let local = l.local_addr().map_err(ManagerError::Io)?;
                (Bound::Tcp(l), Address::Tcp(local))
            }
            Address::Unix(p) => {
                let l = UnixListener::bind(p).map_err(ManagerError::Io)?;
                if let Err(e) = l.set_nonblocking(true) {
                    let _ = std::fs::remove_file(p);
                    return Err(ManagerError::Io(e));
                }
                (Bound::Unix(l), addr.clone())
            }
        };
        Ok(Acceptor {
            bound,
            address,
            cfg,
            key: key.to_vec(),
            wake,
            pending: Vec::new(),
            ready: VecDeque::new(),
            counters: Arc::default(),
        })
    }

    /// The bound address (with the port chosen for port 0).
    pub(crate) fn address(&self) -> &Address {
        &self.address
    }

    /// A handle that makes a blocked [`accept`](Acceptor::accept) return.
    pub(crate) fn closer(&self) -> Closer {
        Closer {
            wake: Arc::clone(&self.wake),
        }
    }

    /// The counts of sockets accepted, failed, timed out, refused and
    /// pending (shared: read them from another thread while `accept` runs).
    pub(crate) fn counters(&self) -> Arc<WireCounters> {
        Arc::clone(&self.counters)
    }

    /// Waits for the next client that authenticates, driving every
    /// handshake under way meanwhile (no thread per socket). Sockets that
    /// fail the handshake or its deadline are closed here and never
    /// returned. After [`Closer::close`], returns `ServerGone` (and closes
    /// the sockets still authenticating). `Io` if the listening socket or
    /// `poll` fails (out of descriptors, say); the acceptor stays usable.
    pub(crate) fn accept(&mut self) -> Result<Session, ManagerError> {
        loop {
            if self.wake.closed.load(Ordering::SeqCst) {
                self.pending.clear();
                self.ready.clear();
                self.set_pending();
                return Err(ManagerError::gone("the acceptor was closed"));
            }
            if let Some(s) = self.ready.pop_front() {
                return Ok(s);
            }
            self.expire(Instant::now());
            let timeout = match self.pending.iter().map(|p| p.deadline).min() {
                None => PollTimeout::NONE,
                Some(d) => {
                    // Rounded up: never wake just before the deadline.
                    let ms = d
                        .saturating_duration_since(Instant::now())
                        .as_nanos()
                        .div_ceil(1_000_000);
                    PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
                }
            };
            let (listener_ready, revents) = {
                let mut fds = Vec::with_capacity(2 + self.pending.len());
                fds.push(PollFd::new(self.wake.fd.as_fd(), PollFlags::POLLIN));
                fds.push(PollFd::new(self.bound.fd(), PollFlags::POLLIN));
                for p in &self.pending {
                    fds.push(PollFd::new(p.stream.fd(), p.interest()));
                }
                match poll(&mut fds, timeout) {
                    Ok(_) => {}
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(ManagerError::Io(e.into())),
                }
                let ready = |f: &PollFd<'_>| f.revents().is_some_and(|r| !r.is_empty());
                (
                    ready(&fds[1]),
                    fds[2..].iter().map(ready).collect::<Vec<bool>>(),
                )
            };
            // Highest index first: `swap_remove` moves only entries
            // already looked at.
            for i in (0..revents.len()).rev() {
                if revents[i] {
                    self.drive(i);
                }
            }
            if listener_ready {
                self.accept_new()?;
            }
            self.set_pending();
        }
    }

    fn set_pending(&self) {
        self.counters
            .pending
            .store(self.pending.len() as u64, Ordering::SeqCst);
    }

    /// Closes the sockets whose deadline has passed.
    fn expire(&mut self, now: Instant) {
        let before = self.pending.len();
        self.pending.retain(|p| p.deadline > now);
        let gone = before - self.pending.len();
        if gone > 0 {
            self.counters
                .timed_out
                .fetch_add(gone as u64, Ordering::SeqCst);
            self.set_pending();
        }
    }

    /// Takes new sockets from the listening socket.
    fn accept_new(&mut self) -> Result<(), ManagerError> {
        for _ in 0..ACCEPT_BATCH {
            let accepted = match &self.bound {
                Bound::Tcp(l) => l.accept().and_then(|(s, a)| {
                    s.set_nodelay(true)?;
                    Ok((Stream::Tcp(s), a.to_string()))
                }),
                Bound::Unix(l) => l
                    .accept()
                    .map(|(s, _)| (Stream::Unix(s), "unix peer".to_string())),
            };
            let (stream, peer) = match accepted {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) || e.raw_os_error() == Some(libc::EPROTO) =>
                {
                    continue;
                }
                Err(e) => return Err(ManagerError::Io(e)),
            };
            if self.pending.len() >= self.cfg.max_preauth {
                self.counters.refused.fetch_add(1, Ordering::SeqCst);
                drop(stream);
                continue;
            }
            if stream.set_nonblocking(true).is_err() {
                self.counters.failed.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            let p = Pending::new(stream, peer, &self.cfg)?;
            self.pending.push(p);
            self.drive(self.pending.len() - 1);
        }
        Ok(())
    }

    /// Moves handshake `i` on as far as its socket allows.
    fn drive(&mut self, i: usize) {
        match self.pending[i].advance(&self.key, &self.cfg) {
            Ok(false) => {}
            Ok(true) => {
                let p = self.pending.swap_remove(i);
                match p.into_session(&self.cfg) {
                    Ok(s) => {
                        self.counters.accepted.fetch_add(1, Ordering::SeqCst);
                        self.ready.push_back(s);
                    }
                    Err(_) => {
                        self.counters.failed.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
            Err(failure) => {
                let p = self.pending.swap_remove(i);
                self.counters.failed.fetch_add(1, Ordering::SeqCst);
                p.reject(failure);
            }
        }
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        if let Address::Unix(p) = &self.address {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Makes a blocked [`Acceptor::accept`] return `ServerGone` (and every
/// later call): it sets a flag and writes the acceptor's eventfd.
#[derive(Debug, Clone)]
pub(crate) struct Closer {
    wake: Arc<Wake>,
}

impl Closer {
    pub(crate) fn close(&self) {
        self.wake.closed.store(true, Ordering::SeqCst);
        // Cannot fail but for a counter at its maximum, which is readable.
        let _ = self.wake.fd.write(1);
    }
}

/// Where a handshake stands on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading the response's header.
    ResponseHeader,
    /// Reading the response's body.
    ResponseBody,
    /// Reading the first message's header.
    FirstHeader,
    /// Reading the first message's payload and MAC.
    FirstBody,
    /// All read and checked; the welcome may still be going out.
    Done,
}

/// Why a handshake ended: the `Failure` to send, if any.
#[derive(Debug)]
struct Reject {
    failure: Option<(&'static str, String)>,
}

impl Reject {
    fn quiet() -> Reject {
        Reject { failure: None }
    }
    fn tell(code: &'static str, e: &ManagerError) -> Reject {
        Reject {
            failure: Some((code, e.to_string())),
        }
    }
}

/// One socket authenticating: a small state machine over a non-blocking
/// socket, moved on by [`Acceptor::accept`] whenever `poll` says so.
#[derive(Debug)]
struct Pending {
    stream: Stream,
    peer: String,
    deadline: Instant,
    /// Bytes to send (the challenge, then the welcome) and how many went.
    out: Vec<u8>,
    sent: usize,
    /// The piece being read, sized to exactly what is expected, and how
    /// much of it has come.
    inbuf: Vec<u8>,
    got: usize,
    phase: Phase,
    challenge: Challenge,
    /// After the response: this end's send and receive keys.
    keys: Option<(HmacSha256, HmacSha256)>,
    first_header: [u8; HEADER_LEN],
    first: Vec<u8>,
}

impl Pending {
    fn new(stream: Stream, peer: String, cfg: &WireConfig) -> Result<Pending, ManagerError> {
        let challenge = Challenge {
            versions: VERSIONS.to_vec(),
            nonce: nonce()?.to_vec(),
            mac: cfg.mac,
        };
        let out = preauth_frame(Kind::NetChallenge, &encode(&challenge)?)?;
        Ok(Pending {
            stream,
            peer,
            deadline: Instant::now() + cfg.preauth_timeout,
            out,
            sent: 0,
            inbuf: vec![0; HEADER_LEN],
            got: 0,
            phase: Phase::ResponseHeader,
            challenge,
            keys: None,
            first_header: [0; HEADER_LEN],
            first: Vec::new(),
        })
    }

    /// What to wait for.
    fn interest(&self) -> PollFlags {
        let mut f = PollFlags::empty();
        if self.phase != Phase::Done {
            f |= PollFlags::POLLIN;
        }
        if self.sent < self.out.len() {
            f |= PollFlags::POLLOUT;
        }
        f
    }

    /// Writes and reads what the socket allows; `Ok(true)` once the
    /// handshake is complete and the welcome sent.
    fn advance(&mut self, key: &[u8], cfg: &WireConfig) -> Result<bool, Reject> {
        loop {
            while self.sent < self.out.len() {
                match self.stream.write(&self.out[self.sent..]) {
                    Ok(0) => return Err(Reject::quiet()),
                    Ok(n) => self.sent += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return Err(Reject::quiet()),
                }
            }
            if self.phase == Phase::Done {
                return Ok(self.sent == self.out.len());
            }
            while self.got < self.inbuf.len() {
                match self.stream.read(&mut self.inbuf[self.got..]) {
                    Ok(0) => return Err(Reject::quiet()),
                    Ok(n) => self.got += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return Err(Reject::quiet()),
                }
            }
            self.step(key, cfg)?;
        }
    }

    /// The piece being read is whole: check it and expect the next.
    fn step(&mut self, key: &[u8], cfg: &WireConfig) -> Result<(), Reject> {
        let piece = std::mem::take(&mut self.inbuf);
        self.got = 0;
        match self.phase {
            Phase::ResponseHeader => {
                let h = piece
                    .first_chunk::<HEADER_LEN>()
                    .ok_or_else(Reject::quiet)?;
                let (kind, len) = frame::parse_header(h)
                    .map_err(|e| Reject::tell("protocol", &frame_error(e)))?;
                if kind != Kind::NetResponse {
                    return Err(Reject::tell(
                        "protocol",
                        &ManagerError::protocol(format!(
                            "a {kind:?} frame where the handshake expects NetResponse"
                        )),
                    ));
                }
                if len > PREAUTH_MAX_FRAME {
                    return Err(Reject::tell(
                        "protocol",
                        &ManagerError::TooLarge {
                            size: len as u64,
                            limit: PREAUTH_MAX_FRAME as u64,
                        },
                    ));
                }
                self.inbuf = vec![0; len];
                self.phase = Phase::ResponseBody;
            }
            Phase::ResponseBody => {
                let resp = verify_response(key, &self.challenge, &piece)
                    .map_err(|r| Reject::tell(r.code, &r.error))?;
                let w = Welcome {
                    digest: server_digest(key, &self.challenge, &resp)
                        .finalize()
                        .into_bytes()
                        .to_vec(),
                };
                let body = encode(&w).map_err(|_| Reject::quiet())?;
                let frame = preauth_frame(Kind::NetWelcome, &body).map_err(|_| Reject::quiet())?;
                self.out.drain(..self.sent);
                self.sent = 0;
                self.out.extend_from_slice(&frame);
                if cfg.mac {
                    let k = session_keys(key, &self.challenge.nonce, &resp.nonce);
                    self.keys = Some((k.s2c, k.c2s));
                }
                self.inbuf = vec![0; HEADER_LEN];
                self.phase = Phase::FirstHeader;
            }
            Phase::FirstHeader => {
                let h = *piece
                    .first_chunk::<HEADER_LEN>()
                    .ok_or_else(Reject::quiet)?;
                // The client is authenticated: no `Failure` any more, a
                // bad frame just closes the socket.
                let plen = check_header(&h, self.keys.is_some(), cfg.max_frame)
                    .map_err(|_| Reject::quiet())?;
                let tl = if self.keys.is_some() { TAG_LEN } else { 0 };
                self.first_header = h;
                self.inbuf = vec![0; plen + tl];
                self.phase = Phase::FirstBody;
            }
            Phase::FirstBody => {
                let mut piece = piece;
                if let Some((_, recv)) = &self.keys {
                    let plen = piece.len() - TAG_LEN;
                    verify_tag(recv, 0, &self.first_header, &piece[..plen], &piece[plen..])
                        .map_err(|_| Reject::quiet())?;
                    piece.truncate(plen);
                }
                self.first = piece;
                self.phase = Phase::Done;
            }
            Phase::Done => {}
        }
        Ok(())
    }

    /// Best effort: tells the client why (if the challenge went out
    /// whole), sends FIN, reads what it had sent (so the close is not a
    /// reset that could destroy the `Failure` in flight), and closes.
    fn reject(mut self, r: Reject) {
        if let Some((code, reason)) = r.failure
            && self.sent == self.out.len()
        {
            let _ = self.stream.write(&failure_frame(code, &reason));
        }
        self.stream.shutdown_write();
        let mut scratch = [0u8; 4096];
        let mut drained = 0;
        while drained < DRAIN_MAX {
            match self.stream.read(&mut scratch) {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    }

    /// The handshake is complete: the session, on a blocking socket.
    fn into_session(self, cfg: &WireConfig) -> io::Result<Session> {
        self.stream.set_nonblocking(false)?;
        let (send, recv) = match self.keys {
            Some((s, r)) => (Some(s), Some(r)),
            None => (None, None),
        };
        // The client's first message was frame 0 of its direction.
        let (sink, source) = halves(&self.stream, cfg, (send, 0), (recv, 1))?;
        Ok(Session {
            sink,
            source,
            first: self.first,
            stream: self.stream,
            peer: self.peer,
        })
    }
}
