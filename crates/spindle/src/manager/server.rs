//! The manager server: objects, connections, channels.
//!
//! One thread per connection reads its requests. A call that cannot block
//! and owns nothing runs right there (the fast path: no thread hand-off).
//! A call that may block, or takes or gives a lock, runs in its channel's
//! own server thread (one per client thread, made on first need, small
//! stack), so a blocked `get` of one client thread never holds up a `put`
//! of another, and an `RLock` is owned by the channel that took it, as in
//! Python where each client thread is served by its own server thread.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use super::error::ManagerError;
use super::objects::{Cancel, Effect, Held, Object};
use super::proto::{self, Arg, Call, Fail, Op, Reply, Request, Stats, Token, Value, Wait};
use super::wire::{Acceptor, Closer, FrameSink, Session, Stream, WireConfig, WireCounters};
use crate::ipc::Address;

/// Default cap on open connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Default cap on channels (client threads) per connection.
pub const DEFAULT_MAX_CHANNELS: usize = 1024;
/// Default cap on live objects.
pub const DEFAULT_MAX_OBJECTS: usize = 1 << 20;
/// How long a proxy passed to another process keeps its object alive
/// before the receiver claims it.
pub const LEASE_TIME: Duration = Duration::from_secs(60);
/// Stack of a channel's server thread.
pub const CHANNEL_STACK: usize = 128 * 1024;

/// The server's settings.
#[derive(Clone, Debug)]
pub(crate) struct ServerConfig {
    pub(crate) wire: WireConfig,
    pub(crate) max_connections: usize,
    pub(crate) max_channels: usize,
    pub(crate) max_objects: usize,
    pub(crate) lease: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            wire: WireConfig::default(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_channels: DEFAULT_MAX_CHANNELS,
            max_objects: DEFAULT_MAX_OBJECTS,
            lease: LEASE_TIME,
        }
    }
}

/// One object and its bookkeeping.
#[derive(Debug)]
struct Entry {
    obj: Object,
    typeid: String,
    /// The item type's fingerprint; empty until a typed proxy first asks.
    fp: Mutex<String>,
    /// References from connections and leases.
    refs: AtomicUsize,
    /// Registered under a name: lives as long as the server.
    pinned: bool,
    /// The channel holding this `Lock`, if any (a Lock may be released by
    /// another channel, so its holder is kept here, not in the channel).
    holder: Mutex<Option<(u64, u32)>>,
}

type ChanKey = (u64, u32);

#[derive(Debug, Default)]
struct Counters {
    owner_deaths: AtomicU64,
    items_returned: AtomicU64,
    channels: AtomicU64,
    in_channel: AtomicU64,
    connections: AtomicU64,
}

/// What every connection of one server shares.
#[derive(Debug)]
pub(crate) struct Shared {
    cfg: ServerConfig,
    entries: Mutex<HashMap<u64, Arc<Entry>>>,
    names: Mutex<HashMap<String, u64>>,
    next_obj: AtomicU64,
    leases: Mutex<HashMap<u64, (u64, Instant)>>,
    next_conn: AtomicU64,
    counters: Counters,
    stop: AtomicBool,
    closer: Mutex<Option<Closer>>,
    conns: Mutex<HashMap<u64, Stream>>,
    wire: Mutex<Option<Arc<WireCounters>>>,
}

impl Shared {
    pub(crate) fn new(cfg: ServerConfig) -> Arc<Shared> {
        Arc::new(Shared {
            cfg,
            entries: Mutex::new(HashMap::new()),
            names: Mutex::new(HashMap::new()),
            next_obj: AtomicU64::new(1),
            leases: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
            counters: Counters::default(),
            stop: AtomicBool::new(false),
            closer: Mutex::new(None),
            conns: Mutex::new(HashMap::new()),
            wire: Mutex::new(None),
        })
    }

    /// Registers an object under `name` (a BaseManager's `register`).
    pub(crate) fn register(&self, name: &str, typeid: &str, arg: Arg) -> Result<(), ManagerError> {
        let obj = Object::create(typeid, arg).map_err(Fail::into_error)?;
        let id = self.insert(obj, typeid, String::new(), true)?;
        self.names.lock().insert(name.to_string(), id);
        Ok(())
    }

