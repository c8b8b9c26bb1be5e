//! What a cluster is doing: its workers (each with its heartbeat's age),
//! its queues' depths, the tasks in flight, the dead letters and the rates
//! — [`ClusterStatus`], read from the brokers (`spindle status --broker`).
//!
//! Each [`Worker`](crate::Worker) sends its broker a heartbeat every
//! [`Worker::status_every`](crate::Worker::status_every) (default 2 s): a
//! small record of its own counters (MessagePack, named fields) that the
//! broker keeps without reading, and drops when [`HEARTBEAT_MISSES`]
//! heartbeats in a row are missing (a worker killed, or cut off). A worker
//! that stops takes its record out at once. The age of a heartbeat is
//! measured on the broker's clock (the manager server's, or Redis's
//! `TIME`), so the hosts' clocks need not agree.
//!
//! Rates come from counters, never from timing each task: a worker reports
//! the tasks it finished over the last [`RATE_WINDOW`] (from its `done`
//! counter at each heartbeat), and a queue's rate is the sum over its live
//! workers. So a rate lags the work by up to one heartbeat, and the tasks
//! of a worker already dropped no longer count.
//!
//! This is Celery's `celery inspect stats` / Flower's workers page, and
//! the `multiprocessing` manager's `debug_info` for a broker: a snapshot
//! taken on demand, read-only.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub use crate::broker::Heartbeat;
use crate::broker::{Broker, BrokerError};

/// A worker is dropped from the broker's heartbeats after this many of
/// its heartbeats are missing in a row.
pub const HEARTBEAT_MISSES: u32 = 5;

/// The window over which a worker's rate is measured.
pub const RATE_WINDOW: Duration = Duration::from_secs(10);

/// One worker, as its last heartbeat says.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct WorkerStatus {
    /// Its id (unique: `HOST:PID:RANDOM` by default).
    pub id: String,
    /// The queue (broker) it serves, as the status was asked for.
    pub queue: String,
    /// The host it runs on (its `/proc/sys/kernel/hostname`).
    pub host: String,
    /// Its process id there.
    pub pid: u32,
    /// Tasks it runs at once.
    pub concurrency: u64,
    /// Tasks it was running at that heartbeat.
    pub running: u64,
    /// Tasks it ran and acknowledged since it started.
    pub done: u64,
    /// Tasks whose ack did not count (its lease had run out).
    pub stale: u64,
    /// Tasks it gave up at once (could not run them).
    pub dead_lettered: u64,
    /// Tasks done per second over the last [`RATE_WINDOW`] (from its
    /// `done` counter).
    pub done_per_sec: f64,
    /// When it started (Unix time in ms, its own clock).
    pub started_unix_ms: u64,
    /// How often it sends a heartbeat, in ms.
    pub heartbeat_every_ms: u64,
    /// How old its last heartbeat is, in ms, on the broker's clock.
    pub heartbeat_age_ms: u64,
}

/// One queue (one broker).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct QueueStatus {
    /// Its name.
    pub name: String,
    /// Tasks waiting to be fetched (its depth), delayed ones included.
    pub queued: u64,
    /// Tasks waiting for a delay (among `queued`).
    pub delayed: u64,
    /// Tasks under a lease (running, or held by a worker that died until
    /// its lease runs out).
    pub in_flight: u64,
    /// Tasks put and not yet acknowledged or dead-lettered.
    pub unfinished: u64,
    /// Tasks dead-lettered (since the broker started; Redis: the dead
    /// stream's length).
    pub dead_letters: u64,
    /// Leases that ran out.
    pub expired: u64,
    /// Acks that did not count.
    pub stale_acks: u64,
    /// Workers with a live heartbeat.
    pub workers: u64,
    /// Tasks done by those workers (each since it started).
    pub done: u64,
    /// Their tasks done per second, summed.
    pub done_per_sec: f64,
}

/// A snapshot of a cluster: its queues and their workers.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ClusterStatus {
    /// When it was taken (Unix time in ms, this host's clock).
    pub unix_ms: u64,
    /// Each queue asked for, in order.
    pub queues: Vec<QueueStatus>,
    /// Each live worker, by queue and then by id.
    pub workers: Vec<WorkerStatus>,
    /// Tasks done per second over all the queues.
    pub done_per_sec: f64,
}

impl ClusterStatus {
    /// The status of the queues `queues` (each a name and its broker).
    ///
    /// # Errors
    ///
    /// The first broker call that fails (a broker that cannot be reached:
    /// [`BrokerError::Unavailable`]).
    pub fn collect(queues: &[(&str, &dyn Broker)]) -> Result<ClusterStatus, BrokerError> {
        let mut out = ClusterStatus {
            unix_ms: unix_ms(),
            ..ClusterStatus::default()
        };
        for (name, broker) in queues {
            let c = broker.counts()?;
            let mut q = QueueStatus {
                name: (*name).to_string(),
                queued: c.queued,
                delayed: c.delayed,
                in_flight: c.in_flight,
                unfinished: c.unfinished,
                dead_letters: c.dead_total,
                expired: c.expired,
                stale_acks: c.stale_acks,
                ..QueueStatus::default()
            };
            let mut workers: Vec<WorkerStatus> = broker
                .workers()?
                .into_iter()
                .map(|h| {
                    // A record that does not decode (another version, or
                    // written by hand) still shows the worker and its age.
                    let mut w: WorkerStatus = rmp_serde::from_slice(&h.record).unwrap_or_default();
                    w.id = h.worker;
                    w.queue = (*name).to_string();
                    w.heartbeat_age_ms = u64::try_from(h.age.as_millis()).unwrap_or(u64::MAX);
                    w
                })
                .collect();
            workers.sort_by(|a, b| a.id.cmp(&b.id));
            q.workers = workers.len() as u64;
            q.done = workers.iter().map(|w| w.done).sum();
            q.done_per_sec = workers.iter().map(|w| w.done_per_sec).sum();
            out.done_per_sec += q.done_per_sec;
            out.queues.push(q);
            out.workers.extend(workers);
        }
        Ok(out)
    }

