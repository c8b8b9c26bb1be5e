//! spindle's distributed task queue: run registered tasks
//! (`#[spindle::task]`) on workers on other hosts through a broker.
//!
//! - [`Broker`]: what the queue needs of a broker — at-least-once delivery
//!   with leases, idempotent acks, redelivery, dead letters, a result stream
//!   per client. [`EmbeddedBroker`] is the manager server's broker
//!   (`spindle serve --broker NAME`, or `Typeid::broker()` in your own
//!   server), in memory. `RedisBroker` (feature `redis`, on by default)
//!   is the same contract on Redis Streams: entries survive a worker, an
//!   executor and (with Redis persistence) the server. AUTH and ACL users
//!   come in the URL; `rediss://` is TLS (feature `tls`, on by default),
//!   with `RedisTls` for a private CA and a client certificate.
//! - [`ClusterExecutor`]: a `futures::Executor` (and `process::RemoteExecutor`)
//!   whose tasks go through the broker: `submit`, `map`, `as_completed`,
//!   `wait`, `shutdown` as on the local pools.
//! - [`worker_main`]: a worker process from your own binary (`fn main() {
//!   spindle_cluster::worker_main() }` or a subcommand of it): `--broker
//!   ADDRESS --authkey-file F [--queue NAME] [--concurrency N] [--mode
//!   threads|processes]` or `--broker redis://…|rediss://…|unix://…
//!   [--tls-ca F] [--tls-cert F --tls-key F]`, `--list`;
//!   it drains on SIGTERM. `spindle worker` is the same for spindle's own
//!   tasks.
//! - [`Queue`]: Python's `queue.Queue` shared by name between hosts (a
//!   `spindle::queue::BlockingQueue`), on Redis (`maxsize` and `shutdown`
//!   in Lua, optional leases with `task_done`/[`Receipt`] acks) or on a
//!   manager server's queue.
//! - [`Worker`]: fetches tasks, runs them with `process::invoke` (tasks of
//!   this same binary, found by name and checked by signature), sends the
//!   results back, keeps its leases alive while a task runs.
//!
//! - [`ClusterStatus`]: the workers (each with its heartbeat's age), the
//!   queues' depths, tasks in flight, dead letters and rates, read from
//!   the brokers (`spindle status --broker`); see [`status`].
//!
//! Delivery is at least once: a worker that dies holding a task loses its
//! lease and the task goes to another worker, up to the task's
//! `max_deliveries`; one result is recorded per task however many workers
//! ran it. A task that names an unknown task, or a task of another
//! signature, or that does not decode, is dead-lettered at once with its
//! reason (never retried), and its caller's future fails with that reason.
//! This crate's README.md says when a task runs, runs again and is given
//! up, in detail.

mod broker;
mod executor;
mod main_fn;
mod queue;
#[cfg(feature = "redis")]
mod redis;
pub mod status;
mod tls;
mod wire;
mod worker;

#[cfg(feature = "redis")]
pub use self::redis::{RedisBroker, RedisDeadLetter};
pub use broker::{
    Broker, BrokerError, EmbeddedBroker, Fetched, Heartbeat, Outgoing, PutEntry, PutOptions,
};
pub use executor::{ClusterExecutor, ClusterExecutorBuilder, TaskOptions};
pub use main_fn::{
    WORKER_USAGE, WorkerArgs, WorkerCommand, WorkerProgress, connect_broker, connect_broker_with,
    parse_worker_args, redacted_url, run as run_worker, run_with as run_worker_with, worker_main,
};
pub use queue::{Queue, Receipt};
pub use status::{ClusterStatus, QueueStatus, WorkerStatus};
pub use tls::RedisTls;
pub use worker::{MAX_PREFETCH, Worker, WorkerMode, WorkerStats};