    /// Registers a remote object under `name`; its signature is its
    /// fingerprint, so a proxy of another version of its trait is refused.
    pub(crate) fn register_remote(
        &self,
        name: &str,
        obj: Box<dyn super::remote::RemoteObject>,
    ) -> Result<(), ManagerError> {
        let cell = super::remote::RemoteCell::new(obj);
        let typeid = cell.typeid();
        let fp = format!("{:016x}", cell.signature());
        let id = self.insert(Object::Remote(cell), typeid, fp, true)?;
        self.names.lock().insert(name.to_string(), id);
        Ok(())
    }

    fn insert(
        &self,
        obj: Object,
        typeid: &str,
        fp: String,
        pinned: bool,
    ) -> Result<u64, ManagerError> {
        let mut entries = self.entries.lock();
        if entries.len() >= self.cfg.max_objects {
            return Err(ManagerError::Limit(format!(
                "{} objects (the server's max_objects)",
                self.cfg.max_objects
            )));
        }
        let id = self.next_obj.fetch_add(1, Ordering::Relaxed);
        entries.insert(
            id,
            Arc::new(Entry {
                obj,
                typeid: canonical(typeid).to_string(),
                fp: Mutex::new(fp),
                refs: AtomicUsize::new(0),
                pinned,
                holder: Mutex::new(None),
            }),
        );
        Ok(id)
    }

    fn entry(&self, id: u64) -> Option<Arc<Entry>> {
        self.entries.lock().get(&id).cloned()
    }

    fn incref(&self, id: u64) -> bool {
        match self.entries.lock().get(&id) {
            Some(e) => {
                e.refs.fetch_add(1, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    fn decref(&self, id: u64) {
        let mut entries = self.entries.lock();
        if let Some(e) = entries.get(&id)
            && e.refs.fetch_sub(1, Ordering::Relaxed) == 1
            && !e.pinned
        {
            entries.remove(&id);
        }
    }

    /// Drops expired leases (and the references they held).
    fn sweep_leases(&self) {
        let now = Instant::now();
        let expired: Vec<u64> = {
            let mut leases = self.leases.lock();
            let gone: Vec<u64> = leases
                .iter()
                .filter(|(_, (_, until))| *until <= now)
                .map(|(t, _)| *t)
                .collect();
            gone.iter()
                .filter_map(|t| leases.remove(t))
                .map(|(o, _)| o)
                .collect()
        };
        for obj in expired {
            self.decref(obj);
        }
    }

    pub(crate) fn stats(&self) -> Stats {
        let wire = self.wire.lock().clone();
        let w = |f: fn(&WireCounters) -> u64| wire.as_deref().map_or(0, f);
        Stats {
            handshakes_accepted: w(WireCounters::accepted),
            handshakes_refused: w(|c| c.failed() + c.timed_out() + c.refused()),
            handshakes_pending: w(WireCounters::pending),
            connections: self.counters.connections.load(Ordering::Relaxed),
            objects: self.entries.lock().len() as u64,
            channels: self.counters.channels.load(Ordering::Relaxed),
            in_channel: self.counters.in_channel.load(Ordering::Relaxed),
            owner_deaths: self.counters.owner_deaths.load(Ordering::Relaxed),
            items_returned: self.counters.items_returned.load(Ordering::Relaxed),
        }
    }

    /// Asks the server to stop: the accept loop ends and every connection
    /// is closed.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(c) = self.closer.lock().as_ref() {
            c.close();
        }
        for s in self.conns.lock().values() {
            s.shutdown();
        }
    }
}

/// Queue and JoinableQueue are one kind of object.
fn canonical(typeid: &str) -> &str {
    match typeid {
        "JoinableQueue" => "Queue",
        t => t,
    }
}

/// Serves `acceptor` until [`Shared::stop`]: one thread per connection.
pub(crate) fn serve(shared: Arc<Shared>, mut acceptor: Acceptor) -> Result<(), ManagerError> {
    *shared.closer.lock() = Some(acceptor.closer());
    *shared.wire.lock() = Some(acceptor.counters());
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let session = match acceptor.accept() {
            Ok(s) => s,
            Err(e) if e.is_server_gone() => break,
            Err(ManagerError::Io(e)) if is_transient(&e) => {
                // Out of descriptors and the like: back off, then serve on.
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            Err(e) => return Err(e),
        };
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let shared2 = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("spindle-mgr-conn".into())
            .stack_size(256 * 1024)
            .spawn(move || serve_connection(shared2, session));
        if spawned.is_err() {
            // Out of threads: the session is dropped (closed); the client
            // sees the server gone, the server goes on.
            continue;
        }
    }
    shared.stop();
    Ok(())
}

fn is_transient(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM | libc::ECONNABORTED)
    ) || e.kind() == std::io::ErrorKind::Interrupted
}

