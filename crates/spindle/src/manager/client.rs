//! The client side: one connection per process and server, one channel per
//! client thread, each call completing a [`Promise`].
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use super::error::ManagerError;
use super::proto::{self, Call, Fail, Op, Reply, Request, Token, Value};
use super::wire::{self, FrameSink, Stream, WireConfig};
use crate::futures::{Future, FutureError, Promise};
use crate::ipc::Address;

/// Why a call did not return a value: the server's answer, or the
/// connection's end.
#[derive(Debug, Clone)]
pub(crate) enum CallError {
    Fail(Fail),
    Gone(String),
}

impl CallError {
    pub(crate) fn into_error(self) -> ManagerError {
        match self {
            CallError::Fail(f) => f.into_error(),
            CallError::Gone(m) => ManagerError::gone(m),
        }
    }
}

/// One authenticated connection to a server.
#[derive(Debug)]
pub(crate) struct ClientConn {
    pub(crate) address: Address,
    pub(crate) key: Vec<u8>,
    /// The process that opened it: a child made by fork inherits the
    /// socket but must not write to it (it opens its own).
    pid: u32,
    cfg: WireConfig,
    sink: Mutex<(FrameSink, Vec<u8>)>,
    stream: Stream,
    pending: Mutex<Pending>,
    next_id: AtomicU64,
}

#[derive(Debug, Default)]
struct Pending {
    calls: HashMap<u64, Slot>,
    dead: Option<String>,
    /// Channels of async calls that are free again.
    free_async: Vec<u32>,
    /// Replies that took effect for async calls whose futures were
    /// dropped, kept for the dropping thread to take back.
    orphans: HashMap<u64, Value>,
}

/// A call waiting for its reply.
#[derive(Debug)]
struct Slot {
    promise: Promise<Value, CallError>,
    /// The channel of an async call, free again once the reply is in.
    async_ch: Option<u32>,
    /// Set when an async call's future was dropped before its reply came.
    abandoned: bool,
}

/// How to take back an async queue call that took effect for a future
/// that was dropped.
#[derive(Debug, Clone)]
pub(crate) enum Undo {
    /// Nothing to take back (a join).
    Nothing,
    /// Put the item a `get` took back at the head of queue `obj`.
    Unget { obj: u64 },
    /// Take back `item` that a `put` put in queue `obj`.
    Unput { obj: u64, item: proto::Bin },
    /// Release what an `acquire` of lock or semaphore `obj` took.
    Release { obj: u64 },
    /// Put back at the head of queue `obj` the items a `get_many` took.
    UngetMany { obj: u64 },
    /// Take back the items a `put_many` put in queue `obj` (the reply says
    /// how many, from the first), those still queued.
    UnputMany { obj: u64, items: Vec<proto::Bin> },
    /// Release what an `acquire` of RLock or Condition `obj` took on
    /// channel `ch` (its owner), and end that channel.
    ReleaseOn { obj: u64, ch: u32 },
}

impl Undo {
    /// Takes back what a call did, given its reply (nothing if the reply
    /// says it did nothing).
    pub(crate) fn run(&self, conn: &Arc<ClientConn>, reply: Value) {
        let _ = match (self, reply) {
            (Undo::Unget { obj }, Value::Bin(item)) => conn.call_obj(*obj, Call::Unget { item }),
            (Undo::Unput { obj, item }, Value::Unit) => {
                conn.call_obj(*obj, Call::Unput { item: item.clone() })
            }
            (Undo::Release { obj }, Value::Bool(true)) => conn.call_obj(*obj, Call::Release),
            (Undo::UngetMany { obj }, Value::Bins(items)) => {
                conn.call_obj(*obj, Call::UngetMany { items })
            }
            (Undo::UnputMany { obj, items }, Value::U64(n)) => {
                // Newest first, so each takes out the copy it put.
                for item in items.iter().take(n as usize).rev() {
                    let _ = conn.call_obj(*obj, Call::Unput { item: item.clone() });
                }
                return;
            }
            (Undo::ReleaseOn { obj, ch }, Value::Bool(true)) => {
                conn.close_channel(
                    *ch,
                    Some(Op::Call {
                        obj: *obj,
                        call: Call::Release,
                    }),
                );
                return;
            }
            _ => return,
        };
    }
}

