//! A task broker held by a manager server: at-least-once delivery with
//! leases, the embedded backend of a distributed task queue.
//!
//! An entry is put, fetched by a consumer under a lease, and then either
//! acknowledged (done), negatively acknowledged (back to the queue, now or
//! after a delay), dead-lettered (given up, with a reason), or its lease
//! runs out and it goes back to the head of the queue for another
//! consumer. Each delivery counts; an entry delivered `max_deliveries`
//! times that comes back once more is dead-lettered instead. Acks are
//! idempotent and belong to the lease holder: an ack from a consumer whose
//! lease ran out (a "zombie") does nothing, so an entry is counted done
//! once. `unfinished` counts entries put and not yet acked or
//! dead-lettered; `join` waits for it to reach zero.
//!
//! Time runs on the server's clock only (leases and delays are durations).
//! Expired leases and due delays are looked at on every call and while a
//! fetch or join waits, in slices of at most [`SLICE`].
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};
use serde::{Deserialize, Serialize};

use super::objects::{Cancel, SLICE};
use super::proto::{Bin, Fail, Value, Wait};

/// How many dead letters a broker keeps to show (the oldest go first;
/// `dead_total` counts them all).
pub const DEAD_LETTERS_KEPT: usize = 1000;

/// A heartbeat expires after at most this long (about 34 years), so that
/// `Instant` arithmetic never overflows.
const MAX_EXPIRE_MS: u64 = 1 << 40;

/// How many entries one fetch takes at most.
pub const MAX_FETCH: u64 = 10_000;

/// One delivery of an entry to a consumer (the wire form).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub(crate) struct WireDelivery {
    pub(crate) id: u64,
    pub(crate) item: Bin,
    /// 1 for the first delivery.
    pub(crate) attempt: u32,
}

/// A dead letter (the wire form).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub(crate) struct WireDead {
    pub(crate) id: u64,
    pub(crate) item: Bin,
    pub(crate) attempts: u32,
    pub(crate) reason: String,
}

/// A worker's last heartbeat (the wire form): its record, and how long
/// ago the server got it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub(crate) struct WireWorker {
    pub(crate) id: String,
    pub(crate) record: Bin,
    pub(crate) age_ms: u64,
}

/// How many workers a broker keeps heartbeats of at most (a heartbeat of
/// one more is refused).
pub const MAX_WORKERS: usize = 10_000;

/// A broker's counters.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BrokerCounts {
    /// Entries waiting to be fetched, now or after a delay.
    pub queued: u64,
    /// Entries waiting for a delay (among `queued`).
    pub delayed: u64,
    /// Entries under a lease.
    pub in_flight: u64,
    /// Entries put and not yet acknowledged or dead-lettered.
    pub unfinished: u64,
    /// Entries dead-lettered since the broker started.
    pub dead_total: u64,
    /// Deliveries whose lease ran out (each redelivered or dead-lettered).
    pub expired: u64,
    /// Acks that found no lease of theirs (duplicates, zombies).
    pub stale_acks: u64,
}

#[derive(Debug)]
struct Entry {
    id: u64,
    item: Bin,
    /// Deliveries so far.
    attempt: u32,
    max_deliveries: u32,
    /// Who to tell if it is given up when its lease runs out, and what.
    on_dead: Option<(String, Bin, u64)>,
}

#[derive(Debug)]
struct Lease {
    entry: Entry,
    until: Instant,
    consumer: String,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    ready: VecDeque<Entry>,
    leased: HashMap<u64, Lease>,
    delayed: BTreeMap<(Instant, u64), Entry>,
    /// The dead letters kept, with the `max_deliveries` each was put with
    /// (for a retry).
    dead: VecDeque<(WireDead, u32)>,
    counts: BrokerCounts,
    /// Each client's results, and when the stream expires unless read or
    /// added to.
    results: HashMap<String, (VecDeque<Bin>, Instant)>,
    /// Each worker's last heartbeat: its record, when it came, and when
    /// it expires.
    workers: HashMap<String, (Bin, Instant, Instant)>,
}

impl State {
    /// Moves expired leases and due delays back to the queue.
    fn tidy(&mut self, now: Instant) {
        let expired: Vec<u64> = self
            .leased
            .iter()
            .filter(|(_, l)| l.until <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(mut l) = self.leased.remove(&id) {
                self.counts.expired += 1;
                if l.entry.attempt >= l.entry.max_deliveries
                    && let Some((client, message, ttl_ms)) = l.entry.on_dead.take()
                {
                    self.push_result(client, message, now + Duration::from_millis(ttl_ms));
                }
                let reason = format!(
                    "its lease ran out {} times (max_deliveries)",
                    l.entry.attempt
                );
                self.retry(l.entry, None, reason);
            }
        }
        self.results.retain(|_, (_, expires)| *expires > now);
        while let Some((&(at, id), _)) = self.delayed.first_key_value() {
            if at > now {
                break;
            }
            if let Some(e) = self.delayed.remove(&(at, id)) {
                self.ready.push_back(e);
            }
        }
    }