/// One connection's state, shared by its reader and channel threads.
#[derive(Debug)]
struct Conn {
    id: u64,
    shared: Arc<Shared>,
    sink: Mutex<FrameSink>,
    stream: Stream,
    closed: AtomicBool,
    refs: Mutex<HashMap<u64, usize>>,
    /// The async calls running now, by request id, for `Cancel`.
    tokens: Mutex<HashMap<u64, Arc<AsyncToken>>>,
}

/// The life of one async call: waiting, then committed (its item taken or
/// put) or cancelled, whichever comes first; `replied` once its reply is
/// written.
#[derive(Debug, Default)]
struct AsyncToken {
    state: std::sync::atomic::AtomicU8,
    replied: AtomicBool,
    obj: u64,
    /// Its place in a queue's line (ticket, getter?), if it waits in one.
    line: Mutex<Option<(u64, bool)>>,
}

const WAITING: u8 = 0;
const COMMITTED: u8 = 1;
const CANCELLED: u8 = 2;

/// An async call's view of cancellation: its connection's, plus its own.
struct AsyncCancel<'a> {
    conn: &'a Conn,
    token: &'a AsyncToken,
}

impl Cancel for AsyncCancel<'_> {
    fn cancelled(&self) -> bool {
        self.token.state.load(Ordering::SeqCst) == CANCELLED || self.conn.cancelled()
    }
    fn commit(&self) -> bool {
        match self.token.state.compare_exchange(
            WAITING,
            COMMITTED,
            Ordering::SeqCst,
            Ordering::SeqCst,
        ) {
            Ok(_) => true,
            Err(now) => now == COMMITTED,
        }
    }
}

impl Cancel for Conn {
    fn cancelled(&self) -> bool {
        self.closed.load(Ordering::Relaxed) || self.stream.peer_gone()
    }
}

/// A call that never waits needs no cancel check.
struct Never;
impl Cancel for Never {
    fn cancelled(&self) -> bool {
        false
    }
}

impl Conn {
    /// Sends a reply; false if the connection is gone.
    fn reply(&self, id: u64, out: Result<Value, Fail>) -> bool {
        if id == 0 {
            return true;
        }
        let mut buf = Vec::with_capacity(64);
        if proto::encode(&Reply { id, out }, &mut buf).is_err() {
            return false;
        }
        let ok = self.sink.lock().send(&buf).is_ok();
        if !ok {
            self.closed.store(true, Ordering::SeqCst);
            self.stream.shutdown();
        }
        ok
    }

    fn add_ref(&self, obj: u64) {
        *self.refs.lock().entry(obj).or_insert(0) += 1;
    }

    fn holds(&self, obj: u64) -> bool {
        self.refs.lock().contains_key(&obj)
    }
}

#[derive(Debug)]
struct Chan {
    tx: Sender<(Request, Option<u64>)>,
    pending: Arc<AtomicUsize>,
}

fn serve_connection(shared: Arc<Shared>, session: Session) {
    let Session {
        sink,
        mut source,
        first,
        stream,
        ..
    } = session;
    let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    let Ok(stream_copy) = stream.try_clone() else {
        return;
    };
    let conn = Arc::new(Conn {
        id,
        shared: shared.clone(),
        sink: Mutex::new(sink),
        stream,
        closed: AtomicBool::new(false),
        refs: Mutex::new(HashMap::new()),
        tokens: Mutex::new(HashMap::new()),
    });
    let over = {
        let mut conns = shared.conns.lock();
        let over = conns.len() >= shared.cfg.max_connections;
        if !over {
            conns.insert(id, stream_copy);
        }
        over
    };
    if over {
        if let Ok(req) = proto::decode::<Request>(&first) {
            conn.reply(
                req.id,
                Err(Fail::Limit(format!(
                    "{} connections (the server's max_connections)",
                    shared.cfg.max_connections
                ))),
            );
        }
        conn.stream.shutdown();
        return;
    }
    shared.counters.connections.fetch_add(1, Ordering::Relaxed);
    let mut channels: HashMap<u32, Chan> = HashMap::new();
    let mut buf = first;
    loop {
        if buf.is_empty() && source.recv(&mut buf).is_err() {
            break;
        }
        let req = match proto::decode::<Request>(&buf) {
            Ok(r) => r,
            Err(_) => break, // garbage after authentication: drop only this connection
        };
        buf.clear();
        if !dispatch(&conn, &mut channels, req) {
            break;
        }
    }
    // The connection is gone: wake and end its channels (each releases what
    // its client held), drop its references.
    conn.closed.store(true, Ordering::SeqCst);
    conn.stream.shutdown();
    drop(channels);
    let refs: Vec<(u64, usize)> = conn.refs.lock().drain().collect();
    for (obj, n) in refs {
        for _ in 0..n {
            shared.decref(obj);
        }
    }
    shared.conns.lock().remove(&id);
    shared.counters.connections.fetch_sub(1, Ordering::Relaxed);
}

