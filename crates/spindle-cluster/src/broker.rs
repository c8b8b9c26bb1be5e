//! The broker contract and the embedded backend.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_bytes::ByteBuf;
use spindle::ipc::Address;
use spindle::manager::{BrokerCounts, BrokerProxy, Manager, ManagerError};

/// Why a broker call failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum BrokerError {
    /// The broker cannot be reached (gone, refused the key, no such
    /// queue): a task cannot be put or taken now.
    Unavailable(String),
    /// The broker refused the call (a bad argument).
    Refused(String),
    /// The server refused this client's credentials, or its ACL user may
    /// not do this (Redis: a wrong or missing password or user, `NOAUTH`,
    /// `WRONGPASS`, `NOPERM`). Like `Unavailable`, a worker tries again
    /// (the password may be rotated); a connect fails.
    Auth(String),
    /// TLS failed: the server's certificate is not trusted (another CA,
    /// expired, another name), the server refused the client's
    /// certificate, the peer does not speak TLS, or the TLS settings
    /// (`RedisTls`: a CA or key file) are unusable.
    Tls(String),
}

impl fmt::Display for BrokerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BrokerError::Unavailable(m) => write!(f, "broker unavailable: {m}"),
            BrokerError::Refused(m) => write!(f, "broker refused the call: {m}"),
            BrokerError::Auth(m) => write!(
                f,
                "broker refused the credentials (authentication or ACL): {m}"
            ),
            BrokerError::Tls(m) => write!(f, "broker TLS failed: {m}"),
        }
    }
}

impl std::error::Error for BrokerError {}

impl From<ManagerError> for BrokerError {
    fn from(e: ManagerError) -> Self {
        if e.is_server_gone() || e.is_auth() || matches!(e, ManagerError::Io(_)) {
            BrokerError::Unavailable(e.to_string())
        } else {
            BrokerError::Refused(e.to_string())
        }
    }
}

/// A worker's heartbeat as a broker keeps it (see [`Broker::workers`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    /// The worker's id.
    pub worker: String,
    /// Its status record (a [`WorkerStatus`](crate::WorkerStatus), MessagePack).
    pub record: Vec<u8>,
    /// How long ago the broker got it, on the broker's clock.
    pub age: Duration,
}

/// An entry a worker took, under a lease.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    /// What `ack`, `extend`, `dead_letter` take.
    pub id: u64,
    /// The entry's bytes.
    pub bytes: Vec<u8>,
    /// Which delivery this is (1: the first).
    pub attempt: u32,
}

/// One call of a batch ([`Broker::send_batch`]): what a worker sends
/// after it fetched, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outgoing<'a> {
    /// [`Broker::notify`]: `message` to `client`'s stream (a hint: "started").
    Notify {
        /// The client.
        client: &'a str,
        /// The message.
        message: &'a [u8],
        /// How long it waits in the client's stream.
        ttl: Duration,
    },
    /// [`Broker::ack_with_result`]: acks entry `id` and, if the ack
    /// counts, adds `result` to `client`'s stream.
    Ack {
        /// The entry.
        id: u64,
        /// The client.
        client: &'a str,
        /// Its result.
        result: &'a [u8],
        /// How long the result waits in the client's stream.
        ttl: Duration,
    },
}

/// How an entry is put ([`Broker::put_with`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PutOptions<'a> {
    /// How many times it is delivered at most (at least 1).
    pub max_deliveries: u32,
    /// The client told `on_dead` if it is given up because its leases ran
    /// out.
    pub client: &'a str,
    /// What that client is told.
    pub on_dead: &'a [u8],
    /// How long that message waits in the client's stream.
    pub ttl: Duration,
    /// The entry's own lease: how long it may stay with a worker without a
    /// word before it goes to another. `None`: the fetching worker's. On
    /// Redis it travels in the entry (every worker's reclaimer uses it);
    /// the embedded broker leases each delivery for the fetch's lease, and
    /// the worker then [`extend`](Broker::extend)s it to this one.
    pub lease: Option<Duration>,
}

/// One entry of a [`Broker::put_batch`]: its bytes and how it is put.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PutEntry<'a> {
    /// The entry's bytes.
    pub entry: &'a [u8],
    /// How it is put (as [`Broker::put_with`]).
    pub options: PutOptions<'a>,
}

