//! A line echo server (Python's classic coroutine `EchoServer`, which answers
//! `"GOT:" + line` to every line), in two shapes, and the load client that
//! `spindle echo load` and the `aio` bench suite drive every server with.
//!
//! - [`EchoServer::bind_aio`]: one tokio task per connection on a
//!   multi-thread runtime of its own (Python: `asyncio.start_server` with
//!   `readline` / `write` / `drain`).
//! - [`EchoServer::bind_threads`]: one OS thread per connection (Python:
//!   `socketserver.ThreadingTCPServer`).
//!
//! The protocol: every line received (bytes up to and including `\n`) is
//! answered with `prefix + line`. A final line without `\n` before the
//! peer's end of stream is answered too (as `StreamReader.readline` returns
//! it). Limits: a line longer than [`MAX_LINE`] bytes (the `\n` counted)
//! closes that connection, unanswered (asyncio's `readline` raises
//! `ValueError` past its 64 KiB limit); a read or write error (a reset
//! mid-line, say) ends that connection's task only. Every connection counts
//! in [`EchoServer::live`] from accept until its task ends, whatever ends it.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

/// The longest line the servers answer, its `\n` included: 64 KiB
/// (asyncio's default `StreamReader` limit).
pub const MAX_LINE: usize = 64 * 1024;

/// The counters a server shares with its connection tasks.
#[derive(Debug, Default)]
struct Stats {
    live: AtomicUsize,
    accepted: AtomicU64,
    overlong: AtomicU64,
}

/// Counts one connection in `live` until dropped (however its task ends:
/// end of stream, error, overlong line, panic, runtime shut down).
struct LiveGuard(Arc<Stats>);