/// Handles one request; false ends the connection.
fn dispatch(conn: &Arc<Conn>, channels: &mut HashMap<u32, Chan>, req: Request) -> bool {
    let shared = &conn.shared;
    let Request { ch, id, op } = req;
    let out = match op {
        Op::Hello { .. } => Ok(Value::Unit),
        Op::Create { typeid, fp, arg } => Object::create(&typeid, arg).and_then(|obj| {
            let oid = shared
                .insert(obj, &typeid, fp.clone(), false)
                .map_err(|e| Fail::Limit(e.to_string()))?;
            shared.incref(oid);
            conn.add_ref(oid);
            Ok(Value::Token(Token {
                obj: oid,
                typeid: canonical(&typeid).to_string(),
                fp,
            }))
        }),
        Op::Lookup { name, typeid, fp } => {
            let oid = shared.names.lock().get(&name).copied();
            match oid.and_then(|o| shared.entry(o).map(|e| (o, e))) {
                None => Err(Fail::NotFound(format!("object registered as {name:?}"))),
                Some((oid, e)) => check_type(&e, &typeid, &fp).map(|()| {
                    shared.incref(oid);
                    conn.add_ref(oid);
                    Value::Token(Token {
                        obj: oid,
                        typeid: e.typeid.clone(),
                        fp,
                    })
                }),
            }
        }
        Op::Incref { obj } => {
            if conn.holds(obj) && shared.incref(obj) {
                conn.add_ref(obj);
                Ok(Value::Unit)
            } else {
                Err(Fail::NotFound(format!("object {obj}")))
            }
        }
        Op::Adopt { obj } => {
            // Any authenticated connection may call any live object (see
            // `Op::Call`); adopting one only keeps it alive as long as this
            // connection holds the reference.
            if shared.incref(obj) {
                conn.add_ref(obj);
                Ok(Value::Unit)
            } else {
                Err(Fail::NotFound(format!("object {obj}")))
            }
        }
        Op::Decref { obj } => {
            let mut refs = conn.refs.lock();
            match refs.get_mut(&obj) {
                Some(n) => {
                    *n -= 1;
                    if *n == 0 {
                        refs.remove(&obj);
                    }
                    drop(refs);
                    shared.decref(obj);
                    Ok(Value::Unit)
                }
                None => Err(Fail::NotFound(format!("object {obj}"))),
            }
        }
        Op::Lease { obj } => {
            shared.sweep_leases();
            if conn.holds(obj) && shared.incref(obj) {
                let mut ticket = [0u8; 8];
                match getrandom::fill(&mut ticket) {
                    Ok(()) => {
                        let t = u64::from_le_bytes(ticket) | 1;
                        shared
                            .leases
                            .lock()
                            .insert(t, (obj, Instant::now() + shared.cfg.lease));
                        Ok(Value::U64(t))
                    }
                    Err(e) => {
                        shared.decref(obj);
                        Err(Fail::BadArg(format!(
                            "no random bytes for a lease ticket: {e}"
                        )))
                    }
                }
            } else {
                Err(Fail::NotFound(format!("object {obj}")))
            }
        }
        Op::Claim { ticket } => {
            shared.sweep_leases();
            let lease = shared.leases.lock().remove(&ticket);
            match lease.and_then(|(o, _)| shared.entry(o).map(|e| (o, e))) {
                Some((oid, e)) => {
                    // The lease's reference becomes this connection's.
                    conn.add_ref(oid);
                    Ok(Value::Token(Token {
                        obj: oid,
                        typeid: e.typeid.clone(),
                        fp: e.fp.lock().clone(),
                    }))
                }
                None => Err(Fail::NotFound(
                    "lease (expired, already claimed or never made)".into(),
                )),
            }
        }
        Op::CallAsync { obj, call } => match shared.entry(obj) {
            Some(entry) => {
                conn.tokens.lock().insert(
                    id,
                    Arc::new(AsyncToken {
                        obj,
                        ..AsyncToken::default()
                    }),
                );
                return to_channel(conn, channels, ch, id, Op::CallAsync { obj, call }, &entry);
            }
            None => Err(Fail::NotFound(format!("object {obj}"))),
        },
        Op::Cancel { id: target } => {
            let token = conn.tokens.lock().get(&target).cloned();
            match token {
                // Done: its reply was written before this one.
                None => Ok(Value::Bool(false)),
                Some(t) => match t.state.compare_exchange(
                    WAITING,
                    CANCELLED,
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                ) {
                    Ok(_) => {
                        // Wake it, so that it ends now rather than at the
                        // end of its wait's slice.
                        if let Some(e) = shared.entry(t.obj)
                            && let Object::Queue(q) = &e.obj
                        {
                            match *t.line.lock() {
                                Some((ticket, getter)) => q.leave_line(ticket, getter),
                                None => q.wake_all(),
                            }
                        }
                        Ok(Value::Bool(true))
                    }
                    Err(_) => {
                        // It took effect: let its reply go out first.
                        let since = Instant::now();
                        while !t.replied.load(Ordering::SeqCst)
                            && since.elapsed() < Duration::from_secs(10)
                        {
                            std::thread::yield_now();
                        }
                        Ok(Value::Bool(false))
                    }
                },
            }
        }
        Op::CloseChannel => {
            // Dropping the sender ends the channel's thread once it has run
            // what was queued; it releases what its client held.
            channels.remove(&ch);
            Ok(Value::Unit)
        }
        Op::Stats => Ok(Value::Stats(shared.stats())),
        Op::Shutdown => {
            conn.reply(id, Ok(Value::Unit));
            shared.stop();
            return false;
        }
        Op::Call { obj, call } => {
            // Any authenticated connection may call any live object: a
            // child made by fork calls through its own connection on the
            // reference its parent holds.
            match shared.entry(obj) {
                Some(entry) => return call_object(conn, channels, ch, id, obj, entry, call),
                None => Err(Fail::NotFound(format!("object {obj}"))),
            }
        }
    };
    conn.reply(id, out)
}

