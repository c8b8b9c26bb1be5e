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
use common::{
    Backend, LONG, LocalCluster, Workers, ack, job_of, put_and_fetch, started, wait_running,
    worker_child,
};

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
    // A wrong password, none: `Auth`, naming authentication.
    for url in [&wrong, &none] {
        let e = RedisBroker::connect(url, QUEUE).unwrap_err();
        assert!(matches!(e, BrokerError::Auth(_)), "{url}: {e:?}");
        assert!(e.to_string().contains("authentication"), "{e}");
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

#[test]
fn dead_letters_retried_and_purged() {
    let s = RedisServer::start();
    common::check_retry_and_purge_dead(&s.broker());
}

#[test]
fn join_waits_for_acks_dead_letters_and_cancels() {
    let s = RedisServer::start();
    common::check_join(&s.broker());
}

#[test]
fn nack_delays_redelivery() {
    let s = RedisServer::start();
    common::check_nack_delay(&s.broker());
    // Nothing left behind in the delayed set or its entries.
    let mut c = s.raw();
    for key in ["delayed", "delayed_entries"] {
        let n: i64 = redis::cmd("EXISTS")
            .arg(format!("{{{QUEUE}}}:{key}"))
            .query(&mut c)
            .unwrap();
        assert_eq!(n, 0, "{key}");
    }
}

#[test]
fn nack_zero_tail_last_delivery_dead_delayed_cancel() {
    let s = RedisServer::start();
    let b = s.broker();
    common::check_nack_tail_dead_cancel(&b);
    let dead = b.dead_letters(10).unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].attempts, 2, "{dead:?}");
    assert!(dead[0].reason.contains("refused"), "{dead:?}");
}

#[test]
fn nacked_entry_survives_a_lease_run_out_with_its_attempts() {
    // The attempt count travels in the entry: a nacked entry whose next
    // lease runs out is reclaimed as its third delivery and, at
    // max_deliveries 3, given up after that.
    let s = RedisServer::start();
    let b = s.broker();
    let lease = Duration::from_millis(30);
    b.put(b"x", 3, "c1", b"lost", TTL).unwrap();
    let f = fetch_one(&b, LONG);
    assert!(b.nack(f.id, Duration::ZERO).unwrap());
    assert_eq!(fetch_one(&b, lease).attempt, 2);
    assert_eq!(fetch_one(&b, lease).attempt, 3);
    let since = Instant::now();
    while b.counts().unwrap().dead_total == 0 {
        assert!(b.fetch(1, SHORT, lease).unwrap().is_empty());
        assert!(since.elapsed() < LONG, "never dead-lettered");
    }
    assert_eq!(b.dead_letters(10).unwrap()[0].attempts, 3);
    assert_eq!(b.results("c1", 10, SHORT).unwrap(), vec![b"lost".to_vec()]);
    assert_eq!(b.counts().unwrap().unfinished, 0);
}

#[test]
fn submit_with_retries_backs_off_then_succeeds_or_fails() {
    let s = RedisServer::start();
    common::check_retries(&s.broker(), "redis");
}

#[test]
fn submit_with_timeout_gives_the_task_up() {
    let s = RedisServer::start();
    common::check_timeout(&s.broker());
}

#[test]
fn submit_with_bad_options_refused() {
    let s = RedisServer::start();
    common::check_bad_options(&s.broker());
}

#[test]
fn an_entrys_own_lease_is_the_reclaimers_threshold() {
    // Entries put with their own lease are reclaimed by that lease, not by
    // the fetching worker's (which is long here).
    let s = RedisServer::start();
    let b = s.broker();
    let (a, other) = (b.consumer(), b.consumer());
    let opts = spindle_cluster::PutOptions {
        max_deliveries: 3,
        client: "c1",
        on_dead: b"",
        ttl: TTL,
        lease: Some(Duration::from_millis(50)),
    };
    let id = b.put_with(b"short", &opts).unwrap();
    b.put(b"long", 3, "c1", b"", TTL).unwrap();
    assert_eq!(fetch_one(&*a, LONG).id, id);
    let g = fetch_one(&*a, LONG);
    assert_eq!(g.bytes, b"long");
    // The short one comes back to `other`; the long one (the fetch's lease
    // of 60 s) does not.
    let r = fetch_one(&*other, LONG);
    assert_eq!((r.id, r.attempt), (id, 2));
    // (The short one may come back again if `other` is slower than its
    // 50 ms lease under load: only the long one must not.)
    let again = other.fetch(1, SHORT, LONG).unwrap();
    assert!(again.iter().all(|f| f.bytes != b"long"), "{again:?}");
}