impl LiveGuard {
    fn new(stats: &Arc<Stats>) -> LiveGuard {
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        stats.live.fetch_add(1, Ordering::SeqCst);
        LiveGuard(stats.clone())
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How a server runs its connections.
#[derive(Debug)]
enum Kind {
    /// Its own tokio runtime (dropped, and every task with it, on shutdown).
    Aio(Option<tokio::runtime::Runtime>),
    /// A thread per connection, and an accept thread.
    Threads {
        stop: Arc<AtomicBool>,
        acceptor: Option<thread::JoinHandle<()>>,
    },
}

/// A running echo server; [`shutdown`](EchoServer::shutdown) or drop stops
/// it.
#[derive(Debug)]
pub struct EchoServer {
    addr: SocketAddr,
    stats: Arc<Stats>,
    kind: Kind,
}

impl EchoServer {
    /// Binds `addr` (port 0: any free port) and serves every connection as a
    /// tokio task on a multi-thread runtime of `workers` threads (0: one per
    /// core).
    ///
    /// # Errors
    ///
    /// The bind's (or the runtime's) I/O error.
    pub fn bind_aio(
        addr: impl ToSocketAddrs,
        prefix: &[u8],
        workers: usize,
    ) -> io::Result<EchoServer> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let mut b = tokio::runtime::Builder::new_multi_thread();
        if workers > 0 {
            b.worker_threads(workers);
        }
        let rt = b.thread_name("spindle-echo").enable_all().build()?;
        let stats = Arc::new(Stats::default());
        let listener = {
            let _enter = rt.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        let prefix: Arc<[u8]> = prefix.into();
        rt.spawn(accept_aio(listener, prefix, stats.clone()));
        Ok(EchoServer {
            addr,
            stats,
            kind: Kind::Aio(Some(rt)),
        })
    }

    /// Binds `addr` and serves every connection on a thread of its own
    /// (`TCP_NODELAY` set), accepting on one more thread.
    ///
    /// # Errors
    ///
    /// The bind's (or the thread spawn's) I/O error.
    pub fn bind_threads(addr: impl ToSocketAddrs, prefix: &[u8]) -> io::Result<EchoServer> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stats = Arc::new(Stats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let prefix: Arc<[u8]> = prefix.into();
        let acceptor = {
            let (stats, stop) = (stats.clone(), stop.clone());
            thread::Builder::new()
                .name("spindle-echo-accept".into())
                .spawn(move || accept_threads(&listener, &prefix, &stats, &stop))?
        };
        Ok(EchoServer {
            addr,
            stats,
            kind: Kind::Threads {
                stop,
                acceptor: Some(acceptor),
            },
        })
    }

    /// The address it listens on (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The connections whose task has not ended yet.
    pub fn live(&self) -> usize {
        self.stats.live.load(Ordering::SeqCst)
    }

    /// The connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.stats.accepted.load(Ordering::Relaxed)
    }

    /// The connections closed for a line longer than [`MAX_LINE`].
    pub fn overlong(&self) -> u64 {
        self.stats.overlong.load(Ordering::Relaxed)
    }

    /// Blocks this thread until the server is stopped from outside (a
    /// signal): what `spindle echo serve` does after printing its address.
    pub fn serve_forever(&self) -> ! {
        loop {
            thread::park();
        }
    }

    /// Stops accepting. The aio server also ends every connection now (its
    /// runtime is dropped); the threads server's connection threads run on
    /// until their peers close (Python's `ThreadingTCPServer` with
    /// `daemon_threads`, minus the process exit).
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        match &mut self.kind {
            Kind::Aio(rt) => {
                if let Some(rt) = rt.take() {
                    rt.shutdown_timeout(Duration::from_secs(5));
                }
            }
            Kind::Threads { stop, acceptor } => {
                stop.store(true, Ordering::SeqCst);
                // Wake the blocking accept with a connection of our own.
                let _ = TcpStream::connect(self.addr);
                if let Some(a) = acceptor.take() {
                    let _ = a.join();
                }
            }
        }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn accept_aio(listener: tokio::net::TcpListener, prefix: Arc<[u8]>, stats: Arc<Stats>) {
    loop {
        match listener.accept().await {
            Ok((sock, _)) => {
                let guard = LiveGuard::new(&stats);
                let prefix = prefix.clone();
                tokio::spawn(async move {
                    let _ = sock.set_nodelay(true);
                    serve_aio(sock, &prefix, &guard.0).await;
                    drop(guard);
                });
            }
            // Out of file descriptors and the like: wait, as a server must
            // not spin or die on them.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Answers lines until end of stream, an error, or an overlong line (counted
/// before the socket closes, so a peer that sees the close sees the count).
async fn serve_aio(sock: tokio::net::TcpStream, prefix: &[u8], stats: &Stats) {
    let (rd, mut wr) = sock.into_split();
    // One read of MAX_LINE + 1 bytes tells an overlong line apart.
    let mut rd = tokio::io::BufReader::new(rd.take(u64::MAX));
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        line.extend_from_slice(prefix);
        let start = line.len();
        rd.get_mut().set_limit((MAX_LINE + 1) as u64);
        let n = match rd.read_until(b'\n', &mut line).await {
            Ok(n) => n,
            Err(_) => return,
        };
        if n == 0 {
            return;
        }
        if line.len() - start > MAX_LINE {
            stats.overlong.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if wr.write_all(&line).await.is_err() {
            return;
        }
        if line.last() != Some(&b'\n') {
            return; // the last line, cut by end of stream
        }
    }
}

fn accept_threads(
    listener: &TcpListener,
    prefix: &Arc<[u8]>,
    stats: &Arc<Stats>,
    stop: &AtomicBool,
) {
    for sock in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(sock) = sock else {
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        let guard = LiveGuard::new(stats);
        let prefix = prefix.clone();
        let spawned = thread::Builder::new()
            .name("spindle-echo-conn".into())
            .spawn(move || {
                let _ = sock.set_nodelay(true);
                serve_thread(sock, &prefix, &guard.0);
                drop(guard);
            });
        // Out of threads: that connection is dropped (closed), the guard
        // with it; the server goes on.
        drop(spawned);
    }
}

fn serve_thread(sock: TcpStream, prefix: &[u8], stats: &Stats) {
    use std::io::Read;
    let Ok(mut wr) = sock.try_clone() else {
        return;
    };
    let mut rd = BufReader::new(sock.take(u64::MAX));
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        line.extend_from_slice(prefix);
        let start = line.len();
        rd.get_mut().set_limit((MAX_LINE + 1) as u64);
        let n = match rd.read_until(b'\n', &mut line) {
            Ok(n) => n,
            Err(_) => return,
        };
        if n == 0 {
            return;
        }
        if line.len() - start > MAX_LINE {
            stats.overlong.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if wr.write_all(&line).is_err() {
            return;
        }
        if line.last() != Some(&b'\n') {
            return;
        }
    }
}

/// The line every round trip of [`load`] sends: 31 bytes and `\n`.
pub const LOAD_LINE: &[u8; 32] = b"0123456789abcdefghijklmnopqrstu\n";

/// The most round trips one [`load`] makes (`conns × rounds`): each one's
/// latency is kept (4 bytes) for the percentiles, so this bounds its
/// memory at 200 MB.
pub const MAX_ROUND_TRIPS: u64 = 50_000_000;

/// What [`load`] measured.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadReport {
    /// Round trips over all connections.
    pub round_trips: u64,
    /// Wall-clock seconds from the first write (connections already open)
    /// to the last reply.
    pub seconds: f64,
    /// Median round trip, µs.
    pub p50_us: f64,
    /// 99th-percentile round trip, µs.
    pub p99_us: f64,
}

impl LoadReport {
    /// Round trips per second over all connections.
    pub fn throughput(&self) -> f64 {
        self.round_trips as f64 / self.seconds
    }
}

/// Why [`load`] failed.
#[derive(Debug)]
pub enum LoadError {
    /// `conns` or `rounds` was 0.
    Empty,
    /// `conns × rounds` is over [`MAX_ROUND_TRIPS`].
    TooMany { conns: usize, rounds: u64 },
    /// The client's runtime could not start (out of threads, say).
    Runtime(io::Error),
    /// Connecting connection `conn` (0-based) failed.
    Connect { conn: usize, error: io::Error },
    /// Round trip `round` of connection `conn` failed with an I/O error.
    Io {
        conn: usize,
        round: u64,
        error: io::Error,
    },
    /// The server closed connection `conn` before answering round `round`.
    Closed { conn: usize, round: u64 },
    /// The reply to round `round` of connection `conn` was not the line sent.
    WrongReply {
        conn: usize,
        round: u64,
        got: Vec<u8>,
    },
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Empty => f.write_str("--conns and --rounds must be at least 1"),
            LoadError::TooMany { conns, rounds } => write!(
                f,
                "{conns} connections × {rounds} round trips is over the limit of \
                 {MAX_ROUND_TRIPS} round trips (each one's latency is kept)"
            ),
            LoadError::Runtime(e) => write!(f, "cannot start the client's runtime: {e}"),
            LoadError::Connect { conn, error } => write!(f, "connection {conn}: connect: {error}"),
            LoadError::Io { conn, round, error } => {
                write!(f, "connection {conn}, round trip {round}: {error}")
            }
            LoadError::Closed { conn, round } => write!(
                f,
                "connection {conn}: the server closed it before answering round trip {round}"
            ),
            LoadError::WrongReply { conn, round, got } => write!(
                f,
                "connection {conn}, round trip {round}: the reply {:?} is not the line sent {:?}",
                String::from_utf8_lossy(got),
                String::from_utf8_lossy(LOAD_LINE)
            ),
        }
    }
}

impl std::error::Error for LoadError {}

/// Opens `conns` connections to `addr`, then (clock started) runs `rounds`
/// sequential round trips of [`LOAD_LINE`] on each at once: write the line,
/// read the reply line, check it is the same. Runs on a multi-thread tokio
/// runtime of its own; call it from outside any runtime.
///
/// # Errors
///
/// [`LoadError`] naming the connection and round trip that failed;
/// [`LoadError::TooMany`] past [`MAX_ROUND_TRIPS`] (nothing is sent).
pub fn load(addr: SocketAddr, conns: usize, rounds: u64) -> Result<LoadReport, LoadError> {
    if conns == 0 || rounds == 0 {
        return Err(LoadError::Empty);
    }
    if (conns as u64).saturating_mul(rounds) > MAX_ROUND_TRIPS {
        return Err(LoadError::TooMany { conns, rounds });
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .thread_name("spindle-echo-load")
        .enable_all()
        .build()
        .map_err(LoadError::Runtime)?;
    rt.block_on(async move {
        let mut socks = Vec::with_capacity(conns);
        for conn in 0..conns {
            let s = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|error| LoadError::Connect { conn, error })?;
            s.set_nodelay(true)
                .map_err(|error| LoadError::Connect { conn, error })?;
            socks.push(s);
        }
        let t0 = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for (conn, s) in socks.into_iter().enumerate() {
            set.spawn(client(conn, s, rounds));
        }
        let mut lat: Vec<u32> = Vec::with_capacity(conns * rounds as usize);
        let mut first_err = None;
        while let Some(r) = set.join_next().await {
            match r.expect("a load client task panicked") {
                Ok(l) => lat.extend(l),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        let seconds = t0.elapsed().as_secs_f64();
        if let Some(e) = first_err {
            return Err(e);
        }
        lat.sort_unstable();
        let pct = |p: f64| {
            let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
            f64::from(lat[i]) / 1000.0
        };
        Ok(LoadReport {
            round_trips: lat.len() as u64,
            seconds,
            p50_us: pct(0.50),
            p99_us: pct(0.99),
        })
    })
}

/// One load connection: `rounds` round trips; each one's latency in ns.
async fn client(conn: usize, s: tokio::net::TcpStream, rounds: u64) -> Result<Vec<u32>, LoadError> {
    let (rd, mut wr) = s.into_split();
    let mut rd = tokio::io::BufReader::new(rd);
    let mut lat = Vec::with_capacity(rounds as usize);
    let mut reply = Vec::with_capacity(64);
    for round in 0..rounds {
        let t = Instant::now();
        wr.write_all(LOAD_LINE)
            .await
            .map_err(|error| LoadError::Io { conn, round, error })?;
        reply.clear();
        let n = (&mut rd)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut reply)
            .await
            .map_err(|error| LoadError::Io { conn, round, error })?;
        if n == 0 {
            return Err(LoadError::Closed { conn, round });
        }
        if reply != LOAD_LINE {
            return Err(LoadError::WrongReply {
                conn,
                round,
                got: std::mem::take(&mut reply),
            });
        }
        lat.push(u32::try_from(t.elapsed().as_nanos()).unwrap_or(u32::MAX));
    }
    Ok(lat)
}