fn check_type(e: &Entry, typeid: &str, fp: &str) -> Result<(), Fail> {
    if canonical(typeid) != e.typeid {
        return Err(Fail::WrongType {
            expected: typeid.to_string(),
            found: e.typeid.clone(),
        });
    }
    let mut have = e.fp.lock();
    if have.is_empty() {
        *have = fp.to_string();
    } else if !fp.is_empty() && *have != fp {
        return Err(Fail::WrongType {
            expected: format!("{typeid}<{fp}>"),
            found: format!("{}<{have}>", e.typeid),
        });
    }
    Ok(())
}

fn call_object(
    conn: &Arc<Conn>,
    channels: &mut HashMap<u32, Chan>,
    ch: u32,
    id: u64,
    obj: u64,
    entry: Arc<Entry>,
    call: Call,
) -> bool {
    let idle = channels
        .get(&ch)
        .is_none_or(|c| c.pending.load(Ordering::Acquire) == 0);
    // The fast path: runs here when the channel has nothing queued and the
    // call neither waits nor owns anything. A blocking put/get is tried
    // here once without waiting; only if it would wait does it go to the
    // channel's thread.
    let call = if idle {
        match call {
            Call::Put { item, wait } if wait != Wait::No => {
                if let Object::Queue(q) = &entry.obj {
                    match q.put(item.clone(), Wait::No, &Never) {
                        Err(Fail::Full) => Call::Put { item, wait },
                        out => return conn.reply(id, out),
                    }
                } else {
                    Call::Put { item, wait }
                }
            }
            Call::Get { wait } if wait != Wait::No => {
                if let Object::Queue(q) = &entry.obj {
                    match q.get(Wait::No, &Never) {
                        Err(Fail::Empty) => Call::Get { wait },
                        Ok(item) => return reply_items(conn, q, id, Value::Bin(item)),
                        Err(e) => return conn.reply(id, Err(e)),
                    }
                } else {
                    Call::Get { wait }
                }
            }
            Call::PutMany { items, wait } if wait != Wait::No => {
                if let Object::Queue(q) = &entry.obj {
                    match q.try_put_all(items) {
                        Ok(v) => return conn.reply(id, Ok(v)),
                        Err(items) => Call::PutMany { items, wait },
                    }
                } else {
                    Call::PutMany { items, wait }
                }
            }
            Call::GetMany { max, wait } if wait != Wait::No => {
                if let Object::Queue(q) = &entry.obj {
                    match q.get_many_in_line(max, Wait::No, &Never, None) {
                        Err(Fail::Empty) => Call::GetMany { max, wait },
                        Ok(items) => return reply_items(conn, q, id, items),
                        Err(e) => return conn.reply(id, Err(e)),
                    }
                } else {
                    Call::GetMany { max, wait }
                }
            }
            call if !call.needs_channel() => {
                let (out, _) = entry.obj.runs(call, &Never);
                return conn.reply(id, out);
            }
            call => call,
        }
    } else {
        call
    };
    to_channel(conn, channels, ch, id, Op::Call { obj, call }, &entry)
}

