//! `Listener` and `Client`: [`Connection`]s over a Unix or TCP stream socket
//! (Python's `multiprocessing.connection.Listener` and `Client`).
#![forbid(unsafe_code)]

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use super::Connection;
use super::auth::{
    AuthenticationError, MAX_AUTH_MESSAGE, MIN_AUTHKEY, answer_challenge_deadline,
    deliver_challenge_deadline,
};

/// How long each side of the authentication may wait for the peer's
/// messages by default: 5 seconds (Python waits forever; a silent peer
/// would hold `accept`).
pub const DEFAULT_AUTH_TIMEOUT: Duration = Duration::from_secs(5);

/// The listen backlog by default: 128 (Python's `Listener` uses 1).
pub const DEFAULT_BACKLOG: u32 = 128;

/// Where a [`Listener`] listens and a [`Client`] connects: a TCP socket
/// address or a Unix socket path (Python's `address`, a `(host, port)`
/// tuple or a path string).
///
/// Parsed from a string: one containing `/` is a Unix path, otherwise it
/// must be an IP socket address (`"127.0.0.1:0"`, `"[::1]:8000"`); host
/// names are not resolved here (resolve them with
/// [`std::net::ToSocketAddrs`] and convert the [`SocketAddr`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Address {
    /// A TCP address; port 0 binds any free port.
    Tcp(SocketAddr),
    /// A Unix stream socket at this path.
    Unix(PathBuf),
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp(a) => write!(f, "{a}"),
            Address::Unix(p) => write!(f, "{}", p.display()),
        }
    }
}

impl From<SocketAddr> for Address {
    fn from(a: SocketAddr) -> Address {
        Address::Tcp(a)
    }
}

impl From<PathBuf> for Address {
    fn from(p: PathBuf) -> Address {
        Address::Unix(p)
    }
}

impl From<&Path> for Address {
    fn from(p: &Path) -> Address {
        Address::Unix(p.to_path_buf())
    }
}

/// A string that is neither a path (it has no `/`) nor an IP socket address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressParseError(String);

impl fmt::Display for AddressParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not an address: expected an IP socket address such as \
             \"127.0.0.1:0\" or a Unix socket path containing '/'",
            self.0
        )
    }
}

impl std::error::Error for AddressParseError {}

impl FromStr for Address {
    type Err = AddressParseError;

    fn from_str(s: &str) -> Result<Address, AddressParseError> {
        if s.contains('/') {
            return Ok(Address::Unix(PathBuf::from(s)));
        }
        s.parse::<SocketAddr>()
            .map(Address::Tcp)
            .map_err(|_| AddressParseError(s.to_string()))
    }
}

/// Why binding, accepting or connecting failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ListenerError {
    /// The socket failed: the address is in use
    /// ([`is_address_in_use`](Self::is_address_in_use)), nothing listens
    /// there, permission denied, ...
    Io(io::Error),
    /// The key given to the builder or to [`Client`] is shorter than
    /// [`MIN_AUTHKEY`] bytes; nothing was bound or connected.
    KeyTooShort {
        /// The key's length.
        len: usize,
    },
    /// The authentication of a new connection failed: a wrong key on
    /// either side, a peer that does not speak the protocol (or has no
    /// key), or one silent past the deadline. The connection was closed;
    /// the listener still accepts.
    Authentication(AuthenticationError),
}

impl ListenerError {
    /// Whether the address was already in use when binding (`EADDRINUSE`,
    /// Python's `OSError` with `errno.EADDRINUSE`).
    pub fn is_address_in_use(&self) -> bool {
        matches!(self, ListenerError::Io(e) if e.kind() == io::ErrorKind::AddrInUse)
    }

    /// Whether authentication failed (Python's `AuthenticationError`, or
    /// its `EOFError`/timeouts during the handshake).
    pub fn is_authentication(&self) -> bool {
        matches!(self, ListenerError::Authentication(_))
    }

