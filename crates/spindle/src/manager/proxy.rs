//! Proxies: typed handles on the server's objects.
#![forbid(unsafe_code)]

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::client::{Abandoned, CallError, ClientConn, Handle, Undo, reply_of};
use super::error::ManagerError;
use super::proto::{self, Bin, Call, Fail, Value, Wait, wait_until};
use crate::futures::{Future as SpFuture, FutureAwait};
use crate::queue::{
    BlockingQueue, GetTimeoutError, JoinTimeoutError, PutError, PutTimeoutError, ShutDown,
    TaskDoneError, TryGetError, TryPutError,
};
use crate::sync::{
    BarrierWaitError, BlockingBarrier, BlockingBoundedSemaphore, BlockingCondition, BlockingEvent,
    BlockingLock, BlockingRLock, BlockingSemaphore, BrokenBarrierError, NotOwnedError,
    OverReleaseError, ReleaseError as SyncReleaseError, ReleaseNError,
};
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};

/// A typed handle on one object of a manager server.
///
/// Cloning a proxy is cheap and shares one reference on the server;
/// dropping the last clone releases it. A proxy serializes (serde) as a
/// token with a lease: another process that deserializes it within
/// [`LEASE_TIME`](super::LEASE_TIME) reaches the same object.
pub trait Proxy: Sized + sealed::Sealed {
    /// The kind of object on the server (`"Queue"`, `"dict"`, ...).
    const TYPEID: &'static str;
    /// What the item types are, so that two proxies of one object agree.
    fn fingerprint() -> String;
}

pub(crate) mod sealed {
    use super::{Arc, Handle};

    /// Only this crate's proxies are proxies.
    #[allow(private_interfaces)]
    pub trait Sealed {
        fn from_handle(h: Arc<Handle>) -> Self;
    }
}

fn enc<T: Serialize + ?Sized>(v: &T) -> Result<Bin, ManagerError> {
    proto::encode_value(v)
}

fn dec<T: DeserializeOwned>(b: &[u8]) -> Result<T, ManagerError> {
    proto::decode_value(b)
}

/// A call whose `absent` failure (Python's `KeyError`, `IndexError`,
/// `ValueError`) means "not there": `None`, not an error.
fn found(r: Result<Value, CallError>, absent: Fail) -> Result<Option<Value>, ManagerError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(CallError::Fail(f)) if f == absent => Ok(None),
        Err(e) => Err(e.into_error()),
    }
}

pub(super) fn checked(r: Result<Value, CallError>) -> Result<Value, ManagerError> {
    r.map_err(CallError::into_error)
}

pub(super) fn unexpected(v: Value) -> ManagerError {
    ManagerError::protocol(format!("unexpected reply {v:?}"))
}

pub(super) fn as_u64(v: Value) -> Result<u64, ManagerError> {
    match v {
        Value::U64(n) => Ok(n),
        v => Err(unexpected(v)),
    }
}

pub(super) fn as_bool(v: Value) -> Result<bool, ManagerError> {
    match v {
        Value::Bool(b) => Ok(b),
        v => Err(unexpected(v)),
    }
}

fn as_bin(v: Value) -> Result<Bin, ManagerError> {
    match v {
        Value::Bin(b) => Ok(b),
        v => Err(unexpected(v)),
    }
}

macro_rules! proxy_common {
    ($name:ident < $($t:ident),* >, $typeid:literal, $fp:expr) => {
        #[allow(private_interfaces)]
        impl<$($t),*> sealed::Sealed for $name<$($t),*> {
            fn from_handle(h: Arc<Handle>) -> Self {
                $name { h, _t: PhantomData }
            }
        }
        impl<$($t),*> Proxy for $name<$($t),*> {
            const TYPEID: &'static str = $typeid;
            fn fingerprint() -> String {
                $fp
            }
        }
        impl<$($t),*> Clone for $name<$($t),*> {
            fn clone(&self) -> Self {
                $name { h: self.h.clone(), _t: PhantomData }
            }
        }
        impl<$($t),*> fmt::Debug for $name<$($t),*> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("address", &self.h.conn.address)
                    .field("id", &self.h.token.obj)
                    .finish()
            }
        }
        impl<$($t),*> serde::Serialize for $name<$($t),*> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                super::lease::serialize(&self.h, s)
            }
        }
        impl<'de, $($t),*> serde::Deserialize<'de> for $name<$($t),*> {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                super::lease::deserialize::<Self, D>(d)
            }
        }
    };
}

fn type_name<T: ?Sized>() -> String {
    std::any::type_name::<T>().to_string()
}

// ----------------------------------------------------------------------
// Queues.

/// A proxy of a queue on a manager server (`Manager().Queue()`): FIFO,
/// joinable (`task_done`/`join`), with Python 3.13's `shutdown`.
///
/// It implements [`BlockingQueue`], the contract of every spindle queue:
/// the same calls as `queue::Queue` and `ipc::Queue`. A server that is
/// gone reads as a queue that is shut down: `get` returns `ShutDown`,
/// `put` hands the item back inside `PutError`.
pub struct QueueProxy<T> {
    h: Arc<Handle>,
    _t: PhantomData<fn() -> T>,
}
proxy_common!(QueueProxy<T>, "Queue", type_name::<T>());

/// A joinable queue proxy: the same as [`QueueProxy`] (Python's
/// `JoinableQueue` proxy is its `Queue` proxy).
pub type JoinableQueueProxy<T> = QueueProxy<T>;

/// A LIFO queue proxy (`queue.LifoQueue` on the server).
pub struct LifoQueueProxy<T> {
    h: Arc<Handle>,
    _t: PhantomData<fn() -> T>,
}
proxy_common!(LifoQueueProxy<T>, "LifoQueue", type_name::<T>());

/// Queue calls shared by the two queue proxies.
fn q_put<T: Serialize>(h: &Handle, item: T, wait: Wait) -> Result<(), (T, Fail)> {
    let bin = match enc(&item) {
        Ok(b) => b,
        Err(e) => return Err((item, Fail::BadArg(e.to_string()))),
    };
    match h.call(Call::Put { item: bin, wait }) {
        Ok(_) => Ok(()),
        Err(CallError::Fail(f)) => Err((item, f)),
        Err(CallError::Gone(_)) => Err((item, Fail::ShutDown)),
    }
}

fn q_get<T: DeserializeOwned>(h: &Handle, wait: Wait) -> Result<T, Fail> {
    match h.call(Call::Get { wait }) {
        Ok(Value::Bin(b)) => dec(&b).map_err(|e| Fail::BadArg(e.to_string())),
        Ok(_) => Err(Fail::ShutDown),
        Err(CallError::Fail(f)) => Err(f),
        Err(CallError::Gone(_)) => Err(Fail::ShutDown),
    }
}

/// How many bytes of items one `PutMany` carries (a batch over it goes in
/// several round trips): half the frame limit, leaving room for the
/// envelope.
const PUT_MANY_BYTES: usize = super::wire::MAX_FRAME / 2;

/// Encodes the longest prefix of `items` within [`PUT_MANY_BYTES`] (at
/// least one item).
fn encode_batch<T: Serialize>(items: &[T]) -> Result<Vec<Bin>, ManagerError> {
    let mut out = Vec::new();
    let mut bytes = 0;
    for item in items {
        let b = enc(item)?;
        if !out.is_empty() && bytes + b.len() > PUT_MANY_BYTES {
            break;
        }
        bytes += b.len() + 5;
        out.push(b);
    }
    Ok(out)
}

fn q_get_many<T: DeserializeOwned>(h: &Handle, max: usize, wait: Wait) -> Result<Vec<T>, Fail> {
    if max == 0 {
        return Ok(Vec::new());
    }
    match h.call(Call::GetMany {
        max: max as u64,
        wait,
    }) {
        Ok(Value::Bins(v)) => v
            .iter()
            .map(|b| dec(b))
            .collect::<Result<_, _>>()
            .map_err(|e| Fail::BadArg(e.to_string())),
        Ok(_) => Err(Fail::ShutDown),
        Err(CallError::Fail(f)) => Err(f),
        Err(CallError::Gone(_)) => Err(Fail::ShutDown),
    }
}

fn q_u64(h: &Handle, call: Call) -> u64 {
    h.call(call).ok().and_then(|v| as_u64(v).ok()).unwrap_or(0)
}

/// One async call of a proxy: sent on its first poll, on a channel of its
/// own; dropping it before it is ready cancels it on the server, and takes
/// back what it did if it had already taken effect (an item a `get` took
/// goes back to the head of the queue; an item a `put` put is taken out
/// again if it is still queued), so a cancelled `get_async` loses no item
/// and a cancelled `put_async` puts nothing.
pub(crate) struct AsyncCall<'a> {
    h: &'a Handle,
    /// The channel to send on: a task's own, or `None` for one of the pool.
    on: Option<u32>,
    call: Option<Call>,
    undo: Undo,
    sent: Option<Sent>,
    done: bool,
}

struct Sent {
    conn: Arc<ClientConn>,
    id: u64,
    raw: SpFuture<Value, CallError>,
    wait: FutureAwait<Value, CallError>,
}

