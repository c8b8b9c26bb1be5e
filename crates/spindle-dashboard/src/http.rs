//! The routes, the security checks, the SSE hub and the sampler.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::fmt::Write as _;
use std::io::Read as _;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use spindle::stats::Status;
use spindle_cluster::{ClusterStatus, WorkerStatus};
use tokio::sync::mpsc;

use crate::tasks::{TaskLog, TaskRecord, TaskState};
use crate::{HISTORY, MAX_DEAD, MAX_LIMIT, MAX_SSE_CLIENTS, SSE_BUFFER, Source};

/// The page: one HTML file, vanilla JS, inline SVG.
const PAGE: &str = include_str!("page.html");

/// The most bytes read from a stats socket for one snapshot.
const SOCKET_LIMIT: u64 = 16 << 20;

pub(crate) struct Config {
    pub(crate) source: Source,
    pub(crate) tasks: Option<Arc<TaskLog>>,
    pub(crate) token: Option<String>,
    pub(crate) allow_actions: bool,
    pub(crate) hosts: Vec<String>,
    pub(crate) interval: Duration,
}

/// One point of the charts.
#[derive(Debug, Clone, Serialize)]
struct Sample {
    unix_ms: u64,
    /// Tasks completed per second since the sample before.
    completed_per_s: f64,
    /// Tasks failed, panicked or cancelled per second since the sample before.
    failed_per_s: f64,
    /// Mean task time of the tasks timed since the sample before (ms).
    mean_ms: Option<f64>,
    /// The pools' p99 task time (ms, all tasks so far).
    p99_ms: Option<f64>,
    pending: u64,
    running: u64,
    workers_busy: u64,
    workers_alive: u64,
    /// Each queue's depth.
    queues: BTreeMap<String, u64>,
}

/// Running totals of the sample before.
#[derive(Default)]
struct Totals {
    unix_ms: u64,
    completed: u64,
    failed: u64,
    timed: u64,
    time_ns: f64,
}

struct Client {
    tx: mpsc::Sender<Bytes>,
    dropped: u64,
}

pub(crate) struct Inner {
    cfg: Config,
    history: Mutex<VecDeque<Sample>>,
    totals: Mutex<Option<Totals>>,
    clients: Mutex<Vec<Client>>,
    sse_dropped: AtomicU64,
    sse_sent: AtomicU64,
    requests: AtomicU64,
}

pub(crate) type App = Arc<Inner>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The state every route shares.
pub(crate) fn new_app(cfg: Config) -> App {
    Arc::new(Inner {
        cfg,
        history: Mutex::new(VecDeque::with_capacity(HISTORY)),
        totals: Mutex::new(None),
        clients: Mutex::new(Vec::new()),
        sse_dropped: AtomicU64::new(0),
        sse_sent: AtomicU64::new(0),
        requests: AtomicU64::new(0),
    })
}

/// A snapshot of the source, and the cluster's when the source is one.
struct Snap {
    status: Status,
    cluster: Option<ClusterStatus>,
    /// A manager source's address and counters.
    manager: Option<(String, spindle::manager::Stats)>,
}

/// A snapshot of the source (blocking for a socket or a cluster: call off
/// the runtime).
fn snap_blocking(source: &Source) -> Result<Snap, String> {
    match source {
        Source::Local { sources, .. } => Ok(Snap {
            status: sources.snapshot(),
            cluster: None,
            manager: None,
        }),
        Source::Socket(p) => read_socket(p).map(|status| Snap {
            status,
            cluster: None,
            manager: None,
        }),
        Source::Manager { source, base } => Ok(Snap {
            manager: Some((source.address().to_string(), source.stats()?)),
            status: base.snapshot(),
            cluster: None,
        }),
        Source::Cluster { source, base } => {
            let c = source
                .status()
                .map_err(|e| format!("queue {}: {e}", source.queue()))?;
            Ok(Snap {
                status: cluster_as_status(base, &c)?,
                cluster: Some(c),
                manager: None,
            })
        }
    }
}