    /// An entry back from a consumer: to the head of the queue (a lease
    /// that ran out), or after `delay` (a nack); dead-lettered if it was
    /// delivered `max_deliveries` times already.
    fn retry(&mut self, entry: Entry, delay: Option<Duration>, reason: String) {
        if entry.attempt >= entry.max_deliveries {
            self.bury(entry, reason);
            return;
        }
        match delay {
            None => self.ready.push_front(entry),
            Some(d) if d.is_zero() => self.ready.push_back(entry),
            Some(d) => {
                let at = Instant::now() + d;
                self.delayed.insert((at, entry.id), entry);
            }
        }
    }

    fn bury(&mut self, entry: Entry, reason: String) {
        self.counts.dead_total += 1;
        self.counts.unfinished = self.counts.unfinished.saturating_sub(1);
        if self.dead.len() >= DEAD_LETTERS_KEPT {
            self.dead.pop_front();
        }
        self.dead.push_back((
            WireDead {
                id: entry.id,
                item: entry.item,
                attempts: entry.attempt,
                reason,
            },
            entry.max_deliveries,
        ));
    }

    fn take(&mut self, n: usize, lease: Duration, consumer: &str) -> Vec<WireDelivery> {
        let until = Instant::now() + lease;
        let mut out = Vec::new();
        while out.len() < n {
            let Some(mut e) = self.ready.pop_front() else {
                break;
            };
            e.attempt += 1;
            out.push(WireDelivery {
                id: e.id,
                item: e.item.clone(),
                attempt: e.attempt,
            });
            self.leased.insert(
                e.id,
                Lease {
                    entry: e,
                    until,
                    consumer: consumer.to_string(),
                },
            );
        }
        out
    }

    /// The lease of `id` if `consumer` holds it.
    fn held(&mut self, id: u64, consumer: &str) -> Option<Lease> {
        match self.leased.get(&id) {
            Some(l) if l.consumer == consumer => self.leased.remove(&id),
            _ => None,
        }
    }

    /// Adds a result to `client`'s stream, which lives at least until
    /// `expires`.
    fn push_result(&mut self, client: String, result: Bin, expires: Instant) {
        let stream = self
            .results
            .entry(client)
            .or_insert_with(|| (VecDeque::new(), expires));
        stream.0.push_back(result);
        stream.1 = stream.1.max(expires);
    }

    fn counts(&self) -> BrokerCounts {
        BrokerCounts {
            queued: (self.ready.len() + self.delayed.len()) as u64,
            delayed: self.delayed.len() as u64,
            in_flight: self.leased.len() as u64,
            ..self.counts
        }
    }
}

/// The broker object.
#[derive(Debug, Default)]
pub(crate) struct ByteBroker {
    st: Mutex<State>,
    ready: Condvar,
    done: Condvar,
    /// A result was added to some client's stream.
    results: Condvar,
}

/// How many results one `BResults` takes at most.
pub const MAX_RESULTS: u64 = 10_000;

fn until(wait: Wait) -> Option<Instant> {
    match wait {
        Wait::Nanos(n) => Some(Instant::now() + Duration::from_nanos(n)),
        _ => None,
    }
}

/// Waits on `cv` for one slice (shorter if `until` is nearer): false once
/// `until` has passed.
fn wait_slice(cv: &Condvar, st: &mut MutexGuard<'_, State>, until: Option<Instant>) -> bool {
    let d = match until {
        None => SLICE,
        Some(at) => {
            let left = at.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            left.min(SLICE)
        }
    };
    cv.wait_for(st, d);
    true
}

impl ByteBroker {
    pub(crate) fn put(
        &self,
        items: Vec<Bin>,
        max_deliveries: u32,
        on_dead: Option<(String, Bin, u64)>,
    ) -> Result<Value, Fail> {
        if max_deliveries == 0 {
            return Err(Fail::BadArg("max_deliveries must be at least 1".into()));
        }
        let mut st = self.st.lock();
        let mut ids = Vec::with_capacity(items.len());
        for item in items {
            st.next_id += 1;
            let id = st.next_id;
            ids.push(id);
            st.ready.push_back(Entry {
                id,
                item,
                attempt: 0,
                max_deliveries,
                on_dead: on_dead.clone(),
            });
            st.counts.unfinished += 1;
        }
        self.ready.notify_all();
        self.results.notify_all();
        Ok(Value::Ids(ids))
    }

    pub(crate) fn fetch(
        &self,
        n: u64,
        wait: Wait,
        lease_ms: u64,
        consumer: &str,
        cancel: &dyn Cancel,
    ) -> Result<Value, Fail> {
        if n == 0 || n > MAX_FETCH {
            return Err(Fail::BadArg(format!(
                "fetch of {n} entries: 1 to {MAX_FETCH}"
            )));
        }
        if lease_ms == 0 {
            return Err(Fail::BadArg("a lease of 0 ms".into()));
        }
        let lease = Duration::from_millis(lease_ms);
        let deadline = until(wait);
        let mut st = self.st.lock();
        loop {
            st.tidy(Instant::now());
            if !st.ready.is_empty() {
                if !cancel.commit() {
                    self.ready.notify_one();
                    return Err(Fail::Cancelled);
                }
                let out = st.take(n as usize, lease, consumer);
                return Ok(Value::Deliveries(out));
            }
            if wait == Wait::No {
                return Err(Fail::Empty);
            }
            if cancel.cancelled() {
                return Err(Fail::ShutDown);
            }
            if !wait_slice(&self.ready, &mut st, deadline) {
                return Err(Fail::Empty);
            }
        }
    }