/// A fresh Redis cluster queue of `maxsize` on its own server.
fn served_queue(maxsize: usize) -> common::ServedQueue<RedisServer> {
    let s = RedisServer::start();
    let q = spindle_cluster::Queue::redis(&s.url(), "q", maxsize).unwrap();
    common::ServedQueue { q, _server: s }
}

mod queue_conformance {
    use spindle_conformance::queue::ExpectedOrder;
    spindle_conformance::queue_suite!(ExpectedOrder::Fifo, super::served_queue);
}

#[test]
fn queue_leased_item_goes_to_another_handle_and_counts_once() {
    use spindle::queue::BlockingQueue;
    use spindle_cluster::Queue;
    let s = RedisServer::start();
    let lease = Duration::from_millis(100);
    let a = Queue::<String>::redis(&s.url(), "q", 0)
        .unwrap()
        .with_lease(lease);
    let b = Queue::<String>::redis(&s.url(), "q", 0)
        .unwrap()
        .with_lease(lease);
    a.put("x".into()).unwrap();
    let taken = Instant::now();
    assert_eq!(a.get().unwrap(), "x");
    // Taken, not acknowledged: not in qsize, still unfinished.
    assert_eq!((a.qsize(), a.unfinished().unwrap()), (0, 1));
    assert!(a.join_timeout(SHORT).is_err());
    // `a` never acks (as if it died): past the lease `b` gets it.
    assert_eq!(b.get_timeout(LONG).unwrap(), "x");
    assert!(taken.elapsed() >= lease);
    // `a`'s late task_done acks nothing; `b`'s counts.
    a.task_done().unwrap();
    assert_eq!(a.unfinished().unwrap(), 1);
    b.task_done().unwrap();
    assert_eq!(a.unfinished().unwrap(), 0);
    a.join_timeout(LONG).unwrap();
    assert!(b.task_done().is_err(), "nothing left to mark done");
}

#[test]
fn queue_receipts_ack_once() {
    use spindle::queue::BlockingQueue;
    use spindle_cluster::Queue;
    let s = RedisServer::start();
    for lease in [Duration::ZERO, LONG] {
        let name = format!("q{}", lease.as_millis());
        let q = Queue::<u32>::redis(&s.url(), &name, 0)
            .unwrap()
            .with_lease(lease);
        q.put(1).unwrap();
        q.put(2).unwrap();
        let (one, r1) = q.get_with_receipt().unwrap();
        let (two, r2) = q.get_with_receipt_timeout(LONG).unwrap();
        assert_eq!((one, two), (1, 2));
        assert_eq!(q.unfinished().unwrap(), 2);
        assert!(q.ack(&r2).unwrap());
        assert!(q.ack(&r1).unwrap());
        assert_eq!(q.unfinished().unwrap(), 0);
        assert!(
            !q.ack(&r1).unwrap(),
            "{lease:?}: a second ack counts nothing"
        );
        q.join_timeout(LONG).unwrap();
    }
}

#[test]
fn queue_errors_are_typed_and_a_lost_server_is_shut_down() {
    use spindle::queue::{BlockingQueue, GetTimeoutError};
    use spindle_cluster::{BrokerError, Queue};
    let mut s = RedisServer::start();
    let q = Queue::<u32>::redis(&s.url(), "q", 2).unwrap();
    assert_eq!(q.maxsize(), 2);
    let e = Queue::<u32>::redis(&s.url(), "q", 3).unwrap_err();
    assert!(
        matches!(&e, BrokerError::Refused(m) if m.contains("maxsize 2")),
        "{e:?}"
    );
    // Something that is not a u32, put by another program: skipped.
    let other = Queue::<String>::redis(&s.url(), "q", 2).unwrap();
    other.put("not a number".into()).unwrap();
    q.put(7).unwrap();
    assert_eq!(q.get_timeout(LONG), Ok(7));
    assert_eq!((q.undecodable(), q.unfinished().unwrap()), (1, 1));
    q.put(8).unwrap();
    s.kill();
    assert_eq!(q.get(), Err(spindle::queue::ShutDown));
    assert_eq!(q.get_timeout(SHORT), Err(GetTimeoutError::ShutDown));
    assert_eq!(q.put(9).map_err(|e| e.into_inner()), Err(9));
    assert!(q.is_shutdown());
    q.join_timeout(LONG).unwrap();
}

#[test]
fn a_dead_workers_timed_task_comes_back_after_its_timeout() {
    let s = RedisServer::start();
    common::check_timed_task_of_a_dead_worker(&s.broker(), &s.at());
}

#[test]
fn status_counts_a_known_workload() {
    let s = RedisServer::start();
    common::status_counts_a_known_workload(&s.broker());
}

