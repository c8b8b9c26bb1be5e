//! `spindle-cluster` on `RedisBroker`: each test starts its own private
//! `redis-server` (a Unix socket in a fresh temporary directory, no port,
//! no persistence) and kills it when done. The executor conformance suite,
//! leases (zombie acks, duplicate acks, redelivery, max_deliveries), tasks
//! that cannot run, a server that is gone.
//!
//! `redis-server` must be installed (`.ci/run` installs it): without it
//! these tests fail, saying so.
#![cfg(feature = "redis")]

use std::sync::Arc;
use std::thread::{self};
use std::time::{Duration, Instant};

use spindle::futures::{Executor, FutureError};
use spindle_cluster::{Broker, ClusterExecutor, RedisBroker, TaskOptions};
use spindle_conformance::executor::tasks::run_work;

mod common;

use common::redis_server::{QUEUE, RedisServer};
use common::{Backend, LONG, LocalCluster, Workers, job_of, wait_running, worker_child};

impl Backend for RedisServer {
    type Broker = RedisBroker;
    fn start() -> (RedisServer, RedisBroker) {
        let s = RedisServer::start();
        let b = s.broker();
        (s, b)
    }
}

mod conformance {
    spindle_conformance::executor_suite!(super::LocalCluster<super::RedisServer>);
}

#[spindle::task]
fn square(x: u64) -> u64 {
    x * x
}

const TTL: Duration = Duration::from_secs(60);
const SHORT: Duration = Duration::from_millis(100);

/// Fetches until one entry comes (at most `LONG`).
fn fetch_one(b: &dyn Broker, lease: Duration) -> spindle_cluster::Fetched {
    let since = Instant::now();
    loop {
        if let Some(f) = b.fetch(1, SHORT, lease).unwrap().pop() {
            return f;
        }
        assert!(since.elapsed() < LONG, "no entry came");
    }
}

#[test]
fn put_fetch_ack_result_counts() {
    let s = RedisServer::start();
    let b = s.broker();
    let id = b.put(b"one", 3, "c1", b"lost", TTL).unwrap();
    let c = b.counts().unwrap();
    assert_eq!((c.queued, c.in_flight, c.unfinished), (1, 0, 1), "{c:?}");
    let f = fetch_one(&b, LONG);
    assert_eq!((f.id, f.bytes.as_slice(), f.attempt), (id, &b"one"[..], 1));
    let c = b.counts().unwrap();
    assert_eq!((c.queued, c.in_flight, c.unfinished), (0, 1, 1), "{c:?}");
    assert!(b.ack_with_result(id, "c1", b"result", TTL).unwrap());
    assert_eq!(
        b.results("c1", 10, SHORT).unwrap(),
        vec![b"result".to_vec()]
    );
    let c = b.counts().unwrap();
    assert_eq!((c.queued, c.in_flight, c.unfinished), (0, 0, 0), "{c:?}");
    // Nothing more: results wait their time out and come back empty.
    assert!(b.results("c1", 10, SHORT).unwrap().is_empty());
    assert!(b.fetch(1, SHORT, LONG).unwrap().is_empty());
}

#[test]
fn zombie_ack_is_noop() {
    let s = RedisServer::start();
    let b = s.broker();
    let (zombie, other) = (b.consumer(), b.consumer());
    let lease = Duration::from_millis(50);
    let id = b.put(b"x", 3, "c1", b"lost", TTL).unwrap();
    let f = fetch_one(&*zombie, lease);
    assert_eq!((f.id, f.attempt), (id, 1));
    // The zombie's lease runs out: the other consumer reclaims it.
    let g = fetch_one(&*other, lease);
    assert_eq!((g.id, g.attempt), (id, 2));
    // The zombie can neither extend (take it back) nor ack it.
    assert_eq!(zombie.extend(&[id], lease).unwrap(), 0);
    assert!(!zombie.ack_with_result(id, "c1", b"zombie", TTL).unwrap());
    assert!(!zombie.dead_letter(id, "zombie", None, TTL).unwrap());
    assert_eq!(other.extend(&[id], LONG).unwrap(), 1);
    assert!(other.ack_with_result(id, "c1", b"holder", TTL).unwrap());
    assert_eq!(
        b.results("c1", 10, SHORT).unwrap(),
        vec![b"holder".to_vec()]
    );
    let c = b.counts().unwrap();
    assert_eq!(
        (c.unfinished, c.in_flight, c.stale_acks),
        (0, 0, 1),
        "{c:?}"
    );
    assert!(c.expired >= 1, "{c:?}");
}