/// What became of an async call whose future was dropped.
pub(crate) enum Abandoned {
    /// Its reply had come already: the future holds it.
    Replied,
    /// The server stopped it before it took effect, or the connection
    /// ended.
    Stopped,
    /// It took effect before the server could stop it: its reply.
    TookEffect(Value),
}

/// A call's reply as its future delivered it: the server's failure, or
/// `Gone` when the future ended another way (the connection closed).
pub(crate) fn reply_of(r: Result<Value, FutureError<CallError>>) -> Result<Value, CallError> {
    match r {
        Ok(v) => Ok(v),
        Err(FutureError::Failed(e)) => Err((*e).clone()),
        Err(other) => Err(CallError::Gone(format!("{other:?}"))),
    }
}

static NEXT_CHANNEL: AtomicU32 = AtomicU32::new(1);

/// This thread's channel and the connections it has called on: when the
/// thread ends, each is told, so that the server thread serving it ends
/// too (as Python closes a client thread's connection).
struct ThreadChannel {
    ch: u32,
    used: std::cell::RefCell<Vec<Weak<ClientConn>>>,
}

impl Drop for ThreadChannel {
    fn drop(&mut self) {
        for conn in self.used.get_mut().drain(..) {
            if let Some(conn) = conn.upgrade() {
                let _ = conn.send(&Request {
                    ch: self.ch,
                    id: 0,
                    op: Op::CloseChannel,
                });
            }
        }
    }
}

thread_local! {
    static CHANNEL: ThreadChannel = ThreadChannel {
        ch: NEXT_CHANNEL.fetch_add(1, Ordering::Relaxed),
        used: std::cell::RefCell::new(Vec::new()),
    };
}

/// This thread's channel: the server serves each client thread in its own
/// server thread.
pub(crate) fn channel() -> u32 {
    CHANNEL
        .try_with(|c| c.ch)
        .unwrap_or_else(|_| NEXT_CHANNEL.fetch_add(1, Ordering::Relaxed))
}

/// This thread's channel, noting that it calls on `conn`.
fn channel_on(conn: &Arc<ClientConn>) -> u32 {
    CHANNEL
        .try_with(|c| {
            let mut used = c.used.borrow_mut();
            if !used
                .iter()
                .any(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(conn)))
            {
                used.retain(|w| w.strong_count() > 0);
                used.push(Arc::downgrade(conn));
            }
            c.ch
        })
        // The thread is ending: a channel of its own for this last call.
        .unwrap_or_else(|_| NEXT_CHANNEL.fetch_add(1, Ordering::Relaxed))
}

impl ClientConn {
    /// Connects and authenticates; the reader thread starts.
    pub(crate) fn open(
        address: &Address,
        key: &[u8],
        cfg: &WireConfig,
    ) -> Result<Arc<ClientConn>, ManagerError> {
        let mut hello = Vec::new();
        proto::encode(
            &Request {
                ch: channel(),
                id: 1,
                op: Op::Hello {
                    pid: std::process::id(),
                },
            },
            &mut hello,
        )?;
        let session = wire::connect(address, key, cfg, &hello)?;
        let wire::Session {
            sink,
            mut source,
            stream,
            ..
        } = session;
        let conn = Arc::new(ClientConn {
            address: address.clone(),
            key: key.to_vec(),
            pid: std::process::id(),
            cfg: cfg.clone(),
            sink: Mutex::new((sink, Vec::with_capacity(256))),
            stream,
            pending: Mutex::new(Pending::default()),
            next_id: AtomicU64::new(2),
        });
        // The Hello's reply comes first.
        let mut buf = Vec::new();
        source.recv(&mut buf)?;
        let reply: Reply = proto::decode(&buf)?;
        if reply.id != 1 {
            return Err(ManagerError::protocol(
                "the first reply does not answer Hello",
            ));
        }
        if let Err(f) = reply.out {
            return Err(f.into_error());
        }
        let weak = Arc::downgrade(&conn);
        std::thread::Builder::new()
            .name("spindle-mgr-client".into())
            .stack_size(128 * 1024)
            .spawn(move || reader(weak, source))
            .map_err(ManagerError::Io)?;
        Ok(conn)
    }

