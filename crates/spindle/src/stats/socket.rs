//! The stats socket: [`serve`] answers each connection on a Unix socket
//! with one [`Status`] snapshot, as one line of JSON, then closes it.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Write as _};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{PoolStats, QueueStats, unix_ms_now};

/// How long the stats socket waits to write one snapshot to a peer
/// (which must read it): a peer that does not read holds the server at
/// most this long.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Connections waiting to be answered (the `listen` backlog); more are
/// refused by the kernel (`ECONNREFUSED` / `EAGAIN` on connect).
pub const BACKLOG: i32 = 16;

/// A snapshot of a program: each named pool and queue of its [`Sources`],
/// its process id and how long it has run. What the stats socket
/// ([`serve`]) sends, `spindle status --socket` prints and the dashboard's
/// `/api/status` serves (the same fields, as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Status {
    /// The program's process id.
    pub pid: u32,
    /// When the process started (milliseconds since the Unix epoch; from
    /// `/proc/self/stat`, else when the [`Sources`] were made).
    pub started_unix_ms: u64,
    /// When the snapshot was taken (milliseconds since the Unix epoch).
    pub unix_ms: u64,
    /// `unix_ms - started_unix_ms`.
    pub uptime_ms: u64,
    /// Each pool's [`PoolStats`], by the name it was added under.
    pub pools: BTreeMap<String, PoolStats>,
    /// Each queue's [`QueueStats`], by name.
    pub queues: BTreeMap<String, QueueStats>,
}

type PoolFn = Arc<dyn Fn() -> PoolStats + Send + Sync>;
type QueueFn = Arc<dyn Fn() -> QueueStats + Send + Sync>;

#[derive(Clone)]
struct Inner {
    pools: Vec<(String, PoolFn)>,
    queues: Vec<(String, QueueFn)>,
    started_unix_ms: u64,
}

/// The named pools and queues a [`Status`] reports: a closure each that
/// takes its snapshot (`move || pool.stats()`). Cheap to clone (shared).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use spindle::futures::ThreadPoolExecutor;
/// use spindle::queue::Queue;
/// use spindle::stats::Sources;
///
/// let pool = Arc::new(ThreadPoolExecutor::new());
/// let q: Arc<Queue<u32>> = Arc::new(Queue::new());
/// let sources = Sources::new()
///     .pool("work", { let p = pool.clone(); move || p.stats() })
///     .queue("jobs", { let q = q.clone(); move || q.stats() });
/// let s = sources.snapshot();
/// assert_eq!(s.pid, std::process::id());
/// assert!(s.pools.contains_key("work") && s.queues.contains_key("jobs"));
/// ```
#[derive(Clone)]
pub struct Sources(Arc<Inner>);

