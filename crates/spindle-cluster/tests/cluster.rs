//! `spindle-cluster` on the embedded broker (a manager server in this
//! process): the executor conformance suite, tasks that cannot run
//! (dead-lettered at once), workers that die (redelivered), a broker that
//! is gone (unavailable).

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::{self};
use std::time::{Duration, Instant};

use serde_bytes::ByteBuf;
use spindle::futures::{Executor, FutureError};
use spindle::manager::{BaseManager, BrokerProxy, Server, Typeid};
use spindle_cluster::{Broker, ClusterExecutor, EmbeddedBroker, TaskOptions};
use spindle_conformance::executor::Work;
use spindle_conformance::executor::tasks::run_work;

mod common;

use common::{Backend, BrokerAt, LONG, LocalCluster, Workers, job_of, wait_running, worker_child};

const KEY: &[u8] = b"cluster-tests-key-0123456789abcdef";

fn server() -> Server {
    BaseManager::builder()
        .register("tasks", Typeid::broker())
        .bind("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .authkey(KEY)
        .spawn()
        .unwrap()
}

/// How a worker process reaches the broker on `s`.
fn at(s: &Server) -> BrokerAt {
    BrokerAt::Embedded {
        address: s.address().to_string(),
        key: KEY.to_vec(),
        name: "tasks".into(),
    }
}

fn broker(s: &Server) -> EmbeddedBroker {
    EmbeddedBroker::connect(s.address().clone(), KEY, "tasks").unwrap()
}

impl Backend for Server {
    type Broker = EmbeddedBroker;
    fn start() -> (Server, EmbeddedBroker) {
        let s = server();
        let b = broker(&s);
        (s, b)
    }
}

mod conformance {
    spindle_conformance::executor_suite!(super::LocalCluster<spindle::manager::Server>);
}

#[spindle::task]
fn square(x: u64) -> u64 {
    x * x
}

fn raw_put(s: &Server, bytes: Vec<u8>) {
    let m = s.connect().unwrap();
    let b: BrokerProxy<ByteBuf> = m.get("tasks").unwrap();
    b.put(&ByteBuf::from(bytes)).unwrap();
}

/// Waits for `n` dead letters; their reasons.
fn dead_reasons(s: &Server, n: usize) -> Vec<String> {
    let m = s.connect().unwrap();
    let b: BrokerProxy<ByteBuf> = m.get("tasks").unwrap();
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

#[test]
fn unknown_task_dead_lettered() {
    let s = server();
    let w = Workers::start(&broker(&s), 1, TaskOptions::default());
    raw_put(
        &s,
        job_of("no::such::task", 1, rmp_serde::to_vec(&(1u64,)).unwrap()),
    );
    let reasons = dead_reasons(&s, 1);
    assert!(reasons[0].contains("no::such::task"), "{reasons:?}");
    assert_eq!(w.stop().dead_lettered, 1);
}

#[test]
fn signature_mismatch_dead_lettered() {
    use spindle::process::Task as _;
    let s = server();
    let w = Workers::start(&broker(&s), 1, TaskOptions::default());
    let wrong = square::SIGNATURE ^ 1;
    raw_put(
        &s,
        job_of(square::NAME, wrong, rmp_serde::to_vec(&(3u64,)).unwrap()),
    );
    let reasons = dead_reasons(&s, 1);
    assert!(reasons[0].contains("signature"), "{reasons:?}");
    assert_eq!(w.stop().dead_lettered, 1);
}

#[test]
fn garbage_entry_dead_lettered() {
    let s = server();
    let w = Workers::start(&broker(&s), 1, TaskOptions::default());
    raw_put(&s, b"\xc1 not MessagePack".to_vec());
    let reasons = dead_reasons(&s, 1);
    assert!(reasons[0].contains("not a job entry"), "{reasons:?}");
    // The worker goes on: a good task after it runs.
    let ex = ClusterExecutor::builder(Arc::new(broker(&s))).build();
    assert_eq!(ex.submit(square::call(7)).unwrap().result(), Ok(49));
    let stats = w.stop();
    assert_eq!((stats.dead_lettered, stats.done), (1, 1));
}

#[test]
fn broker_down_submit_unavailable() {
    let s = server();
    let ex = ClusterExecutor::builder(Arc::new(broker(&s))).build();
    s.stop().unwrap();
    let f = ex.submit(square::call(2)).unwrap();
    let e = f.result().unwrap_err();
    assert!(e.is_unavailable(), "{e:?}");
}

#[test]
fn a_killed_workers_task_goes_to_another_worker() {
    let s = server();
    let b = broker(&s);
    let options = TaskOptions {
        lease: Duration::from_millis(300),
        ..TaskOptions::default()
    };
    let ex = ClusterExecutor::builder(Arc::new(b.clone()))
        .options(options)
        .build();
    let gate = spindle_conformance::executor::Gate::new().unwrap();
    let f = ex.submit(run_work::call(gate.work(7))).unwrap();
    let mut doomed = worker_child(&at(&s), 1, options);
    wait_running(&f);
    doomed.kill().unwrap();
    let _ = doomed.join_timeout(LONG);
    gate.open();
    let w = Workers::start(&b, 1, options);
    assert_eq!(f.result_timeout(LONG), Ok(7));
    let counts = b.counts().unwrap();
    assert!(counts.expired >= 1, "{counts:?}");
    assert_eq!(w.stop().done, 1);
}

#[test]
fn a_task_whose_workers_keep_dying_fails_with_worker_lost() {
    let s = server();
    let b = broker(&s);
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
    let mut doomed = worker_child(&at(&s), 1, options);
    wait_running(&f);
    doomed.kill().unwrap();
    let _ = doomed.join_timeout(LONG);
    gate.open();
    let e = f.result_timeout(LONG).unwrap_err();
    assert!(matches!(e, FutureError::WorkerLost(_)), "{e:?}");
    assert_eq!(b.counts().unwrap().dead_total, 1);
}

#[test]
fn dead_letters_retried_and_purged() {
    common::check_retry_and_purge_dead(&broker(&server()));
}

#[test]
fn join_waits_for_acks_dead_letters_and_cancels() {
    common::check_join(&broker(&server()));
}

#[test]
fn nack_delays_redelivery() {
    let s = server();
    let b = broker(&s);
    common::check_nack_delay(&b);
    let m = s.connect().unwrap();
    let proxy: BrokerProxy<ByteBuf> = m.get("tasks").unwrap();
    assert!(proxy.join_timeout(LONG).unwrap(), "join returns");
}

#[test]
fn nack_zero_tail_last_delivery_dead_delayed_cancel() {
    let s = server();
    let b = broker(&s);
    common::check_nack_tail_dead_cancel(&b);
    let m = s.connect().unwrap();
    let proxy: BrokerProxy<ByteBuf> = m.get("tasks").unwrap();
    assert!(proxy.join_timeout(LONG).unwrap(), "join returns");
}

#[test]
fn submit_with_retries_backs_off_then_succeeds_or_fails() {
    common::check_retries(&broker(&server()), "embedded");
}

#[test]
fn submit_with_timeout_gives_the_task_up() {
    common::check_timeout(&broker(&server()));
}

#[test]
fn submit_with_bad_options_refused() {
    common::check_bad_options(&broker(&server()));
}

/// A fresh embedded cluster queue of `maxsize` on its own server.
fn served_queue(maxsize: usize) -> common::ServedQueue<Server> {
    use spindle_cluster::Queue;
    let s = BaseManager::builder()
        .register("q", Typeid::bounded_queue(maxsize))
        .bind("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .authkey(KEY)
        .spawn()
        .unwrap();
    let q = Queue::embedded(s.address().clone(), KEY, "q").unwrap();
    common::ServedQueue { q, _server: s }
}

/// The FIFO queue suite on the embedded `Queue`, which hands every call to
/// the manager's `QueueProxy`. Two checks are left out here because they
/// only measure that proxy under load (4 producers and 4 consumers moving
/// 20,000 items; 10 threads around a shutdown), about 6 s each in a debug
/// build: they run on the very same proxy in the conformance crate's
/// `tests/manager_queue.rs`, and on the Redis `Queue` in `tests/redis.rs`.
mod queue_conformance {
    use spindle_conformance::queue::ExpectedOrder;
    spindle_conformance::queue_suite!(@tests ExpectedOrder::Fifo, super::served_queue;
        basic, nowait, task_done_too_many, join_with_consumers,
        shutdown_empty, shutdown_nonempty, shutdown_allowed_transitions,
        shutdown_all_methods_in_one_thread, shutdown_get, shutdown_put, shutdown_join,
        shutdown_put_join, shutdown_get_task_done_join, shutdown_pending_get);
}

#[test]
fn queue_receipts_and_a_lost_server() {
    use spindle::queue::BlockingQueue;
    let sq = served_queue(0);
    let q = &sq.q;
    q.put(1).unwrap();
    let (one, r) = q.get_with_receipt().unwrap();
    assert_eq!(one, 1);
    assert!(q.join_timeout(Duration::from_millis(50)).is_err());
    assert!(q.ack(&r).unwrap());
    q.join_timeout(LONG).unwrap();
    assert!(!q.ack(&r).unwrap(), "nothing left to mark done");
    sq._server.stop().unwrap();
    assert_eq!(q.get(), Err(spindle::queue::ShutDown));
    assert_eq!(q.put(2).map_err(|e| e.into_inner()), Err(2));
}

#[test]
fn a_dead_workers_timed_task_comes_back_after_its_timeout() {
    let s = server();
    common::check_timed_task_of_a_dead_worker(&broker(&s), &at(&s));
}

#[test]
fn status_counts_a_known_workload() {
    let s = server();
    common::status_counts_a_known_workload(&broker(&s));
}

#[test]
fn status_drops_a_killed_worker() {
    let s = server();
    common::status_drops_a_killed_worker(&broker(&s), &at(&s));
}

/// Aborts its process on its first run (it makes the marker file), and
/// returns `x` on the next.
#[spindle::task]
fn abort_once(marker: std::path::PathBuf, x: u64) -> u64 {
    if std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&marker)
        .is_ok()
    {
        std::process::abort();
    }
    x
}

/// Aborts its process, every time.
#[spindle::task]
fn always_abort() -> u64 {
    std::process::abort()
}

/// In processes mode a task that crashes its process does not take the
/// worker down: it is `WorkerLost` on the local pool, the entry is left
/// unacknowledged and delivered again (here it succeeds the second time);
/// a task that always crashes is given up after `max_deliveries` and its
/// caller gets `WorkerLost`.
#[test]
fn processes_mode_a_crashed_task_is_retried_then_worker_lost() {
    use spindle_cluster::{Worker, WorkerMode};
    use std::sync::atomic::{AtomicBool, Ordering};
    let s = server();
    let b = broker(&s);
    let options = TaskOptions {
        lease: Duration::from_millis(300),
        max_deliveries: 2,
        ..TaskOptions::default()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let (b, stop) = (b.clone(), stop.clone());
        thread::spawn(move || {
            Worker::new(&b)
                .options(options)
                .mode(WorkerMode::Processes)
                .run(&stop)
                .unwrap()
        })
    };
    let ex = ClusterExecutor::builder(Arc::new(b.clone()))
        .options(options)
        .build();
    let marker = std::env::temp_dir().join(format!(
        "spindle-cluster-abort-once-{}-{:?}",
        std::process::id(),
        Instant::now()
    ));
    let _ = std::fs::remove_file(&marker);
    let once = ex.submit(abort_once::call(marker.clone(), 7)).unwrap();
    assert_eq!(once.result_timeout(LONG), Ok(7));
    let _ = std::fs::remove_file(&marker);
    let e = ex
        .submit(always_abort::call())
        .unwrap()
        .result_timeout(LONG)
        .unwrap_err();
    assert!(matches!(e, FutureError::WorkerLost(_)), "{e:?}");
    stop.store(true, Ordering::SeqCst);
    let stats = worker.join().unwrap();
    // One crash of abort_once, two of always_abort (max_deliveries 2).
    assert_eq!((stats.done, stats.crashed), (1, 3), "{stats:?}");
    let c = b.counts().unwrap();
    assert_eq!((c.dead_total, c.unfinished), (1, 0), "{c:?}");
}

#[test]
fn prefetch_window_leases_extended_drain_gives_back() {
    common::check_prefetch_window(&broker(&server()));
}

#[test]
fn a_killed_workers_prefetched_tasks_are_redelivered() {
    let s = server();
    common::check_killed_workers_prefetched_redelivered(&broker(&s), &at(&s));
}

#[test]
fn send_batch_acks_count_once() {
    common::check_send_batch(&broker(&server()));
}

#[test]
fn put_batch_puts_in_order_with_each_entrys_options() {
    common::check_put_batch(&broker(&server()));
}

/// The `Broker` methods a test broker passes to its `inner` broker as
/// they are (all but the puts, `send_batch` and `consumer`, which each
/// test broker writes itself).
macro_rules! forward_to_inner {
    () => {
        fn fetch(
            &self,
            n: usize,
            wait: Duration,
            lease: Duration,
        ) -> Result<Vec<spindle_cluster::Fetched>, spindle_cluster::BrokerError> {
            self.inner.fetch(n, wait, lease)
        }
        fn ack_with_result(
            &self,
            id: u64,
            client: &str,
            result: &[u8],
            ttl: Duration,
        ) -> Result<bool, spindle_cluster::BrokerError> {
            self.inner.ack_with_result(id, client, result, ttl)
        }
        fn dead_letter(
            &self,
            id: u64,
            reason: &str,
            client: Option<(&str, &[u8])>,
            ttl: Duration,
        ) -> Result<bool, spindle_cluster::BrokerError> {
            self.inner.dead_letter(id, reason, client, ttl)
        }
        fn nack(&self, id: u64, delay: Duration) -> Result<bool, spindle_cluster::BrokerError> {
            self.inner.nack(id, delay)
        }
        fn notify(
            &self,
            client: &str,
            message: &[u8],
            ttl: Duration,
        ) -> Result<(), spindle_cluster::BrokerError> {
            self.inner.notify(client, message, ttl)
        }
        fn results(
            &self,
            client: &str,
            max: usize,
            wait: Duration,
        ) -> Result<Vec<Vec<u8>>, spindle_cluster::BrokerError> {
            self.inner.results(client, max, wait)
        }
        fn extend(
            &self,
            ids: &[u64],
            lease: Duration,
        ) -> Result<usize, spindle_cluster::BrokerError> {
            self.inner.extend(ids, lease)
        }
        fn cancel(&self, id: u64) -> Result<bool, spindle_cluster::BrokerError> {
            self.inner.cancel(id)
        }
        fn counts(&self) -> Result<spindle::manager::BrokerCounts, spindle_cluster::BrokerError> {
            self.inner.counts()
        }
    };
}

/// A broker whose next `fail` calls of `send_batch` fail as a broken link
/// does (`Unavailable`), before reaching the broker it wraps.
#[derive(Debug, Clone)]
struct FlakySends {
    inner: Arc<dyn Broker>,
    fail: Arc<std::sync::atomic::AtomicUsize>,
}

impl Broker for FlakySends {
    fn put_with(
        &self,
        entry: &[u8],
        options: &spindle_cluster::PutOptions<'_>,
    ) -> Result<u64, spindle_cluster::BrokerError> {
        self.inner.put_with(entry, options)
    }
    fn send_batch(
        &self,
        ops: &[spindle_cluster::Outgoing<'_>],
    ) -> Result<Vec<bool>, spindle_cluster::BrokerError> {
        use std::sync::atomic::Ordering;
        let failed = self
            .fail
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failed {
            return Err(spindle_cluster::BrokerError::Unavailable(
                "injected: the link broke".into(),
            ));
        }
        self.inner.send_batch(ops)
    }
    forward_to_inner!();
    fn consumer(&self) -> Arc<dyn Broker> {
        Arc::new(FlakySends {
            inner: self.inner.consumer(),
            fail: self.fail.clone(),
        })
    }
}

/// Acks (and "started" notices) whose send fails on I/O are sent again
/// while the lease lasts: the task's result arrives at once, is recorded
/// once, and the worker counts it done — not stale, left to run again
/// elsewhere when its lease runs out.
#[test]
fn an_ack_sent_while_the_link_is_broken_is_sent_again_and_counts_once() {
    use spindle_cluster::Worker;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let s = server();
    let b = broker(&s);
    let fail = Arc::new(AtomicUsize::new(3));
    let flaky = FlakySends {
        inner: Arc::new(b.clone()),
        fail: fail.clone(),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let stop = stop.clone();
        thread::spawn(move || Worker::new(&flaky).run(&stop).unwrap())
    };
    let ex = ClusterExecutor::builder(Arc::new(b.clone())).build();
    // The default lease (30 s) is far past LONG's wait: without the
    // retries the result would come only after a redelivery.
    let f = ex.submit(run_work::call(Work::Identity(5))).unwrap();
    assert_eq!(f.result_timeout(Duration::from_secs(10)), Ok(5));
    assert_eq!(fail.load(Ordering::SeqCst), 0, "the failures were met");
    stop.store(true, Ordering::SeqCst);
    let stats = worker.join().unwrap();
    assert_eq!((stats.done, stats.stale), (1, 0), "{stats:?}");
    let c = b.counts().unwrap();
    assert_eq!(c.unfinished, 0, "{c:?}");
}

/// A broker that records the size of each `put_batch`, holds every one
/// until [`open`](GatedPuts::open), and fails those from the
/// `fail_from`th on (as a broken link does: `Unavailable`) before they
/// reach the broker it wraps.
#[derive(Debug)]
struct GatedPuts {
    inner: Arc<dyn Broker>,
    state: std::sync::Mutex<(Vec<usize>, bool)>,
    changed: std::sync::Condvar,
    fail_from: usize,
}

impl GatedPuts {
    fn new(inner: Arc<dyn Broker>, fail_from: usize) -> Arc<GatedPuts> {
        Arc::new(GatedPuts {
            inner,
            state: std::sync::Mutex::default(),
            changed: std::sync::Condvar::new(),
            fail_from,
        })
    }

    /// Waits until `n` batches came (each held until `open`).
    fn wait_batches(&self, n: usize) {
        let g = self.state.lock().unwrap();
        let (g, t) = self
            .changed
            .wait_timeout_while(g, LONG, |(sizes, _)| sizes.len() < n)
            .unwrap();
        assert!(!t.timed_out(), "{n} batches never came: {:?}", g.0);
    }

    fn open(&self) {
        self.state.lock().unwrap().1 = true;
        self.changed.notify_all();
    }

    fn sizes(&self) -> Vec<usize> {
        self.state.lock().unwrap().0.clone()
    }
}

impl Broker for GatedPuts {
    fn put_with(
        &self,
        entry: &[u8],
        options: &spindle_cluster::PutOptions<'_>,
    ) -> Result<u64, spindle_cluster::BrokerError> {
        self.put_batch(&[spindle_cluster::PutEntry {
            entry,
            options: *options,
        }])
        .map(|ids| ids[0])
    }
    fn put_batch(
        &self,
        entries: &[spindle_cluster::PutEntry<'_>],
    ) -> Result<Vec<u64>, spindle_cluster::BrokerError> {
        let nth = {
            let mut g = self.state.lock().unwrap();
            g.0.push(entries.len());
            let nth = g.0.len();
            self.changed.notify_all();
            let _g = self.changed.wait_while(g, |(_, open)| !*open).unwrap();
            nth
        };
        if nth >= self.fail_from {
            return Err(spindle_cluster::BrokerError::Unavailable(
                "injected: the link broke".into(),
            ));
        }
        self.inner.put_batch(entries)
    }
    forward_to_inner!();
    fn consumer(&self) -> Arc<dyn Broker> {
        self.inner.consumer()
    }
}

/// The submits made while a batch of puts is on its way go to the broker
/// together, in the next batch (one round trip on Redis), and each
/// future gets its own result.
#[test]
fn submits_made_while_a_put_is_on_its_way_go_in_one_batch() {
    let s = server();
    let b = broker(&s);
    let w = Workers::start(&b, 2, TaskOptions::default());
    let gated = GatedPuts::new(Arc::new(b.clone()), usize::MAX);
    let ex = ClusterExecutor::builder(gated.clone()).build();
    let first = ex.submit(square::call(0)).unwrap();
    gated.wait_batches(1);
    let rest: Vec<_> = (1..=100u64)
        .map(|i| ex.submit(square::call(i)).unwrap())
        .collect();
    gated.open();
    assert_eq!(first.result_timeout(LONG), Ok(0));
    for (i, f) in (1..=100u64).zip(&rest) {
        assert_eq!(f.result_timeout(LONG), Ok(i * i));
    }
    assert_eq!(gated.sizes(), vec![1, 100]);
    assert_eq!(w.stop().done, 101);
}

/// A batch of puts that fails fails each of its futures with
/// `Unavailable`; the batch before it is not touched.
#[test]
fn a_failed_put_batch_fails_every_future_of_the_batch() {
    let s = server();
    let b = broker(&s);
    let w = Workers::start(&b, 2, TaskOptions::default());
    let gated = GatedPuts::new(Arc::new(b.clone()), 2);
    let ex = ClusterExecutor::builder(gated.clone()).build();
    let first = ex.submit(square::call(3)).unwrap();
    gated.wait_batches(1);
    let rest: Vec<_> = (0..10u64)
        .map(|i| ex.submit(square::call(i)).unwrap())
        .collect();
    gated.open();
    assert_eq!(first.result_timeout(LONG), Ok(9));
    for f in &rest {
        let e = f.result_timeout(LONG).unwrap_err();
        assert!(e.is_unavailable(), "{e:?}");
    }
    assert_eq!(gated.sizes(), vec![1, 10]);
    assert_eq!(ex.pending(), 0);
    assert_eq!(b.counts().unwrap().unfinished, 0, "none of them was put");
    assert_eq!(w.stop().done, 1);
}

/// A job whose entry is not put yet (waiting for the sending thread) is
/// cancelled there: `cancel` and `shutdown(cancel_futures)` take it out
/// before it reaches the broker. One whose put is on its way cannot be
/// cancelled by `cancel`; a `shutdown(cancel_futures)` cancels it in the
/// broker once it is put (no worker here to take it first).
#[test]
fn a_job_not_put_yet_is_cancelled_before_it_reaches_the_broker() {
    let s = server();
    let b = broker(&s);
    let gated = GatedPuts::new(Arc::new(b.clone()), usize::MAX);
    let ex = ClusterExecutor::builder(gated.clone()).build();
    let first = ex.submit(square::call(1)).unwrap();
    gated.wait_batches(1);
    let second = ex.submit(square::call(2)).unwrap();
    let third = ex.submit(square::call(3)).unwrap();
    assert!(second.cancel(), "not put yet: cancellable");
    assert!(second.cancelled());
    // The first one's put is on its way: not cancellable.
    assert!(!first.cancel());
    ex.shutdown(false, true);
    assert!(third.cancelled());
    assert!(!first.done(), "on its way: cancelled only once put");
    gated.open();
    assert_eq!(first.result_timeout(LONG), Err(FutureError::Cancelled));
    ex.shutdown(true, false);
    assert_eq!(gated.sizes(), vec![1], "only the first was put");
    let c = b.counts().unwrap();
    assert_eq!((c.queued, c.unfinished), (0, 0), "{c:?}");
}

#[spindle::task]
fn length(v: Vec<u8>) -> u64 {
    v.len() as u64
}

/// Large entries go in smaller batches: at most 4 MiB of entries a batch
/// beyond its first (~1.5 MB each here: two a batch).
#[test]
fn large_entries_are_put_in_smaller_batches() {
    let s = server();
    let b = broker(&s);
    let w = Workers::start(&b, 1, TaskOptions::default());
    let gated = GatedPuts::new(Arc::new(b.clone()), usize::MAX);
    let ex = ClusterExecutor::builder(gated.clone()).build();
    let first = ex.submit(square::call(2)).unwrap();
    gated.wait_batches(1);
    let big: Vec<_> = (0..4)
        .map(|_| ex.submit(length::call(vec![7u8; 1_500_000])).unwrap())
        .collect();
    gated.open();
    assert_eq!(first.result_timeout(LONG), Ok(4));
    for f in &big {
        assert_eq!(f.result_timeout(LONG), Ok(1_500_000));
    }
    assert_eq!(gated.sizes(), vec![1, 2, 2]);
    assert_eq!(w.stop().done, 5);
}
