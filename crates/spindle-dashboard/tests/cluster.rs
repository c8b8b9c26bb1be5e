//! A cluster source (`ClusterSource`) on the embedded broker — a manager
//! server in this process — with a worker thread and a dead letter, seen
//! through the raw HTTP API: /api/workers, /api/dead, /api/queues,
//! /api/status and /metrics; and a manager-server source
//! (`ManagerSource`): its counters in /api/status and /metrics.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{find_metric, parse_metrics, request, until};
use serde_bytes::ByteBuf;
use serde_json::Value;
use spindle::manager::{BaseManager, BrokerProxy, Server, Typeid};
use spindle_cluster::{BrokerError, EmbeddedBroker, Worker};
use spindle_dashboard::{ClusterSource, Dashboard, ManagerSource};

const KEY: &[u8] = b"dashboard-cluster-key-0123456789ab";
const LONG: Duration = Duration::from_secs(60);

fn server() -> Server {
    BaseManager::builder()
        .register("tasks", Typeid::broker())
        .bind("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .authkey(KEY)
        .spawn()
        .unwrap()
}

#[test]
fn cluster_source_shows_worker_dead_letter_and_metrics() {
    let s = server();
    let source = ClusterSource::connect(&s.address().to_string(), Some(KEY), "tasks").unwrap();
    let d = Dashboard::builder()
        .cluster(source)
        .token("tok")
        .allow_actions(true)
        .serve()
        .unwrap();
    let auth = [("Authorization", "Bearer tok")];
    let get = |path: &str| request(d.addr(), "GET", path, &auth);
    assert_eq!(get("/api/workers").json(), Value::Array(vec![]));
    assert_eq!(get("/api/dead").json(), Value::Array(vec![]));

    // A worker thread, heartbeats every 50 ms, and an entry it cannot
    // decode: dead-lettered at once with its reason.
    let broker = EmbeddedBroker::connect(s.address().clone(), KEY, "tasks").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let w = Worker::new(&broker)
            .id("dash-worker-1")
            .status_every(Duration::from_millis(50));
        let stop = stop.clone();
        std::thread::spawn(move || w.run(&stop).unwrap())
    };
    let m = s.connect().unwrap();
    let proxy: BrokerProxy<ByteBuf> = m.get("tasks").unwrap();
    proxy
        .put(&ByteBuf::from(b"\xc1 not MessagePack".to_vec()))
        .unwrap();

    until(
        "the worker's heartbeat counting the dead letter",
        LONG,
        || get("/api/workers").json()[0]["heartbeat"]["dead_lettered"] == 1,
    );
    let workers = get("/api/workers").json();
    let w = &workers.as_array().unwrap()[..];
    assert_eq!(w.len(), 1, "{workers}");
    assert_eq!(w[0]["pool"], "tasks");
    assert_eq!(w[0]["pid"], std::process::id());
    assert_eq!(w[0]["heartbeat"]["id"], "dash-worker-1");
    assert_eq!(w[0]["heartbeat"]["queue"], "tasks");
    assert!(w[0]["heartbeat"]["heartbeat_age_ms"].as_u64().unwrap() < 60_000);

    let dead = get("/api/dead").json();
    assert_eq!(dead.as_array().unwrap().len(), 1, "{dead}");
    assert_eq!(dead[0]["queue"], "tasks");
    assert_eq!(dead[0]["attempts"], 1);
    assert!(
        dead[0]["reason"]
            .as_str()
            .unwrap()
            .contains("not a job entry"),
        "{dead}"
    );

    let q = get("/api/queues").json();
    assert_eq!(q["tasks"]["dead_letters"], 1, "{q}");
    assert_eq!(q["tasks"]["unfinished"], 0, "{q}");
    assert_eq!(q["tasks"]["workers"], 1, "{q}");

    let st = get("/api/status").json();
    assert_eq!(st["pid"], std::process::id());
    assert_eq!(st["queues"]["tasks"]["qsize"], 0, "{st}");
    assert_eq!(st["cluster"]["queues"][0]["name"], "tasks", "{st}");
    assert_eq!(st["cluster"]["workers"][0]["id"], "dash-worker-1", "{st}");

    let r = get("/metrics");
    assert_eq!(r.code, 200);
    let samples = parse_metrics(&r.body);
    let find = |name: &str, labels: &[(&str, &str)]| find_metric(&samples, name, labels);
    let q = [("queue", "tasks")];
    assert_eq!(find("spindle_cluster_dead_letters", &q), 1.0);
    assert_eq!(find("spindle_cluster_workers", &q), 1.0);
    assert_eq!(find("spindle_cluster_queued", &q), 0.0);
    assert_eq!(find("spindle_cluster_in_flight", &q), 0.0);
    assert_eq!(find("spindle_cluster_unfinished", &q), 0.0);
    let me = [("worker", "dash-worker-1"), ("queue", "tasks")];
    assert_eq!(find("spindle_cluster_worker_dead_lettered_total", &me), 1.0);
    assert_eq!(find("spindle_cluster_worker_concurrency", &me), 1.0);
    let age = find("spindle_cluster_worker_heartbeat_age_seconds", &me);
    assert!((0.0..60.0).contains(&age), "{age}");

    // Retry: the dead letter goes back to the queue, and the worker
    // dead-letters it again (it is still not a job); purge drops it.
    let host = d.addr().to_string();
    let origin = format!("http://{host}");
    let post = |path: &str| {
        request(
            d.addr(),
            "POST",
            path,
            &[("Authorization", "Bearer tok"), ("Origin", &origin)],
        )
    };
    let r = post("/api/dead/retry");
    assert_eq!(r.code, 200, "{r:?}");
    assert_eq!(r.json()["affected"], 1);
    until("the retried entry dead-lettered again", LONG, || {
        get("/api/workers").json()[0]["heartbeat"]["dead_lettered"] == 2
    });
    assert_eq!(get("/api/dead").json().as_array().unwrap().len(), 1);
    let r = post("/api/dead/purge");
    assert_eq!(r.code, 200, "{r:?}");
    assert_eq!(r.json()["affected"], 1);
    assert_eq!(get("/api/dead").json(), Value::Array(vec![]));

    // A stopped worker takes its heartbeat out.
    stop.store(true, Ordering::SeqCst);
    assert_eq!(worker.join().unwrap().dead_lettered, 2);
    assert_eq!(get("/api/workers").json(), Value::Array(vec![]));

    // A broker that is gone: a 502 naming the queue.
    drop((proxy, m, broker));
    s.stop().unwrap();
    let r = get("/api/status");
    assert_eq!(r.code, 502, "{r:?}");
    assert!(
        r.json()["error"].as_str().unwrap().contains("tasks"),
        "{r:?}"
    );
    assert_eq!(get("/api/dead").code, 502);
}