#[test]
fn duplicate_ack_count_never_negative() {
    let s = RedisServer::start();
    let b = s.broker();
    let a = b.put(b"a", 3, "c1", b"", TTL).unwrap();
    b.put(b"b", 3, "c1", b"", TTL).unwrap();
    let f = fetch_one(&b, LONG);
    assert_eq!(f.id, a);
    assert!(b.ack_with_result(a, "c1", b"r", TTL).unwrap());
    for _ in 0..3 {
        assert!(!b.ack_with_result(a, "c1", b"r", TTL).unwrap());
    }
    let c = b.counts().unwrap();
    assert_eq!((c.unfinished, c.queued, c.stale_acks), (1, 1, 3), "{c:?}");
    assert_eq!(b.results("c1", 10, SHORT).unwrap().len(), 1);
}

#[test]
fn cancel_only_a_queued_entry() {
    let s = RedisServer::start();
    let b = s.broker();
    let a = b.put(b"a", 3, "c1", b"", TTL).unwrap();
    let x = b.put(b"x", 3, "c1", b"", TTL).unwrap();
    assert!(b.cancel(x).unwrap());
    assert!(!b.cancel(x).unwrap());
    let f = fetch_one(&b, LONG);
    assert_eq!(f.id, a);
    assert!(!b.cancel(a).unwrap(), "a delivered entry is not cancelled");
    assert!(b.fetch(1, SHORT, LONG).unwrap().is_empty());
    let c = b.counts().unwrap();
    assert_eq!((c.unfinished, c.in_flight, c.queued), (1, 1, 0), "{c:?}");
}

#[test]
fn lease_runs_out_past_max_deliveries_dead_letters_and_tells() {
    let s = RedisServer::start();
    let b = s.broker();
    let lease = Duration::from_millis(30);
    let id = b.put(b"x", 2, "c1", b"lost!", TTL).unwrap();
    assert_eq!(fetch_one(&b, lease).attempt, 1);
    assert_eq!(fetch_one(&b, lease).attempt, 2);
    // The second lease runs out: given up at the next fetch.
    let since = Instant::now();
    while b.counts().unwrap().dead_total == 0 {
        assert!(b.fetch(1, SHORT, lease).unwrap().is_empty());
        assert!(since.elapsed() < LONG, "never dead-lettered");
    }
    assert_eq!(b.results("c1", 10, SHORT).unwrap(), vec![b"lost!".to_vec()]);
    let dead = b.dead_letters(10).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].id, dead[0].attempts), (id, 2));
    assert!(dead[0].reason.contains("max_deliveries"), "{dead:?}");
    let c = b.counts().unwrap();
    assert_eq!((c.unfinished, c.in_flight, c.queued), (0, 0, 0), "{c:?}");
}

/// Waits for `n` dead letters; their reasons.
fn dead_reasons(b: &RedisBroker, n: usize) -> Vec<String> {
    let since = Instant::now();
    loop {
        let dead = b.dead_letters(100).unwrap();
        if dead.len() >= n {
            return dead.into_iter().map(|d| d.reason).collect();
        }
        assert!(since.elapsed() < LONG, "{n} dead letters never came");
        thread::sleep(Duration::from_millis(10));
    }
}

/// Adds an entry to the queue's stream by hand (as another program could).
fn raw_xadd(s: &RedisServer, entry: &[u8]) {
    let mut c = s.raw();
    let _: String = redis::cmd("XADD")
        .arg(format!("{{{QUEUE}}}:stream"))
        .arg("*")
        .arg("entry")
        .arg(entry)
        .query(&mut c)
        .unwrap();
}

#[test]
fn unknown_task_dead_lettered() {
    let s = RedisServer::start();
    let b = s.broker();
    let w = Workers::start(&b, 1, TaskOptions::default());
    raw_xadd(
        &s,
        &job_of("no::such::task", 1, rmp_serde::to_vec(&(1u64,)).unwrap()),
    );
    let reasons = dead_reasons(&b, 1);
    assert!(reasons[0].contains("no::such::task"), "{reasons:?}");
    assert_eq!(w.stop().dead_lettered, 1);
}

#[test]
fn garbage_entry_dead_lettered() {
    let s = RedisServer::start();
    let b = s.broker();
    let w = Workers::start(&b, 1, TaskOptions::default());
    raw_xadd(&s, b"\xc1 not MessagePack");
    let reasons = dead_reasons(&b, 1);
    assert!(reasons[0].contains("not a job entry"), "{reasons:?}");
    // The worker goes on: a good task after it runs.
    let ex = ClusterExecutor::builder(Arc::new(s.broker())).build();
    assert_eq!(ex.submit(square::call(7)).unwrap().result(), Ok(49));
    let stats = w.stop();
    assert_eq!((stats.dead_lettered, stats.done), (1, 1));
}

