//! Managers: objects that live in one server process and are used from
//! other processes and hosts through proxies (Python's
//! `multiprocessing.managers`).
//!
//! - [`Manager::start`] runs a server in a child process on a private Unix
//!   socket and connects to it: `Manager().dict()`, `.list()`, `.Queue()`
//!   and the rest become [`Manager::dict`], [`Manager::list`],
//!   [`Manager::queue`], ...
//! - [`BaseManager::builder`] registers named objects (a task queue, a
//!   result queue) and serves them on a TCP or Unix address, in this
//!   thread ([`ManagerBuilder::serve`]), in a background thread
//!   ([`ManagerBuilder::spawn`]) or in a child ([`ManagerBuilder::start`]);
//!   clients on other hosts call [`Manager::connect`] and
//!   [`Manager::get`].
//! - Proxies ([`QueueProxy`], [`DictProxy`], [`LockProxy`], ...) are typed:
//!   values travel as MessagePack, the server stores them as opaque bytes.
//!   A proxy passed to another process (inside a task's argument) arrives
//!   as a proxy of the same object.
//!
//! Every connection authenticates with the shared authkey (HMAC-SHA256
//! challenge–response in both directions) before the server does any work,
//! and every later frame carries a MAC; see `docs/PROTOCOL.md`.
//!
//! # Example
//!
//! ```
//! use spindle::manager::Manager;
//! use spindle::queue::BlockingQueue;
//!
//! let manager = Manager::start()?;
//! let d = manager.dict::<String, u32>()?;
//! d.set(&"one".to_string(), &1)?;
//! assert_eq!(d.get(&"one".to_string())?, Some(1));
//!
//! let q = manager.queue::<String>(0)?;
//! q.put("hello".to_string()).unwrap();
//! assert_eq!(q.get().unwrap(), "hello");
//! # Ok::<(), spindle::manager::ManagerError>(())
//! ```

mod broker;
mod client;
mod error;
mod lease;
mod objects;
mod proto;
mod proxy;
mod remote;
mod server;
pub(crate) mod wire;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

pub use broker::{
    BrokerCounts, BrokerProxy, BrokerWorker, DEAD_LETTERS_KEPT, DEFAULT_MAX_DELIVERIES, DeadLetter,
    Delivery, MAX_FETCH, MAX_RESULTS, MAX_WORKERS,
};
pub use error::ManagerError;
pub use proto::{GET_MANY_BYTES, Stats};

/// What `#[spindle::remote]`'s generated code names; not an API.
#[doc(hidden)]
pub mod __private {
    pub use serde;
}
/// The hash of remote traits' signatures (the same as tasks').
pub use crate::process::signature_of;
pub use proxy::{
    ArrayProxy, BarrierProxy, BoundedSemaphoreProxy, ConditionProxy, DictProxy, EventProxy,
    JoinableQueueProxy, LifoQueueProxy, ListProxy, LockProxy, NamespaceProxy, Proxy,
    ProxyLockGuard, ProxyPermit, QueueProxy, RLockProxy, SemaphoreProxy, ValueProxy,
};
pub use remote::{
    RemoteFault, RemoteHandle, RemoteInterface, RemoteObject, decode_args, deserialize_proxy,
    encode_result,
};
pub use server::{
    CHANNEL_STACK, DEFAULT_MAX_CHANNELS, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_OBJECTS, LEASE_TIME,
};
pub use wire::{MAX_FRAME, MAX_PREAUTH, MIN_AUTHKEY, PREAUTH_MAX_FRAME, PREAUTH_TIMEOUT};

use crate::ipc::Address;
use crate::process::{Process, StartMethod};
use client::{ClientConn, Handle};
use proto::{Arg, Op, Value};
use server::{ServerConfig, Shared};

/// This process's authkey (Python's `current_process().authkey`), the
/// default key of managers.
pub(crate) fn process_key() -> Result<Vec<u8>, ManagerError> {
    crate::process::current_process()
        .authkey()
        .map(|k| k.to_vec())
        .map_err(|e| ManagerError::auth(format!("no process authkey to default to: {e}")))
}

/// The server's name for a proxy's kind (a joinable queue is a queue).
pub(crate) fn server_typeid(typeid: &str) -> &str {
    match typeid {
        "JoinableQueue" => "Queue",
        t => t,
    }
}