/// The dashboard's own pid and uptime, with each cluster queue as a
/// `QueueStats` (`qsize`: its depth, `unfinished`; `puts` and `gets` 0:
/// a broker does not count them).
fn cluster_as_status(base: &spindle::stats::Sources, c: &ClusterStatus) -> Result<Status, String> {
    let mut v = serde_json::to_value(base.snapshot()).map_err(|e| e.to_string())?;
    let queues: serde_json::Map<String, serde_json::Value> = c
        .queues
        .iter()
        .map(|q| {
            (
                q.name.clone(),
                serde_json::json!({"qsize": q.queued, "unfinished": q.unfinished, "puts": 0, "gets": 0}),
            )
        })
        .collect();
    v["queues"] = serde_json::Value::Object(queues);
    serde_json::from_value(v).map_err(|e| e.to_string())
}

async fn snap(app: &App) -> Result<Snap, String> {
    match &app.cfg.source {
        Source::Local { .. } => snap_blocking(&app.cfg.source),
        Source::Socket(_) | Source::Cluster { .. } | Source::Manager { .. } => {
            let app = app.clone();
            tokio::task::spawn_blocking(move || snap_blocking(&app.cfg.source))
                .await
                .map_err(|e| e.to_string())?
        }
    }
}

fn read_socket(path: &Path) -> Result<Status, String> {
    let why = |e: std::io::Error| format!("stats socket {}: {e}", path.display());
    let s = std::os::unix::net::UnixStream::connect(path).map_err(why)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(why)?;
    let mut line = String::new();
    s.take(SOCKET_LIMIT)
        .read_to_string(&mut line)
        .map_err(why)?;
    serde_json::from_str(&line)
        .map_err(|e| format!("stats socket {}: not a snapshot: {e}", path.display()))
}

/// JSON text safe to put anywhere: `<`, `>` and `&` (only ever inside
/// strings in JSON) become `\u003c`, `\u003e`, `\u0026`.
fn safe_json(v: &impl Serialize) -> String {
    let s = serde_json::to_string(v).unwrap_or_else(|e| {
        serde_json::json!({ "error": format!("cannot encode: {e}") }).to_string()
    });
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            c => out.push(c),
        }
    }
    out
}

fn json(code: StatusCode, v: &impl Serialize) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        safe_json(v),
    )
        .into_response()
}

fn error(code: StatusCode, msg: &str) -> Response {
    json(code, &serde_json::json!({ "error": msg }))
}

pub(crate) fn router(app: App) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/index.html", get(page))
        .route("/api/status", get(api_status))
        .route("/api/workers", get(api_workers))
        .route("/api/queues", get(api_queues))
        .route("/api/tasks", get(api_tasks))
        .route("/api/dead", get(api_dead))
        .route("/api/history", get(api_history))
        .route("/api/events", get(api_events))
        .route("/api/dead/retry", post(action))
        .route("/api/dead/purge", post(action))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app)
}

/// Constant-time equality: every byte of the longer is looked at,
/// whatever differs.
fn same(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    std::hint::black_box(diff) == 0
}

/// The `token` of a query string, if any.
fn query_token(q: &str) -> Option<&str> {
    q.split('&').find_map(|kv| kv.strip_prefix("token="))
}

/// Checks every request: Host, token, method; actions: POST, token,
/// Origin.
async fn guard(State(app): State<App>, req: Request, next: Next) -> Response {
    app.requests.fetch_add(1, Ordering::Relaxed);
    let headers = req.headers();
    let Some(host) = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_ascii_lowercase)
    else {
        return error(StatusCode::FORBIDDEN, "no Host header");
    };
    if !app.cfg.hosts.contains(&host) {
        return error(
            StatusCode::FORBIDDEN,
            "this Host is not the dashboard's address (DNS rebinding?)",
        );
    }
    if let Some(token) = &app.cfg.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .or_else(|| req.uri().query().and_then(query_token));
        if !given.is_some_and(|g| same(g.as_bytes(), token.as_bytes())) {
            return error(StatusCode::UNAUTHORIZED, "a token is required");
        }
    }
    let is_action = req.uri().path().starts_with("/api/dead/");
    if is_action {
        if !app.cfg.allow_actions {
            return error(
                StatusCode::FORBIDDEN,
                "read-only dashboard: actions need --allow-actions",
            );
        }
        if req.method() != Method::POST {
            return error(StatusCode::METHOD_NOT_ALLOWED, "actions are POST only");
        }
        let origin_ok = headers
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok())
            .is_some_and(|o| o.eq_ignore_ascii_case(&format!("http://{host}")));
        if !origin_ok {
            return error(StatusCode::FORBIDDEN, "an action needs a matching Origin");
        }
    } else if req.method() != Method::GET && req.method() != Method::HEAD {
        return error(StatusCode::METHOD_NOT_ALLOWED, "read-only: GET only");
    }
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
             connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Parses a query string against the names allowed (`token` always is):