impl fmt::Debug for Sources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sources")
            .field(
                "pools",
                &self.0.pools.iter().map(|p| &p.0).collect::<Vec<_>>(),
            )
            .field(
                "queues",
                &self.0.queues.iter().map(|q| &q.0).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Default for Sources {
    fn default() -> Sources {
        Sources::new()
    }
}

impl Sources {
    /// No pools, no queues.
    pub fn new() -> Sources {
        Sources(Arc::new(Inner {
            pools: Vec::new(),
            queues: Vec::new(),
            started_unix_ms: process_start_unix_ms().unwrap_or_else(unix_ms_now),
        }))
    }

    fn inner_mut(&mut self) -> &mut Inner {
        // Copy-on-write once cloned (the closures themselves are shared).
        Arc::make_mut(&mut self.0)
    }

    /// Adds a pool reported as `name` (a later one of the same name
    /// replaces it).
    pub fn pool(
        mut self,
        name: impl Into<String>,
        stats: impl Fn() -> PoolStats + Send + Sync + 'static,
    ) -> Sources {
        let name = name.into();
        let inner = self.inner_mut();
        inner.pools.retain(|p| p.0 != name);
        inner.pools.push((name, Arc::new(stats)));
        self
    }

    /// Adds a queue reported as `name` (a later one of the same name
    /// replaces it).
    pub fn queue(
        mut self,
        name: impl Into<String>,
        stats: impl Fn() -> QueueStats + Send + Sync + 'static,
    ) -> Sources {
        let name = name.into();
        let inner = self.inner_mut();
        inner.queues.retain(|q| q.0 != name);
        inner.queues.push((name, Arc::new(stats)));
        self
    }

    /// A snapshot of every source now.
    pub fn snapshot(&self) -> Status {
        let unix_ms = unix_ms_now();
        let started = self.0.started_unix_ms;
        Status {
            pid: std::process::id(),
            started_unix_ms: started,
            unix_ms,
            uptime_ms: unix_ms.saturating_sub(started),
            pools: self.0.pools.iter().map(|(n, f)| (n.clone(), f())).collect(),
            queues: self
                .0
                .queues
                .iter()
                .map(|(n, f)| (n.clone(), f()))
                .collect(),
        }
    }

    /// [`snapshot`](Sources::snapshot) as one line of JSON (with its `\n`):
    /// what the stats socket sends.
    ///
    /// # Errors
    /// Never for a [`Status`] (every field is a number, a string or a map);
    /// the error is JSON's own message otherwise.
    pub fn snapshot_json(&self) -> io::Result<String> {
        status_json(&self.snapshot())
    }
}

/// `status` as one line of JSON with its `\n`.
///
/// # Errors
/// Never for a [`Status`] as it is; kept for fields to come.
pub fn status_json(status: &Status) -> io::Result<String> {
    let mut line = super::json::to_string(status).map_err(io::Error::other)?;
    line.push('\n');
    Ok(line)
}

/// When this process started, from `/proc/self/stat` (field 22, clock
/// ticks after boot) and `/proc/uptime`.
fn process_start_unix_ms() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces: fields after its `)`.
    let after = &stat[stat.rfind(')')? + 2..];
    let start_ticks: u64 = after.split_whitespace().nth(19)?.parse().ok()?;
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()??
        .max(1) as u64;
    let uptime = std::fs::read_to_string("/proc/uptime").ok()?;
    let up_s: f64 = uptime.split_whitespace().next()?.parse().ok()?;
    let since_start_ms =
        ((up_s * 1000.0) as u64).saturating_sub(start_ticks.saturating_mul(1000) / ticks);
    Some(unix_ms_now().saturating_sub(since_start_ms))
}

/// The running stats socket of [`serve`]. Dropping it (or
/// [`close`](StatsServer::close)) stops the server and removes the socket
/// file.
pub struct StatsServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    served: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for StatsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatsServer")
            .field("path", &self.path)
            .field("served", &self.served())
            .finish()
    }
}