    /// Sends a request on this thread's channel; the returned future
    /// completes with the reply.
    pub(crate) fn submit(
        self: &Arc<Self>,
        op: Op,
    ) -> Result<Future<Value, CallError>, ManagerError> {
        self.submit_on(channel_on(self), op)
    }

    fn submit_on(&self, ch: u32, op: Op) -> Result<Future<Value, CallError>, ManagerError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (promise, future) = Promise::new();
        {
            let mut p = self.pending.lock();
            if let Some(why) = &p.dead {
                return Err(ManagerError::gone(why.clone()));
            }
            p.calls.insert(
                id,
                Slot {
                    promise,
                    async_ch: None,
                    abandoned: false,
                },
            );
        }
        if let Err(e) = self.send(&Request { ch, id, op }) {
            self.pending.lock().calls.remove(&id);
            return Err(e);
        }
        Ok(future)
    }

    /// Sends an async call (`CallAsync`) on a channel of its own (so that it
    /// holds up no other call of this thread); returns its request id and
    /// the future of its reply.
    pub(crate) fn submit_async(
        &self,
        obj: u64,
        call: Call,
        on: Option<u32>,
    ) -> Result<(u64, Future<Value, CallError>), ManagerError> {
        self.submit_pooled(Op::CallAsync { obj, call }, on)
    }

    /// Sends `op` on a channel of the pool (or on `on`), so that it may
    /// wait there without holding up the calling thread's channel.
    pub(crate) fn submit_pooled(
        &self,
        op: Op,
        on: Option<u32>,
    ) -> Result<(u64, Future<Value, CallError>), ManagerError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (promise, future) = Promise::new();
        let ch = {
            let mut p = self.pending.lock();
            if let Some(why) = &p.dead {
                return Err(ManagerError::gone(why.clone()));
            }
            // A channel of the pool, given back with the reply; or the
            // caller's own (a task's lock guard), which it keeps.
            let pooled = on.is_none();
            let ch = on.unwrap_or_else(|| {
                p.free_async
                    .pop()
                    .unwrap_or_else(|| NEXT_CHANNEL.fetch_add(1, Ordering::Relaxed))
            });
            p.calls.insert(
                id,
                Slot {
                    promise,
                    async_ch: pooled.then_some(ch),
                    abandoned: false,
                },
            );
            ch
        };
        if let Err(e) = self.send(&Request { ch, id, op }) {
            let mut p = self.pending.lock();
            p.calls.remove(&id);
            if on.is_none() {
                p.free_async.push(ch);
            }
            return Err(e);
        }
        Ok((id, future))
    }

    /// A channel no thread uses: a task's own (its lock guard's), served
    /// by a server thread of its own until [`close_channel`](Self::close_channel).
    pub(crate) fn own_channel(&self) -> u32 {
        NEXT_CHANNEL.fetch_add(1, Ordering::Relaxed)
    }

    /// Calls on channel `ch` (a task's own) and returns the reply's future.
    pub(crate) fn submit_to(
        &self,
        ch: u32,
        op: Op,
    ) -> Result<Future<Value, CallError>, ManagerError> {
        self.submit_on(ch, op)
    }

    /// Runs `op` on channel `ch` without waiting for a reply, then ends
    /// the channel: the server thread serving it releases what it held.
    pub(crate) fn close_channel(&self, ch: u32, last: Option<Op>) {
        if let Some(op) = last {
            let _ = self.send(&Request { ch, id: 0, op });
        }
        let _ = self.send(&Request {
            ch,
            id: 0,
            op: Op::CloseChannel,
        });
    }

    /// The future of async call `id` was dropped before it was ready: the
    /// server is told to stop it, and the answer says whether it took
    /// effect (the caller then takes back what it did).
    pub(crate) fn abandon(self: &Arc<Self>, id: u64) -> Abandoned {
        {
            let mut p = self.pending.lock();
            match p.calls.get_mut(&id) {
                Some(slot) => slot.abandoned = true,
                None => return Abandoned::Replied,
            }
        }
        // The call's own reply, if it took effect, comes before this one.
        let _ = self.call(Op::Cancel { id });
        let mut p = self.pending.lock();
        match p.orphans.remove(&id) {
            Some(v) => Abandoned::TookEffect(v),
            None => Abandoned::Stopped,
        }
    }

    fn send(&self, req: &Request) -> Result<(), ManagerError> {
        if self.pid != std::process::id() {
            return Err(ManagerError::gone(
                "this connection belongs to the parent process",
            ));
        }
        let mut guard = self.sink.lock();
        let (sink, buf) = &mut *guard;
        proto::encode(req, buf)?;
        sink.send(buf)
    }

    /// Calls and waits for the reply.
    pub(crate) fn call(self: &Arc<Self>, op: Op) -> Result<Value, CallError> {
        let fut = self
            .submit(op)
            .map_err(|e| CallError::Gone(e.to_string()))?;
        reply_of(fut.into_result())
    }

    /// Calls a method of an object.
    pub(crate) fn call_obj(self: &Arc<Self>, obj: u64, call: Call) -> Result<Value, CallError> {
        self.call(Op::Call { obj, call })
    }

    /// Calls where every failure is an error.
    pub(crate) fn call_checked(self: &Arc<Self>, op: Op) -> Result<Value, ManagerError> {
        self.call(op).map_err(CallError::into_error)
    }

    /// Sends without waiting for a reply (`Decref`).
    pub(crate) fn post(&self, op: Op) {
        let _ = self.send(&Request {
            ch: channel(),
            id: 0,
            op,
        });
    }

    /// Closes the connection (the server drops this process's references).
    pub(crate) fn close(&self) {
        self.stream.shutdown();
    }
}