    /// Acks: how many were this consumer's (the others are stale).
    pub(crate) fn ack(&self, ids: &[u64], consumer: &str) -> Result<Value, Fail> {
        let mut st = self.st.lock();
        st.tidy(Instant::now());
        let mut n = 0;
        for id in ids {
            if st.held(*id, consumer).is_some() {
                n += 1;
                st.counts.unfinished = st.counts.unfinished.saturating_sub(1);
            } else {
                st.counts.stale_acks += 1;
            }
        }
        if st.counts.unfinished == 0 {
            self.done.notify_all();
        }
        Ok(Value::U64(n))
    }

    /// Acks entry `id` and, only if the ack counts (this consumer holds
    /// its lease), adds `result` to `client`'s result stream, which then
    /// lives at least `ttl_ms` more: so one result is recorded per entry,
    /// however many consumers ran it. `Bool`: whether it counted.
    pub(crate) fn ack_result(
        &self,
        id: u64,
        consumer: &str,
        client: String,
        result: Bin,
        ttl_ms: u64,
    ) -> Result<Value, Fail> {
        let mut st = self.st.lock();
        let now = Instant::now();
        st.tidy(now);
        if st.held(id, consumer).is_none() {
            st.counts.stale_acks += 1;
            return Ok(Value::Bool(false));
        }
        st.counts.unfinished = st.counts.unfinished.saturating_sub(1);
        st.push_result(client, result, now + Duration::from_millis(ttl_ms));
        self.results.notify_all();
        if st.counts.unfinished == 0 {
            self.done.notify_all();
        }
        Ok(Value::Bool(true))
    }

    /// Takes up to `max` results of `client`'s stream, waiting for the
    /// first; `Bins`.
    pub(crate) fn take_results(
        &self,
        client: &str,
        max: u64,
        wait: Wait,
        cancel: &dyn Cancel,
    ) -> Result<Value, Fail> {
        if max == 0 || max > MAX_RESULTS {
            return Err(Fail::BadArg(format!(
                "take of {max} results: 1 to {MAX_RESULTS}"
            )));
        }
        let deadline = until(wait);
        let mut st = self.st.lock();
        loop {
            st.tidy(Instant::now());
            if let Some((q, _)) = st.results.get_mut(client)
                && !q.is_empty()
            {
                if !cancel.commit() {
                    return Err(Fail::Cancelled);
                }
                let n = q.len().min(max as usize);
                return Ok(Value::Bins(q.drain(..n).collect()));
            }
            if wait == Wait::No {
                return Err(Fail::Empty);
            }
            if cancel.cancelled() {
                return Err(Fail::ShutDown);
            }
            if !wait_slice(&self.results, &mut st, deadline) {
                return Err(Fail::Empty);
            }
        }
    }

    pub(crate) fn nack(&self, id: u64, consumer: &str, delay_ms: u64) -> Result<Value, Fail> {
        let mut st = self.st.lock();
        st.tidy(Instant::now());
        let Some(l) = st.held(id, consumer) else {
            return Ok(Value::Bool(false));
        };
        let reason = format!(
            "delivered {} times, the last one refused (max_deliveries)",
            l.entry.attempt
        );
        st.retry(l.entry, Some(Duration::from_millis(delay_ms)), reason);
        self.ready.notify_one();
        if st.counts.unfinished == 0 {
            self.done.notify_all();
        }
        Ok(Value::Bool(true))
    }

    pub(crate) fn extend(&self, ids: &[u64], consumer: &str, lease_ms: u64) -> Result<Value, Fail> {
        let mut st = self.st.lock();
        st.tidy(Instant::now());
        let until = Instant::now() + Duration::from_millis(lease_ms);
        let mut n = 0;
        for id in ids {
            if let Some(l) = st.leased.get_mut(id)
                && l.consumer == consumer
            {
                l.until = until;
                n += 1;
            }
        }
        Ok(Value::U64(n))
    }

    pub(crate) fn dead_letter(
        &self,
        id: u64,
        consumer: &str,
        reason: String,
        notify: Option<(String, Bin, u64)>,
    ) -> Result<Value, Fail> {
        let mut st = self.st.lock();
        let now = Instant::now();
        st.tidy(now);
        let Some(l) = st.held(id, consumer) else {
            return Ok(Value::Bool(false));
        };
        st.bury(l.entry, reason);
        if let Some((client, result, ttl_ms)) = notify {
            st.push_result(client, result, now + Duration::from_millis(ttl_ms));
            self.results.notify_all();
        }
        if st.counts.unfinished == 0 {
            self.done.notify_all();
        }
        Ok(Value::Bool(true))
    }