/// a repeated, unknown or undecodable parameter is an error.
fn params<'a>(q: Option<&'a str>, allowed: &[&str]) -> Result<BTreeMap<&'a str, &'a str>, String> {
    let mut out = BTreeMap::new();
    for kv in q.unwrap_or("").split('&').filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        if k == "token" {
            continue;
        }
        if !allowed.contains(&k) {
            return Err(format!(
                "unknown parameter {k:?} (allowed: {})",
                allowed.join(", ")
            ));
        }
        if v.contains('%') || v.contains('+') {
            return Err(format!("parameter {k}: a plain value is expected"));
        }
        if out.insert(k, v).is_some() {
            return Err(format!("parameter {k} given twice"));
        }
    }
    Ok(out)
}

async fn page(req: Request) -> Response {
    if let Err(e) = params(req.uri().query(), &["poll"]) {
        return error(StatusCode::BAD_REQUEST, &e);
    }
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response()
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such route")
}

fn no_params(req: &Request) -> Option<Response> {
    params(req.uri().query(), &[])
        .err()
        .map(|e| error(StatusCode::BAD_REQUEST, &e))
}

async fn api_status(State(app): State<App>, req: Request) -> Response {
    if let Some(r) = no_params(&req) {
        return r;
    }
    match snap(&app).await {
        Ok(s) => json(StatusCode::OK, &status_json(&s)),
        Err(e) => error(StatusCode::BAD_GATEWAY, &e),
    }
}

/// The `Status` as JSON, with `cluster` (a `ClusterStatus`) added for a
/// cluster source, `manager` (its `address` and `Manager::stats()`) for a
/// manager source.
fn status_json(s: &Snap) -> serde_json::Value {
    let mut v = serde_json::to_value(&s.status).unwrap_or_default();
    if let (Some(c), Some(o)) = (&s.cluster, v.as_object_mut()) {
        o.insert(
            "cluster".into(),
            serde_json::to_value(c).unwrap_or_default(),
        );
    }
    if let (Some((address, stats)), Some(o)) = (&s.manager, v.as_object_mut()) {
        let mut m = serde_json::to_value(stats).unwrap_or_default();
        if let Some(m) = m.as_object_mut() {
            m.insert("address".into(), address.clone().into());
        }
        o.insert("manager".into(), m);
    }
    v
}

#[derive(Serialize)]
struct Worker {
    /// The pool, or a cluster worker's queue.
    pool: String,
    pid: u32,
    /// The task it runs, if the task log knows it.
    task: Option<TaskRecord>,
    /// A cluster worker's last heartbeat (its id, host, counters, rate
    /// and `heartbeat_age_ms`).
    #[serde(skip_serializing_if = "Option::is_none")]
    heartbeat: Option<WorkerStatus>,
}

fn workers(app: &App, cluster: Option<&ClusterStatus>) -> Vec<Worker> {
    if let Some(c) = cluster {
        return c
            .workers
            .iter()
            .map(|w| Worker {
                pool: w.queue.clone(),
                pid: w.pid,
                task: None,
                heartbeat: Some(w.clone()),
            })
            .collect();
    }
    let Source::Local { workers, .. } = &app.cfg.source else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (pool, pids) in workers {
        let mut pids = pids();
        pids.sort_unstable();
        for pid in pids {
            out.push(Worker {
                pool: pool.clone(),
                pid,
                task: app.cfg.tasks.as_ref().and_then(|t| t.running_on(pid)),
                heartbeat: None,
            });
        }
    }
    out
}

