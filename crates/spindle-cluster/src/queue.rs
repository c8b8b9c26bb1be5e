//! `cluster::Queue<T>`: Python's `queue.Queue` shared by processes on
//! several hosts, through the embedded broker's server or Redis.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use spindle::ipc::Address;
use spindle::manager::{Manager, QueueProxy};
use spindle::queue::{
    BlockingQueue, GetTimeoutError, JoinTimeoutError, PutError, PutTimeoutError, ShutDown,
    TaskDoneError, TryGetError, TryPutError,
};

use crate::broker::BrokerError;

/// What [`Queue::get_with_receipt`] hands out beside the item: give it to
/// [`Queue::ack`] once the item is processed (its `task_done`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The item's stream id on Redis (empty on the embedded backend, or for
    /// an item taken without a lease).
    sid: String,
}

/// A FIFO queue of `T` (serde; MessagePack with named fields on Redis)
/// that processes on any host share by name: Python's `queue.Queue`
/// (`put`, `get`, `qsize`, `maxsize`, `task_done`, `join`, 3.13's
/// `shutdown`) as [`BlockingQueue`], so code written against
/// `impl BlockingQueue<T>` runs on threads, processes, a manager or a
/// cluster by changing one constructor; the queue conformance suite runs
/// on both backends.
///
/// - **Redis** ([`Queue::redis`], feature `redis`): a stream under the
///   queue's hash tag; `put`'s `maxsize` admission check, `get`, `task_done`
///   and `shutdown` are each one Lua script (the shutdown flag is a key
///   every script checks). By default `get` takes an item for good, as
///   Python's does. With [`with_lease`](Queue::with_lease) an item taken
///   stays *leased* to this handle until it is acknowledged (`task_done`,
///   which acks the oldest item this handle took, or [`ack`](Queue::ack) of
///   a [`Receipt`]); a handle that dies (or does not acknowledge within the
///   lease) loses it and the next `get` of any handle takes it again: at
///   least once.
/// - **Embedded** ([`Queue::embedded`], [`Queue::from_proxy`]): a queue
///   registered on a manager server (`Typeid::bounded_queue(maxsize)`), the
///   same server as the embedded broker; `maxsize` and `shutdown` are the
///   server's. No leases there: an item taken by a process that dies is
///   lost, as with Python's manager queues.
///
/// A broker that cannot be reached reads as a queue that is shut down
/// (`get` returns [`ShutDown`], `put` hands the item back), as the
/// [`BlockingQueue`] contract asks, so worker loops end instead of hanging.
pub struct Queue<T> {
    inner: Inner<T>,
    /// Items this handle took under a lease, oldest first: `task_done`
    /// acks the front one.
    taken: Mutex<VecDeque<String>>,
}