    /// Takes a queued (or delayed) entry out: `Bool`, whether it was
    /// there; one a consumer holds stays.
    pub(crate) fn cancel(&self, id: u64) -> Value {
        let mut st = self.st.lock();
        st.tidy(Instant::now());
        let found = if let Some(i) = st.ready.iter().position(|e| e.id == id) {
            st.ready.remove(i);
            true
        } else if let Some(k) = st.delayed.keys().find(|(_, i)| *i == id).copied() {
            st.delayed.remove(&k);
            true
        } else {
            false
        };
        if found {
            st.counts.unfinished = st.counts.unfinished.saturating_sub(1);
            if st.counts.unfinished == 0 {
                self.done.notify_all();
            }
        }
        Value::Bool(found)
    }

    /// Adds `message` to `client`'s result stream.
    pub(crate) fn notify(&self, client: String, message: Bin, ttl_ms: u64) -> Value {
        let mut st = self.st.lock();
        let now = Instant::now();
        st.tidy(now);
        st.push_result(client, message, now + Duration::from_millis(ttl_ms));
        self.results.notify_all();
        Value::Unit
    }

    pub(crate) fn dead(&self, limit: u64) -> Value {
        let st = self.st.lock();
        let skip = st.dead.len().saturating_sub(limit as usize);
        Value::Dead(st.dead.iter().skip(skip).map(|(d, _)| d.clone()).collect())
    }

    /// Puts every dead letter kept back at the tail of the queue, as a
    /// new entry (a new id, deliveries counted from 0, its
    /// `max_deliveries`; no client is told if it dies again): how many.
    pub(crate) fn retry_dead(&self) -> Value {
        let mut st = self.st.lock();
        let dead: Vec<(WireDead, u32)> = st.dead.drain(..).collect();
        let n = dead.len() as u64;
        for (d, max_deliveries) in dead {
            st.next_id += 1;
            let id = st.next_id;
            st.ready.push_back(Entry {
                id,
                item: d.item,
                attempt: 0,
                max_deliveries,
                on_dead: None,
            });
            st.counts.unfinished += 1;
        }
        drop(st);
        if n > 0 {
            self.ready.notify_all();
            self.results.notify_all();
        }
        Value::U64(n)
    }

    /// Drops every dead letter kept (`dead_total` still counts them): how
    /// many.
    pub(crate) fn purge_dead(&self) -> Value {
        let mut st = self.st.lock();
        let n = st.dead.len() as u64;
        st.dead.clear();
        Value::U64(n)
    }

    pub(crate) fn counts(&self) -> Value {
        let mut st = self.st.lock();
        st.tidy(Instant::now());
        Value::Broker(st.counts())
    }

    /// Records `worker`'s heartbeat (its `record`, shown until `expire_ms`
    /// pass without another); `expire_ms` 0 removes it.
    pub(crate) fn heartbeat(
        &self,
        worker: String,
        record: Bin,
        expire_ms: u64,
    ) -> Result<Value, Fail> {
        // Expired heartbeats are dropped when read, or here at the limit:
        // a heartbeat costs O(1), not O(workers).
        let mut st = self.st.lock();
        let now = Instant::now();
        if expire_ms == 0 {
            st.workers.remove(&worker);
            return Ok(Value::Unit);
        }
        if st.workers.len() >= MAX_WORKERS && !st.workers.contains_key(&worker) {
            st.workers.retain(|_, (_, _, expires)| *expires > now);
        }
        if st.workers.len() >= MAX_WORKERS && !st.workers.contains_key(&worker) {
            return Err(Fail::BadArg(format!(
                "heartbeats of more than {MAX_WORKERS} workers"
            )));
        }
        let expires = now + Duration::from_millis(expire_ms.min(MAX_EXPIRE_MS));
        st.workers.insert(worker, (record, now, expires));
        Ok(Value::Unit)
    }

    /// The workers whose heartbeat has not expired, by id.
    pub(crate) fn workers(&self) -> Value {
        let mut st = self.st.lock();
        let now = Instant::now();
        st.workers.retain(|_, (_, _, expires)| *expires > now);
        let mut out: Vec<WireWorker> = st
            .workers
            .iter()
            .map(|(id, (record, seen, _))| WireWorker {
                id: id.clone(),
                record: record.clone(),
                age_ms: u64::try_from(now.saturating_duration_since(*seen).as_millis())
                    .unwrap_or(u64::MAX),
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Value::Workers(out)
    }

    /// Waits until every entry put was acked or dead-lettered: `true`, or
    /// `false` at the deadline.
    pub(crate) fn join(&self, wait: Wait, cancel: &dyn Cancel) -> Result<Value, Fail> {
        let deadline = until(wait);
        let mut st = self.st.lock();
        loop {
            st.tidy(Instant::now());
            if st.counts.unfinished == 0 {
                return Ok(Value::Bool(true));
            }
            if wait == Wait::No {
                return Ok(Value::Bool(false));
            }
            if cancel.cancelled() {
                return Err(Fail::ShutDown);
            }
            if !wait_slice(&self.done, &mut st, deadline) {
                return Ok(Value::Bool(false));
            }
        }
    }
}

// ----------------------------------------------------------------------
// The proxy.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::client::{CallError, Handle};
use super::error::ManagerError;
use super::proto::{Call, wait_until};
use super::proxy::{Proxy, as_bool, as_u64, checked, sealed::Sealed, unexpected};

/// How many times an entry is delivered at most, by default, before it is
/// dead-lettered.
pub const DEFAULT_MAX_DELIVERIES: u32 = 5;

/// One entry delivered to this consumer: acknowledge it by `id` when done.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery<T> {
    /// The entry's id (what `ack`, `nack`, `extend`, `dead_letter` take).
    pub id: u64,
    /// The entry.
    pub item: T,
    /// Which delivery this is: 1 the first time.
    pub attempt: u32,
}

/// A worker's last heartbeat, as [`BrokerProxy::workers`] shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerWorker {
    /// The worker's id.
    pub id: String,
    /// What it sent (its status; the broker does not read it).
    pub record: Vec<u8>,
    /// How long ago the server got it, on the server's clock.
    pub age: Duration,
}