/// What a distributed task queue needs of a broker: at-least-once delivery
/// with leases, acks that count once and only for the lease holder,
/// redelivery of entries whose lease ran out, dead letters past
/// `max_deliveries`, and a result stream per client.
///
/// Each value of an implementation is one consumer (its acks and extends
/// are its own leases'); [`consumer`](Broker::consumer) makes another.
pub trait Broker: Send + Sync + fmt::Debug {
    /// Puts one entry, delivered at most `max_deliveries` times; if it is
    /// given up because its leases ran out, `on_dead` goes to `client`'s
    /// result stream. Its id.
    fn put(
        &self,
        entry: &[u8],
        max_deliveries: u32,
        client: &str,
        on_dead: &[u8],
        ttl: Duration,
    ) -> Result<u64, BrokerError> {
        self.put_with(
            entry,
            &PutOptions {
                max_deliveries,
                client,
                on_dead,
                ttl,
                lease: None,
            },
        )
    }
    /// [`put`](Broker::put) with all its options, the entry's own lease
    /// among them. Its id.
    fn put_with(&self, entry: &[u8], options: &PutOptions<'_>) -> Result<u64, BrokerError>;
    /// Puts `entries` in order, each as [`put_with`](Broker::put_with)
    /// would: their ids, in the same order. The default puts them one by
    /// one; `RedisBroker` puts them all in one script (one round trip,
    /// atomic on the server). On an error none of the ids is known, but
    /// the entries before the failing one may have been put (the default),
    /// or all of them (a reply lost on the way): they are then delivered
    /// and run as any entry (at least once).
    fn put_batch(&self, entries: &[PutEntry<'_>]) -> Result<Vec<u64>, BrokerError> {
        entries
            .iter()
            .map(|e| self.put_with(e.entry, &e.options))
            .collect()
    }
    /// Takes up to `n` entries under a lease of `lease`, waiting at most
    /// `wait` for the first (empty: none came).
    fn fetch(&self, n: usize, wait: Duration, lease: Duration)
    -> Result<Vec<Fetched>, BrokerError>;
    /// Acks entry `id` and, if the ack counts, adds `result` to `client`'s
    /// stream: whether it counted.
    fn ack_with_result(
        &self,
        id: u64,
        client: &str,
        result: &[u8],
        ttl: Duration,
    ) -> Result<bool, BrokerError>;
    /// Sends `ops` in order, as [`notify`](Broker::notify) and
    /// [`ack_with_result`](Broker::ack_with_result) each would (an ack
    /// counts once, only for the lease holder, as alone): for each op,
    /// whether it counted (a notify: `true`). The default sends them one
    /// by one; `RedisBroker` sends them all in one pipelined round trip
    /// (one Lua script call per run of consecutive acks, checking each as
    /// the single ack does). On an error, the ops before it
    /// may have been applied (an ack whose reply is lost counts once: the
    /// holder's ack sent again finds it done).
    fn send_batch(&self, ops: &[Outgoing<'_>]) -> Result<Vec<bool>, BrokerError> {
        ops.iter()
            .map(|op| match *op {
                Outgoing::Notify {
                    client,
                    message,
                    ttl,
                } => self.notify(client, message, ttl).map(|()| true),
                Outgoing::Ack {
                    id,
                    client,
                    result,
                    ttl,
                } => self.ack_with_result(id, client, result, ttl),
            })
            .collect()
    }
    /// Gives entry `id` up with `reason`, adding `result` to `client`'s
    /// stream: whether this consumer held it.
    fn dead_letter(
        &self,
        id: u64,
        reason: &str,
        client: Option<(&str, &[u8])>,
        ttl: Duration,
    ) -> Result<bool, BrokerError>;
    /// Gives entry `id` back (a negative ack): it is delivered again
    /// after `delay` (`Duration::ZERO`: now, at the tail of the queue),
    /// its next delivery counting one more `attempt`; or, if it was
    /// delivered `max_deliveries` times already, it is dead-lettered
    /// ("the last one refused"; its client is *not* told: a worker that
    /// must tell gives up with [`dead_letter`](Broker::dead_letter)
    /// instead). Until due it counts as `queued` and `delayed`, and stays
    /// in `unfinished`. Whether this consumer held it (false: its lease ran
    /// out, or it was acked; nothing done).
    fn nack(&self, id: u64, delay: Duration) -> Result<bool, BrokerError>;
    /// Adds `message` to `client`'s stream, acking nothing; it may return
    /// before the broker has it (a hint, such as "started").
    fn notify(&self, client: &str, message: &[u8], ttl: Duration) -> Result<(), BrokerError>;
    /// Takes up to `max` of `client`'s results, waiting at most `wait`.
    fn results(
        &self,
        client: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Vec<u8>>, BrokerError>;
    /// Extends this consumer's leases: how many it still held.
    fn extend(&self, ids: &[u64], lease: Duration) -> Result<usize, BrokerError>;
    /// Takes a still-queued entry out: whether it was queued.
    fn cancel(&self, id: u64) -> Result<bool, BrokerError>;
    /// The broker's counters.
    fn counts(&self) -> Result<BrokerCounts, BrokerError>;
    /// Blocks until every entry put is finished — acknowledged,
    /// dead-lettered or cancelled: `counts().unfinished` is 0 (Python's
    /// `Queue.join()`, with `task_done` being the ack) — or `timeout`
    /// (`None`: no limit) passes: whether it is. A broker that cannot be
    /// reached is an error, not a wait. The default reads
    /// [`counts`](Broker::counts) every 10 ms; both backends wake at
    /// once instead (the manager server's broker waits on its own
    /// condition; Redis publishes when the counter reaches 0, and the
    /// counter is read again every 250 ms, as pub/sub drops messages
    /// across reconnects).
    fn join(&self, timeout: Option<Duration>) -> Result<bool, BrokerError> {
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        loop {
            if self.counts()?.unfinished == 0 {
                return Ok(true);
            }
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    /// Another consumer of the same broker.
    fn consumer(&self) -> Arc<dyn Broker>;
    /// Puts every dead letter this broker keeps back at the tail of the
    /// queue, as a new entry (deliveries counted from 0, the
    /// `max_deliveries` it was put with): how many. A retried job runs
    /// again, but its submitter's future already failed: its new result
    /// goes unclaimed (and expires with its stream). The default:
    /// [`BrokerError::Refused`].
    fn retry_dead(&self) -> Result<u64, BrokerError> {
        Err(BrokerError::Refused(
            "this broker cannot retry dead letters".into(),
        ))
    }
    /// Drops every dead letter this broker keeps: how many. The default:
    /// [`BrokerError::Refused`].
    fn purge_dead(&self) -> Result<u64, BrokerError> {
        Err(BrokerError::Refused(
            "this broker cannot purge dead letters".into(),
        ))
    }
    /// Records worker `worker`'s heartbeat: `record` (its status, see
    /// `crate::status`) is what [`workers`](Broker::workers) shows of it
    /// until `expire` passes without another; `expire` zero removes it
    /// now (a worker that stopped). The default keeps nothing
    /// ([`BrokerError::Refused`]).
    fn heartbeat(&self, worker: &str, record: &[u8], expire: Duration) -> Result<(), BrokerError> {
        let _ = (worker, record, expire);
        Err(BrokerError::Refused(
            "this broker keeps no worker heartbeats".into(),
        ))
    }
    /// The workers whose heartbeat has not expired, each with its last
    /// record and that heartbeat's age on the broker's clock. The default:
    /// none.
    fn workers(&self) -> Result<Vec<Heartbeat>, BrokerError> {
        Ok(Vec::new())
    }
}

/// The manager server's broker ([`spindle::manager::BrokerProxy`]): a
/// server started with `spindle serve --broker NAME` (or registering
/// `Typeid::broker()`), reached over TCP or a Unix socket with its authkey.
/// In memory: a server that stops loses its entries.
#[derive(Debug, Clone)]
pub struct EmbeddedBroker {
    proxy: BrokerProxy<ByteBuf>,
    /// Keeps the connection's manager handle.
    _manager: Arc<Manager>,
}

impl EmbeddedBroker {
    /// Connects to the broker registered as `name` on the server at
    /// `address`.
    ///
    /// # Errors
    ///
    /// [`BrokerError::Unavailable`] if the server cannot be reached, holds
    /// another key, or has no broker of that name.
    pub fn connect(
        address: impl Into<Address>,
        authkey: &[u8],
        name: &str,
    ) -> Result<EmbeddedBroker, BrokerError> {
        let m = Manager::connect(address, authkey)
            .map_err(|e| BrokerError::Unavailable(e.to_string()))?;
        let proxy = m
            .get::<BrokerProxy<ByteBuf>>(name)
            .map_err(|e| BrokerError::Unavailable(e.to_string()))?;
        Ok(EmbeddedBroker {
            proxy,
            _manager: Arc::new(m),
        })
    }

    /// A broker over a proxy this process already holds (a broker made by
    /// `Manager::broker`).
    pub fn from_proxy(proxy: BrokerProxy<ByteBuf>, manager: Manager) -> EmbeddedBroker {
        EmbeddedBroker {
            proxy,
            _manager: Arc::new(manager),
        }
    }
}

fn buf(b: &[u8]) -> ByteBuf {
    ByteBuf::from(b.to_vec())
}

impl Broker for EmbeddedBroker {
    fn put_with(&self, entry: &[u8], o: &PutOptions<'_>) -> Result<u64, BrokerError> {
        let ids = self.proxy.put_many_or_tell(
            [&buf(entry)],
            o.max_deliveries,
            o.client,
            &buf(o.on_dead),
            o.ttl,
        )?;
        ids.first()
            .copied()
            .ok_or_else(|| BrokerError::Refused("no id for the entry".into()))
    }

    fn fetch(
        &self,
        n: usize,
        wait: Duration,
        lease: Duration,
    ) -> Result<Vec<Fetched>, BrokerError> {
        Ok(self
            .proxy
            .fetch_timeout(n, lease, wait)?
            .into_iter()
            .map(|d| Fetched {
                id: d.id,
                bytes: d.item.into_vec(),
                attempt: d.attempt,
            })
            .collect())
    }

    fn ack_with_result(
        &self,
        id: u64,
        client: &str,
        result: &[u8],
        ttl: Duration,
    ) -> Result<bool, BrokerError> {
        Ok(self.proxy.ack_with_result(id, client, &buf(result), ttl)?)
    }

    fn dead_letter(
        &self,
        id: u64,
        reason: &str,
        client: Option<(&str, &[u8])>,
        ttl: Duration,
    ) -> Result<bool, BrokerError> {
        Ok(match client {
            Some((c, r)) => self
                .proxy
                .dead_letter_with_result(id, reason, c, &buf(r), ttl)?,
            None => self.proxy.dead_letter(id, reason)?,
        })
    }

    fn nack(&self, id: u64, delay: Duration) -> Result<bool, BrokerError> {
        Ok(self.proxy.nack(id, delay)?)
    }

    fn notify(&self, client: &str, message: &[u8], ttl: Duration) -> Result<(), BrokerError> {
        Ok(self.proxy.notify_nowait(client, &buf(message), ttl)?)
    }

    fn results(
        &self,
        client: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Vec<u8>>, BrokerError> {
        Ok(self
            .proxy
            .results::<ByteBuf>(client, max, wait)?
            .into_iter()
            .map(ByteBuf::into_vec)
            .collect())
    }

    fn extend(&self, ids: &[u64], lease: Duration) -> Result<usize, BrokerError> {
        Ok(self.proxy.extend(ids, lease)?)
    }

    fn cancel(&self, id: u64) -> Result<bool, BrokerError> {
        Ok(self.proxy.cancel(id)?)
    }

    fn counts(&self) -> Result<BrokerCounts, BrokerError> {
        Ok(self.proxy.counts()?)
    }

    fn join(&self, timeout: Option<Duration>) -> Result<bool, BrokerError> {
        Ok(match timeout {
            Some(t) => self.proxy.join_timeout(t)?,
            None => self.proxy.join().map(|()| true)?,
        })
    }

    fn heartbeat(&self, worker: &str, record: &[u8], expire: Duration) -> Result<(), BrokerError> {
        Ok(self.proxy.heartbeat(worker, record, expire)?)
    }

    fn retry_dead(&self) -> Result<u64, BrokerError> {
        Ok(self.proxy.retry_dead_letters()?)
    }

    fn purge_dead(&self) -> Result<u64, BrokerError> {
        Ok(self.proxy.purge_dead_letters()?)
    }

    fn workers(&self) -> Result<Vec<Heartbeat>, BrokerError> {
        Ok(self
            .proxy
            .workers()?
            .into_iter()
            .map(|w| Heartbeat {
                worker: w.id,
                record: w.record,
                age: w.age,
            })
            .collect())
    }

    fn consumer(&self) -> Arc<dyn Broker> {
        let mut id = [0u8; 8];
        let _ = getrandom::fill(&mut id);
        Arc::new(EmbeddedBroker {
            proxy: self.proxy.with_consumer(format!(
                "{}-{:016x}",
                std::process::id(),
                u64::from_le_bytes(id)
            )),
            _manager: self._manager.clone(),
        })
    }
}