impl<'a> AsyncCall<'a> {
    pub(crate) fn new(h: &'a Handle, call: Call, undo: Undo) -> Self {
        Self::on(h, None, call, undo)
    }

    /// A call on channel `ch` (a task's own), or on one of the pool.
    pub(crate) fn on(h: &'a Handle, ch: Option<u32>, call: Call, undo: Undo) -> Self {
        AsyncCall {
            h,
            on: ch,
            call: Some(call),
            undo,
            sent: None,
            done: false,
        }
    }
}

impl Future for AsyncCall<'_> {
    type Output = Result<Value, CallError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.sent.is_none() {
            let Some(call) = this.call.take() else {
                return Poll::Ready(Err(CallError::Gone("polled after completion".into())));
            };
            let sent = this.h.conn().and_then(|conn| {
                let (id, raw) = conn.submit_async(this.h.token.obj, call, this.on)?;
                Ok(Sent {
                    conn,
                    id,
                    wait: raw.clone().into_future(),
                    raw,
                })
            });
            match sent {
                Ok(s) => this.sent = Some(s),
                Err(e) => {
                    this.done = true;
                    return Poll::Ready(Err(CallError::Gone(e.to_string())));
                }
            }
        }
        let sent = this.sent.as_mut().expect("sent above");
        match Pin::new(&mut sent.wait).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(r) => {
                this.done = true;
                Poll::Ready(reply_of(r))
            }
        }
    }
}

impl Drop for AsyncCall<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let Some(sent) = self.sent.take() else {
            return;
        };
        // Take back what it did, if it did anything.
        match sent.conn.abandon(sent.id) {
            Abandoned::Replied => {
                if let Ok(v) = sent.raw.result() {
                    self.undo.run(&sent.conn, v);
                }
            }
            Abandoned::TookEffect(v) => self.undo.run(&sent.conn, v),
            Abandoned::Stopped => {}
        }
    }
}

macro_rules! queue_impl {
    ($name:ident) => {
        impl<T: Serialize + DeserializeOwned> BlockingQueue<T> for $name<T> {
            fn put(&self, item: T) -> Result<(), PutError<T>> {
                q_put(&self.h, item, Wait::Forever).map_err(|(item, _)| PutError(item))
            }
            fn try_put(&self, item: T) -> Result<(), TryPutError<T>> {
                q_put(&self.h, item, Wait::No).map_err(|(item, f)| match f {
                    Fail::Full => TryPutError::Full(item),
                    _ => TryPutError::ShutDown(item),
                })
            }
            fn put_deadline(&self, item: T, deadline: Instant) -> Result<(), PutTimeoutError<T>> {
                q_put(&self.h, item, wait_until(deadline)).map_err(|(item, f)| match f {
                    Fail::Full => PutTimeoutError::Timeout(item),
                    _ => PutTimeoutError::ShutDown(item),
                })
            }
            fn get(&self) -> Result<T, ShutDown> {
                q_get(&self.h, Wait::Forever).map_err(|_| ShutDown)
            }
            fn try_get(&self) -> Result<T, TryGetError> {
                q_get(&self.h, Wait::No).map_err(|f| match f {
                    Fail::Empty => TryGetError::Empty,
                    _ => TryGetError::ShutDown,
                })
            }
            fn get_deadline(&self, deadline: Instant) -> Result<T, GetTimeoutError> {
                q_get(&self.h, wait_until(deadline)).map_err(|f| match f {
                    Fail::Empty => GetTimeoutError::Timeout,
                    _ => GetTimeoutError::ShutDown,
                })
            }
            fn qsize(&self) -> usize {
                q_u64(&self.h, Call::QSize) as usize
            }
            fn maxsize(&self) -> usize {
                q_u64(&self.h, Call::MaxSize) as usize
            }
            fn task_done(&self) -> Result<(), TaskDoneError> {
                match self.h.call(Call::TaskDone) {
                    Ok(_) => Ok(()),
                    Err(_) => Err(TaskDoneError),
                }
            }
            fn join(&self) {
                let _ = self.h.call(Call::Join {
                    wait: Wait::Forever,
                });
            }
            fn join_deadline(&self, deadline: Instant) -> Result<(), JoinTimeoutError> {
                match self.h.call(Call::Join {
                    wait: wait_until(deadline),
                }) {
                    Err(CallError::Fail(Fail::Timeout)) => Err(JoinTimeoutError),
                    _ => Ok(()),
                }
            }
            fn shutdown(&self, immediate: bool) {
                let _ = self.h.call(Call::QShutdown { immediate });
            }
            fn is_shutdown(&self) -> bool {
                match self.h.call(Call::IsShutdown) {
                    Ok(Value::Bool(b)) => b,
                    // A server that is gone reads as shut down.
                    _ => true,
                }
            }
        }

        impl<T: Serialize + DeserializeOwned + Send> $name<T> {
            /// `await q.put(item)`: the async face of `put`, on the same
            /// queue as the blocking methods. Cancel-safe: dropped before it
            /// is ready, it puts nothing (an item it had put and that is
            /// still queued is taken out again). `Err` with the item when
            /// the queue is shut down or the server is gone.
            pub fn put_async(
                &self,
                item: T,
            ) -> impl Future<Output = Result<(), PutError<T>>> + Send + '_ {
                let bin = enc(&item);
                let obj = self.h.token.obj;
                async move {
                    let bin = match bin {
                        Ok(b) => b,
                        Err(_) => return Err(PutError(item)),
                    };
                    let undo = Undo::Unput {
                        obj,
                        item: bin.clone(),
                    };
                    let call = Call::Put {
                        item: bin,
                        wait: Wait::Forever,
                    };
                    match AsyncCall::new(&self.h, call, undo).await {
                        Ok(_) => Ok(()),
                        Err(_) => Err(PutError(item)),
                    }
                }
            }

            /// `await q.get()`: the async face of `get`. Cancel-safe:
            /// dropped before it is ready, it takes no item (one it had
            /// taken goes back to the head of the queue). `Err(ShutDown)`
            /// once the queue is shut down and empty, or the server is gone.
            pub fn get_async(&self) -> impl Future<Output = Result<T, ShutDown>> + Send + '_ {
                let obj = self.h.token.obj;
                async move {
                    match AsyncCall::new(
                        &self.h,
                        Call::Get {
                            wait: Wait::Forever,
                        },
                        Undo::Unget { obj },
                    )
                    .await
                    {
                        Ok(Value::Bin(b)) => dec(&b).map_err(|_| ShutDown),
                        _ => Err(ShutDown),
                    }
                }
            }

            /// [`put_many`](Self::put_many) as a future. Cancel-safe as
            /// `put_async`: dropped before it is ready, it puts nothing more
            /// (what its current round trip put and is still queued is
            /// taken out again; earlier round trips of a batch over the
            /// frame limit stay put).
            pub fn put_many_async(
                &self,
                items: Vec<T>,
            ) -> impl Future<Output = Result<(), PutError<Vec<T>>>> + Send + '_ {
                let obj = self.h.token.obj;
                async move {
                    let mut items = items;
                    let mut start = 0;
                    while start < items.len() {
                        let Ok(bins) = encode_batch(&items[start..]) else {
                            return Err(PutError(items.split_off(start)));
                        };
                        let sent = bins.len();
                        let undo = Undo::UnputMany {
                            obj,
                            items: bins.clone(),
                        };
                        let call = Call::PutMany {
                            items: bins,
                            wait: Wait::Forever,
                        };
                        let n = match AsyncCall::new(&self.h, call, undo).await {
                            Ok(Value::U64(n)) => (n as usize).min(sent),
                            _ => 0,
                        };
                        start += n;
                        if n < sent {
                            return Err(PutError(items.split_off(start)));
                        }
                    }
                    Ok(())
                }
            }

            /// [`get_many`](Self::get_many) as a future. Cancel-safe as
            /// `get_async`: dropped before it is ready, it takes no item
            /// (those it had taken go back to the head of the queue, in
            /// order).
            pub fn get_many_async(
                &self,
                max: usize,
            ) -> impl Future<Output = Result<Vec<T>, ShutDown>> + Send + '_ {
                let obj = self.h.token.obj;
                async move {
                    if max == 0 {
                        return Ok(Vec::new());
                    }
                    let call = Call::GetMany {
                        max: max as u64,
                        wait: Wait::Forever,
                    };
                    match AsyncCall::new(&self.h, call, Undo::UngetMany { obj }).await {
                        Ok(Value::Bins(v)) => v
                            .iter()
                            .map(|b| dec(b))
                            .collect::<Result<_, _>>()
                            .map_err(|_| ShutDown),
                        _ => Err(ShutDown),
                    }
                }
            }

            /// `await q.join()`: ready once every item put is marked done
            /// (or the queue is shut down immediately, or the server is
            /// gone).
            pub fn join_async(&self) -> impl Future<Output = ()> + Send + '_ {
                async move {
                    let _ = AsyncCall::new(
                        &self.h,
                        Call::Join {
                            wait: Wait::Forever,
                        },
                        Undo::Nothing,
                    )
                    .await;
                }
            }
        }

        impl<T: Serialize + DeserializeOwned> $name<T> {
            /// The server's answer to a probe call: `Ok` while the server
            /// serves this queue, the typed reason otherwise (the
            /// [`BlockingQueue`] methods read a gone server as `ShutDown`).
            pub fn check(&self) -> Result<(), ManagerError> {
                checked(self.h.call(Call::MaxSize)).map(|_| ())
            }

            /// Puts every item, in order, in as few round trips as the
            /// frame limit allows (one for a batch of small items), each
            /// waiting for room as [`put`](BlockingQueue::put) does. spindle's
            /// own: Python's queues put one item per call, one round trip
            /// each. When the queue shuts down midway, or the server is
            /// gone, the items not put come back, in order, inside
            /// `PutError`.
            pub fn put_many(
                &self,
                items: impl IntoIterator<Item = T>,
            ) -> Result<(), PutError<Vec<T>>> {
                let mut items: Vec<T> = items.into_iter().collect();
                let mut start = 0;
                while start < items.len() {
                    let Ok(bins) = encode_batch(&items[start..]) else {
                        return Err(PutError(items.split_off(start)));
                    };
                    let sent = bins.len();
                    let call = Call::PutMany {
                        items: bins,
                        wait: Wait::Forever,
                    };
                    let n = match self.h.call(call) {
                        Ok(Value::U64(n)) => (n as usize).min(sent),
                        _ => 0,
                    };
                    start += n;
                    if n < sent {
                        return Err(PutError(items.split_off(start)));
                    }
                }
                Ok(())
            }

            /// Takes one item, waiting as [`get`](BlockingQueue::get)
            /// does, and with it up to `max - 1` more that are already
            /// queued, in one round trip (items owed to getters waiting in
            /// line are left to them; one reply carries at most
            /// [`GET_MANY_BYTES`](super::GET_MANY_BYTES) of items, or one
            /// item). spindle's own, like [`put_many`](Self::put_many).
            /// `max` 0 takes nothing and returns at once.
            pub fn get_many(&self, max: usize) -> Result<Vec<T>, ShutDown> {
                q_get_many(&self.h, max, Wait::Forever).map_err(|_| ShutDown)
            }

            /// [`get_many`](Self::get_many) waiting at most `timeout` for
            /// the first item.
            pub fn get_many_timeout(
                &self,
                max: usize,
                timeout: Duration,
            ) -> Result<Vec<T>, GetTimeoutError> {
                q_get_many(&self.h, max, wait_until(Instant::now() + timeout)).map_err(
                    |f| match f {
                        Fail::Empty | Fail::Timeout => GetTimeoutError::Timeout,
                        _ => GetTimeoutError::ShutDown,
                    },
                )
            }

            /// [`get_many`](Self::get_many) without waiting: `Empty` if no
            /// item is there for this call.
            pub fn try_get_many(&self, max: usize) -> Result<Vec<T>, TryGetError> {
                q_get_many(&self.h, max, Wait::No).map_err(|f| match f {
                    Fail::Empty => TryGetError::Empty,
                    _ => TryGetError::ShutDown,
                })
            }

            /// `qsize()` as a future (0 when the server is gone, as
            /// `qsize`).
            pub async fn qsize_async(&self) -> usize {
                match plain_call(&self.h, Call::QSize).await {
                    Ok(Value::U64(n)) => n as usize,
                    _ => 0,
                }
            }

            /// `task_done()` as a future.
            pub async fn task_done_async(&self) -> Result<(), TaskDoneError> {
                plain_call(&self.h, Call::TaskDone)
                    .await
                    .map(|_| ())
                    .map_err(|_| TaskDoneError)
            }

            /// `shutdown(immediate)` as a future (Python 3.13's).
            pub async fn shutdown_async(&self, immediate: bool) {
                let _ = plain_call(&self.h, Call::QShutdown { immediate }).await;
            }

            /// `is_shutdown` as a future (a server that is gone reads as
            /// shut down).
            pub async fn is_shutdown_async(&self) -> bool {
                !matches!(
                    plain_call(&self.h, Call::IsShutdown).await,
                    Ok(Value::Bool(false))
                )
            }
        }
    };
}
queue_impl!(QueueProxy);
queue_impl!(LifoQueueProxy);