/// What a registered name holds: the kind of object and how to make it
/// (the `callable` of Python's `BaseManager.register`).
pub struct Typeid {
    name: &'static str,
    arg: Arg,
    /// An object of the user's own type (`#[spindle::remote]`).
    remote: Option<Box<dyn RemoteObject>>,
}

impl fmt::Debug for Typeid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Typeid")
            .field("name", &self.name)
            .field("remote", &self.remote.is_some())
            .finish_non_exhaustive()
    }
}

impl Typeid {
    /// An unbounded FIFO queue (joinable).
    pub fn queue() -> Typeid {
        Typeid::bounded_queue(0)
    }

    /// A FIFO queue of at most `maxsize` items (0: unbounded).
    pub fn bounded_queue(maxsize: usize) -> Typeid {
        Typeid {
            name: "Queue",
            arg: Arg::Size(maxsize as u64),
            remote: None,
        }
    }

    /// A LIFO queue of at most `maxsize` items (0: unbounded).
    pub fn lifo_queue(maxsize: usize) -> Typeid {
        Typeid {
            name: "LifoQueue",
            arg: Arg::Size(maxsize as u64),
            remote: None,
        }
    }

    /// An empty dict.
    pub fn dict() -> Typeid {
        Typeid {
            name: "dict",
            arg: Arg::None,
            remote: None,
        }
    }

    /// An empty list.
    pub fn list() -> Typeid {
        Typeid {
            name: "list",
            arg: Arg::None,
            remote: None,
        }
    }

    /// An empty namespace.
    pub fn namespace() -> Typeid {
        Typeid {
            name: "Namespace",
            arg: Arg::None,
            remote: None,
        }
    }

    /// A value holding `initial`.
    pub fn value<T: Serialize>(initial: &T) -> Result<Typeid, ManagerError> {
        Ok(Typeid {
            name: "Value",
            arg: Arg::Bin(proto::encode_value(initial)?),
            remote: None,
        })
    }

    /// A `Lock`.
    pub fn lock() -> Typeid {
        Typeid {
            name: "Lock",
            arg: Arg::None,
            remote: None,
        }
    }

    /// An `RLock`.
    pub fn rlock() -> Typeid {
        Typeid {
            name: "RLock",
            arg: Arg::None,
            remote: None,
        }
    }

    /// A `Semaphore` of initial value `n`.
    pub fn semaphore(n: usize) -> Typeid {
        Typeid {
            name: "Semaphore",
            arg: Arg::Size(n as u64),
            remote: None,
        }
    }

    /// An object of the user's own type, served as it is: what the proxy
    /// that `#[spindle::remote]` generates builds with its `typeid(obj)`.
    /// Calls run one at a time, in the order they reach the object.
    pub fn remote(obj: impl RemoteObject) -> Typeid {
        Typeid {
            name: obj.typeid(),
            arg: Arg::None,
            remote: Some(Box::new(obj)),
        }
    }

    /// A task broker (at-least-once delivery with leases): see
    /// [`BrokerProxy`].
    pub fn broker() -> Typeid {
        Typeid {
            name: "Broker",
            arg: Arg::None,
            remote: None,
        }
    }

    /// An `Event`.
    pub fn event() -> Typeid {
        Typeid {
            name: "Event",
            arg: Arg::None,
            remote: None,
        }
    }
}

/// Python's `BaseManager`: build a server of named objects.
#[derive(Debug)]
pub struct BaseManager;

impl BaseManager {
    /// A builder: register names, choose the address and key, then
    /// [`serve`](ManagerBuilder::serve), [`spawn`](ManagerBuilder::spawn)
    /// or [`start`](ManagerBuilder::start).
    pub fn builder() -> ManagerBuilder {
        ManagerBuilder::default()
    }
}

/// How a manager server is set up.
#[derive(Debug, Default)]
pub struct ManagerBuilder {
    address: Option<Address>,
    authkey: Option<Vec<u8>>,
    registered: Vec<(String, Typeid)>,
    cfg: ServerConfig,
    start_method: Option<StartMethod>,
}

