//! Inter-process communication (Python's `multiprocessing` `Pipe` and
//! `Connection`).
//!
//! Which one should I use?
//! - [`Pipe`] gives two [`Connection`]s: point-to-point messages between two
//!   processes (or threads), serde values or raw bytes, with `poll`. A
//!   duplex `Pipe` end, or a connection over a Unix socket, also carries
//!   file descriptors ([`Connection::send_handle`] /
//!   [`Connection::recv_handle`], Python's
//!   `multiprocessing.reduction.send_handle` / `recv_handle`), in order with
//!   the messages; receiving the wrong kind is a typed error that loses
//!   nothing and leaks no descriptor.
//! - [`Queue`] (also named [`JoinableQueue`] and [`SimpleQueue`]): many
//!   producers and many consumers in any processes, bounded or not, with
//!   `task_done`/`join` and `shutdown`.
//! - [`Value`] / [`Array`] (and the lock-free [`RawValue`] / [`RawArray`]):
//!   plain data in shared memory, with an associated lock.
//! - [`Listener`] / [`Client`]: [`Connection`]s between processes that
//!   are not related, over a TCP or Unix socket, optionally authenticated
//!   with a shared key.
//! - [`auth`]: challenge-response authentication of a [`Connection`] with
//!   a shared key (`deliver_challenge` / `answer_challenge`).
//! - [`SharedBytes`]: an immutable, cheaply cloned byte string that a
//!   large pool result or task argument (256 KiB or more, which travels in
//!   a sealed memfd) shares with the read-only mapping it arrived in,
//!   instead of copying it out; [`SharedBytesMut`]: a buffer a task fills
//!   in place, in shared memory, which a pool result hands over by its
//!   descriptor (no copy at all).
//! - [`sync`]: `Lock`, `RLock`, `Semaphore`, `BoundedSemaphore`, `Event`,
//!   `Condition`, `Barrier` shared between processes.
//!
//! Every channel speaks the framing described in `ipc/README.md`:
//! length-prefixed frames with a versioned header and a hard size limit,
//! postcard payloads.

pub mod auth;
mod connection;
mod error;
pub(crate) mod fdpass;
pub(crate) mod frame;
mod listener;
mod queue;
pub(crate) mod sealed;
mod shared_bytes;
mod sharedctypes;
mod shm;
pub mod sync;
mod wait;

/// The thread queues' errors, which [`Queue`] reports too (inside
/// [`QueueError::Queue`]).
pub use crate::queue::{
    GetTimeoutError, PutError, PutTimeoutError, ShutDown, TryGetError, TryPutError,
};
pub use auth::{AuthenticationError, answer_challenge, deliver_challenge};
pub(crate) use connection::wait_readable;
pub use connection::{Connection, Pipe};
pub use error::{
    ConnectionError, ItemError, ItemErrorKind, QueueError, RecvTimeoutError, TaskDoneError,
    TryRecvError,
};
pub use frame::{DEFAULT_MAX_FRAME, PROTOCOL_VERSION};
pub use listener::{
    Address, AddressParseError, Client, DEFAULT_AUTH_TIMEOUT, DEFAULT_BACKLOG, Listener,
    ListenerBuilder, ListenerError,
};
pub(crate) use queue::flush_all;
pub use queue::{
    GetFuture, JoinFuture, JoinableQueue, NotClosedError, PutFuture, Queue, SimpleQueue,
};
pub use shared_bytes::{SharedBytes, SharedBytesMut};
pub(crate) use shared_bytes::{decoding_from, exporting, importing};
pub use sharedctypes::{Array, ArrayGuard, IndexError, RawArray, RawValue, Value, ValueGuard};
pub use wait::{Waitable, wait, wait_deadline, wait_timeout};