/// Builds a call (encoding its arguments).
fn build(f: impl FnOnce() -> Result<Call, ManagerError>) -> Result<Call, ManagerError> {
    f()
}

/// Sends a call that never waits and awaits its reply: the async face of a
/// container's method. The call goes on the polling thread's channel, so
/// the calls one thread makes run in order, blocking or async.
async fn plain_call(h: &Handle, call: Call) -> Result<Value, CallError> {
    let conn = h.conn().map_err(|e| CallError::Gone(e.to_string()))?;
    let fut = conn
        .submit(proto::Op::Call {
            obj: h.token.obj,
            call,
        })
        .map_err(|e| CallError::Gone(e.to_string()))?;
    reply_of(fut.await)
}

/// Each container method twice: blocking, and as an `_async` future. One
/// definition gives both: the call to send, and how to read its reply `r`.
macro_rules! faces {
    ([$($tp:ident),*]) => {};
    ([$($tp:ident),*]
        $(#[$doc:meta])*
        fn $name:ident, $aname:ident ($($arg:ident : $ty:ty),*) -> $out:ty {
            call: $call:expr,
            read: |$r:ident| $read:expr $(,)?
        }
        $($rest:tt)*
    ) => {
        $(#[$doc])*
        pub fn $name(&self $(, $arg: $ty)*) -> Result<$out, ManagerError> {
            let call = build(|| Ok($call));
            let $r = self.h.call(call?);
            $read
        }

        #[doc = concat!(
            "[`", stringify!($name), "`](Self::", stringify!($name), ") as a future: ",
            "sent when first polled. Once sent the call runs on the server even if ",
            "the future is dropped (it never waits, so there is nothing to cancel); ",
            "only its reply is lost."
        )]
        pub fn $aname<'s>(
            &'s self $(, $arg: $ty)*
        ) -> impl Future<Output = Result<$out, ManagerError>> + Send + use<'s $(, $tp)*> {
            let call = build(|| Ok($call));
            let h = &*self.h;
            async move {
                let $r = plain_call(h, call?).await;
                $read
            }
        }

        faces! { [$($tp),*] $($rest)* }
    };
}

/// The value of an optional item reply.
fn opt_item<T: DeserializeOwned>(v: Value) -> Result<Option<T>, ManagerError> {
    match v {
        Value::OptBin(Some(b)) => dec(&b).map(Some),
        Value::OptBin(None) => Ok(None),
        v => Err(unexpected(v)),
    }
}

/// The items of a `Bins` reply.
fn items<T: DeserializeOwned>(v: Value) -> Result<Vec<T>, ManagerError> {
    match v {
        Value::Bins(v) => v.iter().map(|b| dec(b)).collect(),
        v => Err(unexpected(v)),
    }
}

/// The pairs of a `Pairs` reply, each read by `f`.
fn pairs<X>(
    v: Value,
    f: impl Fn(&Bin, &Bin) -> Result<X, ManagerError>,
) -> Result<Vec<X>, ManagerError> {
    match v {
        Value::Pairs(p) => p.iter().map(|(k, v)| f(k, v)).collect(),
        v => Err(unexpected(v)),
    }
}

fn encode_all<'a, T: Serialize + 'a>(
    values: impl IntoIterator<Item = &'a T>,
) -> Result<Vec<Bin>, ManagerError> {
    values.into_iter().map(enc).collect()
}

fn encode_pairs<'a, K: Serialize + 'a, V: Serialize + 'a>(
    pairs: impl IntoIterator<Item = (&'a K, &'a V)>,
) -> Result<Vec<(Bin, Bin)>, ManagerError> {
    pairs
        .into_iter()
        .map(|(k, v)| Ok((enc(k)?, enc(v)?)))
        .collect()
}

// ----------------------------------------------------------------------
// Containers.

/// A proxy of a dict on a manager server (`Manager().dict()`), in
/// insertion order like Python's.
///
/// Keys are compared by their MessagePack encoding, so the key type's
/// encoding must be canonical: equal keys must encode to equal bytes
/// (integers, strings, tuples and structs of them are; a `HashMap` key or a
/// float NaN is not).
pub struct DictProxy<K, V> {
    h: Arc<Handle>,
    _t: PhantomData<fn() -> (K, V)>,
}
proxy_common!(DictProxy<K, V>, "dict", type_name::<(K, V)>());