impl StatsServer {
    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Snapshots written so far (a peer that left before reading its
    /// snapshot is not counted).
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// Stops serving and removes the socket file (as dropping it does).
    pub fn close(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(t) = self.thread.take() else { return };
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept: a connection of our own.
        let _ = UnixStream::connect(&self.path);
        let _ = t.join();
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for StatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Serves `sources` on a new Unix socket at `path`: each connection gets
/// one [`Status`] snapshot as one line of JSON (`{"pid":..,"pools":{..},
/// ..}\n`), then the server closes it. `spindle status --socket PATH`
/// reads it; so can `socat - UNIX-CONNECT:PATH`. Spindle only: Python has
/// no such socket (docs/PYTHON.md, "Statistics").
///
/// **Who may read it.** The socket file is made with mode `0600` (set on
/// the socket before it is bound, so there is no moment it is open to
/// others): only this user (and root) can connect. That file permission
/// is its only authentication, so put it in a directory you control
/// (`$XDG_RUNTIME_DIR`, a `0700` directory), not a shared `/tmp` name
/// another user could take first.
///
/// **Limits.** One thread answers connections one at a time, in order; a
/// peer need send nothing and nothing it sends is read (0 bytes accepted);
/// writing a snapshot to a peer that does not read gives up after
/// [`WRITE_TIMEOUT`]; at most [`BACKLOG`] connections wait, and the kernel
/// refuses more. A source closure that panics closes that connection
/// unanswered; the server goes on.
///
/// # Errors
/// The socket cannot be made at `path` (the error's kind is the cause and
/// its message names the path): `AddrInUse` if `path` exists (a socket
/// left by a process that died is not removed for you: check and remove
/// it), `NotFound` for a missing directory, `InvalidInput` for a path over
/// the 107 bytes a socket address holds.
///
/// # Examples
///
/// ```
/// use std::io::Read;
/// use spindle::stats::{self, Sources};
///
/// let dir = std::env::temp_dir().join(format!("spindle-doc-stats-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let server = stats::serve(dir.join("stats.sock"), Sources::new()).unwrap();
/// let mut line = String::new();
/// std::os::unix::net::UnixStream::connect(server.path())
///     .unwrap()
///     .read_to_string(&mut line)
///     .unwrap();
/// assert!(line.starts_with("{\"pid\":") && line.ends_with("}\n"));
/// drop(server); // removes the socket
/// std::fs::remove_dir(&dir).unwrap();
/// ```
pub fn serve(path: impl AsRef<Path>, sources: Sources) -> io::Result<StatsServer> {
    let path = path.as_ref().to_path_buf();
    let named =
        |e: io::Error| io::Error::new(e.kind(), format!("stats socket {}: {e}", path.display()));
    let listener = bind_private(&path).map_err(named)?;
    // The mode the kernel gave the file (0600 less the umask): check it.
    let mode = std::fs::metadata(&path)
        .map_err(named)?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        let _ = std::fs::remove_file(&path);
        return Err(named(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("the socket was made with mode {mode:o}, not 0600"),
        )));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    let thread = std::thread::Builder::new()
        .name("SpindleStatsSocket".into())
        .spawn({
            let stop = stop.clone();
            let served = served.clone();
            move || accept_loop(&listener, &sources, &stop, &served)
        })
        .map_err(|e| {
            let _ = std::fs::remove_file(&path);
            named(e)
        })?;
    Ok(StatsServer {
        path,
        stop,
        served,
        thread: Some(thread),
    })
}

/// A listening Unix socket at `path` whose file has mode 0600: Linux
/// gives the file the socket inode's mode (less the umask) at `bind`, so
/// `fchmod` on the socket first leaves no window where others could
/// connect.
fn bind_private(path: &Path) -> io::Result<UnixListener> {
    use nix::sys::socket::{self, AddressFamily, Backlog, SockFlag, SockType, UnixAddr};
    use nix::sys::stat::{Mode, fchmod};
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    fchmod(&fd, Mode::S_IRUSR | Mode::S_IWUSR)?;
    let addr = UnixAddr::new(path).map_err(|e| {
        if e == nix::errno::Errno::ENAMETOOLONG {
            io::Error::new(io::ErrorKind::InvalidInput, "the path is over 107 bytes")
        } else {
            e.into()
        }
    })?;
    socket::bind(fd.as_raw_fd(), &addr)?;
    if let Err(e) = socket::listen(&fd, Backlog::new(BACKLOG).unwrap_or(Backlog::MAXCONN)) {
        let _ = std::fs::remove_file(path);
        return Err(e.into());
    }
    Ok(UnixListener::from(fd))
}

fn accept_loop(l: &UnixListener, sources: &Sources, stop: &AtomicBool, served: &AtomicU64) {
    loop {
        let conn = l.accept();
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok((mut s, _)) = conn else {
            // EMFILE and the like: let descriptors free up.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let line =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sources.snapshot_json()));
        let Ok(Ok(line)) = line else { continue };
        let _ = s.set_write_timeout(Some(WRITE_TIMEOUT));
        if s.write_all(line.as_bytes()).is_ok() {
            served.fetch_add(1, Ordering::Relaxed);
        }
        let _ = s.shutdown(std::net::Shutdown::Both);
    }
}