impl ManagerBuilder {
    /// Serves `typeid` under `name` (`BaseManager.register(name,
    /// callable=...)`): one object, made when the server starts, that every
    /// client reaches with [`Manager::get`].
    pub fn register(mut self, name: impl Into<String>, typeid: Typeid) -> Self {
        self.registered.push((name.into(), typeid));
        self
    }

    /// The address to serve on: `"127.0.0.1:0"` (any free port), a Unix
    /// socket path. Default for [`start`](Self::start): a private Unix
    /// socket in a new directory only this user can enter.
    pub fn bind(mut self, address: impl Into<Address>) -> Self {
        self.address = Some(address.into());
        self
    }

    /// The shared key (at least [`MIN_AUTHKEY`] bytes). Default: this
    /// process's `authkey`, which its children inherit.
    pub fn authkey(mut self, key: &[u8]) -> Self {
        self.authkey = Some(key.to_vec());
        self
    }

    /// Cap on open connections (default [`DEFAULT_MAX_CONNECTIONS`]).
    pub fn max_connections(mut self, n: usize) -> Self {
        self.cfg.max_connections = n;
        self
    }

    /// Cap on channels (client threads with a blocking call) per
    /// connection (default [`DEFAULT_MAX_CHANNELS`]).
    pub fn max_channels(mut self, n: usize) -> Self {
        self.cfg.max_channels = n;
        self
    }

    /// Cap on live objects (default [`DEFAULT_MAX_OBJECTS`]).
    pub fn max_objects(mut self, n: usize) -> Self {
        self.cfg.max_objects = n;
        self
    }

    /// Whether frames after the handshake carry a MAC (default true).
    /// Both ends must agree; turning it off is for measuring its cost.
    pub fn frame_mac(mut self, on: bool) -> Self {
        self.cfg.wire.mac = on;
        self
    }

    fn key(&self) -> Result<Vec<u8>, ManagerError> {
        match &self.authkey {
            Some(k) => Ok(k.clone()),
            None => process_key(),
        }
    }

    fn make_shared(&mut self) -> Result<Arc<Shared>, ManagerError> {
        let shared = Shared::new(self.cfg.clone());
        for (name, t) in self.registered.drain(..) {
            match t.remote {
                Some(obj) => shared.register_remote(&name, obj)?,
                None => shared.register(&name, t.name, t.arg)?,
            }
        }
        Ok(shared)
    }

    /// Serves in this thread until a client calls
    /// [`Manager::shutdown_server`] (Python's `serve_forever`).
    pub fn serve(self) -> Result<(), ManagerError> {
        self.serve_notify(|_| {})
    }

    /// As [`serve`](Self::serve), calling `ready` with the bound address
    /// once clients can connect (`spindle serve` prints it).
    pub fn serve_notify(mut self, ready: impl FnOnce(&Address)) -> Result<(), ManagerError> {
        let address = self
            .address
            .clone()
            .ok_or_else(|| ManagerError::Config("serve needs an address: call bind".into()))?;
        let key = self.key()?;
        let shared = self.make_shared()?;
        let acceptor = server::bind(&address, &key, &self.cfg)?;
        ready(acceptor.address());
        server::serve(shared, acceptor)
    }

    /// Serves in a background thread of this process; the returned
    /// [`Server`] stops it when dropped.
    pub fn spawn(mut self) -> Result<Server, ManagerError> {
        let address = self
            .address
            .clone()
            .ok_or_else(|| ManagerError::Config("spawn needs an address: call bind".into()))?;
        let key = self.key()?;
        let shared = self.make_shared()?;
        let acceptor = server::bind(&address, &key, &self.cfg)?;
        let address = acceptor.address().clone();
        let s2 = shared.clone();
        let thread = std::thread::Builder::new()
            .name("spindle-mgr-server".into())
            .spawn(move || server::serve(s2, acceptor))
            .map_err(ManagerError::Io)?;
        Ok(Server {
            address,
            key,
            shared,
            thread: Some(thread),
            mac: self.cfg.wire.mac,
        })
    }

