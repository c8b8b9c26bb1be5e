//! The manager's transport: sockets, the handshake, and framed messages.
//!
//! STAND-IN: this first version frames messages with the `ipc::frame`
//! header and performs NO authentication and NO per-frame MAC. It exists so
//! the manager above it can be built and tested; the authenticated
//! transport (challenge–response, session keys, per-frame MAC, the
//! unauthenticated-socket limits) replaces its insides behind the same
//! interface.
#![forbid(unsafe_code)]

use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;

use super::error::ManagerError;
use crate::ipc::Address;
use crate::ipc::frame::{self, FrameError, Kind};

/// Largest frame after authentication (16 MiB).
pub const MAX_FRAME: usize = 16 << 20;
/// Largest frame before authentication (256 B).
pub const PREAUTH_MAX_FRAME: usize = 256;
/// How long an unauthenticated socket may take to authenticate (5 s).
pub const PREAUTH_TIMEOUT: Duration = Duration::from_secs(5);
/// At most this many sockets are authenticating at once (64).
pub const MAX_PREAUTH: usize = 64;
/// Authkeys shorter than this are refused (16 bytes).
pub const MIN_AUTHKEY: usize = 16;

/// How a transport is set up.
#[derive(Clone, Debug)]
pub(crate) struct WireConfig {
    /// Whether every frame after the handshake carries a MAC.
    pub(crate) mac: bool,
    /// The largest frame accepted after the handshake.
    pub(crate) max_frame: usize,
}