async fn api_workers(State(app): State<App>, req: Request) -> Response {
    if let Some(r) = no_params(&req) {
        return r;
    }
    if let Source::Cluster { .. } = &app.cfg.source {
        return match snap(&app).await {
            Ok(s) => json(StatusCode::OK, &workers(&app, s.cluster.as_ref())),
            Err(e) => error(StatusCode::BAD_GATEWAY, &e),
        };
    }
    json(StatusCode::OK, &workers(&app, None))
}

async fn api_queues(State(app): State<App>, req: Request) -> Response {
    if let Some(r) = no_params(&req) {
        return r;
    }
    match snap(&app).await {
        Ok(Snap {
            cluster: Some(c), ..
        }) => {
            let by_name: BTreeMap<&str, _> =
                c.queues.iter().map(|q| (q.name.as_str(), q)).collect();
            json(StatusCode::OK, &by_name)
        }
        Ok(s) => json(StatusCode::OK, &s.status.queues),
        Err(e) => error(StatusCode::BAD_GATEWAY, &e),
    }
}

fn tasks_query(q: Option<&str>) -> Result<(Option<TaskState>, usize), String> {
    let p = params(q, &["state", "limit"])?;
    let state = match p.get("state").copied() {
        None | Some("") => None,
        Some(s) => Some(
            TaskState::parse(s)
                .ok_or_else(|| format!("state {s:?}: one of pending, running, done, failed"))?,
        ),
    };
    let limit = match p.get("limit").copied() {
        None | Some("") => 100,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => return Err(format!("limit {l:?}: a whole number from 1 to {MAX_LIMIT}")),
        },
    };
    Ok((state, limit))
}

async fn api_tasks(State(app): State<App>, req: Request) -> Response {
    let (state, limit) = match tasks_query(req.uri().query()) {
        Ok(x) => x,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let tasks = app
        .cfg
        .tasks
        .as_ref()
        .map(|t| t.recent(state, limit))
        .unwrap_or_default();
    json(StatusCode::OK, &tasks)
}

/// Dead letters: a cluster source's (up to `MAX_DEAD`), when its broker
/// can list them; a pool has none (a failed task's error is in its
/// future), so the list is empty.
async fn api_dead(State(app): State<App>, req: Request) -> Response {
    if let Some(r) = no_params(&req) {
        return r;
    }
    if let Source::Cluster { .. } = &app.cfg.source {
        let app = app.clone();
        let got = tokio::task::spawn_blocking(move || match &app.cfg.source {
            Source::Cluster { source, .. } => source
                .dead_letters(MAX_DEAD)
                .map_err(|e| format!("queue {}: {e}", source.queue())),
            _ => Ok(Vec::new()),
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r);
        return match got {
            Ok(d) => json(StatusCode::OK, &d),
            Err(e) => error(StatusCode::BAD_GATEWAY, &e),
        };
    }
    json(StatusCode::OK, &Vec::<TaskRecord>::new())
}

async fn api_history(State(app): State<App>, req: Request) -> Response {
    if let Some(r) = no_params(&req) {
        return r;
    }
    let h: Vec<Sample> = lock(&app.history).iter().cloned().collect();
    json(StatusCode::OK, &h)
}

/// Retry or purge dead letters (`POST /api/dead/retry`, `/api/dead/purge`;
/// the token, Origin and `allow_actions` are checked before): a cluster
/// source's broker puts them back in the queue or drops them
/// (`Broker::retry_dead`, `purge_dead`); a pool has none to act on.
async fn action(State(app): State<App>, req: Request) -> Response {
    if let Some(r) = no_params(&req) {
        return r;
    }
    let retry = req.uri().path().ends_with("/retry");
    if let Source::Cluster { .. } = &app.cfg.source {
        let app = app.clone();
        let got = tokio::task::spawn_blocking(move || match &app.cfg.source {
            Source::Cluster { source, .. } => if retry {
                source.retry_dead()
            } else {
                source.purge_dead()
            }
            .map_err(|e| format!("queue {}: {e}", source.queue())),
            _ => Ok(0),
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r);
        return match got {
            Ok(n) => json(StatusCode::OK, &serde_json::json!({ "affected": n })),
            Err(e) => error(StatusCode::BAD_GATEWAY, &e),
        };
    }
    json(StatusCode::OK, &serde_json::json!({ "affected": 0 }))
}

/// The SSE stream of one client: its bounded channel.
struct Events {
    rx: mpsc::Receiver<Bytes>,
}

impl futures_core::Stream for Events {
    type Item = Result<Bytes, Infallible>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx).map(|o| o.map(Ok))
    }
}

async fn api_events(State(app): State<App>, req: Request) -> Response {
    if let Some(r) = no_params(&req) {
        return r;
    }
    let (tx, rx) = mpsc::channel(SSE_BUFFER);
    let first = event(0, &now_event_body(&app).await);
    {
        let mut clients = lock(&app.clients);
        clients.retain(|c| !c.tx.is_closed());
        if clients.len() >= MAX_SSE_CLIENTS {
            return error(StatusCode::SERVICE_UNAVAILABLE, "too many event streams");
        }
        if tx.try_send(first).is_ok() {
            app.sse_sent.fetch_add(1, Ordering::Relaxed);
        }
        clients.push(Client { tx, dropped: 0 });
    }
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(Events { rx }),
    )
        .into_response()
}

