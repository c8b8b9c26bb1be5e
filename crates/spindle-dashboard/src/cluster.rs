//! A cluster source: one queue of a `spindle_cluster` broker, shown by
//! its [`ClusterStatus`] (workers with their heartbeats, the queue's
//! depth, tasks in flight, dead letters, rates) and, when the broker can
//! list them, its dead letters.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde_bytes::ByteBuf;
use spindle::manager::{BrokerProxy, Manager};
use spindle_cluster::{Broker, BrokerError, ClusterStatus, EmbeddedBroker};

/// The most dead letters `/api/dead` lists (the oldest first for Redis,
/// the newest kept by the embedded broker, oldest first).
pub const MAX_DEAD: usize = 100;

/// One dead letter, as `/api/dead` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DeadLetterView {
    /// The queue it was given up in.
    pub queue: String,
    /// The entry's id.
    pub id: u64,
    /// Why it was given up.
    pub reason: String,
    /// How many times it was delivered.
    pub attempts: u32,
    /// The entry's size in bytes (its bytes are not shown; `None` when
    /// the broker did not return them).
    pub bytes: Option<usize>,
}

type DeadFn = Arc<dyn Fn(usize) -> Result<Vec<DeadLetterView>, BrokerError> + Send + Sync>;

/// One queue of a cluster: its name, its broker, and how to list its dead
/// letters (if the broker can).
#[derive(Clone)]
pub struct ClusterSource {
    queue: String,
    broker: Arc<dyn Broker>,
    dead: Option<DeadFn>,
}

impl fmt::Debug for ClusterSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterSource")
            .field("queue", &self.queue)
            .field("broker", &self.broker)
            .field("dead_letters", &self.dead.is_some())
            .finish()
    }
}

fn is_redis(url: &str) -> bool {
    ["redis://", "rediss://", "unix://", "redis+unix://"]
        .iter()
        .any(|p| url.starts_with(p))
}

impl ClusterSource {
    /// Queue `queue` of any broker: its status, no dead letters listed
    /// (`/api/dead` is `[]`; their count is in the status).
    pub fn new(queue: &str, broker: Arc<dyn Broker>) -> ClusterSource {
        ClusterSource {
            queue: queue.to_string(),
            broker,
            dead: None,
        }
    }

    /// The manager server's broker registered as `queue` (a proxy of
    /// `manager`): its status and its dead letters
    /// (`BrokerProxy::dead_letters`).
    pub fn embedded(queue: &str, proxy: BrokerProxy<ByteBuf>, manager: Manager) -> ClusterSource {
        let name = queue.to_string();
        let dead_proxy = proxy.clone();
        let dead: DeadFn = Arc::new(move |max| {
            Ok(dead_proxy
                .dead_letters(max)
                .map_err(|e| BrokerError::Unavailable(e.to_string()))?
                .into_iter()
                .map(|d| DeadLetterView {
                    queue: name.clone(),
                    id: d.id,
                    reason: d.reason,
                    attempts: d.attempts,
                    bytes: d.item.map(|b| b.len()),
                })
                .collect())
        });
        ClusterSource {
            queue: queue.to_string(),
            broker: Arc::new(EmbeddedBroker::from_proxy(proxy, manager)),
            dead: Some(dead),
        }
    }

    /// A Redis queue: its status and its dead letters
    /// (`RedisBroker::dead_letters`).
    pub fn redis(broker: spindle_cluster::RedisBroker) -> ClusterSource {
        let queue = broker.queue().to_string();
        let broker = Arc::new(broker);
        let (b, name) = (broker.clone(), queue.clone());
        let dead: DeadFn = Arc::new(move |max| {
            Ok(b.dead_letters(max)?
                .into_iter()
                .map(|d| DeadLetterView {
                    queue: name.clone(),
                    id: d.id,
                    reason: d.reason,
                    attempts: d.attempts,
                    bytes: Some(d.entry.len()),
                })
                .collect())
        });
        ClusterSource {
            queue,
            broker,
            dead: Some(dead),
        }
    }