    /// The start method of [`start`](Self::start)'s child (default
    /// `ForkServer`: a fresh process image that inherits no lock state of
    /// this one; `Fork` works too, with the caveats of forking a threaded
    /// process).
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.start_method = Some(method);
        self
    }

    /// Runs the server in a child process (Python's `BaseManager.start()`)
    /// and connects to it. Dropping the returned [`Manager`] shuts the
    /// server down; the server also exits when this process dies.
    pub fn start(self) -> Result<Manager, ManagerError> {
        let key = self.key()?;
        let (address, private_dir) = match self.address.clone() {
            Some(a) => (a, None),
            None => {
                let dir = private_dir()?;
                (Address::Unix(dir.join("manager.sock")), Some(dir))
            }
        };
        let (rx, tx) = crate::ipc::Pipe(false).map_err(ManagerError::Io)?;
        let mut registered = Vec::new();
        let mut remotes = Vec::new();
        for (n, t) in self.registered {
            match t.remote {
                Some(obj) => remotes.push((n, obj)),
                None => registered.push((n, t.name.to_string(), t.arg)),
            }
        }
        let args = ChildArgs {
            address: address.to_string(),
            key: key.clone(),
            registered,
            cfg: ChildConfig::from(&self.cfg),
        };
        // Remote objects are values of this process: only a forked child
        // has them (Python pickles the registry instead).
        let builder = Process::builder().name("spindle-manager").daemon(true);
        let builder = if remotes.is_empty() {
            builder
                .task(manager_server::call(args, tx))
                .start_method(self.start_method.unwrap_or(StartMethod::ForkServer))
        } else {
            match self.start_method {
                None | Some(StartMethod::Fork) => {}
                Some(m) => {
                    return Err(ManagerError::Config(format!(
                        "remote objects reach the server's child only by fork, not by {}: \
                         leave the start method unset, or serve them with spawn()",
                        m.name()
                    )));
                }
            }
            builder.closure(move || run_server(args, remotes, tx))
        };
        let mut child = builder
            .start()
            .map_err(|e| ManagerError::Remote(format!("could not start the server: {e}")))?;
        let bound = match rx.recv_timeout::<Result<String, String>>(Duration::from_secs(30)) {
            Ok(Ok(a)) => a,
            Ok(Err(m)) => {
                let _ = child.join_timeout(Duration::from_secs(5));
                return Err(ManagerError::Remote(format!(
                    "the server could not start: {m}"
                )));
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.join_timeout(Duration::from_secs(5));
                return Err(ManagerError::gone(format!("the server did not start: {e}")));
            }
        };
        let address: Address = bound
            .parse()
            .map_err(|e| ManagerError::protocol(format!("server address {bound:?}: {e}")))?;
        let conn = client::open_registered(&address, &key, &self.cfg.wire)?;
        Ok(Manager {
            conn,
            owned: Some(Owned { child, private_dir }),
        })
    }

    /// Connects to a running server with this builder's key and settings.
    /// Each call opens a connection of its own, as Python's `connect()`
    /// does; proxies that arrive in this process for the same address (as
    /// task arguments) share the newest one.
    pub fn connect(self, address: impl Into<Address>) -> Result<Manager, ManagerError> {
        let key = self.key()?;
        let conn = client::open_registered(&address.into(), &key, &self.cfg.wire)?;
        Ok(Manager { conn, owned: None })
    }
}