/// The body shared by every client's event: status, workers, recent
/// tasks and the latest sample, as JSON.
async fn now_event_body(app: &App) -> String {
    let snap = snap(app).await;
    let status = snap.as_ref().map(status_json);
    let workers = workers(app, snap.as_ref().ok().and_then(|s| s.cluster.as_ref()));
    let sample = lock(&app.history).back().cloned();
    let tasks = app
        .cfg
        .tasks
        .as_ref()
        .map(|t| t.recent(None, 50))
        .unwrap_or_default();
    safe_json(&serde_json::json!({
        "status": status.as_ref().ok(),
        "error": status.as_ref().err(),
        "workers": workers,
        "tasks": tasks,
        "sample": sample,
    }))
}

fn event(dropped: u64, body: &str) -> Bytes {
    Bytes::from(format!(
        "retry: 1000\nevent: snapshot\ndata: {{\"dropped\":{dropped},\"snapshot\":{body}}}\n\n"
    ))
}

/// Every interval: a chart sample, then one event to each SSE client
/// (dropped, and counted, for a client whose buffer is full).
pub(crate) async fn sampler(app: App) {
    let mut tick = tokio::time::interval(app.cfg.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Ok(s) = snap(&app).await {
            sample(&app, &s.status);
        }
        let has_clients = !lock(&app.clients).is_empty();
        if !has_clients {
            continue;
        }
        let body = now_event_body(&app).await;
        let mut clients = lock(&app.clients);
        clients.retain_mut(|c| match c.tx.try_send(event(c.dropped, &body)) {
            Ok(()) => {
                app.sse_sent.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                c.dropped += 1;
                app.sse_dropped.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
    }
}

fn sample(app: &App, s: &Status) {
    let mut t = Totals {
        unix_ms: s.unix_ms,
        ..Totals::default()
    };
    let (mut pending, mut running, mut busy, mut alive) = (0, 0, 0, 0);
    let mut p99: Option<u64> = None;
    for p in s.pools.values() {
        t.completed += p.tasks_completed;
        t.failed += p.tasks_failed + p.tasks_panicked + p.tasks_cancelled;
        t.timed += p.task_time_samples;
        t.time_ns += p.task_time_mean_ns.unwrap_or(0) as f64 * p.task_time_samples as f64;
        pending += p.tasks_pending;
        running += p.tasks_running;
        busy += p.workers_busy;
        alive += p.workers_alive;
        p99 = p99.max(p.task_time_p99_ns);
    }
    let mut prev = lock(&app.totals);
    let (completed_per_s, failed_per_s, mean_ms) = match prev.as_ref() {
        Some(b) if t.unix_ms > b.unix_ms => {
            let dt = (t.unix_ms - b.unix_ms) as f64 / 1000.0;
            let timed = t.timed.saturating_sub(b.timed);
            (
                t.completed.saturating_sub(b.completed) as f64 / dt,
                t.failed.saturating_sub(b.failed) as f64 / dt,
                (timed > 0).then(|| (t.time_ns - b.time_ns).max(0.0) / timed as f64 / 1e6),
            )
        }
        _ => (0.0, 0.0, None),
    };
    *prev = Some(t);
    drop(prev);
    let mut h = lock(&app.history);
    if h.len() >= HISTORY {
        h.pop_front();
    }
    h.push_back(Sample {
        unix_ms: s.unix_ms,
        completed_per_s,
        failed_per_s,
        mean_ms,
        p99_ms: p99.map(|n| n as f64 / 1e6),
        pending,
        running,
        workers_busy: busy,
        workers_alive: alive,
        queues: s.queues.iter().map(|(k, q)| (k.clone(), q.qsize)).collect(),
    });
}

/// A Prometheus label value: `\`, `"` and newlines escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

async fn metrics(State(app): State<App>, req: Request) -> Response {
    if let Some(r) = no_params(&req) {
        return r;
    }
    let s = match snap(&app).await {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_GATEWAY, &e),
    };
    let mut text = prometheus(&app, &s.status);
    if let Some(c) = &s.cluster {
        text.push_str(&cluster_metrics(c));
    }
    if let Some((address, stats)) = &s.manager {
        text.push_str(&manager_metrics(address, stats));
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// The `spindle_manager_*` families of a manager server's counters.
fn manager_metrics(address: &str, s: &spindle::manager::Stats) -> String {
    let mut out = String::new();
    let labels = format!("{{manager=\"{}\"}}", label(address));
    for (name, kind, help, v) in [
        (
            "spindle_manager_connections",
            "gauge",
            "Connections open now.",
            s.connections,
        ),
        (
            "spindle_manager_channels",
            "gauge",
            "Channel threads alive now.",
            s.channels,
        ),
        (
            "spindle_manager_calls_in_channels",
            "gauge",
            "Calls running in channel threads now.",
            s.in_channel,
        ),
        (
            "spindle_manager_objects",
            "gauge",
            "Objects alive now.",
            s.objects,
        ),
        (
            "spindle_manager_owner_deaths_total",
            "counter",
            "Locks released because the channel that held them died.",
            s.owner_deaths,
        ),
        (
            "spindle_manager_items_returned_total",
            "counter",
            "Items put back at a queue's head: their taker could not be told.",
            s.items_returned,
        ),
        (
            "spindle_manager_handshakes_accepted_total",
            "counter",
            "Sockets that authenticated.",
            s.handshakes_accepted,
        ),
        (
            "spindle_manager_handshakes_refused_total",
            "counter",
            "Sockets closed before they authenticated (a wrong key, garbage, a deadline).",
            s.handshakes_refused,
        ),
        (
            "spindle_manager_handshakes_pending",
            "gauge",
            "Sockets authenticating now.",
            s.handshakes_pending,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name}{labels} {v}");
    }
    out
}

/// The `spindle_cluster_*` families of a cluster snapshot.
fn cluster_metrics(c: &ClusterStatus) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, rows: Vec<(String, f64)>| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, v) in rows {
            let _ = writeln!(out, "{name}{labels} {v}");
        }
    };
    let queues = |f: &dyn Fn(&spindle_cluster::QueueStatus) -> f64| -> Vec<(String, f64)> {
        c.queues
            .iter()
            .map(|q| (format!("{{queue=\"{}\"}}", label(&q.name)), f(q)))
            .collect()
    };
    for (name, kind, help, f) in [
        (
            "spindle_cluster_queued",
            "gauge",
            "Tasks waiting to be fetched, delayed ones included.",
            (&|q: &spindle_cluster::QueueStatus| q.queued as f64)
                as &dyn Fn(&spindle_cluster::QueueStatus) -> f64,
        ),
        (
            "spindle_cluster_delayed",
            "gauge",
            "Tasks waiting for a delay.",
            &|q| q.delayed as f64,
        ),
        (
            "spindle_cluster_in_flight",
            "gauge",
            "Tasks under a lease.",
            &|q| q.in_flight as f64,
        ),
        (
            "spindle_cluster_unfinished",
            "gauge",
            "Tasks put and not yet acknowledged or dead-lettered.",
            &|q| q.unfinished as f64,
        ),
        (
            "spindle_cluster_dead_letters",
            "gauge",
            "Tasks dead-lettered (embedded: since the broker started; Redis: the dead stream's length).",
            &|q| q.dead_letters as f64,
        ),
        (
            "spindle_cluster_leases_expired_total",
            "counter",
            "Leases that ran out.",
            &|q| q.expired as f64,
        ),
        (
            "spindle_cluster_stale_acks_total",
            "counter",
            "Acks that did not count.",
            &|q| q.stale_acks as f64,
        ),
        (
            "spindle_cluster_workers",
            "gauge",
            "Workers with a live heartbeat.",
            &|q| q.workers as f64,
        ),
        (
            "spindle_cluster_tasks_done",
            "gauge",
            "Tasks done by the live workers, each since it started.",
            &|q| q.done as f64,
        ),
        (
            "spindle_cluster_tasks_done_per_second",
            "gauge",
            "Tasks done per second by the live workers (over their last 10 s).",
            &|q| q.done_per_sec,
        ),
    ] {
        family(name, kind, help, queues(f));
    }
    let workers = |f: &dyn Fn(&WorkerStatus) -> f64| -> Vec<(String, f64)> {
        c.workers
            .iter()
            .map(|w| {
                (
                    format!(
                        "{{worker=\"{}\",queue=\"{}\"}}",
                        label(&w.id),
                        label(&w.queue)
                    ),
                    f(w),
                )
            })
            .collect()
    };
    for (name, kind, help, f) in [
        (
            "spindle_cluster_worker_heartbeat_age_seconds",
            "gauge",
            "Age of the worker's last heartbeat, on the broker's clock.",
            (&|w: &WorkerStatus| w.heartbeat_age_ms as f64 / 1000.0)
                as &dyn Fn(&WorkerStatus) -> f64,
        ),
        (
            "spindle_cluster_worker_concurrency",
            "gauge",
            "Tasks the worker runs at once.",
            &|w| w.concurrency as f64,
        ),
        (
            "spindle_cluster_worker_running",
            "gauge",
            "Tasks the worker was running at its last heartbeat.",
            &|w| w.running as f64,
        ),
        (
            "spindle_cluster_worker_tasks_done_total",
            "counter",
            "Tasks the worker ran and acknowledged since it started.",
            &|w| w.done as f64,
        ),
        (
            "spindle_cluster_worker_dead_lettered_total",
            "counter",
            "Tasks the worker gave up at once.",
            &|w| w.dead_lettered as f64,
        ),
        (
            "spindle_cluster_worker_tasks_done_per_second",
            "gauge",
            "Tasks the worker did per second over its last 10 s.",
            &|w| w.done_per_sec,
        ),
    ] {
        family(name, kind, help, workers(f));
    }
    out
}

fn prometheus(app: &App, s: &Status) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, rows: Vec<(String, f64)>| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, v) in rows {
            let _ = writeln!(out, "{name}{labels} {v}");
        }
    };
    let pools = |f: &dyn Fn(&spindle::stats::PoolStats) -> u64| -> Vec<(String, f64)> {
        s.pools
            .iter()
            .map(|(n, p)| (format!("{{pool=\"{}\"}}", label(n)), f(p) as f64))
            .collect()
    };
    family(
        "spindle_pool_workers_alive",
        "gauge",
        "Workers alive.",
        pools(&|p| p.workers_alive),
    );
    family(
        "spindle_pool_workers_busy",
        "gauge",
        "Workers running a task.",
        pools(&|p| p.workers_busy),
    );
    family(
        "spindle_pool_tasks_pending",
        "gauge",
        "Tasks accepted, not started.",
        pools(&|p| p.tasks_pending),
    );
    family(
        "spindle_pool_tasks_running",
        "gauge",
        "Tasks running.",
        pools(&|p| p.tasks_running),
    );
    let mut ended = Vec::new();
    for (n, p) in &s.pools {
        for (state, v) in [
            ("completed", p.tasks_completed),
            ("failed", p.tasks_failed),
            ("panicked", p.tasks_panicked),
            ("cancelled", p.tasks_cancelled),
        ] {
            ended.push((
                format!("{{pool=\"{}\",state=\"{state}\"}}", label(n)),
                v as f64,
            ));
        }
    }
    family(
        "spindle_pool_tasks_total",
        "counter",
        "Tasks ended, by how.",
        ended,
    );
    family(
        "spindle_pool_tasks_submitted_total",
        "counter",
        "Tasks accepted.",
        pools(&|p| p.tasks_submitted),
    );
    family(
        "spindle_pool_workers_lost_total",
        "counter",
        "Workers lost while running a task.",
        pools(&|p| p.workers_lost),
    );
    family(
        "spindle_pool_tasks_retried_total",
        "counter",
        "Tasks run again after a lost worker.",
        pools(&|p| p.tasks_retried),
    );
    let secs = |f: &dyn Fn(&spindle::stats::PoolStats) -> Option<u64>| -> Vec<(String, f64)> {
        s.pools
            .iter()
            .filter_map(|(n, p)| {
                f(p).map(|ns| (format!("{{pool=\"{}\"}}", label(n)), ns as f64 / 1e9))
            })
            .collect()
    };
    family(
        "spindle_pool_task_seconds_mean",
        "gauge",
        "Mean task time.",
        secs(&|p| p.task_time_mean_ns),
    );
    family(
        "spindle_pool_task_seconds_p99",
        "gauge",
        "p99 task time (histogram bucket bound).",
        secs(&|p| p.task_time_p99_ns),
    );
    let queues = |f: &dyn Fn(&spindle::stats::QueueStats) -> u64| -> Vec<(String, f64)> {
        s.queues
            .iter()
            .map(|(n, q)| (format!("{{queue=\"{}\"}}", label(n)), f(q) as f64))
            .collect()
    };
    family(
        "spindle_queue_size",
        "gauge",
        "Items in the queue.",
        queues(&|q| q.qsize),
    );
    family(
        "spindle_queue_unfinished",
        "gauge",
        "Items put and not marked done.",
        queues(&|q| q.unfinished),
    );
    family(
        "spindle_queue_puts_total",
        "counter",
        "Items put.",
        queues(&|q| q.puts),
    );
    family(
        "spindle_queue_gets_total",
        "counter",
        "Items taken.",
        queues(&|q| q.gets),
    );
    family(
        "spindle_process_uptime_seconds",
        "gauge",
        "Seconds since the process started.",
        vec![(String::new(), s.uptime_ms as f64 / 1000.0)],
    );
    let clients = lock(&app.clients)
        .iter()
        .filter(|c| !c.tx.is_closed())
        .count();
    family(
        "spindle_dashboard_sse_clients",
        "gauge",
        "Event streams open.",
        vec![(String::new(), clients as f64)],
    );
    family(
        "spindle_dashboard_sse_events_total",
        "counter",
        "Events queued to streams (not dropped).",
        vec![(String::new(), app.sse_sent.load(Ordering::Relaxed) as f64)],
    );
    family(
        "spindle_dashboard_sse_dropped_total",
        "counter",
        "Events dropped for slow streams.",
        vec![(
            String::new(),
            app.sse_dropped.load(Ordering::Relaxed) as f64,
        )],
    );
    family(
        "spindle_dashboard_requests_total",
        "counter",
        "HTTP requests.",
        vec![(String::new(), app.requests.load(Ordering::Relaxed) as f64)],
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_equality() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
        assert!(!same(b"", b"a"));
    }

    #[test]
    fn task_queries() {
        assert_eq!(tasks_query(None), Ok((None, 100)));
        assert_eq!(
            tasks_query(Some("state=running&limit=5")),
            Ok((Some(TaskState::Running), 5))
        );
        assert_eq!(
            tasks_query(Some("state=&limit=1000&token=x")),
            Ok((None, 1000))
        );
        for bad in [
            "limit=1001",
            "limit=0",
            "limit=-1",
            "limit=x",
            "state=zzz",
            "foo=1",
            "limit=1&limit=2",
        ] {
            assert!(tasks_query(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_is_safe_in_html() {
        assert_eq!(safe_json(&"<script>&"), r#""\u003cscript\u003e\u0026""#);
    }
}