    /// Connects as `spindle_cluster::connect_broker` does: a Redis URL
    /// (`redis://`, `rediss://`, `unix://`, `redis+unix://`), or a manager
    /// server's `HOST:PORT` or socket path with its key (then `queue` is
    /// the broker's registered name).
    ///
    /// # Errors
    ///
    /// As `connect_broker`: [`BrokerError::Refused`] for a manager address
    /// without a key or one that does not parse, or a bad Redis URL;
    /// [`BrokerError::Unavailable`] when the broker cannot be reached,
    /// refuses the key, or has no broker named `queue`.
    pub fn connect(
        url: &str,
        authkey: Option<&[u8]>,
        queue: &str,
    ) -> Result<ClusterSource, BrokerError> {
        ClusterSource::connect_with(url, authkey, queue, &spindle_cluster::RedisTls::default())
    }

    /// [`connect`](ClusterSource::connect) with TLS settings for a
    /// `rediss://` URL (a private CA, a client certificate:
    /// `spindle_cluster::RedisTls`).
    ///
    /// # Errors
    ///
    /// As `connect`; `BrokerError::Auth` if a Redis server refuses the
    /// password or user; `BrokerError::Tls` if TLS fails, its files cannot
    /// be used, or settings other than the default are given for a broker
    /// without TLS.
    pub fn connect_with(
        url: &str,
        authkey: Option<&[u8]>,
        queue: &str,
        tls: &spindle_cluster::RedisTls,
    ) -> Result<ClusterSource, BrokerError> {
        if is_redis(url) {
            return Ok(ClusterSource::redis(
                spindle_cluster::RedisBroker::connect_with(url, queue, tls)?,
            ));
        }
        if !tls.is_default() {
            return Err(BrokerError::Tls(format!(
                "{url} is a manager server's address: TLS settings are for a rediss:// URL"
            )));
        }
        let key = authkey.ok_or_else(|| {
            BrokerError::Refused(format!(
                "{url} is a manager server's address: it needs the server's key"
            ))
        })?;
        let address: spindle::ipc::Address = url
            .parse()
            .map_err(|e| BrokerError::Refused(format!("{url:?}: {e}")))?;
        let m =
            Manager::connect(address, key).map_err(|e| BrokerError::Unavailable(e.to_string()))?;
        let proxy = m
            .get::<BrokerProxy<ByteBuf>>(queue)
            .map_err(|e| BrokerError::Unavailable(e.to_string()))?;
        Ok(ClusterSource::embedded(queue, proxy, m))
    }

    /// The queue's name.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// A snapshot (blocking: a broker call).
    pub(crate) fn status(&self) -> Result<ClusterStatus, BrokerError> {
        ClusterStatus::of(&self.queue, &*self.broker)
    }

    /// Up to `max` dead letters (blocking), `[]` when the broker cannot
    /// list them.
    /// Puts the queue's dead letters back in it (`Broker::retry_dead`):
    /// how many.
    pub(crate) fn retry_dead(&self) -> Result<u64, BrokerError> {
        self.broker.retry_dead()
    }

    /// Drops the queue's dead letters (`Broker::purge_dead`): how many.
    pub(crate) fn purge_dead(&self) -> Result<u64, BrokerError> {
        self.broker.purge_dead()
    }

    pub(crate) fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetterView>, BrokerError> {
        match &self.dead {
            Some(f) => f(max),
            None => Ok(Vec::new()),
        }
    }
}

/// A manager server, shown by its counters (`Manager::stats()`:
/// connections, channels, objects, handshakes accepted and refused), read
/// over one connection of its own.
#[derive(Clone)]
pub struct ManagerSource {
    address: String,
    manager: Arc<Manager>,
}

impl fmt::Debug for ManagerSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagerSource")
            .field("address", &self.address)
            .finish()
    }
}

impl ManagerSource {
    /// The server `manager` is connected to, shown as `address`.
    pub fn new(address: &str, manager: Manager) -> ManagerSource {
        ManagerSource {
            address: address.to_string(),
            manager: Arc::new(manager),
        }
    }

    /// Connects to the server at `address` (`HOST:PORT` or a socket path)
    /// with its key.
    ///
    /// # Errors
    ///
    /// As `Manager::connect`: a server that cannot be reached or refuses
    /// the key.
    pub fn connect(
        address: impl Into<spindle::ipc::Address>,
        authkey: &[u8],
    ) -> Result<ManagerSource, spindle::manager::ManagerError> {
        let a = address.into();
        let shown = a.to_string();
        Ok(ManagerSource::new(&shown, Manager::connect(a, authkey)?))
    }

    /// The address it was given.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The server's counters (blocking: a call).
    pub(crate) fn stats(&self) -> Result<spindle::manager::Stats, String> {
        self.manager
            .stats()
            .map_err(|e| format!("manager at {}: {e}", self.address))
    }
}