impl Default for WireConfig {
    fn default() -> Self {
        WireConfig {
            mac: true,
            max_frame: MAX_FRAME,
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
        use std::os::fd::AsFd;
        let fd = match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Unix(s) => s.as_fd(),
        };
        let rdhup = PollFlags::from_bits_retain(libc::POLLRDHUP);
        let mut fds = [PollFd::new(fd, rdhup)];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(0) => false,
            Ok(_) => fds[0]
                .revents()
                .is_some_and(|r| r.intersects(rdhup | PollFlags::POLLHUP | PollFlags::POLLERR)),
            Err(_) => true,
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

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The write half of an established session.
#[derive(Debug)]
pub(crate) struct FrameSink {
    stream: Stream,
    buf: Vec<u8>,
}

impl FrameSink {
    /// Sends one message (one frame).
    pub(crate) fn send(&mut self, payload: &[u8]) -> Result<(), ManagerError> {
        self.buf.clear();
        let h = frame::header(Kind::NetMessage, payload.len()).map_err(ManagerError::from_io)?;
        self.buf.extend_from_slice(&h);
        self.buf.extend_from_slice(payload);
        self.stream
            .write_all(&self.buf)
            .map_err(ManagerError::from_io)
    }
}

/// The read half of an established session.
#[derive(Debug)]
pub(crate) struct FrameSource {
    reader: BufReader<Stream>,
    max_frame: usize,
}

impl FrameSource {
    /// Receives one message into `buf` (replacing its contents). A peer
    /// that closed cleanly is [`ManagerError::ServerGone`].
    pub(crate) fn recv(&mut self, buf: &mut Vec<u8>) -> Result<(), ManagerError> {
        let (kind, len) = frame::read_header(&mut self.reader).map_err(frame_error)?;
        if kind != Kind::NetMessage {
            return Err(ManagerError::protocol(format!("unexpected frame {kind:?}")));
        }
        if len > self.max_frame {
            return Err(ManagerError::TooLarge {
                size: len as u64,
                limit: self.max_frame as u64,
            });
        }
        buf.clear();
        buf.resize(len, 0);
        self.reader.read_exact(buf).map_err(ManagerError::from_io)
    }
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
            ManagerError::protocol(format!("peer speaks protocol version {got}"))
        }
        FrameError::Io(e) => ManagerError::from_io(e),
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

fn session(stream: Stream, cfg: &WireConfig, first: Vec<u8>, peer: String) -> io::Result<Session> {
    Ok(Session {
        sink: FrameSink {
            stream: stream.try_clone()?,
            buf: Vec::new(),
        },
        source: FrameSource {
            reader: BufReader::with_capacity(64 * 1024, stream.try_clone()?),
            max_frame: cfg.max_frame,
        },
        first,
        stream,
        peer,
    })
}

/// Connects to a manager server, authenticates with `key`, and sends
/// `first` (the first request) with the handshake.
pub(crate) fn connect(
    addr: &Address,
    key: &[u8],
    cfg: &WireConfig,
    first: &[u8],
) -> Result<Session, ManagerError> {
    if key.len() < MIN_AUTHKEY {
        return Err(ManagerError::auth(format!(
            "authkey of {} bytes is shorter than {MIN_AUTHKEY}",
            key.len()
        )));
    }
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
    let mut s = session(stream, cfg, Vec::new(), addr.to_string())?;
    s.sink.send(first)?;
    Ok(s)
}

fn connect_error(addr: &Address, e: io::Error) -> ManagerError {
    match e.kind() {
        io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound => {
            ManagerError::gone(format!("no manager at {addr}: {e}"))
        }
        _ => ManagerError::Io(e),
    }
}

#[derive(Debug)]
enum Bound {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// A bound server socket that hands out authenticated sessions.
#[derive(Debug)]
pub(crate) struct Acceptor {
    bound: Bound,
    address: Address,
    cfg: WireConfig,
    #[allow(dead_code)]
    key: Vec<u8>,
}

impl Acceptor {
    /// Binds `addr` (port 0: any free port). A second server on a bound
    /// address is an error.
    pub(crate) fn bind(
        addr: &Address,
        key: &[u8],
        cfg: WireConfig,
    ) -> Result<Acceptor, ManagerError> {
        if key.len() < MIN_AUTHKEY {
            return Err(ManagerError::auth(format!(
                "authkey of {} bytes is shorter than {MIN_AUTHKEY}",
                key.len()
            )));
        }
        let (bound, address) = match addr {
            Address::Tcp(a) => {
                let l = TcpListener::bind(a)?;
                let local = l.local_addr()?;
                (Bound::Tcp(l), Address::Tcp(local))
            }
            Address::Unix(p) => (Bound::Unix(UnixListener::bind(p)?), addr.clone()),
        };
        Ok(Acceptor {
            bound,
            address,
            cfg,
            key: key.to_vec(),
        })
    }

    /// The bound address (with the port chosen for port 0).
    pub(crate) fn address(&self) -> &Address {
        &self.address
    }

    /// A handle that makes a blocked [`accept`](Acceptor::accept) return.
    pub(crate) fn closer(&self) -> Closer {
        Closer {
            address: self.address.clone(),
        }
    }

    /// Waits for the next client that authenticates. Sockets that fail the
    /// handshake are dropped here and never returned. After
    /// [`Closer::close`], returns `ServerGone`.
    pub(crate) fn accept(&mut self) -> Result<Session, ManagerError> {
        loop {
            let (stream, peer) = match &self.bound {
                Bound::Tcp(l) => {
                    let (s, a) = l.accept()?;
                    s.set_nodelay(true)?;
                    (Stream::Tcp(s), a.to_string())
                }
                Bound::Unix(l) => (Stream::Unix(l.accept()?.0), "unix peer".to_string()),
            };
            let mut s = match session(stream, &self.cfg, Vec::new(), peer) {
                Ok(s) => s,
                Err(_) => continue,
            };
            let mut first = Vec::new();
            match s.source.recv(&mut first) {
                Ok(()) => {}
                Err(_) => continue,
            }
            if first == CLOSE_MAGIC {
                return Err(ManagerError::gone("acceptor closed"));
            }
            s.first = first;
            return Ok(s);
        }
    }
}

const CLOSE_MAGIC: &[u8] = b"\0spindle-acceptor-close\0";

impl Drop for Acceptor {
    fn drop(&mut self) {
        if let Address::Unix(p) = &self.address {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Makes a blocked [`Acceptor::accept`] return `ServerGone`.
#[derive(Debug, Clone)]
pub(crate) struct Closer {
    address: Address,
}

impl Closer {
    pub(crate) fn close(&self) {
        let stream = match &self.address {
            Address::Tcp(a) => TcpStream::connect(a).map(Stream::Tcp),
            Address::Unix(p) => UnixStream::connect(p).map(Stream::Unix),
        };
        if let Ok(stream) = stream
            && let Ok(mut s) = session(stream, &WireConfig::default(), Vec::new(), String::new())
        {
            let _ = s.sink.send(CLOSE_MAGIC);
        }
    }
}