impl<K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned> DictProxy<K, V> {
    faces! { [K, V]
        /// `d[key]`, or `None` if absent (`d.get(key)`).
        fn get, get_async(key: &K) -> Option<V> {
            call: Call::DGet { key: enc(key)? },
            read: |r| opt_item(checked(r)?),
        }

        /// `d[key] = value`.
        fn set, set_async(key: &K, value: &V) -> () {
            call: Call::DSet { key: enc(key)?, val: enc(value)? },
            read: |r| checked(r).map(|_| ()),
        }

        /// `del d[key]`; whether the key was there (Python raises `KeyError`
        /// when it was not).
        fn del, del_async(key: &K) -> bool {
            call: Call::DDel { key: enc(key)? },
            read: |r| found(r, Fail::KeyError).map(|v| v.is_some()),
        }

        /// `d.pop(key, None)`.
        fn pop, pop_async(key: &K) -> Option<V> {
            call: Call::DPop { key: enc(key)? },
            read: |r| opt_item(checked(r)?),
        }

        /// `key in d`.
        fn contains_key, contains_key_async(key: &K) -> bool {
            call: Call::DContains { key: enc(key)? },
            read: |r| as_bool(checked(r)?),
        }

        /// `d.setdefault(key, default)`: the value now under `key`.
        fn setdefault, setdefault_async(key: &K, default: &V) -> V {
            call: Call::DSetDefault { key: enc(key)?, val: enc(default)? },
            read: |r| dec(&as_bin(checked(r)?)?),
        }

        /// `len(d)`.
        fn len, len_async() -> usize {
            call: Call::Len,
            read: |r| as_u64(checked(r)?).map(|n| n as usize),
        }

        /// `len(d) == 0`.
        fn is_empty, is_empty_async() -> bool {
            call: Call::Len,
            read: |r| as_u64(checked(r)?).map(|n| n == 0),
        }

        /// `list(d.items())`, in insertion order (one round trip: a copy).
        fn items, items_async() -> Vec<(K, V)> {
            call: Call::DItems,
            read: |r| pairs(checked(r)?, |k, v| Ok((dec(k)?, dec(v)?))),
        }

        /// `list(d.keys())`.
        fn keys, keys_async() -> Vec<K> {
            call: Call::DItems,
            read: |r| pairs(checked(r)?, |k, _| dec(k)),
        }

        /// `list(d.values())`.
        fn values, values_async() -> Vec<V> {
            call: Call::DItems,
            read: |r| pairs(checked(r)?, |_, v| dec(v)),
        }

        /// `d.clear()`.
        fn clear, clear_async() -> () {
            call: Call::DClear,
            read: |r| checked(r).map(|_| ()),
        }
    }

    /// `d.update(pairs)`.
    pub fn update<'a>(
        &self,
        pairs: impl IntoIterator<Item = (&'a K, &'a V)>,
    ) -> Result<(), ManagerError>
    where
        K: 'a,
        V: 'a,
    {
        let pairs = encode_pairs(pairs)?;
        checked(self.h.call(Call::DUpdate { pairs })).map(|_| ())
    }

    /// [`update`](Self::update) as a future (see [`set_async`](Self::set_async)).
    pub fn update_async<'a>(
        &self,
        pairs: impl IntoIterator<Item = (&'a K, &'a V)>,
    ) -> impl Future<Output = Result<(), ManagerError>> + Send
    where
        K: 'a,
        V: 'a,
    {
        let call = encode_pairs(pairs).map(|pairs| Call::DUpdate { pairs });
        let h = &*self.h;
        async move { checked(plain_call(h, call?).await).map(|_| ()) }
    }
}

/// A proxy of a list on a manager server (`Manager().list()`).
///
/// Values are compared (`index`, `count`, `remove`) by their MessagePack
/// encoding: the item type's encoding must be canonical.
pub struct ListProxy<T> {
    h: Arc<Handle>,
    _t: PhantomData<fn() -> T>,
}
proxy_common!(ListProxy<T>, "list", type_name::<T>());

/// A proxy of a fixed-length array on a manager server
/// (`Manager().Array(typecode, sequence)`): get, set, len, and a copy.
pub struct ArrayProxy<T> {
    h: Arc<Handle>,
    _t: PhantomData<fn() -> T>,
}
proxy_common!(ArrayProxy<T>, "Array", type_name::<T>());

macro_rules! sequence_reads {
    ($name:ident) => {
        impl<T: Serialize + DeserializeOwned> $name<T> {
            faces! { [T]
                /// `len(l)`.
                fn len, len_async() -> usize {
                    call: Call::Len,
                    read: |r| as_u64(checked(r)?).map(|n| n as usize),
                }

                /// `len(l) == 0`.
                fn is_empty, is_empty_async() -> bool {
                    call: Call::Len,
                    read: |r| as_u64(checked(r)?).map(|n| n == 0),
                }

                /// `l[index]`; a negative index counts from the end; `None`
                /// out of range (Python raises `IndexError`).
                fn get, get_async(index: i64) -> Option<T> {
                    call: Call::LGet { index },
                    read: |r| found(r, Fail::IndexError)?
                        .map(|v| dec(&as_bin(v)?))
                        .transpose(),
                }

                /// `l[index] = value`; whether the index was in range.
                fn set, set_async(index: i64, value: &T) -> bool {
                    call: Call::LSet { index, val: enc(value)? },
                    read: |r| found(r, Fail::IndexError).map(|v| v.is_some()),
                }

                /// `list(l)`: a copy of every item (one round trip).
                fn to_vec, to_vec_async() -> Vec<T> {
                    call: Call::LAll,
                    read: |r| items(checked(r)?),
                }

                /// `l.index(value)`, or `None` (Python raises `ValueError`).
                fn index, index_async(value: &T) -> Option<usize> {
                    call: Call::LIndex { val: enc(value)? },
                    read: |r| found(r, Fail::ValueError)?
                        .map(|v| as_u64(v).map(|n| n as usize))
                        .transpose(),
                }

                /// `l.count(value)`.
                fn count, count_async(value: &T) -> usize {
                    call: Call::LCount { val: enc(value)? },
                    read: |r| as_u64(checked(r)?).map(|n| n as usize),
                }
            }
        }
    };
}
sequence_reads!(ListProxy);
sequence_reads!(ArrayProxy);

impl<T: Serialize + DeserializeOwned> ListProxy<T> {
    faces! { [T]
        /// `l.append(value)`.
        fn append, append_async(value: &T) -> () {
            call: Call::LAppend { val: enc(value)? },
            read: |r| checked(r).map(|_| ()),
        }

        /// `l.insert(index, value)` (the index is clamped, as in Python).
        fn insert, insert_async(index: i64, value: &T) -> () {
            call: Call::LInsert { index, val: enc(value)? },
            read: |r| checked(r).map(|_| ()),
        }

        /// `l.pop(index)`; `None` out of range (Python raises `IndexError`).
        fn pop, pop_async(index: i64) -> Option<T> {
            call: Call::LPop { index },
            read: |r| found(r, Fail::IndexError)?
                .map(|v| dec(&as_bin(v)?))
                .transpose(),
        }

        /// `l.remove(value)`; whether it was there (Python raises
        /// `ValueError` when not).
        fn remove, remove_async(value: &T) -> bool {
            call: Call::LRemove { val: enc(value)? },
            read: |r| found(r, Fail::ValueError).map(|v| v.is_some()),
        }

        /// `l.clear()`.
        fn clear, clear_async() -> () {
            call: Call::LClear,
            read: |r| checked(r).map(|_| ()),
        }

        /// `l.reverse()`, in one step on the server. (There is no `sort`: the
        /// server holds encodings, not values it could compare.)
        fn reverse, reverse_async() -> () {
            call: Call::LReverse,
            read: |r| checked(r).map(|_| ()),
        }
    }

    /// `l.extend(values)`.
    pub fn extend<'a>(&self, values: impl IntoIterator<Item = &'a T>) -> Result<(), ManagerError>
    where
        T: 'a,
    {
        let vals = encode_all(values)?;
        checked(self.h.call(Call::LExtend { vals })).map(|_| ())
    }

    /// [`extend`](Self::extend) as a future (see
    /// [`append_async`](Self::append_async)).
    pub fn extend_async<'a>(
        &self,
        values: impl IntoIterator<Item = &'a T>,
    ) -> impl Future<Output = Result<(), ManagerError>> + Send
    where
        T: 'a,
    {
        let call = encode_all(values).map(|vals| Call::LExtend { vals });
        let h = &*self.h;
        async move { checked(plain_call(h, call?).await).map(|_| ()) }
    }
}

/// A proxy of one value on a manager server (`Manager().Value(typecode,
/// value)`: its `.value`).
pub struct ValueProxy<T> {
    h: Arc<Handle>,
    _t: PhantomData<fn() -> T>,
}
proxy_common!(ValueProxy<T>, "Value", type_name::<T>());

impl<T: Serialize + DeserializeOwned> ValueProxy<T> {
    faces! { [T]
        /// `v.value`.
        fn get, get_async() -> T {
            call: Call::VGet,
            read: |r| dec(&as_bin(checked(r)?)?),
        }

        /// `v.value = value`.
        fn set, set_async(value: &T) -> () {
            call: Call::VSet { val: enc(value)? },
            read: |r| checked(r).map(|_| ()),
        }
    }
}