/// An entry given up on.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter<T> {
    /// The entry's id.
    pub id: u64,
    /// The entry, or `None` if it does not decode as `T`.
    pub item: Option<T>,
    /// How many times it was delivered.
    pub attempts: u32,
    /// Why it was given up.
    pub reason: String,
}

/// A proxy of a task broker on a manager server ([`Manager::broker`],
/// [`Typeid::broker`]): at-least-once delivery with leases, the embedded
/// backend of a distributed task queue.
///
/// Producers [`put`](Self::put) entries; consumers [`fetch`](Self::fetch)
/// them under a lease and then [`ack`](Self::ack) each (done),
/// [`nack`](Self::nack) it (again, after a delay),
/// [`dead_letter`](Self::dead_letter) it (given up), or let the lease run
/// out (it goes back to the head of the queue for another consumer;
/// [`extend`](Self::extend) keeps a long task's lease). An entry delivered
/// `max_deliveries` times that comes back again is dead-lettered. Acks are
/// idempotent and belong to the lease holder, so an entry is done once
/// even when a consumer whose lease ran out acks late; [`join`](Self::join)
/// waits until every entry put is acked or dead-lettered.
///
/// Each proxy is one consumer, with a random id
/// ([`consumer`](Self::consumer)); clones share it,
/// [`with_consumer`](Self::with_consumer) names another. The broker lives
/// in the server's memory: a server that stops loses its entries.
///
/// [`Manager::broker`]: super::Manager::broker
/// [`Typeid::broker`]: super::Typeid::broker
pub struct BrokerProxy<T> {
    h: Arc<Handle>,
    consumer: Arc<str>,
    _t: PhantomData<fn() -> T>,
}

fn new_consumer() -> Arc<str> {
    let mut r = [0u8; 8];
    let n = match getrandom::fill(&mut r) {
        Ok(()) => u64::from_le_bytes(r),
        Err(_) => u64::from(std::process::id()) << 32 | u64::from(rand_fallback()),
    };
    format!("{}-{n:016x}", std::process::id()).into()
}

/// A per-process counter, when the OS has no randomness to give (the id
/// then is only unique among this host's processes).
fn rand_fallback() -> u32 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

#[allow(private_interfaces)]
impl<T> Sealed for BrokerProxy<T> {
    fn from_handle(h: Arc<Handle>) -> Self {
        BrokerProxy {
            h,
            consumer: new_consumer(),
            _t: PhantomData,
        }
    }
}

impl<T> Proxy for BrokerProxy<T> {
    const TYPEID: &'static str = "Broker";
    fn fingerprint() -> String {
        std::any::type_name::<T>().to_string()
    }
}

impl<T> Clone for BrokerProxy<T> {
    fn clone(&self) -> Self {
        BrokerProxy {
            h: self.h.clone(),
            consumer: self.consumer.clone(),
            _t: PhantomData,
        }
    }
}

impl<T> fmt::Debug for BrokerProxy<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerProxy")
            .field("address", &self.h.conn.address)
            .field("id", &self.h.token.obj)
            .field("consumer", &self.consumer)
            .finish()
    }
}

/// A proxy passed to another process is another consumer there.
impl<T> Serialize for BrokerProxy<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        super::lease::serialize(&self.h, s)
    }
}

impl<'de, T> Deserialize<'de> for BrokerProxy<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::lease::deserialize::<Self, D>(d)
    }
}

