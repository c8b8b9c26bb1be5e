//! A live web dashboard of spindle pools and queues — Celery's Flower for
//! spindle: a JSON API, a Server-Sent Events stream, Prometheus `/metrics`
//! and one HTML page (vanilla JS, inline SVG charts, embedded in the
//! binary). See README.md beside this crate for the routes, the security
//! rules and the limits.
//!
//! ```no_run
//! use std::sync::Arc;
//! use spindle::process::ProcessPoolExecutor;
//! use spindle_dashboard::{Dashboard, TaskLog};
//!
//! let log = TaskLog::new(1000);
//! let pool = Arc::new(
//!     ProcessPoolExecutor::builder().on_task_start(log.observer()).build()?,
//! );
//! let dash = Dashboard::builder()
//!     .process_pool("work", &pool)
//!     .tasks(&log)
//!     .serve()?;
//! println!("dashboard on {}", dash.url());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

mod cluster;
mod http;
mod tasks;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use spindle::process::ProcessPoolExecutor;
use spindle::stats::{PoolStats, QueueStats, Sources, StatsServer};

pub use cluster::{ClusterSource, DeadLetterView, MAX_DEAD, ManagerSource};
pub use tasks::{MAX_CAPACITY, PREVIEW_CHARS, TaskLog, TaskRecord, TaskState};

/// The most `/api/tasks` returns at once (`limit`).
pub const MAX_LIMIT: usize = 1000;

/// Events buffered for one SSE client; a client that falls further behind
/// loses events (counted in `dropped`, and in
/// `spindle_dashboard_sse_dropped_total`).
pub const SSE_BUFFER: usize = 16;

/// SSE clients at once; more get 503.
pub const MAX_SSE_CLIENTS: usize = 128;

/// Samples of the charts' history (10 minutes at the default interval).
pub const HISTORY: usize = 600;

/// Why a dashboard could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A bind address that is not loopback was given without a token.
    TokenRequired {
        /// The address.
        bind: SocketAddr,
    },
    /// `allow_actions` was asked without a token.
    ActionsNeedToken,
    /// The token is empty, or holds a character other than `A-Z a-z 0-9
    /// - . _ ~` (it travels unencoded in a URL).
    BadToken,
    /// No source: neither pools, queues, sources, a stats socket, a
    /// cluster nor a manager server.
    NoSource,
    /// Binding the address, or starting the server's thread, failed.
    Io(std::io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::TokenRequired { bind } => write!(
                f,
                "{bind} is not a loopback address: a token is required (--token)"
            ),
            Error::ActionsNeedToken => f.write_str("--allow-actions requires a token (--token)"),
            Error::BadToken => f.write_str("a token is 1 or more of A-Z a-z 0-9 - . _ ~"),
            Error::NoSource => f.write_str(
                "nothing to show: add a pool, a queue, a socket, a cluster or a manager",
            ),
            Error::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::Io(e)
    }
}

type PidsFn = Arc<dyn Fn() -> Vec<u32> + Send + Sync>;

/// Where the numbers come from.
#[derive(Clone)]
pub(crate) enum Source {
    /// This program's pools and queues.
    Local {
        sources: Sources,
        workers: Vec<(String, PidsFn)>,
    },
    /// Another program's stats socket (`spindle::stats::serve`).
    Socket(PathBuf),
    /// A queue of a cluster (`spindle_cluster::ClusterStatus`); `base`
    /// gives the dashboard's own pid and uptime.
    Cluster {
        source: ClusterSource,
        base: Sources,
    },
    /// A manager server's counters (`Manager::stats()`).
    Manager {
        source: ManagerSource,
        base: Sources,
    },
}

/// Builds a [`Dashboard`]: [`Dashboard::builder`].
pub struct Builder {
    bind: SocketAddr,
    token: Option<String>,
    allow_actions: bool,
    sources: Sources,
    any_source: bool,
    workers: Vec<(String, PidsFn)>,
    socket: Option<PathBuf>,
    cluster: Option<ClusterSource>,
    manager: Option<ManagerSource>,
    stats_socket: Option<PathBuf>,
    tasks: Option<Arc<TaskLog>>,
    interval: Duration,
    hosts: Vec<String>,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("bind", &self.bind)
            .field("token", &self.token.as_ref().map(|_| "…"))
            .field("allow_actions", &self.allow_actions)
            .field("sources", &self.sources)
            .field("socket", &self.socket)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// The address to listen on (default `127.0.0.1:0`: loopback, any free
    /// port). A non-loopback address needs a [`token`](Builder::token).
    pub fn bind(mut self, addr: SocketAddr) -> Builder {
        self.bind = addr;
        self
    }