    /// Whether authentication failed because one side holds another key.
    pub fn is_wrong_key(&self) -> bool {
        matches!(self, ListenerError::Authentication(e) if e.is_wrong_key())
    }
}

impl fmt::Display for ListenerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenerError::Io(e) => write!(f, "{e}"),
            ListenerError::KeyTooShort { len } => write!(
                f,
                "an authkey of {len} bytes is too short: at least {MIN_AUTHKEY} are required"
            ),
            ListenerError::Authentication(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ListenerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ListenerError::Io(e) => Some(e),
            ListenerError::Authentication(e) => Some(e),
            ListenerError::KeyTooShort { .. } => None,
        }
    }
}

impl From<io::Error> for ListenerError {
    fn from(e: io::Error) -> ListenerError {
        ListenerError::Io(e)
    }
}

impl From<nix::errno::Errno> for ListenerError {
    fn from(e: nix::errno::Errno) -> ListenerError {
        ListenerError::Io(e.into())
    }
}

/// Options of a [`Listener`]: `Listener::builder().authkey(k).backlog(n).bind(addr)`.
#[derive(Clone, Debug)]
pub struct ListenerBuilder {
    authkey: Option<Vec<u8>>,
    backlog: u32,
    auth_timeout: Duration,
}

impl ListenerBuilder {
    /// Requires every client to prove it holds `key` (at least
    /// [`MIN_AUTHKEY`] bytes), and proves it holds it too (Python's
    /// `authkey=`).
    pub fn authkey(mut self, key: &[u8]) -> Self {
        self.authkey = Some(key.to_vec());
        self
    }

    /// The listen backlog: connections the kernel queues before `accept`
    /// (default [`DEFAULT_BACKLOG`]; the kernel caps it at `somaxconn`).
    pub fn backlog(mut self, n: u32) -> Self {
        self.backlog = n;
        self
    }

    /// How long `accept` waits for each authentication message of a new
    /// connection (default [`DEFAULT_AUTH_TIMEOUT`]): a client that stays
    /// silent costs at most about twice this, then `accept` fails with
    /// [`ListenerError::Authentication`] ([`AuthenticationError::Timeout`]).
    pub fn auth_timeout(mut self, t: Duration) -> Self {
        self.auth_timeout = t;
        self
    }

    /// Binds `address` and listens (Python's `Listener(address, ...)`).
    /// A TCP port 0 binds any free port ([`Listener::address`] reports it).
    /// A Unix path must not exist yet (Python's behaviour too); it is
    /// removed when the listener closes.
    ///
    /// # Errors
    /// [`ListenerError::Io`] if the socket cannot be bound (address in use:
    /// [`ListenerError::is_address_in_use`]);
    /// [`ListenerError::KeyTooShort`] for a key under [`MIN_AUTHKEY`] bytes.
    pub fn bind(self, address: impl Into<Address>) -> Result<Listener, ListenerError> {
        if let Some(k) = &self.authkey
            && k.len() < MIN_AUTHKEY
        {
            return Err(ListenerError::KeyTooShort { len: k.len() });
        }
        let backlog = nix::sys::socket::Backlog::new(self.backlog.min(i32::MAX as u32) as i32)
            .unwrap_or(nix::sys::socket::Backlog::MAXCONN);
        let (inner, address) = match address.into() {
            Address::Tcp(a) => {
                let l = bind_tcp(a, backlog)?;
                let real = l.local_addr()?;
                (Inner::Tcp(l), Address::Tcp(real))
            }
            Address::Unix(p) => (Inner::Unix(bind_unix(&p, backlog)?), Address::Unix(p)),
        };
        Ok(Listener {
            inner,
            address,
            authkey: self.authkey,
            auth_timeout: self.auth_timeout,
        })
    }
}