/// A proxy of a namespace on a manager server (`Manager().Namespace()`):
/// named attributes of any (serde) type.
pub struct NamespaceProxy {
    h: Arc<Handle>,
    _t: PhantomData<()>,
}
#[allow(private_interfaces)]
impl sealed::Sealed for NamespaceProxy {
    fn from_handle(h: Arc<Handle>) -> Self {
        NamespaceProxy { h, _t: PhantomData }
    }
}
impl Proxy for NamespaceProxy {
    const TYPEID: &'static str = "Namespace";
    fn fingerprint() -> String {
        String::new()
    }
}
impl Clone for NamespaceProxy {
    fn clone(&self) -> Self {
        NamespaceProxy {
            h: self.h.clone(),
            _t: PhantomData,
        }
    }
}
impl fmt::Debug for NamespaceProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NamespaceProxy")
            .field("id", &self.h.token.obj)
            .finish()
    }
}
impl serde::Serialize for NamespaceProxy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        super::lease::serialize(&self.h, s)
    }
}
impl<'de> serde::Deserialize<'de> for NamespaceProxy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::lease::deserialize::<Self, D>(d)
    }
}

impl NamespaceProxy {
    /// `ns.name`, decoded as `T`; `None` if unset (Python raises
    /// `AttributeError`).
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, ManagerError> {
        ns_value(self.h.call(Call::NGet { name: name.into() }))
    }

    /// [`get`](Self::get) as a future (see [`del_async`](Self::del_async)).
    pub fn get_async<T: DeserializeOwned>(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<T>, ManagerError>> + Send + use<'_, T> {
        let call = Call::NGet { name: name.into() };
        let h = &*self.h;
        async move { ns_value(plain_call(h, call).await) }
    }

    /// `ns.name = value`.
    pub fn set<T: Serialize + ?Sized>(&self, name: &str, value: &T) -> Result<(), ManagerError> {
        checked(self.h.call(Call::NSet {
            name: name.into(),
            val: enc(value)?,
        }))
        .map(|_| ())
    }

    /// [`set`](Self::set) as a future (see [`del_async`](Self::del_async)).
    pub fn set_async<T: Serialize + ?Sized>(
        &self,
        name: &str,
        value: &T,
    ) -> impl Future<Output = Result<(), ManagerError>> + Send + use<'_, T> {
        let call = enc(value).map(|val| Call::NSet {
            name: name.into(),
            val,
        });
        let h = &*self.h;
        async move { checked(plain_call(h, call?).await).map(|_| ()) }
    }

    faces! { []
        /// `del ns.name`; whether it was set.
        fn del, del_async(name: &str) -> bool {
            call: Call::NDel { name: name.into() },
            read: |r| found(r, Fail::KeyError).map(|v| v.is_some()),
        }

        /// The attributes' names, sorted.
        fn names, names_async() -> Vec<String> {
            call: Call::NAll,
            read: |r| match checked(r)? {
                Value::Names(v) => Ok(v.into_iter().map(|(k, _)| k).collect()),
                v => Err(unexpected(v)),
            },
        }
    }
}

/// An attribute's value, or `None` if unset.
fn ns_value<T: DeserializeOwned>(r: Result<Value, CallError>) -> Result<Option<T>, ManagerError> {
    found(r, Fail::KeyError)?
        .map(|v| dec(&as_bin(v)?))
        .transpose()
}

// ----------------------------------------------------------------------
// Synchronization: the contracts of `spindle::sync`, with
// `Error = ManagerError` (the call's own failure) around the operation's
// Python-twin result.

macro_rules! sync_proxy {
    ($name:ident, $typeid:literal, $doc:literal) => {
        #[doc = $doc]
        pub struct $name {
            h: Arc<Handle>,
        }
        #[allow(private_interfaces)]
        impl sealed::Sealed for $name {
            fn from_handle(h: Arc<Handle>) -> Self {
                $name { h }
            }
        }
        impl Proxy for $name {
            const TYPEID: &'static str = $typeid;
            fn fingerprint() -> String {
                String::new()
            }
        }
        impl Clone for $name {
            fn clone(&self) -> Self {
                $name { h: self.h.clone() }
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("id", &self.h.token.obj)
                    .finish()
            }
        }
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                super::lease::serialize(&self.h, s)
            }
        }
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                super::lease::deserialize::<Self, D>(d)
            }
        }
    };
}

fn wait_for(timeout: Duration) -> Wait {
    Wait::Nanos(u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX))
}

fn acquire_with(h: &Handle, wait: Wait) -> Result<bool, ManagerError> {
    as_bool(checked(h.call(Call::Acquire { wait }))?)
}

/// Releases one level; `NotOwned` from the server is `not_held`.
fn release_with<E>(h: &Handle, not_held: E) -> Result<Result<(), E>, ManagerError> {
    match h.call(Call::Release) {
        Ok(_) => Ok(Ok(())),
        Err(CallError::Fail(Fail::NotOwned | Fail::OverRelease)) => Ok(Err(not_held)),
        Err(e) => Err(e.into_error()),
    }
}

/// The guard of a lock proxy: releases on drop (a release that fails
/// there, because the server is gone, is dropped with it).
#[must_use = "the lock is released when the guard is dropped"]
pub struct ProxyLockGuard<'a, P: BlockingLock> {
    lock: &'a P,
}

impl<P: BlockingLock> Drop for ProxyLockGuard<'_, P> {
    fn drop(&mut self) {
        let _ = self.lock.release();
    }
}

impl<P: BlockingLock + fmt::Debug> fmt::Debug for ProxyLockGuard<'_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyLockGuard")
            .field("lock", self.lock)
            .finish()
    }
}

/// The four acquisitions of the naming rule, one server call each (shared
/// by the lock and semaphore contracts).
macro_rules! acquire_methods {
    () => {
        fn acquire(&self) -> Result<(), ManagerError> {
            acquire_with(&self.h, Wait::Forever).map(|_| ())
        }
        fn try_acquire(&self) -> Result<bool, ManagerError> {
            acquire_with(&self.h, Wait::No)
        }
        fn acquire_deadline(&self, deadline: Instant) -> Result<bool, ManagerError> {
            acquire_with(&self.h, wait_until(deadline))
        }
        fn acquire_timeout(&self, timeout: Duration) -> Result<bool, ManagerError> {
            acquire_with(&self.h, wait_for(timeout))
        }
    };
}

macro_rules! lock_contract {
    ($name:ident, $not_held:expr) => {
        impl BlockingLock for $name {
            type Error = ManagerError;
            type Guard<'a> = ProxyLockGuard<'a, $name>;

            acquire_methods!();
            fn release(&self) -> Result<Result<(), SyncReleaseError>, ManagerError> {
                release_with(&self.h, $not_held)
            }
            fn lock(&self) -> Result<ProxyLockGuard<'_, $name>, ManagerError> {
                BlockingLock::acquire(self)?;
                Ok(ProxyLockGuard { lock: self })
            }
            fn try_lock(&self) -> Result<Option<ProxyLockGuard<'_, $name>>, ManagerError> {
                Ok(BlockingLock::try_acquire(self)?.then(|| ProxyLockGuard { lock: self }))
            }
            fn lock_deadline(
                &self,
                deadline: Instant,
            ) -> Result<Option<ProxyLockGuard<'_, $name>>, ManagerError> {
                Ok(BlockingLock::acquire_deadline(self, deadline)?
                    .then(|| ProxyLockGuard { lock: self }))
            }
            fn is_locked(&self) -> Result<bool, ManagerError> {
                as_bool(checked(self.h.call(Call::Locked))?)
            }
        }

        impl $name {
            /// Blocks until acquired (`acquire()`).
            pub fn acquire(&self) -> Result<(), ManagerError> {
                BlockingLock::acquire(self)
            }
            /// Acquires if that needs no wait (`acquire(blocking=False)`).
            pub fn try_acquire(&self) -> Result<bool, ManagerError> {
                BlockingLock::try_acquire(self)
            }
            /// Acquires within `timeout` (`acquire(timeout=t)`).
            pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool, ManagerError> {
                BlockingLock::acquire_timeout(self, timeout)
            }
            /// Acquires before `deadline`.
            pub fn acquire_deadline(&self, deadline: Instant) -> Result<bool, ManagerError> {
                BlockingLock::acquire_deadline(self, deadline)
            }
            /// `release()`: the inner error says it was not held (by this
            /// thread, for an RLock or Condition).
            pub fn release(&self) -> Result<Result<(), SyncReleaseError>, ManagerError> {
                BlockingLock::release(self)
            }
            /// Acquires and returns a guard that releases on drop
            /// (`with lock:`).
            pub fn lock(&self) -> Result<ProxyLockGuard<'_, $name>, ManagerError> {
                BlockingLock::lock(self)
            }
            /// Whether anyone holds it (`locked()`).
            pub fn is_locked(&self) -> Result<bool, ManagerError> {
                BlockingLock::is_locked(self)
            }
        }
    };
}

fn depth(h: &Handle) -> Result<usize, ManagerError> {
    as_u64(checked(h.call(Call::Depth))?).map(|n| n as usize)
}

sync_proxy!(
    LockProxy,
    "Lock",
    "A proxy of a `Lock` on a manager server ([`BlockingLock`]). A client \
     that dies holding it releases it (counted in the server's \
     `owner_deaths`). Like Python's, any thread may release it."
);
lock_contract!(LockProxy, SyncReleaseError::Unlocked);

