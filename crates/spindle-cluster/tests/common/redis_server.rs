//! A private `redis-server` per test: a Unix socket in a fresh temporary
//! directory, no TCP port, stopped by its pid.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use spindle_cluster::RedisBroker;

use super::{BrokerAt, LONG};

/// The queue the Redis tests use.
pub(crate) const QUEUE: &str = "tasks";

/// A private redis-server on a Unix socket in its own temporary directory,
/// killed (by its pid) and its directory removed on drop.
pub(crate) struct RedisServer {
    child: Option<Child>,
    pub(crate) dir: PathBuf,
    /// `requirepass`, if any.
    password: Option<String>,
    /// `appendonly yes` with `appendfsync always` (every write on disk
    /// before its reply), instead of no persistence.
    durable: bool,
    /// A TCP port on 127.0.0.1 as well as the socket, if asked for.
    pub(crate) port: Option<u16>,
}

impl RedisServer {
    pub(crate) fn start() -> RedisServer {
        RedisServer::start_with(None, false)
    }

    /// A server that writes every change to its append-only file before
    /// it replies (`appendonly yes`, `appendfsync always`): a graceful
    /// restart loses nothing.
    pub(crate) fn start_durable() -> RedisServer {
        RedisServer::start_with(None, true)
    }

    pub(crate) fn start_with(password: Option<&str>, durable: bool) -> RedisServer {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "spindle-redis-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut s = RedisServer {
            child: None,
            dir,
            password: password.map(str::to_owned),
            durable,
            port: None,
        };
        s.launch();
        s
    }

    /// A server that also listens on a free TCP port of 127.0.0.1.
    pub(crate) fn start_tcp() -> RedisServer {
        let mut s = RedisServer::start();
        s.kill();
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        s.port = Some(free.local_addr().unwrap().port());
        drop(free);
        s.launch();
        s
    }

    /// Starts redis-server in this directory (again, after `kill`: on the
    /// same socket, with what its append-only file kept if durable) and
    /// waits until it answers.
    pub(crate) fn launch(&mut self) {
        let dir = &self.dir;
        let mut cmd = Command::new("redis-server");
        if let Some(p) = &self.password {
            cmd.args(["--requirepass", p]);
        }
        let persistence: &[&str] = if self.durable {
            &["--appendonly", "yes", "--appendfsync", "always"]
        } else {
            &["--appendonly", "no"]
        };
        let port = self.port.unwrap_or(0).to_string();
        let child = match cmd
            .args(["--port", &port, "--bind", "127.0.0.1", "--unixsocket"])
            .arg(dir.join("redis.sock"))
            .args(["--unixsocketperm", "700", "--save", ""])
            .args(persistence)
            .arg("--dir")
            .arg(dir)
            .arg("--logfile")
            .arg(dir.join("redis.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "redis-server is not installed (not on PATH): the RedisBroker tests \
                 need it; install it (Debian: apt-get install redis-server)"
            ),
            Err(e) => panic!("cannot start redis-server: {e}"),
        };
        self.child = Some(child);
        self.wait_ready();
    }

    pub(crate) fn url(&self) -> String {
        let url = format!("unix://{}", self.dir.join("redis.sock").display());
        match &self.password {
            Some(p) => format!("{url}?pass={p}"),
            None => url,
        }
    }

    /// How a worker process reaches this server's queue.
    pub(crate) fn at(&self) -> BrokerAt {
        BrokerAt::Redis {
            url: self.url(),
            queue: QUEUE.into(),
        }
    }

    fn wait_ready(&mut self) {
        let since = Instant::now();
        loop {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                let log = std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default();
                panic!("redis-server exited at start ({st}): {log}");
            }
            let pong = redis::Client::open(self.url().as_str())
                .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(1)))
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            if matches!(pong.as_deref(), Ok("PONG")) {
                return;
            }
            assert!(since.elapsed() < LONG, "redis-server never answered PING");
            thread::sleep(Duration::from_millis(10));
        }
    }

    pub(crate) fn broker(&self) -> RedisBroker {
        RedisBroker::connect(&self.url(), QUEUE).unwrap()
    }

    pub(crate) fn raw(&self) -> redis::Connection {
        redis::Client::open(self.url().as_str())
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// The server's pid.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Kills the server (SIGKILL): it keeps nothing it had not written.
    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the server gracefully (SIGTERM: it finishes the append-only
    /// file and exits 0) and starts it again on the same socket and files.
    pub(crate) fn restart_gracefully(&mut self) {
        let mut c = self.child.take().unwrap();
        let pid = nix::unistd::Pid::from_raw(i32::try_from(c.id()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let st = c.wait().unwrap();
        assert!(st.success(), "redis-server did not stop cleanly: {st}");
        self.launch();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