/// What [`ManagerBuilder::start`]'s child needs (a task argument).
#[derive(serde::Serialize, serde::Deserialize)]
struct ChildArgs {
    address: String,
    key: Vec<u8>,
    registered: Vec<(String, String, Arg)>,
    cfg: ChildConfig,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ChildConfig {
    mac: bool,
    max_frame: usize,
    max_connections: usize,
    max_channels: usize,
    max_objects: usize,
    lease_ms: u64,
}

impl From<&ServerConfig> for ChildConfig {
    fn from(c: &ServerConfig) -> Self {
        ChildConfig {
            mac: c.wire.mac,
            max_frame: c.wire.max_frame,
            max_connections: c.max_connections,
            max_channels: c.max_channels,
            max_objects: c.max_objects,
            lease_ms: c.lease.as_millis() as u64,
        }
    }
}

impl ChildConfig {
    fn into_config(self) -> ServerConfig {
        let mut c = ServerConfig::default();
        c.wire.mac = self.mac;
        c.wire.max_frame = self.max_frame;
        c.max_connections = self.max_connections;
        c.max_channels = self.max_channels;
        c.max_objects = self.max_objects;
        c.lease = Duration::from_millis(self.lease_ms);
        c
    }
}

/// The server process of [`ManagerBuilder::start`]: binds, says where (or
/// why not) on `ready`, serves until told to stop or until its parent dies.
#[crate::task]
fn manager_server(args: ChildArgs, ready: crate::ipc::Connection) {
    run_server(args, Vec::new(), ready)
}

/// The body of [`manager_server`], with the remote objects a forked child
/// brings along.
fn run_server(
    args: ChildArgs,
    remotes: Vec<(String, Box<dyn RemoteObject>)>,
    ready: crate::ipc::Connection,
) {
    let start = || -> Result<(Arc<Shared>, wire::Acceptor), ManagerError> {
        let address: Address = args
            .address
            .parse()
            .map_err(|e| ManagerError::Remote(format!("address {:?}: {e}", args.address)))?;
        let cfg = args.cfg.into_config();
        let shared = Shared::new(cfg.clone());
        for (name, typeid, arg) in args.registered {
            shared.register(&name, &typeid, arg)?;
        }
        for (name, obj) in remotes {
            shared.register_remote(&name, obj)?;
        }
        let acceptor = server::bind(&address, &args.key, &cfg)?;
        Ok((shared, acceptor))
    };
    match start() {
        Ok((shared, acceptor)) => {
            watch_parent(&shared);
            let _ = ready.send(&Ok::<String, String>(acceptor.address().to_string()));
            drop(ready);
            let _ = server::serve(shared, acceptor);
        }
        Err(e) => {
            let _ = ready.send(&Err::<String, String>(e.to_string()));
        }
    }
}

/// In the server's child: stop when the parent process dies (checked every
/// 100 ms through the parent's process descriptor). The start method's
/// parent-death signal follows the *thread* that started the child, which
/// may end long before its process, so it is turned off here.
fn watch_parent(shared: &Arc<Shared>) {
    let _ = nix::sys::prctl::set_pdeathsig(None::<nix::sys::signal::Signal>);
    let Some(parent) = crate::process::parent_process() else {
        return;
    };
    let shared = shared.clone();
    let _ = std::thread::Builder::new()
        .name("spindle-mgr-parent".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            while parent.is_alive() {
                std::thread::sleep(Duration::from_millis(100));
            }
            shared.stop();
        });
}

/// Each item encoded (a list's or an array's initial items).
fn encode_all<T: Serialize>(items: &[T]) -> Result<Vec<proto::Bin>, ManagerError> {
    items.iter().map(proto::encode_value).collect()
}

/// The outcome of a server thread, once it ended.
fn joined(t: std::thread::JoinHandle<Result<(), ManagerError>>) -> Result<(), ManagerError> {
    t.join()
        .unwrap_or_else(|_| Err(ManagerError::Remote("server thread panicked".into())))
}

fn private_dir() -> Result<PathBuf, ManagerError> {
    use std::os::unix::fs::DirBuilderExt;
    let mut r = [0u8; 8];
    getrandom::fill(&mut r)
        .map_err(|e| ManagerError::Remote(format!("no random bytes for a socket path: {e}")))?;
    let dir = std::env::temp_dir().join(format!(
        "spindle-mgr-{}-{:016x}",
        std::process::id(),
        u64::from_le_bytes(r)
    ));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(ManagerError::Io)?;
    Ok(dir)
}

#[derive(Debug)]
struct Owned {
    child: Process,
    private_dir: Option<PathBuf>,
}

/// A connection to a manager server, and the server itself when this
/// handle started it (Python's `SyncManager`).
pub struct Manager {
    conn: Arc<ClientConn>,
    owned: Option<Owned>,
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manager")
            .field("address", &self.conn.address)
            .field("started", &self.owned.is_some())
            .finish()
    }
}

impl Manager {
    /// Starts a server in a child process on a private Unix socket, with
    /// this process's authkey, and connects to it (`Manager()`).
    pub fn start() -> Result<Manager, ManagerError> {
        ManagerBuilder::default().start()
    }

    /// A builder, as [`BaseManager::builder`].
    pub fn builder() -> ManagerBuilder {
        ManagerBuilder::default()
    }