sync_proxy!(
    RLockProxy,
    "RLock",
    "A proxy of an `RLock` on a manager server ([`BlockingRLock`]), owned by \
     the client thread that acquired it: each client thread is served by its \
     own server thread, as in Python."
);
lock_contract!(RLockProxy, SyncReleaseError::NotOwner);

impl BlockingRLock for RLockProxy {
    fn is_owned(&self) -> Result<bool, ManagerError> {
        depth(&self.h).map(|d| d > 0)
    }
    fn recursion_depth(&self) -> Result<usize, ManagerError> {
        depth(&self.h)
    }
}

sync_proxy!(
    ConditionProxy,
    "Condition",
    "A proxy of a `Condition` (over an `RLock`) on a manager server \
     ([`BlockingCondition`]): acquiring the condition acquires its lock."
);
lock_contract!(ConditionProxy, SyncReleaseError::NotOwner);

impl BlockingRLock for ConditionProxy {
    fn is_owned(&self) -> Result<bool, ManagerError> {
        depth(&self.h).map(|d| d > 0)
    }
    fn recursion_depth(&self) -> Result<usize, ManagerError> {
        depth(&self.h)
    }
}

fn cond_wait(h: &Handle, wait: Wait) -> Result<Result<bool, NotOwnedError>, ManagerError> {
    match h.call(Call::CondWait { wait }) {
        Ok(v) => as_bool(v).map(Ok),
        Err(CallError::Fail(Fail::NotOwned)) => Ok(Err(NotOwnedError)),
        Err(e) => Err(e.into_error()),
    }
}

impl BlockingCondition for ConditionProxy {
    fn wait(&self) -> Result<Result<(), NotOwnedError>, ManagerError> {
        cond_wait(&self.h, Wait::Forever).map(|r| r.map(|_| ()))
    }
    fn wait_deadline(
        &self,
        deadline: Instant,
    ) -> Result<Result<bool, NotOwnedError>, ManagerError> {
        cond_wait(&self.h, wait_until(deadline))
    }
    fn wait_timeout(&self, timeout: Duration) -> Result<Result<bool, NotOwnedError>, ManagerError> {
        cond_wait(&self.h, wait_for(timeout))
    }
    fn notify(&self, n: usize) -> Result<Result<usize, NotOwnedError>, ManagerError> {
        match self.h.call(Call::CondNotify { n: n as u64 }) {
            Ok(v) => as_u64(v).map(|k| Ok(k as usize)),
            Err(CallError::Fail(Fail::NotOwned)) => Ok(Err(NotOwnedError)),
            Err(e) => Err(e.into_error()),
        }
    }
}

impl ConditionProxy {
    /// `wait()`: releases the lock, waits for a notify, reacquires.
    pub fn wait(&self) -> Result<Result<(), NotOwnedError>, ManagerError> {
        BlockingCondition::wait(self)
    }
    /// `wait(timeout)`: whether it was notified in time.
    pub fn wait_timeout(
        &self,
        timeout: Duration,
    ) -> Result<Result<bool, NotOwnedError>, ManagerError> {
        BlockingCondition::wait_timeout(self, timeout)
    }
    /// `notify(n)`: how many waiters it woke.
    pub fn notify(&self, n: usize) -> Result<Result<usize, NotOwnedError>, ManagerError> {
        BlockingCondition::notify(self, n)
    }
    /// `notify_all()`.
    pub fn notify_all(&self) -> Result<Result<usize, NotOwnedError>, ManagerError> {
        BlockingCondition::notify_all(self)
    }
}

/// The guard of a semaphore proxy: gives the permit back on drop.
#[must_use = "the permit is given back when the guard is dropped"]
pub struct ProxyPermit<'a, P: BlockingSemaphore> {
    sem: &'a P,
}

impl<P: BlockingSemaphore> Drop for ProxyPermit<'_, P> {
    fn drop(&mut self) {
        let _ = self.sem.release_n(1);
    }
}

impl<P: BlockingSemaphore + fmt::Debug> fmt::Debug for ProxyPermit<'_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyPermit")
            .field("sem", self.sem)
            .finish()
    }
}

macro_rules! semaphore_contract {
    ($name:ident) => {
        impl BlockingSemaphore for $name {
            type Error = ManagerError;
            type Guard<'a> = ProxyPermit<'a, $name>;

            acquire_methods!();
            fn permit(&self) -> Result<ProxyPermit<'_, $name>, ManagerError> {
                BlockingSemaphore::acquire(self)?;
                Ok(ProxyPermit { sem: self })
            }
            fn try_permit(&self) -> Result<Option<ProxyPermit<'_, $name>>, ManagerError> {
                Ok(BlockingSemaphore::try_acquire(self)?.then(|| ProxyPermit { sem: self }))
            }
            fn permit_deadline(
                &self,
                deadline: Instant,
            ) -> Result<Option<ProxyPermit<'_, $name>>, ManagerError> {
                Ok(BlockingSemaphore::acquire_deadline(self, deadline)?
                    .then(|| ProxyPermit { sem: self }))
            }
            fn release_n(&self, n: usize) -> Result<Result<(), ReleaseNError>, ManagerError> {
                match self.h.call(Call::SemReleaseN { n: n as u64 }) {
                    Ok(_) => Ok(Ok(())),
                    Err(CallError::Fail(Fail::ReleaseZero)) => Ok(Err(ReleaseNError::Zero)),
                    Err(CallError::Fail(Fail::OverRelease)) => Ok(Err(ReleaseNError::OverRelease)),
                    Err(e) => Err(e.into_error()),
                }
            }
            fn value(&self) -> Result<usize, ManagerError> {
                as_u64(checked(self.h.call(Call::SemValue))?).map(|n| n as usize)
            }
        }

        impl $name {
            /// Takes a permit, blocking (`acquire()`).
            pub fn acquire(&self) -> Result<(), ManagerError> {
                BlockingSemaphore::acquire(self)
            }
            /// Takes a permit if one is free (`acquire(blocking=False)`).
            pub fn try_acquire(&self) -> Result<bool, ManagerError> {
                BlockingSemaphore::try_acquire(self)
            }
            /// Takes a permit within `timeout`.
            pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool, ManagerError> {
                BlockingSemaphore::acquire_timeout(self, timeout)
            }
            /// Gives a permit back (`release()`); past the bound is
            /// `OverReleaseError` (Python's `ValueError`).
            pub fn release(&self) -> Result<Result<(), OverReleaseError>, ManagerError> {
                BlockingSemaphore::release(self)
            }
            /// Gives `n` permits back (`release(n)`).
            pub fn release_n(&self, n: usize) -> Result<Result<(), ReleaseNError>, ManagerError> {
                BlockingSemaphore::release_n(self, n)
            }
            /// Takes a permit and returns a guard that gives it back.
            pub fn permit(&self) -> Result<ProxyPermit<'_, $name>, ManagerError> {
                BlockingSemaphore::permit(self)
            }
            /// The counter's value now.
            pub fn value(&self) -> Result<usize, ManagerError> {
                BlockingSemaphore::value(self)
            }
        }
    };
}

sync_proxy!(
    SemaphoreProxy,
    "Semaphore",
    "A proxy of a `Semaphore` on a manager server ([`BlockingSemaphore`])."
);
semaphore_contract!(SemaphoreProxy);
sync_proxy!(
    BoundedSemaphoreProxy,
    "BoundedSemaphore",
    "A proxy of a `BoundedSemaphore` on a manager server \
     ([`BlockingBoundedSemaphore`])."
);
semaphore_contract!(BoundedSemaphoreProxy);

impl BlockingBoundedSemaphore for BoundedSemaphoreProxy {
    fn bound(&self) -> Result<usize, ManagerError> {
        as_u64(checked(self.h.call(Call::SemBound))?).map(|n| n as usize)
    }
}

sync_proxy!(
    EventProxy,
    "Event",
    "A proxy of an `Event` on a manager server ([`BlockingEvent`])."
);

fn ev_wait(h: &Handle, wait: Wait) -> Result<bool, ManagerError> {
    as_bool(checked(h.call(Call::EvWait { wait }))?)
}

impl BlockingEvent for EventProxy {
    type Error = ManagerError;
    fn is_set(&self) -> Result<bool, ManagerError> {
        as_bool(checked(self.h.call(Call::EvIsSet))?)
    }
    fn set(&self) -> Result<(), ManagerError> {
        checked(self.h.call(Call::EvSet)).map(|_| ())
    }
    fn clear(&self) -> Result<(), ManagerError> {
        checked(self.h.call(Call::EvClear)).map(|_| ())
    }
    fn wait(&self) -> Result<(), ManagerError> {
        ev_wait(&self.h, Wait::Forever).map(|_| ())
    }
    fn try_wait(&self) -> Result<bool, ManagerError> {
        ev_wait(&self.h, Wait::No)
    }
    fn wait_deadline(&self, deadline: Instant) -> Result<bool, ManagerError> {
        ev_wait(&self.h, wait_until(deadline))
    }
    fn wait_timeout(&self, timeout: Duration) -> Result<bool, ManagerError> {
        ev_wait(&self.h, wait_for(timeout))
    }
}

