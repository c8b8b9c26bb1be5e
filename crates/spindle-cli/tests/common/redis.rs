//! A private redis-server for the CLI's tests (tests/status.rs,
//! tests/worker.rs): a Unix socket in a fresh directory, no persistence,
//! killed by its pid when dropped; `start_tls` adds a TLS port (mutual
//! TLS, certificates made by rcgen in that directory).
#![allow(dead_code)] // each test file uses what it needs

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use spindle_cluster::{Broker, RedisBroker, RedisTls};

pub(crate) struct Redis {
    child: Child,
    dir: PathBuf,
    /// The TLS port, if started with one.
    tls_port: Option<u16>,
}

impl Redis {
    /// Starts one in a directory named after `tag` and this process.
    pub(crate) fn start(tag: &str) -> Redis {
        Redis::launch(tag, false)
    }

    /// Also a TLS port on 127.0.0.1 that wants a client certificate, with
    /// a new CA (`ca.pem`), its server (`server.pem`, `server.key`) and
    /// client (`client.pem`, `client.key`) certificates in its directory.
    pub(crate) fn start_tls(tag: &str) -> Redis {
        Redis::launch(tag, true)
    }

    fn launch(tag: &str, tls: bool) -> Redis {
        let dir = std::env::temp_dir().join(format!("spindle-{tag}-redis-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut cmd = Command::new("redis-server");
        let tls_port = tls.then(|| {
            make_certificates(&dir);
            let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = free.local_addr().unwrap().port();
            cmd.args(["--bind", "127.0.0.1", "--tls-port", &port.to_string()])
                .args(["--tls-auth-clients", "yes", "--tls-cert-file"])
                .arg(dir.join("server.pem"))
                .arg("--tls-key-file")
                .arg(dir.join("server.key"))
                .arg("--tls-ca-cert-file")
                .arg(dir.join("ca.pem"));
            port
        });
        let child = cmd
            .args(["--port", "0", "--unixsocket"])
            .arg(dir.join("redis.sock"))
            .args([
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("redis-server is needed (.ci/run installs it; Debian: apt-get install redis-server): {e}")
            });
        Redis {
            child,
            dir,
            tls_port,
        }
    }

    /// `rediss://127.0.0.1:PORT` of a `start_tls` server.
    pub(crate) fn tls_url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.tls_port.expect("no TLS port"))
    }

    /// A file of its directory (`ca.pem`, `client.pem`, `client.key`).
    pub(crate) fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// The client's TLS settings: its CA, the client certificate.
    pub(crate) fn tls(&self) -> RedisTls {
        RedisTls::new()
            .ca_file(self.file("ca.pem"))
            .client_cert(self.file("client.pem"), self.file("client.key"))
    }

    /// The same as `spindle` flags.
    pub(crate) fn tls_flags(&self) -> Vec<String> {
        [
            "--tls-ca",
            "ca.pem",
            "--tls-cert",
            "client.pem",
            "--tls-key",
            "client.key",
        ]
        .chunks(2)
        .flat_map(|f| [f[0].to_string(), self.file(f[1])])
        .collect()
    }

    /// Its socket's path.
    pub(crate) fn socket(&self) -> PathBuf {
        self.dir.join("redis.sock")
    }

    /// Its URL, `unix://PATH`.
    pub(crate) fn url(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// Queue `tasks`' broker, once the server answers (within `within`).
    pub(crate) fn broker(&self, within: Duration) -> RedisBroker {
        let since = Instant::now();
        loop {
            match RedisBroker::connect(&self.url(), "tasks") {
                Ok(b) if b.counts().is_ok() => return b,
                Ok(_) => {}
                Err(e) => assert!(since.elapsed() < within, "redis-server never answered: {e}"),
            }
            assert!(since.elapsed() < within, "redis-server never answered");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// A CA and its server (127.0.0.1) and client certificates, as PEM files
/// in `dir` (spindle-cluster's tests/common/redis_server.rs makes the same).
fn make_certificates(dir: &std::path::Path) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "spindle CLI test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    for (name, san, usage) in [
        ("server", "127.0.0.1", ExtendedKeyUsagePurpose::ServerAuth),
        ("client", "client", ExtendedKeyUsagePurpose::ClientAuth),
    ] {
        let mut p = CertificateParams::new(vec![san.to_string()]).unwrap();
        p.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &ca).unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