/// Queues a request for its channel's thread, made on first need.
fn to_channel(
    conn: &Arc<Conn>,
    channels: &mut HashMap<u32, Chan>,
    ch: u32,
    id: u64,
    op: Op,
    entry: &Entry,
) -> bool {
    if !channels.contains_key(&ch) {
        if channels.len() >= conn.shared.cfg.max_channels {
            conn.tokens.lock().remove(&id);
            return conn.reply(
                id,
                Err(Fail::Limit(format!(
                    "{} channels on one connection (the server's max_channels)",
                    conn.shared.cfg.max_channels
                ))),
            );
        }
        match spawn_channel(conn.clone(), ch) {
            Ok(c) => {
                channels.insert(ch, c);
            }
            Err(e) => {
                conn.tokens.lock().remove(&id);
                return conn.reply(
                    id,
                    Err(Fail::Limit(format!("no thread for a channel: {e}"))),
                );
            }
        }
    }
    // A queue call that will wait takes its place in line now, in the
    // order calls arrive.
    let ticket = match (&entry.obj, &op) {
        (Object::Queue(q), Op::Call { call, .. } | Op::CallAsync { call, .. }) => match call {
            Call::Get { wait } | Call::GetMany { wait, .. } if *wait != Wait::No => {
                Some(q.enter_line(true))
            }
            Call::Put { wait, .. } | Call::PutMany { wait, .. } if *wait != Wait::No => {
                Some(q.enter_line(false))
            }
            _ => None,
        },
        _ => None,
    };
    if let (Some(t), Op::CallAsync { call, .. }) = (ticket, &op)
        && let Some(token) = conn.tokens.lock().get(&id)
    {
        *token.line.lock() = Some((t, matches!(call, Call::Get { .. } | Call::GetMany { .. })));
    }
    let chan = &channels[&ch];
    chan.pending.fetch_add(1, Ordering::AcqRel);
    let _ = chan.tx.send((Request { ch, id, op }, ticket));
    true
}

/// Replies items taken from `q` (`Bin` or `Bins`); if the client cannot
/// be told, they go back to the head of the queue.
fn reply_items(conn: &Conn, q: &super::objects::ByteQueue, id: u64, items: Value) -> bool {
    let size = match &items {
        Value::Bin(b) => b.len(),
        Value::Bins(v) => v.iter().map(|b| b.len() + 5).sum(),
        _ => 0,
    };
    let mut buf = Vec::with_capacity(size + 32);
    let reply = Reply { id, out: Ok(items) };
    let sent = proto::encode(&reply, &mut buf).is_ok() && conn.sink.lock().send(&buf).is_ok();
    if !sent {
        let back = match reply.out {
            Ok(Value::Bin(item)) => vec![item],
            Ok(Value::Bins(items)) => items,
            _ => Vec::new(),
        };
        conn.shared
            .counters
            .items_returned
            .fetch_add(back.len() as u64, Ordering::Relaxed);
        q.unget_all(back);
        conn.closed.store(true, Ordering::SeqCst);
        conn.stream.shutdown();
    }
    sent
}