#[test]
fn status_drops_a_killed_worker() {
    let s = RedisServer::start();
    common::status_drops_a_killed_worker(&s.broker(), &s.at());
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

#[test]
fn prefetch_window_leases_extended_drain_gives_back() {
    let s = RedisServer::start();
    common::check_prefetch_window(&s.broker());
}

#[test]
fn a_killed_workers_prefetched_tasks_are_redelivered() {
    let s = RedisServer::start();
    common::check_killed_workers_prefetched_redelivered(&s.broker(), &s.at());
}

#[test]
fn send_batch_acks_count_once() {
    let s = RedisServer::start();
    common::check_send_batch(&s.broker());
}

#[test]
fn put_batch_puts_in_order_with_each_entrys_options() {
    let s = RedisServer::start();
    common::check_put_batch(&s.broker());
}

/// `put_batch` is one script: each entry keeps its own lease (the
/// reclaimer's threshold), and a batch with a bad entry puts nothing.
#[test]
fn put_batch_keeps_each_entrys_lease_and_refuses_as_a_whole() {
    use spindle_cluster::{PutEntry, PutOptions};
    let s = RedisServer::start();
    let b = s.broker();
    let put = |entry: &'static [u8], max_deliveries, lease| PutEntry {
        entry,
        options: PutOptions {
            max_deliveries,
            client: "c1",
            on_dead: b"",
            ttl: TTL,
            lease,
        },
    };
    let refused = b.put_batch(&[put(b"good", 3, None), put(b"bad", 0, None)]);
    assert!(
        matches!(refused, Err(spindle_cluster::BrokerError::Refused(_))),
        "{refused:?}"
    );
    assert_eq!(b.counts().unwrap().unfinished, 0, "nothing was put");
    let ids = b
        .put_batch(&[
            put(b"short", 3, Some(Duration::from_millis(50))),
            put(b"long", 3, None),
        ])
        .unwrap();
    let (a, other) = (b.consumer(), b.consumer());
    assert_eq!(fetch_one(&*a, LONG).id, ids[0]);
    assert_eq!(fetch_one(&*a, LONG).id, ids[1]);
    // The short one comes back to `other` by its own lease; the long one
    // (the fetches' lease of 60 s) stays with `a`.
    let r = fetch_one(&*other, LONG);
    assert_eq!(
        (r.id, r.bytes.as_slice(), r.attempt),
        (ids[0], &b"short"[..], 2)
    );
    assert!(a.ack_with_result(ids[1], "c1", b"r", TTL).unwrap());
    assert!(other.ack_with_result(ids[0], "c1", b"r", TTL).unwrap());
    assert_eq!(b.counts().unwrap().unfinished, 0);
}

/// A server that lost its scripts (restarted, `SCRIPT FLUSH`): the
/// batch of acks is sent again behind a `SCRIPT LOAD`, and each ack
/// counts once.
#[test]
fn send_batch_after_a_script_flush_counts_each_ack_once() {
    let s = RedisServer::start();
    let b = s.broker();
    let ids = put_and_fetch(&b, 2);
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query(&mut s.raw())
        .unwrap();
    let counted = b
        .send_batch(&[
            ack(ids[0], b"r0"),
            started(),
            ack(ids[1], b"r1"),
            ack(ids[0], b"again"),
        ])
        .unwrap();
    assert_eq!(counted, vec![true, true, true, false]);
    let mut results = Vec::new();
    let since = Instant::now();
    while !results.contains(&b"r1".to_vec()) {
        results.extend(b.results("c1", 10, SHORT).unwrap());
        assert!(since.elapsed() < LONG, "results never came: {results:?}");
    }
    // Each result once; the notice is a hint (it may come twice).
    results.retain(|r| r != b"started");
    assert_eq!(results, vec![b"r0".to_vec(), b"r1".to_vec()]);
    let c = b.counts().unwrap();
    assert_eq!((c.unfinished, c.in_flight), (0, 0), "{c:?}");
}