/// A TCP listening socket: the standard library's (close-on-exec,
/// `SO_REUSEADDR` as Python's `Listener` sets it), listening again with
/// `backlog` (Linux lets `listen` change the backlog of a listening socket).
fn bind_tcp(
    a: SocketAddr,
    backlog: nix::sys::socket::Backlog,
) -> Result<TcpListener, ListenerError> {
    let l = TcpListener::bind(a)?;
    nix::sys::socket::listen(&l, backlog)?;
    Ok(l)
}

/// A Unix listening socket at `p` (close-on-exec), with `backlog`.
fn bind_unix(p: &Path, backlog: nix::sys::socket::Backlog) -> Result<UnixListener, ListenerError> {
    let l = UnixListener::bind(p)?;
    if let Err(e) = nix::sys::socket::listen(&l, backlog) {
        let _ = std::fs::remove_file(p);
        return Err(e.into());
    }
    Ok(l)
}

enum Inner {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// A listening socket that hands out [`Connection`]s (Python's
/// `multiprocessing.connection.Listener`).
///
/// A [`Listener`] binds an [`Address`] and accepts connections;
/// [`Client`] connects to one. Both ends of such a connection are ordinary
/// [`Connection`]s (`send`/`recv`, `send_bytes`/`recv_bytes`, `poll`, bounded
/// receives), over one socket: there is no bulk side channel, every message
/// travels inline, up to the receiver's [`Connection::max_frame`].
///
/// With an authentication key, the two ends prove to each other that they
/// hold it before the connection is handed out, as in Python: the listener
/// delivers a challenge and then answers the client's; the client answers
/// first, then delivers (see [`auth`](super::auth): HMAC-SHA256, keys of at
/// least 16 bytes). The key proves identity only; what follows is not
/// encrypted.
///
/// # Examples
/// ```
/// use spindle::ipc::{Address, Client, Listener};
///
/// let key = b"a shared secret key, 16+ bytes";
/// // Port 0: any free port; `address()` tells which.
/// let listener = Listener::builder()
///     .authkey(key)
///     .bind("127.0.0.1:0".parse::<Address>()?)?;
/// let address = listener.address().clone();
/// let client = std::thread::spawn(move || {
///     let conn = Client(address, Some(key)).unwrap();
///     conn.send(&"hello").unwrap();
///     conn.recv::<u32>().unwrap()
/// });
/// let conn = listener.accept()?;
/// assert_eq!(conn.recv::<String>()?, "hello");
/// conn.send(&42u32)?;
/// assert_eq!(client.join().unwrap(), 42);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// `accept` takes `&self`, so several threads may accept at once. Dropping
/// the listener (or [`close`](Self::close)) closes the socket and removes a
/// Unix socket's path; connections already accepted stay open.
pub struct Listener {
    inner: Inner,
    address: Address,
    authkey: Option<Vec<u8>>,
    auth_timeout: Duration,
}

impl Listener {
    /// Binds `address` with no key and the default backlog (Python's
    /// `Listener(address)`).
    ///
    /// # Errors
    /// As [`ListenerBuilder::bind`].
    pub fn bind(address: impl Into<Address>) -> Result<Listener, ListenerError> {
        Listener::builder().bind(address)
    }

    /// Options: an authentication key, the backlog, the authentication
    /// timeout.
    pub fn builder() -> ListenerBuilder {
        ListenerBuilder {
            authkey: None,
            backlog: DEFAULT_BACKLOG,
            auth_timeout: DEFAULT_AUTH_TIMEOUT,
        }
    }