/// What a client is told: `message` in its result stream, kept `ttl`.
fn to_client<R: Serialize>(
    client: &str,
    message: &R,
    ttl: Duration,
) -> Result<(String, Bin, u64), ManagerError> {
    Ok((
        client.to_string(),
        super::proto::encode_value(message)?,
        millis(ttl).max(1),
    ))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl<T: Serialize + DeserializeOwned> BrokerProxy<T> {
    /// This proxy's consumer id: whose leases its acks and extends are.
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// The same broker as another consumer, `id` (a worker's name: reuse
    /// one only for the same worker).
    pub fn with_consumer(&self, id: impl Into<String>) -> Self {
        BrokerProxy {
            h: self.h.clone(),
            consumer: id.into().into(),
            _t: PhantomData,
        }
    }

    /// Puts one entry (delivered at most [`DEFAULT_MAX_DELIVERIES`] times);
    /// its id.
    pub fn put(&self, item: &T) -> Result<u64, ManagerError> {
        let ids = self.put_many([item], DEFAULT_MAX_DELIVERIES)?;
        ids.first()
            .copied()
            .ok_or_else(|| ManagerError::protocol("no id for the entry put"))
    }

    /// Puts entries in one round trip, each delivered at most
    /// `max_deliveries` times (at least 1); their ids, in order.
    pub fn put_many<'a>(
        &self,
        items: impl IntoIterator<Item = &'a T>,
        max_deliveries: u32,
    ) -> Result<Vec<u64>, ManagerError>
    where
        T: 'a,
    {
        let items = items
            .into_iter()
            .map(super::proto::encode_value)
            .collect::<Result<Vec<_>, _>>()?;
        self.put_call(items, max_deliveries, None)
    }

    /// [`put_many`](Self::put_many), telling client `client` — `message`
    /// in its result stream, kept at least `ttl` — if one of the entries
    /// is given up because its lease ran out `max_deliveries` times (its
    /// consumers died): what a waiting caller needs to stop waiting.
    pub fn put_many_or_tell<'a, R: Serialize>(
        &self,
        items: impl IntoIterator<Item = &'a T>,
        max_deliveries: u32,
        client: &str,
        message: &R,
        ttl: Duration,
    ) -> Result<Vec<u64>, ManagerError>
    where
        T: 'a,
    {
        let items = items
            .into_iter()
            .map(super::proto::encode_value)
            .collect::<Result<Vec<_>, _>>()?;
        let on_dead = to_client(client, message, ttl)?;
        self.put_call(items, max_deliveries, Some(on_dead))
    }

    fn put_call(
        &self,
        items: Vec<Bin>,
        max_deliveries: u32,
        on_dead: Option<(String, Bin, u64)>,
    ) -> Result<Vec<u64>, ManagerError> {
        match checked(self.h.call(Call::BPut {
            items,
            max_deliveries,
            on_dead,
        }))? {
            Value::Ids(ids) => Ok(ids),
            v => Err(unexpected(v)),
        }
    }

    fn fetch_wait(
        &self,
        n: usize,
        lease: Duration,
        wait: Wait,
    ) -> Result<Vec<Delivery<T>>, ManagerError> {
        let call = Call::BFetch {
            n: n as u64,
            wait,
            lease_ms: millis(lease).max(1),
            consumer: self.consumer.to_string(),
        };
        match self.h.call(call) {
            Ok(Value::Deliveries(v)) => v
                .into_iter()
                .map(|d| {
                    Ok(Delivery {
                        id: d.id,
                        item: super::proto::decode_value(&d.item)?,
                        attempt: d.attempt,
                    })
                })
                .collect(),
            Ok(v) => Err(unexpected(v)),
            Err(CallError::Fail(Fail::Empty)) => Ok(Vec::new()),
            Err(e) => Err(e.into_error()),
        }
    }

    /// Takes up to `n` entries (1 to [`MAX_FETCH`]) under a lease of
    /// `lease`, waiting for the first. An entry that does not decode as `T`
    /// is a [`ManagerError::Codec`] (its lease runs out and it is delivered
    /// again, up to its `max_deliveries`: dead-letter it with
    /// [`fetch_raw`](Self::fetch_raw) to stop that).
    pub fn fetch(&self, n: usize, lease: Duration) -> Result<Vec<Delivery<T>>, ManagerError> {
        self.fetch_wait(n, lease, Wait::Forever)
    }

    /// [`fetch`](Self::fetch) waiting at most `timeout`: empty if nothing
    /// came.
    pub fn fetch_timeout(
        &self,
        n: usize,
        lease: Duration,
        timeout: Duration,
    ) -> Result<Vec<Delivery<T>>, ManagerError> {
        self.fetch_wait(n, lease, wait_until(Instant::now() + timeout))
    }

    /// [`fetch`](Self::fetch) without waiting: empty if nothing is there.
    pub fn try_fetch(&self, n: usize, lease: Duration) -> Result<Vec<Delivery<T>>, ManagerError> {
        self.fetch_wait(n, lease, Wait::No)
    }

    /// [`fetch_timeout`](Self::fetch_timeout) of the entries' bytes, not
    /// decoded (to dead-letter an entry that is not a `T`).
    pub fn fetch_raw(
        &self,
        n: usize,
        lease: Duration,
        timeout: Duration,
    ) -> Result<Vec<Delivery<Vec<u8>>>, ManagerError> {
        let call = Call::BFetch {
            n: n as u64,
            wait: wait_until(Instant::now() + timeout),
            lease_ms: millis(lease).max(1),
            consumer: self.consumer.to_string(),
        };
        match self.h.call(call) {
            Ok(Value::Deliveries(v)) => Ok(v
                .into_iter()
                .map(|d| Delivery {
                    id: d.id,
                    item: d.item.into_vec(),
                    attempt: d.attempt,
                })
                .collect()),
            Ok(v) => Err(unexpected(v)),
            Err(CallError::Fail(Fail::Empty)) => Ok(Vec::new()),
            Err(e) => Err(e.into_error()),
        }
    }

    /// Acknowledges entries (`task_done`): how many were this consumer's.
    /// An entry acked twice, or after its lease ran out and another
    /// consumer took it, is not counted again.
    pub fn ack(&self, ids: &[u64]) -> Result<usize, ManagerError> {
        let call = Call::BAck {
            ids: ids.to_vec(),
            consumer: self.consumer.to_string(),
        };
        as_u64(checked(self.h.call(call))?).map(|n| n as usize)
    }

    /// Acknowledges entry `id` and, only if the ack counts, adds `result`
    /// to client `client`'s result stream (kept at least `ttl` more if
    /// nobody reads it): one result per entry, however many consumers ran
    /// it — a consumer whose lease ran out gets `false` and its result is
    /// dropped.
    pub fn ack_with_result<R: Serialize>(
        &self,
        id: u64,
        client: &str,
        result: &R,
        ttl: Duration,
    ) -> Result<bool, ManagerError> {
        let call = Call::BAckResult {
            id,
            consumer: self.consumer.to_string(),
            client: client.to_string(),
            result: super::proto::encode_value(result)?,
            ttl_ms: millis(ttl).max(1),
        };
        as_bool(checked(self.h.call(call))?)
    }

    /// Takes up to `max` results (1 to [`MAX_RESULTS`]) of client
    /// `client`'s stream, waiting at most `timeout` for the first: empty if
    /// none came.
    pub fn results<R: DeserializeOwned>(
        &self,
        client: &str,
        max: usize,
        timeout: Duration,
    ) -> Result<Vec<R>, ManagerError> {
        let call = Call::BResults {
            client: client.to_string(),
            max: max as u64,
            wait: wait_until(Instant::now() + timeout),
        };
        match self.h.call(call) {
            Ok(Value::Bins(v)) => v.iter().map(|b| super::proto::decode_value(b)).collect(),
            Ok(v) => Err(unexpected(v)),
            Err(CallError::Fail(Fail::Empty)) => Ok(Vec::new()),
            Err(e) => Err(e.into_error()),
        }
    }

    /// Gives entry `id` back, to be delivered again after `delay` (or
    /// dead-lettered if it was delivered `max_deliveries` times); false if
    /// this consumer does not hold it.
    pub fn nack(&self, id: u64, delay: Duration) -> Result<bool, ManagerError> {
        let call = Call::BNack {
            id,
            consumer: self.consumer.to_string(),
            delay_ms: millis(delay),
        };
        as_bool(checked(self.h.call(call))?)
    }

    /// Extends this consumer's leases on `ids` to `lease` from now: how
    /// many it still held (a lease that ran out is not taken back).
    pub fn extend(&self, ids: &[u64], lease: Duration) -> Result<usize, ManagerError> {
        let call = Call::BExtend {
            ids: ids.to_vec(),
            consumer: self.consumer.to_string(),
            lease_ms: millis(lease).max(1),
        };
        as_u64(checked(self.h.call(call))?).map(|n| n as usize)
    }

    /// Gives entry `id` up, with `reason`; false if this consumer does not
    /// hold it.
    pub fn dead_letter(&self, id: u64, reason: &str) -> Result<bool, ManagerError> {
        self.dead_letter_call(id, reason, None)
    }

    /// [`dead_letter`](Self::dead_letter), and tells client `client` why:
    /// `result` goes to its result stream (kept at least `ttl`), as
    /// [`ack_with_result`](Self::ack_with_result) does — so a caller
    /// waiting for the entry's result learns it was given up.
    pub fn dead_letter_with_result<R: Serialize>(
        &self,
        id: u64,
        reason: &str,
        client: &str,
        result: &R,
        ttl: Duration,
    ) -> Result<bool, ManagerError> {
        let notify = to_client(client, result, ttl)?;
        self.dead_letter_call(id, reason, Some(notify))
    }

    fn dead_letter_call(
        &self,
        id: u64,
        reason: &str,
        notify: Option<(String, Bin, u64)>,
    ) -> Result<bool, ManagerError> {
        let call = Call::BDeadLetter {
            id,
            consumer: self.consumer.to_string(),
            reason: reason.to_string(),
            notify,
        };
        as_bool(checked(self.h.call(call))?)
    }

    /// Takes entry `id` out of the queue if no consumer has it yet (a
    /// cancelled task): whether it was still queued.
    pub fn cancel(&self, id: u64) -> Result<bool, ManagerError> {
        as_bool(checked(self.h.call(Call::BCancel { id }))?)
    }

    /// Adds `message` to client `client`'s result stream (kept at least
    /// `ttl`) without acknowledging anything: a worker telling a client
    /// that it started a task.
    pub fn notify<R: Serialize>(
        &self,
        client: &str,
        message: &R,
        ttl: Duration,
    ) -> Result<(), ManagerError> {
        let call = Call::BNotify {
            client: client.to_string(),
            message: super::proto::encode_value(message)?,
            ttl_ms: millis(ttl).max(1),
        };
        checked(self.h.call(call)).map(|_| ())
    }

    /// [`notify`](Self::notify) without waiting for the server's answer
    /// (one round trip less on a worker's path): the message is sent, in
    /// order with this thread's other calls, but nothing says it arrived.
    pub fn notify_nowait<R: Serialize>(
        &self,
        client: &str,
        message: &R,
        ttl: Duration,
    ) -> Result<(), ManagerError> {
        let call = Call::BNotify {
            client: client.to_string(),
            message: super::proto::encode_value(message)?,
            ttl_ms: millis(ttl).max(1),
        };
        self.h.conn()?.post(super::proto::Op::Call {
            obj: self.h.token.obj,
            call,
        });
        Ok(())
    }

    /// The newest `limit` dead letters, oldest first (the broker keeps
    /// [`DEAD_LETTERS_KEPT`]).
    pub fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter<T>>, ManagerError> {
        match checked(self.h.call(Call::BDead {
            limit: limit as u64,
        }))? {
            Value::Dead(v) => Ok(v
                .into_iter()
                .map(|d| DeadLetter {
                    id: d.id,
                    item: super::proto::decode_value(&d.item).ok(),
                    attempts: d.attempts,
                    reason: d.reason,
                })
                .collect()),
            v => Err(unexpected(v)),
        }
    }

    /// Puts every dead letter the broker keeps back at the tail of the
    /// queue as a new entry (a new id, its deliveries counted from 0; no
    /// client is told if it is given up again): how many. The
    /// dashboard's "retry" (Flower's and RQ's requeue of failed jobs).
    pub fn retry_dead_letters(&self) -> Result<u64, ManagerError> {
        as_u64(checked(self.h.call(Call::BRetryDead))?)
    }

    /// Drops every dead letter the broker keeps (`dead_total` still
    /// counts them): how many.
    pub fn purge_dead_letters(&self) -> Result<u64, ManagerError> {
        as_u64(checked(self.h.call(Call::BPurgeDead))?)
    }

    /// The broker's counters.
    pub fn counts(&self) -> Result<BrokerCounts, ManagerError> {
        match checked(self.h.call(Call::BCounts))? {
            Value::Broker(c) => Ok(c),
            v => Err(unexpected(v)),
        }
    }

    /// Records worker `worker`'s heartbeat: `record` (its status, which
    /// the broker keeps without reading) is what [`workers`](Self::workers)
    /// shows of it until `expire` passes without another heartbeat;
    /// `expire` zero removes it now (a worker that stopped). At most
    /// [`MAX_WORKERS`] workers: a heartbeat of one more is refused.
    pub fn heartbeat(
        &self,
        worker: &str,
        record: &[u8],
        expire: Duration,
    ) -> Result<(), ManagerError> {
        let call = Call::BHeartbeat {
            worker: worker.to_string(),
            record: Bin::from(record.to_vec()),
            expire_ms: millis(expire),
        };
        checked(self.h.call(call)).map(|_| ())
    }

    /// The workers whose heartbeat has not expired, by id, each with its
    /// last record and that heartbeat's age on the server's clock (so the
    /// hosts' clocks need not agree).
    pub fn workers(&self) -> Result<Vec<BrokerWorker>, ManagerError> {
        match checked(self.h.call(Call::BWorkers))? {
            Value::Workers(v) => Ok(v
                .into_iter()
                .map(|w| BrokerWorker {
                    id: w.id,
                    record: w.record.into_vec(),
                    age: Duration::from_millis(w.age_ms),
                })
                .collect()),
            v => Err(unexpected(v)),
        }
    }

    /// Entries put and not yet acked or dead-lettered.
    pub fn unfinished(&self) -> Result<u64, ManagerError> {
        self.counts().map(|c| c.unfinished)
    }

    /// Waits until every entry put is acked or dead-lettered.
    pub fn join(&self) -> Result<(), ManagerError> {
        self.join_wait(Wait::Forever).map(|_| ())
    }

    /// [`join`](Self::join) waiting at most `timeout`: false if entries
    /// are still unfinished then.
    pub fn join_timeout(&self, timeout: Duration) -> Result<bool, ManagerError> {
        self.join_wait(wait_until(Instant::now() + timeout))
    }

    fn join_wait(&self, wait: Wait) -> Result<bool, ManagerError> {
        as_bool(checked(self.h.call(Call::BJoin { wait }))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_are_bounded() {
        let b = ByteBroker::default();
        for i in 0..MAX_WORKERS {
            assert!(b.heartbeat(format!("w{i}"), Bin::default(), 60_000).is_ok());
        }
        match b.heartbeat("one too many".into(), Bin::default(), 60_000) {
            Err(Fail::BadArg(m)) => assert!(m.contains("10000"), "{m}"),
            r => panic!("{r:?}"),
        }
        // A known worker still beats; a huge expiry does not overflow.
        assert!(b.heartbeat("w0".into(), Bin::default(), u64::MAX).is_ok());
        b.heartbeat("w1".into(), Bin::default(), 0).unwrap();
        match b.workers() {
            Value::Workers(v) => assert_eq!(v.len(), MAX_WORKERS - 1),
            v => panic!("{v:?}"),
        }
    }
}
