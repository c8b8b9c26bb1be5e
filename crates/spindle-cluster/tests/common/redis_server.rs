//! A private `redis-server` per test: a Unix socket in a fresh temporary
//! directory, no TCP port (or a TLS port: `start_tls`), stopped by its pid.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use spindle_cluster::{RedisBroker, RedisTls};

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
    /// A TLS port on 127.0.0.1 (and no plain TCP port), if asked for.
    pub(crate) tls: Option<TlsServer>,
}

/// PEM files made at test time (rcgen): a CA, a certificate of this
/// server (for `127.0.0.1` and `localhost`) and a client certificate, all
/// signed by that CA.
#[derive(Debug, Clone)]
pub(crate) struct TlsFiles {
    pub(crate) ca: PathBuf,
    pub(crate) server_cert: PathBuf,
    pub(crate) server_key: PathBuf,
    pub(crate) client_cert: PathBuf,
    pub(crate) client_key: PathBuf,
}

impl TlsFiles {
    /// A new CA and its certificates, in `dir` (made if missing).
    pub(crate) fn make(dir: &Path) -> TlsFiles {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
            IsCa, KeyPair, KeyUsagePurpose,
        };
        std::fs::create_dir_all(dir).unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "spindle test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        let leaf = |sans: Vec<String>, usage: ExtendedKeyUsagePurpose| {
            let mut p = CertificateParams::new(sans).unwrap();
            p.distinguished_name
                .push(DnType::CommonName, "spindle test");
            p.extended_key_usages = vec![usage];
            let key = KeyPair::generate().unwrap();
            let cert = p.signed_by(&key, &ca).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert, server_key) = leaf(
            vec!["127.0.0.1".into(), "localhost".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_cert, client_key) =
            leaf(vec!["client".into()], ExtendedKeyUsagePurpose::ClientAuth);
        let write = |name: &str, pem: &str| {
            let p = dir.join(name);
            std::fs::write(&p, pem).unwrap();
            p
        };
        TlsFiles {
            ca: write("ca.pem", &ca.pem()),
            server_cert: write("server.pem", &server_cert),
            server_key: write("server.key", &server_key),
            client_cert: write("client.pem", &client_cert),
            client_key: write("client.key", &client_key),
        }
    }

    /// Trusts this CA (and shows the client certificate).
    pub(crate) fn client(&self) -> RedisTls {
        RedisTls::new()
            .ca_file(&self.ca)
            .client_cert(&self.client_cert, &self.client_key)
    }
}

/// A server's TLS port and files.
#[derive(Debug, Clone)]
pub(crate) struct TlsServer {
    pub(crate) port: u16,
    pub(crate) files: TlsFiles,
    /// `tls-auth-clients yes` (a client certificate required) or `no`.
    pub(crate) auth_clients: bool,
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
            tls: None,
        };
        s.launch();
        s
    }

    /// A server whose only TCP port is a TLS port of 127.0.0.1 (`--port
    /// 0`; the Unix socket stays, plain, for the test's own checks), with
    /// a new CA's certificates (`TlsFiles`); `auth_clients`: a client
    /// certificate is required.
    pub(crate) fn start_tls(password: Option<&str>, auth_clients: bool) -> RedisServer {
        let mut s = RedisServer::start_with(password, false);
        s.kill();
        let files = TlsFiles::make(&s.dir.join("pki"));
        s.tls = Some(TlsServer {
            port: free_port(),
            files,
            auth_clients,
        });
        s.launch();
        s
    }

    /// `rediss://[:PASSWORD@]127.0.0.1:PORT` of a `start_tls` server.
    pub(crate) fn tls_url(&self) -> String {
        let port = self.tls.as_ref().expect("not a TLS server").port;
        match &self.password {
            Some(p) => format!("rediss://:{p}@127.0.0.1:{port}"),
            None => format!("rediss://127.0.0.1:{port}"),
        }
    }

    /// The `start_tls` server's files.
    pub(crate) fn tls_files(&self) -> &TlsFiles {
        &self.tls.as_ref().expect("not a TLS server").files
    }

    /// A server that also listens on a free TCP port of 127.0.0.1.
    pub(crate) fn start_tcp() -> RedisServer {
        let mut s = RedisServer::start();
        s.kill();
        s.port = Some(free_port());
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
        if let Some(t) = &self.tls {
            cmd.arg("--tls-port")
                .arg(t.port.to_string())
                .arg("--tls-cert-file")
                .arg(&t.files.server_cert)
                .arg("--tls-key-file")
                .arg(&t.files.server_key)
                .arg("--tls-ca-cert-file")
                .arg(&t.files.ca)
                .arg("--tls-auth-clients")
                .arg(if t.auth_clients { "yes" } else { "no" });
        }
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

/// A TCP port of 127.0.0.1 free now (another process may take it before
/// the server binds it: then the server exits at start and says so).
fn free_port() -> u16 {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    free.local_addr().unwrap().port()
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