#[test]
fn broker_down_submit_unavailable() {
    let mut s = RedisServer::start();
    let b = s.broker();
    let ex = ClusterExecutor::builder(Arc::new(b.clone())).build();
    assert_eq!(b.counts().unwrap().unfinished, 0);
    s.kill();
    let f = ex.submit(square::call(2)).unwrap();
    let e = f.result_timeout(LONG).unwrap_err();
    assert!(e.is_unavailable(), "{e:?}");
    // Every call says so, and none hangs.
    assert!(matches!(
        b.counts(),
        Err(spindle_cluster::BrokerError::Unavailable(_))
    ));
}

#[test]
fn reconnects_after_the_server_comes_back() {
    let mut s = RedisServer::start();
    let b = s.broker();
    assert_eq!(b.counts().unwrap().unfinished, 0);
    s.kill();
    assert!(b.put(b"x", 3, "c1", b"", TTL).is_err());
    // A new server on the same socket (empty: no persistence): the
    // broker reconnects and makes its group again.
    s.launch();
    let since = Instant::now();
    let id = loop {
        match b.put(b"x", 3, "c1", b"", TTL) {
            Ok(id) => break id,
            Err(_) => assert!(since.elapsed() < LONG, "never reconnected"),
        }
        thread::sleep(Duration::from_millis(10));
    };
    let since = Instant::now();
    let f = loop {
        match b.fetch(1, SHORT, LONG) {
            Ok(mut got) if !got.is_empty() => break got.remove(0),
            _ => assert!(since.elapsed() < LONG, "never fetched"),
        }
    };
    assert_eq!(f.id, id);
}

#[test]
fn a_killed_workers_task_goes_to_another_worker() {
    let s = RedisServer::start();
    let b = s.broker();
    let options = TaskOptions {
        lease: Duration::from_millis(300),
        ..TaskOptions::default()
    };
    let ex = ClusterExecutor::builder(Arc::new(b.clone()))
        .options(options)
        .build();
    let gate = spindle_conformance::executor::Gate::new().unwrap();
    let f = ex.submit(run_work::call(gate.work(7))).unwrap();
    let mut doomed = worker_child(&s.at(), 1, options);
    wait_running(&f);
    doomed.kill().unwrap();
    let _ = doomed.join_timeout(LONG);
    gate.open();
    let w = Workers::start(&b, 1, options);
    assert_eq!(f.result_timeout(LONG), Ok(7));
    let counts = b.counts().unwrap();
    assert!(counts.expired >= 1, "{counts:?}");
    assert_eq!(counts.unfinished, 0, "{counts:?}");
    assert_eq!(w.stop().done, 1);
}

#[test]
fn a_task_whose_workers_keep_dying_fails_with_worker_lost() {
    let s = RedisServer::start();
    let b = s.broker();
    let options = TaskOptions {
        lease: Duration::from_millis(300),
        max_deliveries: 1,
        ..TaskOptions::default()
    };
    let ex = ClusterExecutor::builder(Arc::new(b.clone()))
        .options(options)
        .build();
    let gate = spindle_conformance::executor::Gate::new().unwrap();
    let f = ex.submit(run_work::call(gate.work(7))).unwrap();
    let mut doomed = worker_child(&s.at(), 1, options);
    wait_running(&f);
    doomed.kill().unwrap();
    let _ = doomed.join_timeout(LONG);
    gate.open();
    // Nobody else runs it: a fetch (as any worker's) finds its lease run
    // out and gives it up.
    let since = Instant::now();
    while b.counts().unwrap().dead_total == 0 {
        assert!(b.fetch(1, SHORT, options.lease).unwrap().is_empty());
        assert!(since.elapsed() < LONG, "never dead-lettered");
    }
    let e = f.result_timeout(LONG).unwrap_err();
    assert!(matches!(e, FutureError::WorkerLost(_)), "{e:?}");
    assert_eq!(b.counts().unwrap().dead_total, 1);
}

#[test]
fn a_running_tasks_lease_is_extended() {
    let s = RedisServer::start();
    let b = s.broker();
    let options = TaskOptions {
        lease: Duration::from_millis(150),
        ..TaskOptions::default()
    };
    let ex = ClusterExecutor::builder(Arc::new(b.clone()))
        .options(options)
        .build();
    // Two worker threads: the idle one fetches (reclaims) all the time.
    let w = Workers::start(&b, 2, options);
    let gate = spindle_conformance::executor::Gate::new().unwrap();
    let f = ex.submit(run_work::call(gate.work(5))).unwrap();
    wait_running(&f);
    // Many leases long: the heartbeat keeps it with its worker.
    thread::sleep(Duration::from_millis(1500));
    gate.open();
    assert_eq!(f.result_timeout(LONG), Ok(5));
    let c = b.counts().unwrap();
    assert_eq!((c.expired, c.unfinished), (0, 0), "{c:?}");
    let stats = w.stop();
    assert_eq!((stats.done, stats.stale), (1, 0));
}