impl Drop for ClientConn {
    fn drop(&mut self) {
        self.stream.shutdown();
    }
}

fn reader(conn: Weak<ClientConn>, mut source: wire::FrameSource) {
    let mut buf = Vec::with_capacity(4096);
    let why = loop {
        if let Err(e) = source.recv(&mut buf) {
            break e.to_string();
        }
        let reply: Reply = match proto::decode(&buf) {
            Ok(r) => r,
            Err(e) => break e.to_string(),
        };
        let Some(conn) = conn.upgrade() else {
            return;
        };
        let slot = {
            let mut p = conn.pending.lock();
            let slot = p.calls.remove(&reply.id);
            if let Some(ch) = slot.as_ref().and_then(|s| s.async_ch) {
                p.free_async.push(ch);
            }
            slot
        };
        if let Some(slot) = slot {
            match reply.out {
                // A dropped async call that took effect: kept for the
                // thread that dropped it (it waits for its `Cancel`'s
                // reply, which comes after this one).
                Ok(v) if slot.abandoned => {
                    conn.pending.lock().orphans.insert(reply.id, v);
                }
                Ok(v) => {
                    let _ = slot.promise.set_result(v);
                }
                Err(_) if slot.abandoned => {}
                Err(f) => {
                    let _ = slot.promise.set_error(CallError::Fail(f));
                }
            }
        }
    };
    if let Some(conn) = conn.upgrade() {
        let mut p = conn.pending.lock();
        p.dead = Some(why.clone());
        for (_, slot) in p.calls.drain() {
            let _ = slot.promise.set_error(CallError::Gone(why.clone()));
        }
    }
}

/// This process's connections (one per server address: proxies that arrive
/// in a task argument join the connection already open) and the keys it
/// used for each address.
#[derive(Default)]
struct Registry {
    conns: HashMap<Address, Weak<ClientConn>>,
    keys: HashMap<Address, Vec<u8>>,
}

static REGISTRY: std::sync::Mutex<Option<Registry>> = std::sync::Mutex::new(None);
/// The process that made [`REGISTRY`]'s lock: a child made by fork may
/// have inherited it locked by a thread it does not have.
static REGISTRY_PID: AtomicU32 = AtomicU32::new(0);