    /// The status of one queue.
    ///
    /// # Errors
    ///
    /// As [`collect`](Self::collect).
    pub fn of(queue: &str, broker: &dyn Broker) -> Result<ClusterStatus, BrokerError> {
        ClusterStatus::collect(&[(queue, broker)])
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// This host's name (Linux: `/proc/sys/kernel/hostname`).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// A worker's counts at a heartbeat (`WorkerStats` and its tasks
/// running).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counts {
    pub(crate) done: u64,
    pub(crate) stale: u64,
    pub(crate) dead_lettered: u64,
    pub(crate) running: u64,
}

/// A worker's heartbeat settings, and the loop that sends them.
#[derive(Debug, Clone)]
pub(crate) struct Beat {
    pub(crate) id: String,
    pub(crate) every: Duration,
}

impl Default for Beat {
    fn default() -> Beat {
        let mut r = [0u8; 4];
        let _ = getrandom::fill(&mut r);
        Beat {
            id: format!(
                "{}:{}:{:08x}",
                host_name(),
                std::process::id(),
                u32::from_le_bytes(r)
            ),
            every: Duration::from_secs(2),
        }
    }
}

/// The rate of a counter over the last [`RATE_WINDOW`], from its samples.
#[derive(Debug, Default)]
struct Rate {
    samples: VecDeque<(Instant, u64)>,
}

impl Rate {
    fn sample(&mut self, now: Instant, count: u64) -> f64 {
        self.samples.push_back((now, count));
        // Keep one sample at or before the window's start.
        while self.samples.len() > 2
            && self
                .samples
                .get(1)
                .is_some_and(|(t, _)| now.saturating_duration_since(*t) >= RATE_WINDOW)
        {
            self.samples.pop_front();
        }
        match self.samples.front() {
            Some(&(t, c)) if now > t => {
                count.saturating_sub(c) as f64 / now.duration_since(t).as_secs_f64()
            }
            _ => 0.0,
        }
    }
}

impl Beat {
    /// Sends a heartbeat now and every `self.every` until `served` is set,
    /// then takes the worker out of the broker's heartbeats. A broker
    /// that keeps none (`Refused`) is not asked again; one that cannot be
    /// reached is tried at the next beat.
    pub(crate) fn run(
        &self,
        broker: &dyn Broker,
        concurrency: usize,
        served: &AtomicBool,
        now: impl Fn() -> Counts,
    ) {
        let expire = self.every * HEARTBEAT_MISSES;
        let mut status = WorkerStatus {
            id: self.id.clone(),
            host: host_name(),
            pid: std::process::id(),
            concurrency: concurrency as u64,
            started_unix_ms: unix_ms(),
            heartbeat_every_ms: u64::try_from(self.every.as_millis()).unwrap_or(u64::MAX),
            ..WorkerStatus::default()
        };
        let mut rate = Rate::default();
        let mut next = Instant::now();
        while !served.load(Ordering::SeqCst) {
            let at = Instant::now();
            if at >= next {
                next = at + self.every;
                let c = now();
                status.done = c.done;
                status.stale = c.stale;
                status.dead_lettered = c.dead_lettered;
                status.running = c.running;
                status.done_per_sec = rate.sample(at, c.done);
                let record = rmp_serde::to_vec_named(&status).unwrap_or_default();
                if let Err(BrokerError::Refused(_)) = broker.heartbeat(&self.id, &record, expire) {
                    return;
                }
            }
            std::thread::sleep(
                next.saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(10)),
            );
        }
        let _ = broker.heartbeat(&self.id, &[], Duration::ZERO);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_over_the_window() {
        let mut r = Rate::default();
        let t0 = Instant::now();
        assert_eq!(r.sample(t0, 0), 0.0);
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(r.sample(at(2), 20), 10.0);
        assert_eq!(r.sample(at(4), 40), 10.0);
        // Past the window: measured from the last sample at or before its
        // start (t = 4 s for t = 14 s), not from t0.
        assert_eq!(r.sample(at(14), 40), 0.0);
        assert_eq!(r.sample(at(15), 50), 10.0 / 11.0);
        // A counter that went down (never: a restarted worker is a new
        // one) reads 0, not a huge number.
        assert_eq!(r.sample(at(16), 0), 0.0);
    }

    #[test]
    fn a_record_round_trips_and_tolerates_other_fields() {
        let w = WorkerStatus {
            id: "h:1:0".into(),
            done: 7,
            done_per_sec: 1.5,
            ..WorkerStatus::default()
        };
        let b = rmp_serde::to_vec_named(&w).unwrap();
        assert_eq!(rmp_serde::from_slice::<WorkerStatus>(&b).unwrap(), w);
        #[derive(Serialize)]
        struct Newer {
            done: u64,
            something_new: u8,
        }
        let b = rmp_serde::to_vec_named(&Newer {
            done: 3,
            something_new: 1,
        })
        .unwrap();
        assert_eq!(rmp_serde::from_slice::<WorkerStatus>(&b).unwrap().done, 3);
    }
}