    /// Connects to a running server at `address` with `authkey`
    /// (`BaseManager(address, authkey).connect()`). Dropping the handle
    /// only disconnects.
    pub fn connect(address: impl Into<Address>, authkey: &[u8]) -> Result<Manager, ManagerError> {
        ManagerBuilder::default().authkey(authkey).connect(address)
    }

    /// The server's address.
    pub fn address(&self) -> &Address {
        &self.conn.address
    }

    /// The child process running the server, if this handle started it.
    pub fn process(&self) -> Option<&Process> {
        self.owned.as_ref().map(|o| &o.child)
    }

    fn create<P: Proxy>(&self, arg: Arg) -> Result<P, ManagerError> {
        let v = self.conn.call_checked(Op::Create {
            typeid: P::TYPEID.to_string(),
            fp: P::fingerprint(),
            arg,
        })?;
        self.proxy(v)
    }

    fn proxy<P: Proxy>(&self, v: Value) -> Result<P, ManagerError> {
        match v {
            Value::Token(token) => Ok(<P as proxy::sealed::Sealed>::from_handle(Arc::new(
                Handle::new(self.conn.clone(), token),
            ))),
            v => Err(ManagerError::protocol(format!(
                "expected a token, got {v:?}"
            ))),
        }
    }

    /// The object registered as `name`, as proxy `P` (`manager.name()` in
    /// Python). A registered object of another kind or item type is
    /// [`ManagerError::WrongType`].
    pub fn get<P: Proxy>(&self, name: &str) -> Result<P, ManagerError> {
        let v = self.conn.call_checked(Op::Lookup {
            name: name.to_string(),
            typeid: server_typeid(P::TYPEID).to_string(),
            fp: P::fingerprint(),
        })?;
        self.proxy(v)
    }

    /// A new FIFO queue of at most `maxsize` items, 0 for no limit
    /// (`Queue(maxsize)`); joinable.
    pub fn queue<T>(&self, maxsize: usize) -> Result<QueueProxy<T>, ManagerError> {
        self.create(Arg::Size(maxsize as u64))
    }

    /// A new joinable queue (`JoinableQueue(maxsize)`): the same as
    /// [`queue`](Self::queue).
    pub fn joinable_queue<T>(&self, maxsize: usize) -> Result<JoinableQueueProxy<T>, ManagerError> {
        self.create(Arg::Size(maxsize as u64))
    }

    /// A new LIFO queue.
    pub fn lifo_queue<T>(&self, maxsize: usize) -> Result<LifoQueueProxy<T>, ManagerError> {
        self.create(Arg::Size(maxsize as u64))
    }

    /// A new, empty dict (`dict()`).
    pub fn dict<K, V>(&self) -> Result<DictProxy<K, V>, ManagerError> {
        self.create(Arg::None)
    }

    /// A new, empty list (`list()`).
    pub fn list<T>(&self) -> Result<ListProxy<T>, ManagerError> {
        self.create(Arg::None)
    }

    /// A new list holding `items` (`list(sequence)`).
    pub fn list_from<T: Serialize>(&self, items: &[T]) -> Result<ListProxy<T>, ManagerError> {
        self.create(Arg::Bins(encode_all(items)?))
    }

    /// A new, empty namespace (`Namespace()`).
    pub fn namespace(&self) -> Result<NamespaceProxy, ManagerError> {
        self.create(Arg::None)
    }

    /// A new value (`Value(typecode, value)`).
    pub fn value<T: Serialize>(&self, initial: &T) -> Result<ValueProxy<T>, ManagerError> {
        self.create(Arg::Bin(proto::encode_value(initial)?))
    }

    /// A new fixed-length array holding `items` (`Array(typecode,
    /// sequence)`).
    pub fn array<T: Serialize>(&self, items: &[T]) -> Result<ArrayProxy<T>, ManagerError> {
        self.create(Arg::Bins(encode_all(items)?))
    }

    /// A new `Lock`.
    pub fn lock(&self) -> Result<LockProxy, ManagerError> {
        self.create(Arg::None)
    }

    /// A new `RLock`.
    pub fn rlock(&self) -> Result<RLockProxy, ManagerError> {
        self.create(Arg::None)
    }

