//! The one error type of the manager: every failure a caller, a peer or the
//! network can cause, typed, with a predicate per family.
#![forbid(unsafe_code)]

use std::fmt;
use std::io;

/// What went wrong in a manager call, a connection or the server.
///
/// Python raises `AuthenticationError`, `EOFError`, `BrokenPipeError`,
/// `RemoteError` or `TypeError` for these; spindle gives one type with a
/// predicate per family ([`is_auth`](ManagerError::is_auth),
/// [`is_protocol`](ManagerError::is_protocol),
/// [`is_too_large`](ManagerError::is_too_large),
/// [`is_wrong_type`](ManagerError::is_wrong_type),
/// [`is_server_gone`](ManagerError::is_server_gone)).
#[derive(Debug)]
#[non_exhaustive]
pub enum ManagerError {
    /// Authentication failed: the peer does not hold our key, refused ours,
    /// or the key is too short to be used (`reason` says which).
    Auth(String),
    /// The peer sent something that is not this protocol (a bad frame, a
    /// bad MAC, a replayed or reordered frame, a malformed envelope).
    Protocol(String),
    /// A frame or a value is larger than the limit.
    TooLarge {
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// The object is not of the kind or item type the proxy expects.
    WrongType {
        /// What the proxy expects.
        expected: String,
        /// What the server holds.
        found: String,
    },
    /// The server is gone: it closed the connection or exited.
    ServerGone(String),
    /// A cap of the server (connections, channels, objects) is reached.
    Limit(String),
    /// The server has no object of this name or id.
    NotFound(String),
    /// A value could not be encoded or decoded.
    Codec(String),
    /// The server refused the call with this message (a bad argument).
    Remote(String),
    /// A method of a remote object (`#[spindle::remote]`) panicked on the
    /// server (Python's `RemoteError` with the traceback). The object stays
    /// usable.
    Panicked {
        /// The method.
        method: String,
        /// The panic's message.
        message: String,
    },
    /// A setting of this side is missing or invalid (serving without an
    /// address, say); nothing was sent.
    Config(String),
    /// The operating system failed.
    Io(io::Error),
}

impl ManagerError {
    /// Authentication failed (wrong key in either direction, short key).
    pub fn is_auth(&self) -> bool {
        matches!(self, ManagerError::Auth(_))
    }

    /// The peer broke the protocol (bad frame, bad MAC, replay, garbage).
    pub fn is_protocol(&self) -> bool {
        matches!(self, ManagerError::Protocol(_))
    }

    /// A frame or value is over its limit.
    pub fn is_too_large(&self) -> bool {
        matches!(self, ManagerError::TooLarge { .. })
    }

    /// The proxy's type does not match the object on the server.
    pub fn is_wrong_type(&self) -> bool {
        matches!(self, ManagerError::WrongType { .. })
    }

    /// The server closed the connection or exited.
    pub fn is_server_gone(&self) -> bool {
        matches!(self, ManagerError::ServerGone(_))
    }

    /// A server cap (connections, channels, objects) is reached.
    pub fn is_limit(&self) -> bool {
        matches!(self, ManagerError::Limit(_))
    }

    pub(crate) fn auth(m: impl Into<String>) -> Self {
        ManagerError::Auth(m.into())
    }

    pub(crate) fn protocol(m: impl Into<String>) -> Self {
        ManagerError::Protocol(m.into())
    }

    pub(crate) fn gone(m: impl Into<String>) -> Self {
        ManagerError::ServerGone(m.into())
    }

    pub(crate) fn codec(e: impl fmt::Display) -> Self {
        ManagerError::Codec(e.to_string())
    }

    /// The error of a read or write on an established connection: a closed
    /// or reset peer is [`ServerGone`](ManagerError::ServerGone).
    pub(crate) fn from_io(e: io::Error) -> Self {
        use io::ErrorKind::*;
        match e.kind() {
            UnexpectedEof | BrokenPipe | ConnectionReset | ConnectionAborted | NotConnected => {
                ManagerError::ServerGone(e.to_string())
            }
            _ => ManagerError::Io(e),
        }
    }
}

impl fmt::Display for ManagerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManagerError::Auth(m) => write!(f, "manager authentication failed: {m}"),
            ManagerError::Protocol(m) => write!(f, "manager protocol error: {m}"),
            ManagerError::TooLarge { size, limit } => {
                write!(
                    f,
                    "{size} bytes is over the manager's limit of {limit} bytes"
                )
            }
            ManagerError::WrongType { expected, found } => {
                write!(
                    f,
                    "wrong type: the proxy expects {expected}, the server holds {found}"
                )
            }
            ManagerError::ServerGone(m) => write!(f, "manager server gone: {m}"),
            ManagerError::Limit(m) => write!(f, "manager limit reached: {m}"),
            ManagerError::NotFound(m) => write!(f, "manager has no {m}"),
            ManagerError::Codec(m) => write!(f, "manager value encoding failed: {m}"),
            ManagerError::Remote(m) => write!(f, "manager refused the call: {m}"),
            ManagerError::Panicked { method, message } => {
                write!(f, "remote method {method} panicked: {message}")
            }
            ManagerError::Config(m) => write!(f, "manager setting: {m}"),
            ManagerError::Io(e) => write!(f, "manager I/O error: {e}"),
        }
    }
}

impl std::error::Error for ManagerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ManagerError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for ManagerError {
    fn from(e: io::Error) -> Self {
        ManagerError::from_io(e)
    }
}