    /// The address bound (Python's `address`): with TCP port 0, the port
    /// the system chose.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// Waits for a client and returns the connection to it (Python's
    /// `accept()`). With a key, the client must first prove it holds the
    /// key (and the listener proves it too): the listener delivers a
    /// challenge, then answers the client's, each message awaited at most
    /// the [`auth_timeout`](ListenerBuilder::auth_timeout).
    ///
    /// # Errors
    /// [`ListenerError::Authentication`] if that fails (the connection is
    /// closed; the next `accept` serves the next client);
    /// [`ListenerError::Io`] if accepting fails.
    pub fn accept(&self) -> Result<Connection, ListenerError> {
        let conn = match &self.inner {
            Inner::Tcp(l) => {
                let (s, _) = l.accept()?;
                stream_connection_tcp(s)?
            }
            Inner::Unix(l) => {
                let (s, _) = l.accept()?;
                Connection::from_stream(OwnedFd::from(s))?
            }
        };
        if let Some(key) = &self.authkey {
            authenticate(&conn, || {
                let d = deadline(self.auth_timeout);
                deliver_challenge_deadline(&conn, key, d)?;
                answer_challenge_deadline(&conn, key, deadline(self.auth_timeout))
            })?;
        }
        Ok(conn)
    }

    /// Closes the socket and removes a Unix socket's path (Python's
    /// `close()`); the same as dropping the listener.
    pub fn close(self) {}
}

impl super::wait::Waitable for Listener {
    /// The listening socket: readable when a client waits to be accepted.
    fn wait_fd(&self) -> std::io::Result<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        Ok(match &self.inner {
            Inner::Tcp(l) => l.as_fd(),
            Inner::Unix(l) => l.as_fd(),
        })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // As Python's `Listener.close()`: the path it bound goes away.
        if let Address::Unix(p) = &self.address {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("address", &self.address)
            .field("authenticated", &self.authkey.is_some())
            .finish()
    }
}

/// Connects to a [`Listener`] at `address` (Python's
/// `multiprocessing.connection.Client(address, authkey=...)`). With a key,
/// this end answers the listener's challenge, then delivers its own, each
/// message awaited at most [`DEFAULT_AUTH_TIMEOUT`].
///
/// # Errors
/// [`ListenerError::Io`] if the connection fails (nothing listens there,
/// ...); [`ListenerError::KeyTooShort`] for a key under [`MIN_AUTHKEY`]
/// bytes (nothing is connected); [`ListenerError::Authentication`] if the
/// listener holds another key, has none, or does not answer in time.
#[allow(non_snake_case)]
pub fn Client(
    address: impl Into<Address>,
    authkey: Option<&[u8]>,
) -> Result<Connection, ListenerError> {
    if let Some(k) = authkey
        && k.len() < MIN_AUTHKEY
    {
        return Err(ListenerError::KeyTooShort { len: k.len() });
    }
    let conn = match address.into() {
        Address::Tcp(a) => stream_connection_tcp(TcpStream::connect(a)?)?,
        Address::Unix(p) => Connection::from_stream(OwnedFd::from(UnixStream::connect(p)?))?,
    };
    if let Some(key) = authkey {
        authenticate(&conn, || {
            answer_challenge_deadline(&conn, key, deadline(DEFAULT_AUTH_TIMEOUT))?;
            deliver_challenge_deadline(&conn, key, deadline(DEFAULT_AUTH_TIMEOUT))
        })?;
    }
    Ok(conn)
}

/// A connection over a TCP stream, with `TCP_NODELAY` (a message is sent
/// at once, not held back to be merged with the next).
fn stream_connection_tcp(s: TcpStream) -> Result<Connection, ListenerError> {
    s.set_nodelay(true)?;
    Ok(Connection::from_stream(OwnedFd::from(s))?)
}

/// Runs the handshake `f` with the connection's message limit lowered to
/// [`MAX_AUTH_MESSAGE`], so that an unauthenticated peer cannot make it
/// buffer a large frame; restores the limit after.
fn authenticate(
    conn: &Connection,
    f: impl FnOnce() -> Result<(), AuthenticationError>,
) -> Result<(), ListenerError> {
    let limit = conn.max_frame();
    conn.set_max_frame(MAX_AUTH_MESSAGE);
    let out = f();
    conn.set_max_frame(limit);
    out.map_err(ListenerError::Authentication)
}

/// `timeout` from now (far in the future if it cannot be represented).
fn deadline(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}