/// A consumer that keeps fetching (plain reads between its sweeps) still
/// moves another consumer's nacked entry back once due, and still takes
/// back an entry whose lease ran out, each within its own fetch's wait.
#[test]
fn a_busy_fetchers_sweeps_move_delayed_and_reclaim_expired() {
    let s = RedisServer::start();
    let b = s.broker();
    let (a, other) = (b.consumer(), b.consumer());
    // `other` has swept once already: later sweeps come from its clock.
    assert!(other.fetch(1, Duration::ZERO, LONG).unwrap().is_empty());
    let id = b.put(b"later", 3, "c1", b"", TTL).unwrap();
    let first = fetch_one(&*a, LONG);
    assert_eq!((first.id, first.attempt), (id, 1));
    assert!(a.nack(first.id, Duration::from_millis(300)).unwrap());
    let since = Instant::now();
    let back = other.fetch(1, Duration::from_secs(5), LONG).unwrap();
    assert_eq!(back.len(), 1, "the delayed entry never came back");
    assert_eq!(
        (back[0].bytes.as_slice(), back[0].attempt),
        (&b"later"[..], 2)
    );
    assert!(
        since.elapsed() >= Duration::from_millis(250),
        "came back early"
    );
    // `other` holds it with a lease of 300 ms and does not ack: `a`, which
    // keeps fetching, takes it back once that runs out.
    let lease = Duration::from_millis(300);
    let took = Instant::now();
    assert!(a.fetch(1, Duration::ZERO, lease).unwrap().is_empty());
    let again = a.fetch(1, Duration::from_secs(5), lease).unwrap();
    assert_eq!(again.len(), 1, "the expired lease was never reclaimed");
    assert_eq!((again[0].id, again[0].attempt), (back[0].id, 3));
    assert!(
        took.elapsed() >= Duration::from_millis(250),
        "reclaimed early"
    );
    // The stale holder's ack does not count; the new holder's counts once.
    assert!(
        !other
            .ack_with_result(back[0].id, "c1", b"stale", TTL)
            .unwrap()
    );
    assert!(a.ack_with_result(again[0].id, "c1", b"ok", TTL).unwrap());
    assert!(!a.ack_with_result(again[0].id, "c1", b"twice", TTL).unwrap());
    let c = b.counts().unwrap();
    assert_eq!((c.unfinished, c.in_flight, c.queued), (0, 0, 0), "{c:?}");
}

/// A batch of acks checks the holder of each entry from one listing of
/// the consumer's own pending entries between the batch's lowest and
/// highest id; one it holds past the listing's limit is checked alone,
/// and one another consumer holds is stale, as it always was.
#[test]
fn batch_acks_past_the_listing_limit_check_the_rest_alone() {
    let s = RedisServer::start();
    let b = s.broker();
    let mut ids = put_and_fetch(&b, 100);
    ids.push(b.put(&[100], 3, "c1", b"", TTL).unwrap());
    let other = b.consumer();
    assert_eq!(fetch_one(&*other, LONG).id, ids[100]);
    // The listing (four acks: limit 2 × 4 + 64 = 72) holds ids[0..72] only.
    let counted = b
        .send_batch(&[
            ack(ids[0], b"first"),
            ack(ids[100], b"not mine"),
            ack(ids[99], b"last"),
            ack(ids[99], b"again"),
        ])
        .unwrap();
    assert_eq!(counted, vec![true, false, true, false]);
    let c = b.counts().unwrap();
    assert_eq!(
        (c.unfinished, c.in_flight, c.stale_acks),
        (99, 99, 2),
        "{c:?}"
    );
    let mut results = Vec::new();
    let since = Instant::now();
    while results.len() < 2 {
        results.extend(b.results("c1", 10, Duration::from_millis(50)).unwrap());
        assert!(since.elapsed() < LONG, "results never came: {results:?}");
    }
    assert_eq!(results, vec![b"first".to_vec(), b"last".to_vec()]);
    // The entry the other consumer holds is still its to ack.
    assert!(
        other
            .ack_with_result(ids[100], "c1", b"its own", TTL)
            .unwrap()
    );
}

/// The acks carry each fetched entry's `put` flag: a batch acking a
/// `put` entry and one added by hand takes only the first off
/// `unfinished` (never below 0), and a duplicate counts nowhere.
#[test]
fn batch_acks_count_put_entries_only_once() {
    let s = RedisServer::start();
    let b = s.broker();
    b.put(b"counted", 3, "c1", b"", TTL).unwrap();
    raw_xadd(&s, b"by hand");
    b.put(b"single", 3, "c1", b"", TTL).unwrap();
    let mut got = Vec::new();
    while got.len() < 3 {
        got.extend(b.fetch(3, SHORT, LONG).unwrap());
    }
    assert_eq!(b.counts().unwrap().unfinished, 2);
    let counted = b
        .send_batch(&[
            ack(got[0].id, b"r0"),
            ack(got[1].id, b"r1"),
            ack(got[0].id, b"again"),
        ])
        .unwrap();
    assert_eq!(counted, vec![true, true, false]);
    assert_eq!(b.counts().unwrap().unfinished, 1);
    assert!(b.ack_with_result(got[2].id, "c1", b"r2", TTL).unwrap());
    assert!(
        !b.ack_with_result(got[1].id, "c1", b"r1 again", TTL)
            .unwrap()
    );
    let c = b.counts().unwrap();
    assert_eq!(
        (c.unfinished, c.in_flight, c.stale_acks),
        (0, 0, 2),
        "{c:?}"
    );
}