impl EventProxy {
    /// `set()`.
    pub fn set(&self) -> Result<(), ManagerError> {
        BlockingEvent::set(self)
    }
    /// `clear()`.
    pub fn clear(&self) -> Result<(), ManagerError> {
        BlockingEvent::clear(self)
    }
    /// `is_set()`.
    pub fn is_set(&self) -> Result<bool, ManagerError> {
        BlockingEvent::is_set(self)
    }
    /// `wait()`.
    pub fn wait(&self) -> Result<(), ManagerError> {
        BlockingEvent::wait(self)
    }
    /// `wait(timeout)`: whether the flag is set.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, ManagerError> {
        BlockingEvent::wait_timeout(self, timeout)
    }
}

sync_proxy!(
    BarrierProxy,
    "Barrier",
    "A proxy of a `Barrier` on a manager server ([`BlockingBarrier`]; no \
     action: the server cannot run client code)."
);

impl BarrierProxy {
    fn info(&self) -> Result<(u64, u64, bool), ManagerError> {
        bar_info(checked(self.h.call(Call::BarInfo))?)
    }

    /// `wait()`: this party's arrival index.
    pub fn wait(&self) -> Result<Result<usize, BrokenBarrierError>, ManagerError> {
        BlockingBarrier::wait(self)
    }

    /// `wait(timeout)`; a timeout breaks the barrier (as in Python).
    pub fn wait_timeout(
        &self,
        timeout: Duration,
    ) -> Result<Result<usize, BarrierWaitError>, ManagerError> {
        BlockingBarrier::wait_timeout(self, timeout)
    }

    /// `parties`.
    pub fn parties(&self) -> Result<usize, ManagerError> {
        BlockingBarrier::parties(self)
    }
}

impl BlockingBarrier for BarrierProxy {
    type Error = ManagerError;
    fn wait(&self) -> Result<Result<usize, BrokenBarrierError>, ManagerError> {
        match self.h.call(Call::BarWait {
            wait: Wait::Forever,
        }) {
            Ok(v) => as_u64(v).map(|n| Ok(n as usize)),
            Err(CallError::Fail(Fail::Broken | Fail::Timeout)) => Ok(Err(BrokenBarrierError)),
            Err(e) => Err(e.into_error()),
        }
    }
    fn wait_deadline(
        &self,
        deadline: Instant,
    ) -> Result<Result<usize, BarrierWaitError>, ManagerError> {
        match self.h.call(Call::BarWait {
            wait: wait_until(deadline),
        }) {
            Ok(v) => as_u64(v).map(|n| Ok(n as usize)),
            Err(CallError::Fail(Fail::Broken)) => Ok(Err(BarrierWaitError::Broken)),
            Err(CallError::Fail(Fail::Timeout)) => Ok(Err(BarrierWaitError::Timeout)),
            Err(e) => Err(e.into_error()),
        }
    }
    fn parties(&self) -> Result<usize, ManagerError> {
        self.info().map(|i| i.0 as usize)
    }
    fn n_waiting(&self) -> Result<usize, ManagerError> {
        self.info().map(|i| i.1 as usize)
    }
    fn is_broken(&self) -> Result<bool, ManagerError> {
        self.info().map(|i| i.2)
    }
    fn abort(&self) -> Result<(), ManagerError> {
        checked(self.h.call(Call::BarAbort)).map(|_| ())
    }
    fn reset(&self) -> Result<(), ManagerError> {
        checked(self.h.call(Call::BarReset)).map(|_| ())
    }
}

/// `acquire_async`, for objects any thread may release (a `Lock`, a
/// semaphore): the acquisition runs on the server on a channel of its
/// own; dropped before it is ready, the future takes nothing (what the
/// server had taken is released).
fn acquire_async(h: &Handle) -> impl Future<Output = Result<(), ManagerError>> + Send + '_ {
    let obj = h.token.obj;
    async move {
        match AsyncCall::new(
            h,
            Call::Acquire {
                wait: Wait::Forever,
            },
            Undo::Release { obj },
        )
        .await
        {
            Ok(_) => Ok(()),
            Err(e) => Err(e.into_error()),
        }
    }
}

impl LockProxy {
    /// `await lock.acquire()` (asyncio's): cancel-safe, a dropped future
    /// holds nothing. (An `RLock` or `Condition` has no async acquire: its
    /// owner is the client thread, and a task is not one.)
    pub fn acquire_async(&self) -> impl Future<Output = Result<(), ManagerError>> + Send + '_ {
        acquire_async(&self.h)
    }
}

impl SemaphoreProxy {
    /// `await sem.acquire()`: cancel-safe, a dropped future takes no permit.
    pub fn acquire_async(&self) -> impl Future<Output = Result<(), ManagerError>> + Send + '_ {
        acquire_async(&self.h)
    }
}

impl BoundedSemaphoreProxy {
    /// `await sem.acquire()`: cancel-safe, a dropped future takes no permit.
    pub fn acquire_async(&self) -> impl Future<Output = Result<(), ManagerError>> + Send + '_ {
        acquire_async(&self.h)
    }
}

impl EventProxy {
    /// `await event.wait()`: ready once the flag is set.
    pub async fn wait_async(&self) -> Result<(), ManagerError> {
        let call = Call::EvWait {
            wait: Wait::Forever,
        };
        match AsyncCall::new(&self.h, call, Undo::Nothing).await {
            Ok(_) => Ok(()),
            Err(e) => Err(e.into_error()),
        }
    }
}

impl EventProxy {
    /// `event.set()` as a future (see [`DictProxy::set_async`]).
    pub async fn set_async(&self) -> Result<(), ManagerError> {
        checked(plain_call(&self.h, Call::EvSet).await).map(|_| ())
    }

    /// `event.clear()` as a future.
    pub async fn clear_async(&self) -> Result<(), ManagerError> {
        checked(plain_call(&self.h, Call::EvClear).await).map(|_| ())
    }

    /// `event.is_set()` as a future.
    pub async fn is_set_async(&self) -> Result<bool, ManagerError> {
        as_bool(checked(plain_call(&self.h, Call::EvIsSet).await)?)
    }
}

/// `release()` of a lock or semaphore as a future: any channel may release
/// them (an RLock's or Condition's guard releases its own).
async fn release_async(h: &Handle, over: Fail) -> Result<Result<(), Fail>, ManagerError> {
    match plain_call(h, Call::Release).await {
        Ok(_) => Ok(Ok(())),
        Err(CallError::Fail(f)) if f == over => Ok(Err(f)),
        Err(e) => Err(e.into_error()),
    }
}

impl LockProxy {
    /// `lock.release()` as a future; `Err(Unlocked)` inside if it was not
    /// held (Python: `RuntimeError`).
    pub async fn release_async(&self) -> Result<Result<(), SyncReleaseError>, ManagerError> {
        Ok(release_async(&self.h, Fail::NotOwned)
            .await?
            .map_err(|_| SyncReleaseError::Unlocked))
    }

    /// `lock.locked()` as a future.
    pub async fn is_locked_async(&self) -> Result<bool, ManagerError> {
        as_bool(checked(plain_call(&self.h, Call::Locked).await)?)
    }
}

impl SemaphoreProxy {
    /// `sem.release()` as a future.
    pub async fn release_async(&self) -> Result<(), ManagerError> {
        release_async(&self.h, Fail::OverRelease).await.map(|_| ())
    }

    /// The counter's value, as a future.
    pub async fn value_async(&self) -> Result<usize, ManagerError> {
        as_u64(checked(plain_call(&self.h, Call::SemValue).await)?).map(|n| n as usize)
    }
}

impl BoundedSemaphoreProxy {
    /// `sem.release()` as a future; `Err(OverReleaseError)` inside past
    /// the bound (Python: `ValueError`).
    pub async fn release_async(&self) -> Result<Result<(), OverReleaseError>, ManagerError> {
        Ok(release_async(&self.h, Fail::OverRelease)
            .await?
            .map_err(|_| OverReleaseError))
    }

    /// The counter's value, as a future.
    pub async fn value_async(&self) -> Result<usize, ManagerError> {
        as_u64(checked(plain_call(&self.h, Call::SemValue).await)?).map(|n| n as usize)
    }
}

// ----------------------------------------------------------------------
// RLocks and Conditions held by async tasks.

/// A channel of a task's own. The server serves it with a thread of its
/// own, which owns what the task acquires; dropping this releases what it
/// holds and ends the channel (and so that server thread).
struct OwnChannel {
    /// Keeps the object alive while the task holds it.
    h: Arc<Handle>,
    conn: Arc<ClientConn>,
    ch: u32,
    obj: u64,
    holds: bool,
}

impl Drop for OwnChannel {
    fn drop(&mut self) {
        let release = self.holds.then_some(proto::Op::Call {
            obj: self.obj,
            call: Call::Release,
        });
        self.conn.close_channel(self.ch, release);
    }
}