    /// Every request must carry this token: `Authorization: Bearer TOKEN`
    /// or `?token=TOKEN` (compared in constant time).
    pub fn token(mut self, token: impl Into<String>) -> Builder {
        self.token = Some(token.into());
        self
    }

    /// Accept actions (`POST /api/dead/retry`, `POST /api/dead/purge`):
    /// only by POST, with the token and an `Origin` matching the host.
    /// Needs a token. Default: read-only.
    pub fn allow_actions(mut self, yes: bool) -> Builder {
        self.allow_actions = yes;
        self
    }

    /// Also accept requests whose `Host` is `host` (a name or `name:port`
    /// this dashboard is reached by); by default only the bound address
    /// and `localhost` are (DNS rebinding).
    pub fn allow_host(mut self, host: impl Into<String>) -> Builder {
        self.hosts.push(host.into().to_ascii_lowercase());
        self
    }

    /// Shows a process pool: its stats and its workers' pids.
    pub fn process_pool(self, name: &str, pool: &Arc<ProcessPoolExecutor>) -> Builder {
        let (a, b) = (pool.clone(), pool.clone());
        self.pool(name, move || a.stats())
            .workers(name, move || b.worker_pids())
    }

    /// Shows a pool by its stats (`move || pool.stats()`).
    pub fn pool(
        mut self,
        name: &str,
        stats: impl Fn() -> PoolStats + Send + Sync + 'static,
    ) -> Builder {
        self.sources = self.sources.pool(name, stats);
        self.any_source = true;
        self
    }

    /// The pids of pool `name`'s workers, for `/api/workers`.
    pub fn workers(
        mut self,
        name: &str,
        pids: impl Fn() -> Vec<u32> + Send + Sync + 'static,
    ) -> Builder {
        self.workers.push((name.to_string(), Arc::new(pids)));
        self
    }

    /// Shows a queue by its stats (`move || queue.stats()`).
    pub fn queue(
        mut self,
        name: &str,
        stats: impl Fn() -> QueueStats + Send + Sync + 'static,
    ) -> Builder {
        self.sources = self.sources.queue(name, stats);
        self.any_source = true;
        self
    }

    /// Shows these sources (replacing the pools and queues added before).
    pub fn sources(mut self, sources: Sources) -> Builder {
        self.sources = sources;
        self.any_source = true;
        self
    }

    /// Shows another program's stats socket (`spindle::stats::serve`)
    /// instead of local sources: its pools and queues, no workers' pids,
    /// no tasks.
    pub fn socket(mut self, path: impl Into<PathBuf>) -> Builder {
        self.socket = Some(path.into());
        self
    }

    /// Shows a queue of a cluster instead of local sources: its
    /// `ClusterStatus` (workers with their heartbeats' ages, the queue's
    /// depth, tasks in flight, unfinished, dead letters, rates) and its dead
    /// letters when the broker can list them ([`ClusterSource`]). A
    /// [`socket`](Builder::socket), if also given, wins.
    pub fn cluster(mut self, source: ClusterSource) -> Builder {
        self.cluster = Some(source);
        self
    }

    /// Shows a manager server's counters instead of local sources
    /// (`Manager::stats()`: connections, channels, objects, handshakes
    /// accepted and refused) in `/api/status` (`manager`) and `/metrics`
    /// (`spindle_manager_*`). A [`socket`](Builder::socket) or a
    /// [`cluster`](Builder::cluster), if also given, wins.
    pub fn manager(mut self, source: ManagerSource) -> Builder {
        self.manager = Some(source);
        self
    }

    /// Also serves the local sources on a stats socket at `path`
    /// (`spindle::stats::serve`: mode 0600), for `spindle status --socket`.
    pub fn stats_socket(mut self, path: impl Into<PathBuf>) -> Builder {
        self.stats_socket = Some(path.into());
        self
    }