fn spawn_channel(conn: Arc<Conn>, ch: u32) -> std::io::Result<Chan> {
    let (tx, rx) = crossbeam_channel::unbounded();
    let pending = Arc::new(AtomicUsize::new(0));
    let p2 = pending.clone();
    std::thread::Builder::new()
        .name("spindle-mgr-chan".into())
        .stack_size(CHANNEL_STACK)
        .spawn(move || channel_thread(conn, ch, rx, p2))?;
    Ok(Chan { tx, pending })
}

fn channel_thread(
    conn: Arc<Conn>,
    ch: u32,
    rx: Receiver<(Request, Option<u64>)>,
    pending: Arc<AtomicUsize>,
) {
    let shared = conn.shared.clone();
    shared.counters.channels.fetch_add(1, Ordering::Relaxed);
    // What this channel holds: object → (kind, count).
    let mut held: HashMap<u64, (Held, usize)> = HashMap::new();
    let me: ChanKey = (conn.id, ch);
    while let Ok((Request { id, op, .. }, ticket)) = rx.recv() {
        let (obj, call, token) = match op {
            Op::Call { obj, call } => (obj, call, None),
            Op::CallAsync { obj, call } => (obj, call, conn.tokens.lock().get(&id).cloned()),
            _ => {
                pending.fetch_sub(1, Ordering::AcqRel);
                continue;
            }
        };
        match shared.entry(obj) {
            None => {
                conn.reply(id, Err(Fail::NotFound(format!("object {obj}"))));
            }
            Some(entry) => {
                let is_get = matches!(call, Call::Get { .. } | Call::GetMany { .. });
                shared.counters.in_channel.fetch_add(1, Ordering::SeqCst);
                let (out, effect) = match &token {
                    Some(t) => entry.obj.runs_in_line(
                        call,
                        &AsyncCancel {
                            conn: &conn,
                            token: t,
                        },
                        ticket,
                    ),
                    None => entry.obj.runs_in_line(call, &*conn, ticket),
                };
                shared.counters.in_channel.fetch_sub(1, Ordering::SeqCst);
                track(&entry, obj, me, effect, &mut held);
                match (is_get, &entry.obj, out) {
                    (true, Object::Queue(q), Ok(v @ (Value::Bin(_) | Value::Bins(_)))) => {
                        reply_items(&conn, q, id, v);
                    }
                    (_, _, out) => {
                        conn.reply(id, out);
                    }
                }
            }
        }
        if let Some(t) = token {
            t.replied.store(true, Ordering::SeqCst);
            conn.tokens.lock().remove(&id);
        }
        pending.fetch_sub(1, Ordering::AcqRel);
    }
    // The client thread ended, or its whole connection: release what it
    // owned. A Lock is not owned (any thread may release it, as in
    // Python), so it is released only when the connection died.
    let conn_died = conn.closed.load(Ordering::SeqCst);
    let mut released = 0;
    for (obj, (kind, _)) in held {
        if kind == Held::Lock && !conn_died {
            continue;
        }
        if let Some(entry) = shared.entry(obj) {
            if kind == Held::Lock {
                let mut holder = entry.holder.lock();
                if *holder != Some(me) {
                    continue;
                }
                *holder = None;
            }
            released += entry.obj.release_dead(kind).min(1);
        }
    }
    shared
        .counters
        .owner_deaths
        .fetch_add(released, Ordering::Relaxed);
    shared.counters.channels.fetch_sub(1, Ordering::Relaxed);
}

fn track(
    entry: &Entry,
    obj: u64,
    me: ChanKey,
    effect: Effect,
    held: &mut HashMap<u64, (Held, usize)>,
) {
    match effect {
        Effect::None => {}
        Effect::Took(kind) => {
            if kind == Held::Lock {
                *entry.holder.lock() = Some(me);
            }
            held.entry(obj).or_insert((kind, 0)).1 += 1;
        }
        Effect::Gave(kind) => {
            if kind == Held::Lock {
                *entry.holder.lock() = None;
            }
            if let Some(h) = held.get_mut(&obj) {
                h.1 -= 1;
                if h.1 == 0 {
                    held.remove(&obj);
                }
            }
        }
    }
}

/// Binds and serves in this thread until stopped (for `BaseManager::serve`
/// and the child of `Manager::start`).
pub(crate) fn bind(
    address: &Address,
    key: &[u8],
    cfg: &ServerConfig,
) -> Result<Acceptor, ManagerError> {
    Acceptor::bind(address, key, cfg.wire.clone())
}