impl OwnChannel {
    /// Acquires `h`'s RLock or Condition on a new channel of the task's
    /// own. Dropped before it completes, it holds nothing.
    async fn acquire(h: &Arc<Handle>) -> Result<OwnChannel, ManagerError> {
        let conn = h.conn()?;
        let obj = h.token.obj;
        let mut own = OwnChannel {
            h: h.clone(),
            ch: conn.own_channel(),
            conn,
            obj,
            holds: false,
        };
        let undo = Undo::ReleaseOn { obj, ch: own.ch };
        let call = Call::Acquire {
            wait: Wait::Forever,
        };
        AsyncCall::on(h, Some(own.ch), call, undo)
            .await
            .map_err(CallError::into_error)?;
        own.holds = true;
        Ok(own)
    }

    /// A call on this channel (in the thread that owns the lock).
    async fn call(&self, call: Call) -> Result<Value, CallError> {
        let op = proto::Op::Call {
            obj: self.obj,
            call,
        };
        let fut = self
            .conn
            .submit_to(self.ch, op)
            .map_err(|e| CallError::Gone(e.to_string()))?;
        reply_of(fut.await)
    }

    async fn release(mut self) -> Result<(), ManagerError> {
        let r = self.call(Call::Release).await;
        self.holds = false;
        checked(r).map(|_| ())
    }
}

/// What a guard's call says when the server finds the lock not owned: the
/// guard owns it by construction, so only a server that lost it says so.
fn owned(r: Result<Value, CallError>) -> Result<Value, ManagerError> {
    match r {
        Err(CallError::Fail(Fail::NotOwned)) => Err(ManagerError::protocol(
            "the server says the task does not own the lock its guard holds",
        )),
        r => checked(r),
    }
}

/// An [`RLockProxy`] held by an async task
/// ([`RLockProxy::acquire_async`]). The lock belongs to the guard, not to
/// a thread: the guard can move between threads and tasks. Dropping it
/// releases the lock (without waiting for the server);
/// [`release`](Self::release) waits for the server's answer.
///
/// asyncio has no RLock; a task re-entering its own lock holds this guard
/// and does not acquire again (another `acquire_async` waits, as any other
/// task would).
#[must_use = "dropping the guard releases the lock"]
pub struct RLockTaskGuard {
    own: OwnChannel,
}

impl fmt::Debug for RLockTaskGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLockTaskGuard")
            .field("id", &self.own.obj)
            .finish()
    }
}

impl RLockTaskGuard {
    /// Releases the lock and waits for the server's answer.
    pub async fn release(self) -> Result<(), ManagerError> {
        self.own.release().await
    }
}

impl RLockProxy {
    /// `await lock.acquire()` for an async task: the lock is held by the
    /// returned guard. Cancel-safe: a dropped future holds nothing.
    pub async fn acquire_async(&self) -> Result<RLockTaskGuard, ManagerError> {
        Ok(RLockTaskGuard {
            own: OwnChannel::acquire(&self.h).await?,
        })
    }
}

/// A [`ConditionProxy`]'s lock held by an async task
/// ([`ConditionProxy::acquire_async`]): `async with cond:` and, inside it,
/// `await cond.wait()`, `cond.notify(n)`. Dropping it releases the lock
/// (without waiting for the server).
#[must_use = "dropping the guard releases the lock"]
pub struct ConditionTaskGuard {
    own: OwnChannel,
}

impl fmt::Debug for ConditionTaskGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConditionTaskGuard")
            .field("id", &self.own.obj)
            .finish()
    }
}

impl ConditionTaskGuard {
    async fn wait_call(&mut self, wait: Wait) -> Result<bool, ManagerError> {
        let call = Call::CondWait { wait };
        let r = AsyncCall::on(&self.own.h, Some(self.own.ch), call, Undo::Nothing).await;
        as_bool(owned(r)?)
    }

    /// `await cond.wait()`: releases the lock, waits for a notification,
    /// and holds the lock again. Cancel-safe as asyncio 3.13's: a dropped
    /// wait still holds the lock again once the server has taken it back
    /// (calls on the guard queue behind it), and a notification it had
    /// received goes on to another waiter.
    pub async fn wait(&mut self) -> Result<(), ManagerError> {
        self.wait_call(Wait::Forever).await.map(|_| ())
    }

    /// `await asyncio.wait_for(cond.wait(), timeout)`, without giving up
    /// the lock on timeout: `false` if it timed out.
    pub async fn wait_timeout(&mut self, timeout: Duration) -> Result<bool, ManagerError> {
        self.wait_call(wait_until(Instant::now() + timeout)).await
    }

    /// `await cond.wait_for(predicate)`: waits until `predicate()` holds,
    /// checking it with the lock held.
    pub async fn wait_for(
        &mut self,
        mut predicate: impl FnMut() -> bool,
    ) -> Result<(), ManagerError> {
        while !predicate() {
            self.wait().await?;
        }
        Ok(())
    }

    /// `cond.notify(n)`: wakes up to `n` waiters; how many it woke.
    pub async fn notify(&self, n: usize) -> Result<usize, ManagerError> {
        let r = self.own.call(Call::CondNotify { n: n as u64 }).await;
        as_u64(owned(r)?).map(|k| k as usize)
    }

    /// `cond.notify_all()`.
    pub async fn notify_all(&self) -> Result<usize, ManagerError> {
        self.notify(usize::MAX).await
    }

    /// Releases the lock and waits for the server's answer.
    pub async fn release(self) -> Result<(), ManagerError> {
        self.own.release().await
    }
}

impl ConditionProxy {
    /// `async with cond:` for an async task: the condition's lock, held by
    /// the returned guard, through which the task waits and notifies.
    /// Cancel-safe: a dropped future holds nothing.
    pub async fn acquire_async(&self) -> Result<ConditionTaskGuard, ManagerError> {
        Ok(ConditionTaskGuard {
            own: OwnChannel::acquire(&self.h).await?,
        })
    }
}

/// A call that may wait, sent on a channel of the pool so that it holds up
/// no thread's channel. Dropping the future drops only the reply.
async fn detached_call(h: &Handle, call: Call) -> Result<Value, CallError> {
    let conn = h.conn().map_err(|e| CallError::Gone(e.to_string()))?;
    let op = proto::Op::Call {
        obj: h.token.obj,
        call,
    };
    let (_, fut) = conn
        .submit_pooled(op, None)
        .map_err(|e| CallError::Gone(e.to_string()))?;
    reply_of(fut.await)
}

impl BarrierProxy {
    /// `await barrier.wait()`: this party's arrival index once all parties
    /// arrived; `Err(BrokenBarrierError)` inside if the barrier is broken
    /// or breaks. Sent when first polled. Dropped once sent, the arrival
    /// stands: the party counts as arrived and the other parties are not
    /// held up (a thread barrier's arrival cannot be taken back; asyncio's
    /// cancelled waiter leaves the barrier instead).
    pub async fn wait_async(&self) -> Result<Result<usize, BrokenBarrierError>, ManagerError> {
        let call = Call::BarWait {
            wait: Wait::Forever,
        };
        match detached_call(&self.h, call).await {
            Ok(v) => as_u64(v).map(|n| Ok(n as usize)),
            Err(CallError::Fail(Fail::Broken | Fail::Timeout)) => Ok(Err(BrokenBarrierError)),
            Err(e) => Err(e.into_error()),
        }
    }

    /// `await barrier.abort()`: breaks it; waiting parties get
    /// `BrokenBarrierError`.
    pub async fn abort_async(&self) -> Result<(), ManagerError> {
        checked(plain_call(&self.h, Call::BarAbort).await).map(|_| ())
    }

    /// `await barrier.reset()`: back to empty; waiting parties get
    /// `BrokenBarrierError`.
    pub async fn reset_async(&self) -> Result<(), ManagerError> {
        checked(plain_call(&self.h, Call::BarReset).await).map(|_| ())
    }

    /// `barrier.parties`, as a future.
    pub async fn parties_async(&self) -> Result<usize, ManagerError> {
        let v = checked(plain_call(&self.h, Call::BarInfo).await)?;
        bar_info(v).map(|i| i.0 as usize)
    }

    /// `barrier.n_waiting`, as a future.
    pub async fn n_waiting_async(&self) -> Result<usize, ManagerError> {
        let v = checked(plain_call(&self.h, Call::BarInfo).await)?;
        bar_info(v).map(|i| i.1 as usize)
    }

    /// `barrier.broken`, as a future.
    pub async fn is_broken_async(&self) -> Result<bool, ManagerError> {
        let v = checked(plain_call(&self.h, Call::BarInfo).await)?;
        bar_info(v).map(|i| i.2)
    }
}

/// A `BarInfo` reply: parties, waiting, broken.
fn bar_info(v: Value) -> Result<(u64, u64, bool), ManagerError> {
    match v {
        Value::Bins(v) if v.len() == 3 && v[0].len() == 8 && v[1].len() == 8 => {
            let n = |b: &Bin| u64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8]));
            Ok((n(&v[0]), n(&v[1]), v[2].first() == Some(&1)))
        }
        v => Err(unexpected(v)),
    }
}