    /// The tasks to list (`/api/tasks`, the timeline).
    pub fn tasks(mut self, log: &Arc<TaskLog>) -> Builder {
        self.tasks = Some(log.clone());
        self
    }

    /// How often the SSE stream sends a snapshot and the charts take a
    /// sample (default 1 s; 10 ms to 60 s).
    pub fn event_interval(mut self, every: Duration) -> Builder {
        self.interval = every.clamp(Duration::from_millis(10), Duration::from_secs(60));
        self
    }

    /// Binds and serves on a thread of its own (a one-thread tokio
    /// runtime) until the [`Dashboard`] is dropped.
    ///
    /// # Errors
    /// [`Error::TokenRequired`] for a non-loopback bind without a token,
    /// [`Error::ActionsNeedToken`], [`Error::BadToken`],
    /// [`Error::NoSource`], [`Error::Io`] if the address cannot be bound.
    pub fn serve(self) -> Result<Dashboard, Error> {
        if let Some(t) = &self.token
            && (t.is_empty()
                || !t
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)))
        {
            return Err(Error::BadToken);
        }
        if !self.bind.ip().is_loopback() && self.token.is_none() {
            return Err(Error::TokenRequired { bind: self.bind });
        }
        if self.allow_actions && self.token.is_none() {
            return Err(Error::ActionsNeedToken);
        }
        let source = match (&self.socket, &self.cluster, &self.manager) {
            (Some(p), _, _) => Source::Socket(p.clone()),
            (None, Some(c), _) => Source::Cluster {
                source: c.clone(),
                base: Sources::new(),
            },
            (None, None, Some(m)) => Source::Manager {
                source: m.clone(),
                base: Sources::new(),
            },
            (None, None, None) if self.any_source => Source::Local {
                sources: self.sources.clone(),
                workers: self.workers.clone(),
            },
            (None, None, None) => return Err(Error::NoSource),
        };
        let stats_server = match (&self.stats_socket, &source) {
            (Some(p), Source::Local { sources, .. }) => {
                Some(spindle::stats::serve(p, sources.clone())?)
            }
            _ => None,
        };
        let listener = std::net::TcpListener::bind(self.bind)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let mut hosts = self.hosts;
        hosts.extend([
            addr.to_string(),
            format!("localhost:{}", addr.port()),
            "localhost".to_string(),
        ]);
        let app = http::new_app(http::Config {
            source,
            tasks: self.tasks,
            token: self.token,
            allow_actions: self.allow_actions,
            hosts,
            interval: self.interval,
        });
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("SpindleDashboard".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    tokio::spawn(http::sampler(app.clone()));
                    tokio::spawn(async move {
                        let _ = axum::serve(listener, http::router(app)).await;
                    });
                    let _ = stop_rx.await;
                });
                // Drops every connection's task; a stats socket read in
                // progress (5 s timeout) is not waited for past 1 s.
                rt.shutdown_timeout(Duration::from_secs(1));
            })?;
        ready_rx
            .recv()
            .map_err(|_| std::io::Error::other("the dashboard thread ended"))??;
        Ok(Dashboard {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
            _stats_server: stats_server,
        })
    }
}

/// A running dashboard: its address; dropping it stops the server.
pub struct Dashboard {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _stats_server: Option<StatsServer>,
}

impl fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dashboard")
            .field("addr", &self.addr)
            .finish()
    }
}

impl Dashboard {
    /// A builder: bind `127.0.0.1:0`, no token, read-only, one-second
    /// events.
    pub fn builder() -> Builder {
        Builder {
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            token: None,
            allow_actions: false,
            sources: Sources::new(),
            any_source: false,
            workers: Vec::new(),
            socket: None,
            cluster: None,
            manager: None,
            stats_socket: None,
            tasks: None,
            interval: Duration::from_secs(1),
            hosts: Vec::new(),
        }
    }

    /// The bound address (the real port for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://HOST:PORT/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The dashboard of one process pool on `127.0.0.1:0`, read-only:
/// `Dashboard::builder().process_pool("pool", pool).serve()`.
///
/// # Errors
/// As [`Builder::serve`].
pub fn serve(pool: &Arc<ProcessPoolExecutor>) -> Result<Dashboard, Error> {
    Dashboard::builder().process_pool("pool", pool).serve()
}