/// The registry, if it can be had safely: in the process that made it,
/// always (it is held only for map lookups, never across I/O); in a child
/// made by fork, only if its lock is free (it may have been copied locked
/// by a parent thread that does not exist here; the child then goes
/// without: it opens connections of its own).
fn with_registry<R>(f: impl FnOnce(&mut Registry) -> R) -> Option<R> {
    let me = std::process::id();
    let _ = REGISTRY_PID.compare_exchange(0, me, Ordering::Relaxed, Ordering::Relaxed);
    let guard = if REGISTRY_PID.load(Ordering::Relaxed) == me {
        Some(REGISTRY.lock().unwrap_or_else(|p| p.into_inner()))
    } else {
        match REGISTRY.try_lock() {
            Ok(g) => Some(g),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    };
    guard.map(|mut g| f(g.get_or_insert_with(Registry::default)))
}

/// The open connection to `address`, or a new one.
pub(crate) fn shared_connection(
    address: &Address,
    key: Option<&[u8]>,
    cfg: &WireConfig,
) -> Result<Arc<ClientConn>, ManagerError> {
    let me = std::process::id();
    let (found, known) = with_registry(|r| {
        (
            r.conns.get(address).and_then(Weak::upgrade),
            r.keys.get(address).cloned(),
        )
    })
    .unwrap_or((None, None));
    if let Some(c) = found
        && c.pid == me
        && c.pending.lock().dead.is_none()
        && key.is_none_or(|k| k == c.key.as_slice())
        && c.cfg.mac == cfg.mac
    {
        return Ok(c);
    }
    let key = match key {
        Some(k) => k.to_vec(),
        None => match known {
            Some(k) => k,
            None => super::process_key()?,
        },
    };
    open_registered(address, &key, cfg)
}

/// A new connection, which proxies arriving for `address` will then share.
pub(crate) fn open_registered(
    address: &Address,
    key: &[u8],
    cfg: &WireConfig,
) -> Result<Arc<ClientConn>, ManagerError> {
    let c = ClientConn::open(address, key, cfg)?;
    with_registry(|r| {
        r.conns.insert(address.clone(), Arc::downgrade(&c));
        r.keys.insert(address.clone(), key.to_vec());
    });
    Ok(c)
}

/// A proxy's hold on one object: dropping the last one tells the server.
#[derive(Debug)]
pub(crate) struct Handle {
    pub(crate) conn: Arc<ClientConn>,
    pub(crate) token: Token,
    /// In a child made by fork: the child's own connection, on which it
    /// took a reference of its own (kept open while the handle lives).
    pub(crate) forked: Mutex<Option<Arc<ClientConn>>>,
}

impl Handle {
    pub(crate) fn new(conn: Arc<ClientConn>, token: Token) -> Handle {
        Handle {
            conn,
            token,
            forked: Mutex::new(None),
        }
    }
}

impl Handle {
    /// The connection to call on: this process's own (a child made by
    /// fork inherits its parent's handles and reconnects).
    pub(crate) fn conn(&self) -> Result<Arc<ClientConn>, ManagerError> {
        let me = std::process::id();
        if self.conn.pid == me {
            return Ok(self.conn.clone());
        }
        let mut forked = self.forked.lock();
        if let Some(c) = &*forked
            && c.pid == me
            && c.pending.lock().dead.is_none()
        {
            return Ok(c.clone());
        }
        // A child made by fork, first use (or its connection died): its own
        // connection, and a reference of its own on it (Python's
        // `BaseProxy._after_fork`), so that the object outlives the
        // parent's proxies while this handle lives in the child.
        let c = shared_connection(&self.conn.address, Some(&self.conn.key), &self.conn.cfg)?;
        c.call_checked(Op::Adopt {
            obj: self.token.obj,
        })?;
        *forked = Some(c.clone());
        Ok(c)
    }

    /// Calls a method of this handle's object.
    pub(crate) fn call(&self, call: Call) -> Result<Value, CallError> {
        if self.conn.pid == std::process::id() {
            self.conn.call_obj(self.token.obj, call)
        } else {
            self.conn()
                .map_err(|e| CallError::Gone(e.to_string()))?
                .call_obj(self.token.obj, call)
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if self.conn.pid == std::process::id() {
            self.conn.post(Op::Decref {
                obj: self.token.obj,
            });
        }
    }
}