enum Inner<T> {
    Embedded {
        proxy: QueueProxy<T>,
        _manager: Option<Arc<Manager>>,
    },
    #[cfg(feature = "redis")]
    Redis(redis_queue::RedisQueue),
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Inner::Embedded { proxy, .. } => f.debug_tuple("Queue::Embedded").field(proxy).finish(),
            #[cfg(feature = "redis")]
            Inner::Redis(q) => f.debug_tuple("Queue::Redis").field(q).finish(),
        }
    }
}

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// The queue registered as `name` on the manager server at `address`
    /// (`Typeid::queue()` or `Typeid::bounded_queue(maxsize)`), with the
    /// server's `authkey`.
    ///
    /// # Errors
    ///
    /// [`BrokerError::Unavailable`] if the server cannot be reached, holds
    /// another key, or has no queue of that name.
    pub fn embedded(
        address: impl Into<Address>,
        authkey: &[u8],
        name: &str,
    ) -> Result<Queue<T>, BrokerError> {
        let m = Manager::connect(address, authkey)
            .map_err(|e| BrokerError::Unavailable(e.to_string()))?;
        let proxy = m
            .get::<QueueProxy<T>>(name)
            .map_err(|e| BrokerError::Unavailable(e.to_string()))?;
        Ok(Queue {
            inner: Inner::Embedded {
                proxy,
                _manager: Some(Arc::new(m)),
            },
            taken: Mutex::default(),
        })
    }

    /// A queue over a manager queue proxy this process holds.
    pub fn from_proxy(proxy: QueueProxy<T>) -> Queue<T> {
        Queue {
            inner: Inner::Embedded {
                proxy,
                _manager: None,
            },
            taken: Mutex::default(),
        }
    }

    /// The Redis queue `name` at `url` (`redis://…`, `rediss://…` or `unix://…`, as
    /// [`RedisBroker::connect`](crate::RedisBroker::connect)), made with
    /// `maxsize` (0: unbounded) if it does not exist yet.
    ///
    /// # Errors
    ///
    /// [`BrokerError::Refused`] for a bad URL or name, or if the queue
    /// exists with another `maxsize` (it is fixed when the queue is made);
    /// [`BrokerError::Unavailable`] if the server cannot be reached.
    #[cfg(feature = "redis")]
    pub fn redis(url: &str, name: &str, maxsize: usize) -> Result<Queue<T>, BrokerError> {
        Queue::redis_with(url, name, maxsize, &crate::RedisTls::default())
    }

    /// [`redis`](Queue::redis) with TLS settings for a `rediss://` URL (a
    /// private CA, a client certificate: [`RedisTls`](crate::RedisTls)).
    ///
    /// # Errors
    ///
    /// As `redis`; [`BrokerError::Auth`] if the server refuses the
    /// password or user, [`BrokerError::Tls`] if TLS fails or its files
    /// cannot be used.
    #[cfg(feature = "redis")]
    pub fn redis_with(
        url: &str,
        name: &str,
        maxsize: usize,
        tls: &crate::RedisTls,
    ) -> Result<Queue<T>, BrokerError> {
        Ok(Queue {
            inner: Inner::Redis(redis_queue::RedisQueue::connect(url, name, maxsize, tls)?),
            taken: Mutex::default(),
        })
    }

    /// This handle's `get`s lease their items for `lease` (Redis only; the
    /// embedded backend ignores it): an item stays in the queue, taken,
    /// until this handle acknowledges it; past the lease any handle's next
    /// `get` takes it again. `Duration::ZERO`: no lease (the default).
    #[must_use]
    pub fn with_lease(mut self, lease: Duration) -> Self {
        #[cfg(feature = "redis")]
        if let Inner::Redis(q) = &mut self.inner {
            q.lease_ms = u64::try_from(lease.as_millis()).unwrap_or(u64::MAX);
        }
        #[cfg(not(feature = "redis"))]
        let _ = lease;
        self
    }

    /// Takes the next item with its receipt, waiting for one; the item is
    /// not among those `task_done` acknowledges: [`ack`](Self::ack) it.
    ///
    /// # Errors
    ///
    /// [`ShutDown`] once the queue is shut down and empty (or the broker is
    /// gone).
    pub fn get_with_receipt(&self) -> Result<(T, Receipt), ShutDown> {
        self.take(None).map_err(|_| ShutDown)
    }

    /// [`get_with_receipt`](Self::get_with_receipt) waiting at most
    /// `timeout`.
    ///
    /// # Errors
    ///
    /// [`GetTimeoutError`]: timed out, or shut down.
    pub fn get_with_receipt_timeout(
        &self,
        timeout: Duration,
    ) -> Result<(T, Receipt), GetTimeoutError> {
        self.take(Some(Instant::now() + timeout))
    }

    /// Acknowledges an item taken with [`get_with_receipt`](Self::get_with_receipt):
    /// its `task_done`. Whether it counted: false if its lease ran out and
    /// another handle took it (that one acknowledges it), or if it was
    /// acknowledged already.
    ///
    /// # Errors
    ///
    /// [`BrokerError::Unavailable`] if the broker cannot be reached.
    pub fn ack(&self, receipt: &Receipt) -> Result<bool, BrokerError> {
        match &self.inner {
            Inner::Embedded { proxy, .. } => Ok(proxy.task_done().is_ok()),
            #[cfg(feature = "redis")]
            Inner::Redis(q) => q.done(&receipt.sid).map(|n| n == 1),
        }
    }

    /// Items put and not yet marked done (`task_done`/`ack`), on Redis:
    /// what `join` waits for.
    ///
    /// # Errors
    ///
    /// [`BrokerError::Unavailable`] if the broker cannot be reached;
    /// [`BrokerError::Refused`] on the embedded backend, whose server does
    /// not tell.
    pub fn unfinished(&self) -> Result<u64, BrokerError> {
        match &self.inner {
            Inner::Embedded { .. } => Err(BrokerError::Refused(
                "the embedded queue does not report unfinished tasks".into(),
            )),
            #[cfg(feature = "redis")]
            Inner::Redis(q) => q.unfinished(),
        }
    }

    /// Takes one item: with a receipt (`sid`) if leased.
    fn take(&self, deadline: Option<Instant>) -> Result<(T, Receipt), GetTimeoutError> {
        match &self.inner {
            Inner::Embedded { proxy, .. } => {
                let item = match deadline {
                    None => BlockingQueue::get(proxy).map_err(|_| GetTimeoutError::ShutDown)?,
                    Some(at) => proxy.get_deadline(at)?,
                };
                Ok((item, Receipt { sid: String::new() }))
            }
            #[cfg(feature = "redis")]
            Inner::Redis(q) => loop {
                let (sid, bytes) = q.get(deadline)?;
                match rmp_serde::from_slice::<T>(&bytes) {
                    Ok(item) => return Ok((item, Receipt { sid })),
                    // Not a T (put by another program): counted done and
                    // dropped, never handed out.
                    Err(_) => {
                        let _ = q.done(&sid);
                        q.undecodable
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            },
        }
    }

    /// Items dropped at `get` because they did not decode as `T` (Redis;
    /// each counted done).
    pub fn undecodable(&self) -> u64 {
        match &self.inner {
            Inner::Embedded { .. } => 0,
            #[cfg(feature = "redis")]
            Inner::Redis(q) => q.undecodable.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    fn took(&self, receipt: Receipt) {
        if !receipt.sid.is_empty()
            && let Ok(mut t) = self.taken.lock()
        {
            t.push_back(receipt.sid);
        }
    }

    #[cfg(feature = "redis")]
    fn put_redis(
        q: &redis_queue::RedisQueue,
        item: T,
        deadline: Option<Instant>,
    ) -> Result<(), PutTimeoutError<T>> {
        let Ok(bytes) = rmp_serde::to_vec_named(&item) else {
            return Err(PutTimeoutError::ShutDown(item));
        };
        let mut pause = Duration::from_millis(1);
        loop {
            match q.put(&bytes) {
                Ok(redis_queue::Put::Done) => return Ok(()),
                Ok(redis_queue::Put::Full) => {}
                Ok(redis_queue::Put::ShutDown) | Err(_) => {
                    return Err(PutTimeoutError::ShutDown(item));
                }
            }
            // Full: look again soon (no server-side wake-up for room).
            let now = Instant::now();
            if deadline.is_some_and(|at| now >= at) {
                return Err(PutTimeoutError::Timeout(item));
            }
            let nap = deadline.map_or(pause, |at| pause.min(at - now));
            thread::sleep(nap);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }
}

impl<T: Serialize + DeserializeOwned> BlockingQueue<T> for Queue<T> {
    fn put(&self, item: T) -> Result<(), PutError<T>> {
        match &self.inner {
            Inner::Embedded { proxy, .. } => BlockingQueue::put(proxy, item),
            #[cfg(feature = "redis")]
            Inner::Redis(q) => Self::put_redis(q, item, None).map_err(|e| match e {
                PutTimeoutError::Timeout(x) | PutTimeoutError::ShutDown(x) => PutError(x),
            }),
        }
    }

    fn try_put(&self, item: T) -> Result<(), TryPutError<T>> {
        match &self.inner {
            Inner::Embedded { proxy, .. } => proxy.try_put(item),
            #[cfg(feature = "redis")]
            Inner::Redis(q) => {
                let Ok(bytes) = rmp_serde::to_vec_named(&item) else {
                    return Err(TryPutError::ShutDown(item));
                };
                match q.put(&bytes) {
                    Ok(redis_queue::Put::Done) => Ok(()),
                    Ok(redis_queue::Put::Full) => Err(TryPutError::Full(item)),
                    Ok(redis_queue::Put::ShutDown) | Err(_) => Err(TryPutError::ShutDown(item)),
                }
            }
        }
    }

    fn put_deadline(&self, item: T, deadline: Instant) -> Result<(), PutTimeoutError<T>> {
        match &self.inner {
            Inner::Embedded { proxy, .. } => proxy.put_deadline(item, deadline),
            #[cfg(feature = "redis")]
            Inner::Redis(q) => Self::put_redis(q, item, Some(deadline)),
        }
    }

    fn get(&self) -> Result<T, ShutDown> {
        let (item, r) = self.take(None).map_err(|_| ShutDown)?;
        self.took(r);
        Ok(item)
    }

    fn try_get(&self) -> Result<T, TryGetError> {
        match self.take(Some(Instant::now())) {
            Ok((item, r)) => {
                self.took(r);
                Ok(item)
            }
            Err(GetTimeoutError::Timeout) => Err(TryGetError::Empty),
            Err(GetTimeoutError::ShutDown) => Err(TryGetError::ShutDown),
        }
    }

    fn get_deadline(&self, deadline: Instant) -> Result<T, GetTimeoutError> {
        let (item, r) = self.take(Some(deadline))?;
        self.took(r);
        Ok(item)
    }

    fn qsize(&self) -> usize {
        match &self.inner {
            Inner::Embedded { proxy, .. } => proxy.qsize(),
            #[cfg(feature = "redis")]
            Inner::Redis(q) => q.qsize().unwrap_or(0),
        }
    }

    fn maxsize(&self) -> usize {
        match &self.inner {
            Inner::Embedded { proxy, .. } => proxy.maxsize(),
            #[cfg(feature = "redis")]
            Inner::Redis(q) => q.maxsize,
        }
    }

    /// Acks the oldest item this handle took under a lease; without one
    /// (no lease, or none left), marks one item done as Python does.
    fn task_done(&self) -> Result<(), TaskDoneError> {
        match &self.inner {
            Inner::Embedded { proxy, .. } => proxy.task_done(),
            #[cfg(feature = "redis")]
            Inner::Redis(q) => {
                let sid = self.taken.lock().ok().and_then(|mut t| t.pop_front());
                match q.done(sid.as_deref().unwrap_or("")) {
                    Ok(-1) => Err(TaskDoneError),
                    _ => Ok(()),
                }
            }
        }
    }

    fn join(&self) {
        match &self.inner {
            Inner::Embedded { proxy, .. } => BlockingQueue::join(proxy),
            #[cfg(feature = "redis")]
            Inner::Redis(q) => {
                let _ = q.join(None);
            }
        }
    }

    fn join_deadline(&self, deadline: Instant) -> Result<(), JoinTimeoutError> {
        match &self.inner {
            Inner::Embedded { proxy, .. } => proxy.join_deadline(deadline),
            #[cfg(feature = "redis")]
            Inner::Redis(q) => q.join(Some(deadline)),
        }
    }

    fn shutdown(&self, immediate: bool) {
        match &self.inner {
            Inner::Embedded { proxy, .. } => proxy.shutdown(immediate),
            #[cfg(feature = "redis")]
            Inner::Redis(q) => {
                let _ = q.shutdown(immediate);
            }
        }
    }

    fn is_shutdown(&self) -> bool {
        match &self.inner {
            Inner::Embedded { proxy, .. } => proxy.is_shutdown(),
            #[cfg(feature = "redis")]
            Inner::Redis(q) => q.is_shutdown().unwrap_or(true),
        }
    }
}

#[cfg(feature = "redis")]
mod redis_queue {
    use std::sync::LazyLock;
    use std::sync::atomic::AtomicU64;
    use std::time::{Duration, Instant};

    use redis::{Script, Value};
    use spindle::queue::{GetTimeoutError, JoinTimeoutError};

    use crate::RedisBroker;
    use crate::broker::BrokerError;

    /// The consumer group of a queue's getters.
    const GROUP: &str = "getters";
    /// How long a blocked `get` waits per round trip before it looks at
    /// the shutdown flag (and expired leases) again.
    const STEP: Duration = Duration::from_millis(100);

    /// KEYS: stream, unfinished, shutdown, maxsize. ARGV: group, item.
    /// -1 shut down, 0 full, 1 put.
    static PUT: LazyLock<Script> = LazyLock::new(|| {
        Script::new(
            r"
if redis.call('EXISTS', KEYS[3]) == 1 then return -1 end
local max = tonumber(redis.call('GET', KEYS[4]) or '0') or 0
if max > 0 then
  local len = redis.call('XLEN', KEYS[1])
  local pend = 0
  if len > 0 then
    local p = redis.pcall('XPENDING', KEYS[1], ARGV[1])
    if type(p) == 'table' and p.err == nil then pend = tonumber(p[1]) end
  end
  if len - pend >= max then return 0 end
end
redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[1], '*', 'item', ARGV[2])
return 1
",
        )
    });

    /// Lua shared by GET and SHUTDOWN: the group's last delivered id, after
    /// making the group if it is missing (a new or flushed server).
    const LAST_DELIVERED: &str = r"
local function last_delivered(stream, group)
  local gs = redis.pcall('XINFO', 'GROUPS', stream)
  if type(gs) == 'table' and gs.err == nil then
    for _, g in ipairs(gs) do
      local m = {}
      for i = 1, #g, 2 do m[g[i]] = g[i + 1] end
      if m['name'] == group then return m['last-delivered-id'] end
    end
  end
  redis.pcall('XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM')
  return '0-0'
end
";

    /// KEYS: stream, shutdown. ARGV: group, consumer, lease_ms (0: none).
    /// {1, sid, item} taken (with no lease: acked and deleted at once);
    /// {-1} shut down (immediately, or normally and empty); {0, last
    /// delivered id} empty.
    static GET: LazyLock<Script> = LazyLock::new(|| {
        Script::new(&format!(
            "{LAST_DELIVERED}{}",
            r"
local flag = redis.call('GET', KEYS[2])
if flag == 'immediate' then return {-1} end
local lease = tonumber(ARGV[3])
if lease > 0 then
  local p = redis.pcall('XPENDING', KEYS[1], ARGV[1], 'IDLE', lease, '-', '+', 1)
  if type(p) == 'table' and p.err == nil and #p > 0 then
    local sid = p[1][1]
    local e = redis.call('XRANGE', KEYS[1], sid, sid)
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, sid)
    if #e > 0 then return {1, sid, e[1][2][2]} end
    redis.call('XACK', KEYS[1], ARGV[1], sid)
  end
end
local r = redis.pcall('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', 1, 'STREAMS', KEYS[1], '>')
if type(r) == 'table' and r.err then
  -- No group (a new or flushed server): make it, read again.
  redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
  r = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', 1, 'STREAMS', KEYS[1], '>')
end
if r and #r[1][2] > 0 then
  local e = r[1][2][1]
  if lease == 0 then
    redis.call('XACK', KEYS[1], ARGV[1], e[1])
    redis.call('XDEL', KEYS[1], e[1])
  end
  return {1, e[1], e[2][2]}
end
if flag then return {-1} end
return {0, last_delivered(KEYS[1], ARGV[1])}
"
        ))
    });

    /// KEYS: stream, unfinished. ARGV: group, consumer, sid ('' for an
    /// item taken without a lease). 1 done; 0 not this consumer's any more
    /// (nothing done); -1 nothing unfinished (task_done too many times).
    static DONE: LazyLock<Script> = LazyLock::new(|| {
        Script::new(
            r"
if ARGV[3] ~= '' then
  local p = redis.pcall('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
  if type(p) ~= 'table' or p.err ~= nil or #p == 0 or p[1][2] ~= ARGV[2] then return 0 end
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
  redis.call('XDEL', KEYS[1], ARGV[3])
end
local n = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
if n <= 0 then return -1 end
redis.call('DECR', KEYS[2])
return 1
",
        )
    });

    /// KEYS: stream, unfinished, shutdown. ARGV: group, immediate ('1'/'0').
    /// Sets the flag; an immediate shutdown also drops the items not taken
    /// yet, counting them done. How many were dropped.
    static SHUTDOWN: LazyLock<Script> = LazyLock::new(|| {
        Script::new(&format!(
            "{LAST_DELIVERED}{}",
            r"
if ARGV[2] ~= '1' then
  if redis.call('EXISTS', KEYS[3]) == 0 then redis.call('SET', KEYS[3], '1') end
  return 0
end
redis.call('SET', KEYS[3], 'immediate')
local last = last_delivered(KEYS[1], ARGV[1])
local es = redis.call('XRANGE', KEYS[1], '(' .. last, '+')
for _, e in ipairs(es) do redis.call('XDEL', KEYS[1], e[1]) end
local n = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
local d = math.min(n, #es)
if d > 0 then redis.call('DECRBY', KEYS[2], d) end
return #es
",
        ))
    });

    /// KEYS: stream. ARGV: group. Items not taken: length minus pending.
    static QSIZE: LazyLock<Script> = LazyLock::new(|| {
        Script::new(
            r"
local len = redis.call('XLEN', KEYS[1])
if len == 0 then return 0 end
local p = redis.pcall('XPENDING', KEYS[1], ARGV[1])
if type(p) == 'table' and p.err == nil then return len - tonumber(p[1]) end
return len
",
        )
    });

    pub(super) enum Put {
        Done,
        Full,
        ShutDown,
    }

    /// One handle's client of a Redis queue.
    #[derive(Debug)]
    pub(super) struct RedisQueue {
        conn: RedisBroker,
        stream: String,
        unfinished: String,
        shutdown: String,
        maxsize_key: String,
        pub(super) maxsize: usize,
        pub(super) lease_ms: u64,
        pub(super) undecodable: AtomicU64,
    }

    impl RedisQueue {
        pub(super) fn connect(
            url: &str,
            name: &str,
            maxsize: usize,
            tls: &crate::RedisTls,
        ) -> Result<RedisQueue, BrokerError> {
            let conn = RedisBroker::open(url, name, tls)?;
            let k = |s: &str| format!("{{{name}}}:queue:{s}");
            let q = RedisQueue {
                conn,
                stream: k("items"),
                unfinished: k("unfinished"),
                shutdown: k("shutdown"),
                maxsize_key: k("maxsize"),
                maxsize,
                lease_ms: 0,
                undecodable: AtomicU64::new(0),
            };
            let (set, now): (bool, Option<u64>) = q.conn.with_conn(|c| {
                redis::pipe()
                    .cmd("SET")
                    .arg(&q.maxsize_key)
                    .arg(maxsize)
                    .arg("NX")
                    .cmd("GET")
                    .arg(&q.maxsize_key)
                    .query(c)
            })?;
            let _ = set;
            if now.is_some_and(|m| m != maxsize as u64) {
                return Err(BrokerError::Refused(format!(
                    "queue {name:?} exists with maxsize {}, not {maxsize}",
                    now.unwrap_or(0)
                )));
            }
            let _: Result<(), BrokerError> = q.conn.with_conn(|c| {
                redis::cmd("XGROUP")
                    .arg("CREATE")
                    .arg(&q.stream)
                    .arg(GROUP)
                    .arg("0")
                    .arg("MKSTREAM")
                    .query(c)
            });
            Ok(q)
        }

        pub(super) fn put(&self, item: &[u8]) -> Result<Put, BrokerError> {
            let n: i64 = self.conn.with_conn(|c| {
                PUT.key(&self.stream)
                    .key(&self.unfinished)
                    .key(&self.shutdown)
                    .key(&self.maxsize_key)
                    .arg(GROUP)
                    .arg(item)
                    .invoke(c)
            })?;
            Ok(match n {
                1 => Put::Done,
                0 => Put::Full,
                _ => Put::ShutDown,
            })
        }

        /// Takes an item: its stream id and bytes.
        pub(super) fn get(
            &self,
            deadline: Option<Instant>,
        ) -> Result<(String, Vec<u8>), GetTimeoutError> {
            loop {
                let r: Vec<Value> = self
                    .conn
                    .with_conn(|c| {
                        GET.key(&self.stream)
                            .key(&self.shutdown)
                            .arg(GROUP)
                            .arg(self.conn.consumer_name())
                            .arg(self.lease_ms)
                            .invoke(c)
                    })
                    .map_err(|_| GetTimeoutError::ShutDown)?;
                let int = |v: Option<&Value>| match v {
                    Some(Value::Int(n)) => *n,
                    _ => -1,
                };
                let text = |v: Option<&Value>| match v {
                    Some(Value::BulkString(b)) => b.clone(),
                    Some(Value::SimpleString(s)) => s.clone().into_bytes(),
                    _ => Vec::new(),
                };
                let last = match int(r.first()) {
                    1 => {
                        // Without a lease the item is gone from the stream
                        // already: nothing to ack but the count.
                        let sid = if self.lease_ms == 0 {
                            String::new()
                        } else {
                            String::from_utf8_lossy(&text(r.get(1))).into_owned()
                        };
                        return Ok((sid, text(r.get(2))));
                    }
                    0 => String::from_utf8_lossy(&text(r.get(1))).into_owned(),
                    _ => return Err(GetTimeoutError::ShutDown),
                };
                let left = match deadline {
                    Some(at) => {
                        let left = at.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            return Err(GetTimeoutError::Timeout);
                        }
                        left
                    }
                    None => STEP,
                };
                // Wait for an entry past the last delivered one (not
                // taking it: the script does), at most a step, so that a
                // shutdown is seen.
                let ms = left.min(STEP).as_millis().max(1);
                let _: Value = self
                    .conn
                    .with_conn(|c| {
                        redis::cmd("XREAD")
                            .arg("COUNT")
                            .arg(1)
                            .arg("BLOCK")
                            .arg(u64::try_from(ms).unwrap_or(100))
                            .arg("STREAMS")
                            .arg(&self.stream)
                            .arg(&last)
                            .query(c)
                    })
                    .map_err(|_| GetTimeoutError::ShutDown)?;
            }
        }

        /// Marks an item done (acking `sid` if leased): 1 done, 0 not
        /// this handle's lease any more, -1 nothing unfinished.
        pub(super) fn done(&self, sid: &str) -> Result<i64, BrokerError> {
            self.conn.with_conn(|c| {
                DONE.key(&self.stream)
                    .key(&self.unfinished)
                    .arg(GROUP)
                    .arg(self.conn.consumer_name())
                    .arg(sid)
                    .invoke(c)
            })
        }

        pub(super) fn unfinished(&self) -> Result<u64, BrokerError> {
            let n: Option<i64> = self
                .conn
                .with_conn(|c| redis::cmd("GET").arg(&self.unfinished).query(c))?;
            Ok(u64::try_from(n.unwrap_or(0)).unwrap_or(0))
        }

        /// Waits for `unfinished` to reach 0 (looking every 10 ms); a
        /// broker that is gone ends the wait (as a shut-down queue).
        pub(super) fn join(&self, deadline: Option<Instant>) -> Result<(), JoinTimeoutError> {
            loop {
                match self.unfinished() {
                    Ok(0) | Err(_) => return Ok(()),
                    Ok(_) => {}
                }
                let now = Instant::now();
                if deadline.is_some_and(|at| now >= at) {
                    return Err(JoinTimeoutError);
                }
                let nap = Duration::from_millis(10);
                std::thread::sleep(deadline.map_or(nap, |at| nap.min(at - now)));
            }
        }

        pub(super) fn shutdown(&self, immediate: bool) -> Result<i64, BrokerError> {
            self.conn.with_conn(|c| {
                SHUTDOWN
                    .key(&self.stream)
                    .key(&self.unfinished)
                    .key(&self.shutdown)
                    .arg(GROUP)
                    .arg(if immediate { "1" } else { "0" })
                    .invoke(c)
            })
        }

        pub(super) fn is_shutdown(&self) -> Result<bool, BrokerError> {
            self.conn
                .with_conn(|c| redis::cmd("EXISTS").arg(&self.shutdown).query(c))
        }

        pub(super) fn qsize(&self) -> Result<usize, BrokerError> {
            let n: i64 = self
                .conn
                .with_conn(|c| QSIZE.key(&self.stream).arg(GROUP).invoke(c))?;
            Ok(usize::try_from(n).unwrap_or(0))
        }
    }
}