#[test]
fn cluster_source_connect_errors() {
    // A manager address without its key.
    match ClusterSource::connect("127.0.0.1:1", None, "tasks") {
        Err(BrokerError::Refused(why)) => assert!(why.contains("key"), "{why}"),
        other => panic!("{other:?}"),
    }
    // The server has no broker of that name.
    let s = server();
    match ClusterSource::connect(&s.address().to_string(), Some(KEY), "nope") {
        Err(BrokerError::Unavailable(_)) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn manager_source_shows_server_counters() {
    let s = server();
    let d = Dashboard::builder()
        .manager(ManagerSource::connect(s.address().clone(), KEY).unwrap())
        .serve()
        .unwrap();
    // A client with the wrong key: refused at the handshake.
    assert!(
        spindle::manager::Manager::connect(
            s.address().clone(),
            b"not-the-key-0123456789abcdef-xyz"
        )
        .is_err()
    );
    until("the refused handshake counted", LONG, || {
        request(d.addr(), "GET", "/api/status", &[]).json()["manager"]["handshakes_refused"] == 1
    });
    let st = request(d.addr(), "GET", "/api/status", &[]).json();
    let m = &st["manager"];
    assert_eq!(m["address"], s.address().to_string(), "{st}");
    // The source's own connection, authenticated.
    assert!(m["connections"].as_u64().unwrap() >= 1, "{st}");
    assert!(m["handshakes_accepted"].as_u64().unwrap() >= 1, "{st}");
    assert!(m["objects"].as_u64().unwrap() >= 1, "{st}");
    assert_eq!(st["pid"], std::process::id());

    let r = request(d.addr(), "GET", "/metrics", &[]);
    assert_eq!(r.code, 200);
    let samples = parse_metrics(&r.body);
    let addr = s.address().to_string();
    let l = [("manager", addr.as_str())];
    assert_eq!(
        find_metric(&samples, "spindle_manager_handshakes_refused_total", &l),
        1.0
    );
    assert!(find_metric(&samples, "spindle_manager_connections", &l) >= 1.0);
    assert!(find_metric(&samples, "spindle_manager_handshakes_accepted_total", &l) >= 1.0);
    assert_eq!(
        find_metric(&samples, "spindle_manager_handshakes_pending", &l),
        0.0
    );

    s.stop().unwrap();
    let r = request(d.addr(), "GET", "/api/status", &[]);
    assert_eq!(r.code, 502, "{r:?}");
    assert!(
        r.json()["error"].as_str().unwrap().contains("manager at"),
        "{r:?}"
    );
}