    /// A new `Semaphore(value)`.
    pub fn semaphore(&self, value: usize) -> Result<SemaphoreProxy, ManagerError> {
        self.create(Arg::Size(value as u64))
    }

    /// A new `BoundedSemaphore(value)`.
    pub fn bounded_semaphore(&self, value: usize) -> Result<BoundedSemaphoreProxy, ManagerError> {
        self.create(Arg::Size(value as u64))
    }

    /// A new `Event`.
    pub fn event(&self) -> Result<EventProxy, ManagerError> {
        self.create(Arg::None)
    }

    /// A new `Condition` (over an `RLock`).
    pub fn condition(&self) -> Result<ConditionProxy, ManagerError> {
        self.create(Arg::None)
    }

    /// A new `Barrier(parties)`; 0 parties is an error.
    pub fn barrier(&self, parties: usize) -> Result<BarrierProxy, ManagerError> {
        self.create(Arg::Size(parties as u64))
    }

    /// A new task broker on the server.
    pub fn broker<T>(&self) -> Result<BrokerProxy<T>, ManagerError> {
        self.create(Arg::None)
    }

    /// The server's counters.
    pub fn stats(&self) -> Result<Stats, ManagerError> {
        match self.conn.call_checked(Op::Stats)? {
            Value::Stats(s) => Ok(s),
            v => Err(ManagerError::protocol(format!("expected stats, got {v:?}"))),
        }
    }

    /// Asks the server to stop (any authenticated client may), and, if
    /// this handle started it, waits for its process to exit.
    pub fn shutdown_server(mut self) -> Result<(), ManagerError> {
        self.stop_server()
    }

    fn stop_server(&mut self) -> Result<(), ManagerError> {
        let r = match self.conn.call_checked(Op::Shutdown) {
            Ok(_) => Ok(()),
            Err(e) if e.is_server_gone() => Ok(()),
            Err(e) => Err(e),
        };
        self.conn.close();
        if let Some(mut owned) = self.owned.take() {
            let deadline = Instant::now() + Duration::from_secs(5);
            if owned.child.join_deadline(deadline).is_err() {
                let _ = owned.child.kill();
                let _ = owned.child.join_timeout(Duration::from_secs(5));
            }
            if let Some(dir) = owned.private_dir {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
        r
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        if self.owned.is_some() {
            let _ = self.stop_server();
        }
    }
}

/// A server running in a background thread of this process
/// ([`ManagerBuilder::spawn`]); dropping it stops the server.
pub struct Server {
    address: Address,
    key: Vec<u8>,
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<Result<(), ManagerError>>>,
    mac: bool,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("address", &self.address)
            .finish()
    }
}

impl Server {
    /// The bound address (with the port chosen for port 0).
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// A client of this server (in this process).
    pub fn connect(&self) -> Result<Manager, ManagerError> {
        Manager::builder()
            .authkey(&self.key)
            .frame_mac(self.mac)
            .connect(self.address.clone())
    }

    /// The server's counters, read directly.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Stops the server and waits for its accept loop to end.
    pub fn stop(mut self) -> Result<(), ManagerError> {
        self.stop_inner()
    }

    /// Whether the server has stopped (a client called
    /// [`Manager::shutdown_server`], or it failed).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Waits until the server stops (Python's `serve_forever` returning):
    /// a client calls [`Manager::shutdown_server`], or [`stop`](Self::stop)
    /// is called from another thread through [`Server::stopper`].
    pub fn wait(mut self) -> Result<(), ManagerError> {
        self.thread.take().map_or(Ok(()), joined)
    }

    /// A handle that stops this server from any thread (a signal handler's
    /// thread, say).
    pub fn stopper(&self) -> Stopper {
        Stopper {
            shared: self.shared.clone(),
        }
    }

    fn stop_inner(&mut self) -> Result<(), ManagerError> {
        self.shared.stop();
        self.thread.take().map_or(Ok(()), joined)
    }
}

/// Stops a [`Server`] from another thread ([`Server::stopper`]).
#[derive(Clone)]
pub struct Stopper {
    shared: Arc<Shared>,
}

impl fmt::Debug for Stopper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Stopper")
    }
}

impl Stopper {
    /// Stops the server: its accept loop ends and every connection closes.
    pub fn stop(&self) {
        self.shared.stop();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}