#[test]
fn connect_errors_are_typed() {
    use spindle_cluster::BrokerError;
    let s = RedisServer::start_with(Some("sesame"), false);
    // The password from the URL: AUTH.
    let b = s.broker();
    b.put(b"x", 1, "c1", b"", TTL).unwrap();
    assert_eq!(b.counts().unwrap().unfinished, 1);
    let sock = s.dir.join("redis.sock");
    let wrong = format!("unix://{}?pass=wrong", sock.display());
    let none = format!("unix://{}", sock.display());
    for url in [&wrong, &none] {
        let e = RedisBroker::connect(url, QUEUE).unwrap_err();
        assert!(matches!(e, BrokerError::Unavailable(_)), "{url}: {e:?}");
    }
    let gone = format!("unix://{}", s.dir.join("nothing.sock").display());
    let e = RedisBroker::connect(&gone, QUEUE).unwrap_err();
    assert!(matches!(e, BrokerError::Unavailable(_)), "{e:?}");
    for queue in ["", "a{b", "a}"] {
        let e = RedisBroker::connect(&s.url(), queue).unwrap_err();
        assert!(matches!(e, BrokerError::Refused(_)), "{queue:?}: {e:?}");
    }
    let e = RedisBroker::connect("nonsense://x", QUEUE).unwrap_err();
    assert!(matches!(e, BrokerError::Refused(_)), "{e:?}");
    let e = b.put(b"x", 0, "c1", b"", TTL).unwrap_err();
    assert!(matches!(e, BrokerError::Refused(_)), "{e:?}");
}

#[test]
fn huge_or_bad_ttls_do_not_break_the_scripts() {
    let s = RedisServer::start();
    let b = s.broker();
    // A ttl past the server's clock range is capped (about 34 years).
    let id = b.put(b"x", 3, "c1", b"", Duration::MAX).unwrap();
    assert_eq!(fetch_one(&b, LONG).id, id);
    assert!(b.ack_with_result(id, "c1", b"r", Duration::MAX).unwrap());
    b.notify("c1", b"n", Duration::MAX).unwrap();
    assert_eq!(b.results("c1", 10, SHORT).unwrap().len(), 2);
    assert_eq!(b.counts().unwrap().unfinished, 0);
    // An entry added by hand with a ttl that is not one: its on_dead
    // message still goes out, with the default ttl.
    let mut c = s.raw();
    let _: String = redis::cmd("XADD")
        .arg(format!("{{{QUEUE}}}:stream"))
        .arg("*")
        .arg("entry")
        .arg("e")
        .arg("max_deliveries")
        .arg("1")
        .arg("client")
        .arg("c2")
        .arg("on_dead")
        .arg("dead!")
        .arg("ttl_ms")
        .arg("1e300")
        .query(&mut c)
        .unwrap();
    let lease = Duration::from_millis(20);
    assert_eq!(fetch_one(&b, lease).attempt, 1);
    let since = Instant::now();
    while b.counts().unwrap().dead_total == 0 {
        assert!(b.fetch(1, SHORT, lease).unwrap().is_empty());
        assert!(since.elapsed() < LONG, "never dead-lettered");
    }
    let ttl: i64 = redis::cmd("PTTL")
        .arg(format!("{{{QUEUE}}}:results:c2"))
        .query(&mut c)
        .unwrap();
    assert!((1..=3_600_000).contains(&ttl), "{ttl}");
    assert_eq!(b.results("c2", 10, SHORT).unwrap(), vec![b"dead!".to_vec()]);
}

/// A client's results survive a read whose reply is lost (the link cut
/// after the server ran the read): reading is not taking. Before, a
/// destructive `LPOP`/`BLPOP` whose reply was lost lost the results (the
/// chaos soak lost 2 of 2,000 tasks this way across a server restart).
#[test]
fn results_survive_a_lost_reply() {
    let s = RedisServer::start_tcp();
    let b = s.broker();
    b.notify("c1", b"r1", TTL).unwrap();
    b.notify("c1", b"r2", TTL).unwrap();
    let target: std::net::SocketAddr = format!("127.0.0.1:{}", s.port.unwrap()).parse().unwrap();
    let relay = common::CuttingRelay::start(target, &[b"LPOP", b"XREAD"]);
    let through = RedisBroker::connect(&format!("redis://{}", relay.addr), QUEUE).unwrap();
    let mut got = Vec::new();
    let since = Instant::now();
    while got.len() < 2 && since.elapsed() < Duration::from_secs(3) {
        if let Ok(r) = through.results("c1", 10, SHORT) {
            got.extend(r);
        }
    }
    assert!(
        relay.cut.load(std::sync::atomic::Ordering::SeqCst),
        "the relay never cut"
    );
    assert_eq!(got, vec![b"r1".to_vec(), b"r2".to_vec()]);
    // Read once: the next read has nothing.
    assert!(through.results("c1", 10, SHORT).unwrap().is_empty());
}
