//! `spindle status --manager`: a manager server's counters as a table or
//! JSON, once or `--watch`ed; an unreachable server exits 2 with one line.

mod common {
    pub(crate) mod redis;
}

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Command, Output};

use spindle::manager::{BaseManager, QueueProxy, Typeid};

const KEY: &[u8] = b"status-tests-key-0123456789abcdef";

/// A key file in a fresh directory, removed on drop.
struct KeyFile(PathBuf);

impl KeyFile {
    fn new(name: &str, key: &[u8]) -> KeyFile {
        let dir =
            std::env::temp_dir().join(format!("spindle-status-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("key");
        std::fs::write(&p, key).unwrap();
        KeyFile(p)
    }
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        if let Some(d) = self.0.parent() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn status(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spindle"))
        .arg("status")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn status_json_and_table_show_the_servers_counters() {
    let server = BaseManager::builder()
        .register("q", Typeid::queue())
        .register("jobs", Typeid::broker())
        .bind("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .authkey(KEY)
        .spawn()
        .unwrap();
    // A client holding a connection and a new object while we look.
    let m = server.connect().unwrap();
    let _q: QueueProxy<u8> = m.queue(0).unwrap();
    let kf = KeyFile::new("json", KEY);
    let addr = server.address().to_string();
    let base = ["--manager", &addr, "--authkey-file", kf.0.to_str().unwrap()];

    let out = status(&[&base[..], &["--json"]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "one snapshot: {text}");
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(v["source"], "manager");
    assert_eq!(v["address"], addr.as_str());
    assert!(v["unix_ms"].as_u64().unwrap() > 0);
    assert_eq!(v["manager"]["objects"], 3, "two registered, one made");
    // Our connection and the status command's own.
    assert_eq!(v["manager"]["connections"], 2);
    assert!(v["manager"]["handshakes_accepted"].as_u64().unwrap() >= 2);

    let out = status(&base);
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.starts_with(&format!("manager {addr}\n")), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["objects", "3"])
    );

    let out = status(&[&base[..], &["--json", "--watch", "20ms", "--count", "3"]].concat());
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 3);
}

#[test]
fn an_unreachable_or_refusing_server_exits_2_with_one_line() {
    let kf = KeyFile::new("bad", KEY);
    // A port nobody listens on.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let out = status(&["--manager", &addr, "--authkey-file", kf.0.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&addr), "{err}");

    // A server that holds another key.
    let server = BaseManager::builder()
        .bind("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .authkey(b"another key of sixteen bytes or more")
        .spawn()
        .unwrap();
    let addr = server.address().to_string();
    let out = status(&["--manager", &addr, "--authkey-file", kf.0.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("authentication"), "{err}");

    // No key file.
    let out = status(&["--manager", &addr, "--authkey-file", "/nonexistent/key"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("/nonexistent/key")
    );
}

// ----------------------------------------------------------------------
// `spindle status --broker`: a cluster's workers and queues.

mod broker {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::thread::{self, JoinHandle};
    use std::time::{Duration, Instant};

    use spindle::futures::Executor;
    use spindle_cluster::{Broker, ClusterExecutor, ClusterStatus, Worker, WorkerStats};

    use super::*;
    use crate::common::redis::Redis;

    const LONG: Duration = Duration::from_secs(60);

    #[spindle::task]
    fn triple(x: u64) -> u64 {
        3 * x
    }

    /// A worker thread of this test binary, id `id`, until dropped.
    struct WorkerThread {
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<WorkerStats>>,
    }

    impl WorkerThread {
        fn start(b: &dyn Broker, id: &str) -> WorkerThread {
            let stop = Arc::new(AtomicBool::new(false));
            let w = Worker::new(b)
                .id(id)
                .status_every(Duration::from_millis(50));
            let s2 = stop.clone();
            WorkerThread {
                stop,
                thread: Some(thread::spawn(move || w.run(&s2).unwrap())),
            }
        }
    }

    impl Drop for WorkerThread {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    /// Runs 5 tasks on `b` (its worker running) and waits until the
    /// worker's heartbeat says so.
    fn five_tasks(b: Arc<dyn Broker>) {
        let ex = ClusterExecutor::builder(b.clone()).build();
        for i in 0..5u64 {
            assert_eq!(
                ex.submit(triple::call(i)).unwrap().result_timeout(LONG),
                Ok(3 * i)
            );
        }
        let since = Instant::now();
        while ClusterStatus::of("tasks", &*b).unwrap().queues[0].done < 5 {
            assert!(since.elapsed() < LONG, "the heartbeat never said 5 done");
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// `spindle status --broker` with `base` shows worker `id`, 5 tasks
    /// done, nothing queued, as JSON and as a table, and `--watch`es.
    fn check_cli(base: &[&str], id: &str) {
        let out = status(&[base, &["--json"]].concat());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        assert_eq!(text.lines().count(), 1, "one snapshot: {text}");
        let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(v["source"], "broker");
        assert!(v["unix_ms"].as_u64().unwrap() > 0);
        let q = &v["cluster"]["queues"][0];
        assert_eq!(q["name"], "tasks");
        assert_eq!(
            (&q["queued"], &q["in_flight"]),
            (&0.into(), &0.into()),
            "{q}"
        );
        assert_eq!((&q["workers"], &q["done"]), (&1.into(), &5.into()), "{q}");
        let w = &v["cluster"]["workers"][0];
        assert_eq!(w["id"], id);
        assert_eq!(w["pid"], std::process::id());
        assert!(w["heartbeat_age_ms"].as_u64().unwrap() < 30_000, "{w}");

        let out = status(base);
        assert!(out.status.success());
        let table = String::from_utf8(out.stdout).unwrap();
        assert!(table.starts_with("broker "), "{table}");
        assert!(
            table
                .lines()
                .any(|l| l.split_whitespace().next() == Some(id)),
            "{table}"
        );

        let out = status(&[base, &["--json", "--watch", "20ms", "--count", "2"]].concat());
        assert!(out.status.success());
        assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 2);
    }

    #[test]
    fn status_broker_shows_an_embedded_clusters_workers_and_queue() {
        let server = BaseManager::builder()
            .register("tasks", Typeid::broker())
            .bind("127.0.0.1:0".parse::<SocketAddr>().unwrap())
            .authkey(KEY)
            .spawn()
            .unwrap();
        let addr = server.address().to_string();
        let b: Arc<dyn Broker> = Arc::new(
            spindle_cluster::EmbeddedBroker::connect(server.address().clone(), KEY, "tasks")
                .unwrap(),
        );
        let _w = WorkerThread::start(&*b, "cli-embedded");
        five_tasks(b);
        let kf = KeyFile::new("broker", KEY);
        check_cli(
            &["--broker", &addr, "--authkey-file", kf.0.to_str().unwrap()],
            "cli-embedded",
        );
        // A queue the server does not have.
        let out = status(&[
            "--broker",
            &addr,
            "--authkey-file",
            kf.0.to_str().unwrap(),
            "--queue",
            "nope",
        ]);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("nope"), "{err}");
    }

    #[test]
    fn status_broker_shows_a_redis_clusters_workers_and_queue() {
        let r = Redis::start("status");
        let b: Arc<dyn Broker> = Arc::new(r.broker(LONG));
        let _w = WorkerThread::start(&*b, "cli-redis");
        five_tasks(b);
        let url = format!("redis+unix://{}", r.socket().display());
        check_cli(&["--broker", &url], "cli-redis");
    }

    #[test]
    fn status_broker_over_mutual_tls() {
        let r = Redis::start_tls("status-tls");
        r.broker(LONG); // the server answers
        let b: Arc<dyn Broker> = Arc::new(
            spindle_cluster::RedisBroker::connect_with(&r.tls_url(), "tasks", &r.tls()).unwrap(),
        );
        let _w = WorkerThread::start(&*b, "cli-tls");
        five_tasks(b);
        let url = r.tls_url();
        let flags = r.tls_flags();
        let base: Vec<&str> = ["--broker", url.as_str()]
            .into_iter()
            .chain(flags.iter().map(String::as_str))
            .collect();
        check_cli(&base, "cli-tls");
        // Another CA (the client's certificate is none): exit 2, one line
        // naming TLS.
        let client_pem = r.file("client.pem");
        let out = status(&["--broker", &url, "--tls-ca", &client_pem]);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("TLS") && err.contains("certificate"), "{err}");
        // Without --tls-ca, the CA from SSL_CERT_FILE (rustls-native-certs
        // reads it instead of the system's store).
        let out = Command::new(env!("CARGO_BIN_EXE_spindle"))
            .args(["status", "--json", "--broker", &url])
            .args(&flags[2..]) // --tls-cert, --tls-key
            .env("SSL_CERT_FILE", r.file("ca.pem"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // And without it, the system's store does not hold the test CA.
        let out = Command::new(env!("CARGO_BIN_EXE_spindle"))
            .args(["status", "--broker", &url])
            .args(&flags[2..])
            .env_remove("SSL_CERT_FILE")
            .env_remove("SSL_CERT_DIR")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("TLS"));
    }

    #[test]
    fn dashboard_broker_over_mutual_tls() {
        let r = Redis::start_tls("dash-tls");
        r.broker(LONG); // the server answers
        let b =
            spindle_cluster::RedisBroker::connect_with(&r.tls_url(), "tasks", &r.tls()).unwrap();
        b.put(b"x", 1, "c1", b"", LONG).unwrap();
        let url = r.tls_url();
        let flags = r.tls_flags();
        let args: Vec<&str> = ["--broker", url.as_str()]
            .into_iter()
            .chain(flags.iter().map(String::as_str))
            .collect();
        let (mut child, http) = dashboard(&args);
        let queues: serde_json::Value =
            serde_json::from_str(&http_get(&http, "/api/queues")).unwrap();
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(queues["tasks"]["queued"], 1, "{queues}");
        // The TLS flags without --broker: a usage error.
        let out = Command::new(env!("CARGO_BIN_EXE_spindle"))
            .args(["dashboard", "--demo", "--tls-ca"])
            .arg(r.file("ca.pem"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("--broker"));
    }

    #[test]
    fn an_unreachable_broker_exits_2_with_one_line() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let kf = KeyFile::new("broker-bad", KEY);
        for args in [
            vec!["--broker".to_string(), format!("redis://127.0.0.1:{port}")],
            vec![
                "--broker".to_string(),
                format!("127.0.0.1:{port}"),
                "--authkey-file".into(),
                kf.0.to_str().unwrap().into(),
            ],
            // A manager address without its key.
            vec!["--broker".to_string(), format!("127.0.0.1:{port}")],
            // A bad URL: named, its password not.
            vec![
                "--broker".to_string(),
                format!("redis://:s3cret@127.0.0.1:{port}/notadb"),
            ],
        ] {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = status(&args);
            assert_eq!(out.status.code(), Some(2), "{args:?}");
            let err = String::from_utf8(out.stderr).unwrap();
            assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
            assert!(err.contains(&port.to_string()), "{err}");
            assert!(!err.contains("s3cret"), "{err}");
        }
    }
}
/// A fresh directory for a stats socket, removed on drop.
struct SockDir(PathBuf);

impl SockDir {
    fn new(name: &str) -> SockDir {
        let d =
            std::env::temp_dir().join(format!("spindle-status-sock-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        SockDir(d)
    }
}

impl Drop for SockDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn status_socket_prints_the_programs_pools_and_queues() {
    use spindle::futures::{Executor, ThreadPoolExecutor};
    use spindle::queue::Queue;
    use std::sync::Arc;

    let dir = SockDir::new("ok");
    let pool = Arc::new(
        ThreadPoolExecutor::builder()
            .max_workers(1)
            .build()
            .unwrap(),
    );
    pool.submit(|| 1).unwrap().result().unwrap();
    let q: Arc<Queue<u8>> = Arc::new(Queue::new());
    q.put(1).unwrap();
    let sources = spindle::stats::Sources::new()
        .pool("work", {
            let p = pool.clone();
            move || p.stats()
        })
        .queue("jobs", {
            let q = q.clone();
            move || q.stats()
        });
    let server = spindle::stats::serve(dir.0.join("s.sock"), sources).unwrap();
    let path = server.path().to_str().unwrap().to_string();

    let out = status(&["--socket", &path, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    let s: spindle::stats::Status = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(s.pid, std::process::id());
    assert_eq!(s.pools["work"].tasks_completed, 1);
    assert_eq!(s.queues["jobs"].qsize, 1);

    let out = status(&["--socket", &path]);
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.starts_with(&format!("socket {path} (pid {}", std::process::id())),
        "{table}"
    );
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(rows.contains(&vec!["pool", "work"]), "{table}");
    assert!(rows.contains(&vec!["tasks", "completed", "1"]), "{table}");
    assert!(rows.contains(&vec!["queue", "jobs"]), "{table}");
    assert!(rows.contains(&vec!["qsize", "1"]), "{table}");

    let out = status(&[
        "--socket", &path, "--json", "--watch", "20ms", "--count", "3",
    ]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 3);
}

#[test]
fn an_unserved_socket_exits_2_with_one_line() {
    let dir = SockDir::new("bad");
    let path = dir.0.join("nobody.sock");
    let out = status(&["--socket", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(path.to_str().unwrap()) && err.contains("No such file"),
        "{err}"
    );

    // Something that answers, but not with a snapshot.
    let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let t = std::thread::spawn(move || {
        use std::io::Write;
        let (mut s, _) = l.accept().unwrap();
        s.write_all(b"hello\n").unwrap();
    });
    let out = status(&["--socket", path.to_str().unwrap()]);
    t.join().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("not a snapshot"), "{err}");

    // Two sources at once is a usage error.
    let out = status(&[
        "--socket",
        "x",
        "--manager",
        "127.0.0.1:1",
        "--authkey-file",
        "k",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

/// Starts `spindle dashboard ARGS`; returns the child and its URL (the
/// first stdout line).
fn dashboard(args: &[&str]) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_spindle"))
        .arg("dashboard")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .strip_prefix("dashboard on ")
        .unwrap_or_else(|| panic!("first line {line:?}"))
        .trim_end()
        .to_string();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with('/'),
        "{line:?}"
    );
    (child, url)
}

/// A GET over a raw TcpStream; the body.
fn http_get(url: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let host = url.trim_start_matches("http://").trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out.split_once("\r\n\r\n").unwrap().1.to_string()
}

/// The keys of a JSON value, recursively, and the kind of each leaf.
fn schema(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), schema(v))).collect()),
        Value::Array(_) => "array".into(),
        Value::Number(_) => "number".into(),
        Value::String(_) => "string".into(),
        Value::Bool(_) => "bool".into(),
        // An optional number (a task time before any task): a number.
        Value::Null => "number".into(),
    }
}

#[test]
fn status_json_has_the_schema_of_the_dashboards_api_status() {
    let dir = SockDir::new("schema");
    let sock = dir.0.join("demo.sock");
    let (mut child, url) = dashboard(&["--demo", "--stats-socket", sock.to_str().unwrap()]);
    let api: serde_json::Value = serde_json::from_str(&http_get(&url, "/api/status")).unwrap();
    let out = status(&["--socket", sock.to_str().unwrap(), "--json"]);
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(schema(&cli), schema(&api));
    assert!(api["pools"]["demo"]["workers_alive"].is_number(), "{api}");
    assert_eq!(cli["pid"], api["pid"]);
}

#[test]
fn dashboard_refuses_a_public_bind_without_a_token() {
    let out = Command::new(env!("CARGO_BIN_EXE_spindle"))
        .args(["dashboard", "--demo", "--bind", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("token"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn dashboard_broker_serves_an_embedded_clusters_queue() {
    let server = BaseManager::builder()
        .register("tasks", Typeid::broker())
        .bind("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .authkey(KEY)
        .spawn()
        .unwrap();
    let addr = server.address().to_string();
    let kf = KeyFile::new("dash-broker", KEY);
    let key = kf.0.to_str().unwrap();
    let m = server.connect().unwrap();
    let b: spindle::manager::BrokerProxy<serde_bytes::ByteBuf> = m.get("tasks").unwrap();
    b.put(&serde_bytes::ByteBuf::from(vec![1, 2, 3])).unwrap();
    let (mut child, url) = dashboard(&["--broker", &addr, "--authkey-file", key]);
    let queues: serde_json::Value = serde_json::from_str(&http_get(&url, "/api/queues")).unwrap();
    let metrics = http_get(&url, "/metrics");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(queues["tasks"]["queued"], 1, "{queues}");
    assert_eq!(queues["tasks"]["unfinished"], 1, "{queues}");
    assert!(
        metrics.contains("spindle_cluster_queued{queue=\"tasks\"} 1"),
        "{metrics}"
    );
    // A queue the server does not have, and a manager without a key.
    for args in [
        &["--broker", &addr, "--authkey-file", key, "--queue", "nope"][..],
        &["--broker", &addr][..],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_spindle"))
            .arg("dashboard")
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("queue"), "{err}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn dashboard_manager_serves_the_servers_counters() {
    let server = BaseManager::builder()
        .register("q", Typeid::queue())
        .bind("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .authkey(KEY)
        .spawn()
        .unwrap();
    let addr = server.address().to_string();
    let kf = KeyFile::new("dash-manager", KEY);
    let key = kf.0.to_str().unwrap();
    let (mut child, url) = dashboard(&["--manager", &addr, "--authkey-file", key]);
    let st: serde_json::Value = serde_json::from_str(&http_get(&url, "/api/status")).unwrap();
    let metrics = http_get(&url, "/metrics");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(st["manager"]["address"], addr.as_str(), "{st}");
    assert!(st["manager"]["connections"].as_u64().unwrap() >= 1, "{st}");
    assert!(
        metrics.contains(&format!("spindle_manager_objects{{manager=\"{addr}\"}}")),
        "{metrics}"
    );
    // Without a key file, and with the wrong key: exit 2, one line.
    let bad = KeyFile::new("dash-manager-bad", b"a-wrong-key-0123456789abcdef-xyz");
    for args in [
        &["--manager", &addr][..],
        &[
            "--manager",
            &addr,
            "--authkey-file",
            bad.0.to_str().unwrap(),
        ][..],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_spindle"))
            .arg("dashboard")
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("manager"), "{err}");
        assert!(out.stdout.is_empty());
    }
}
