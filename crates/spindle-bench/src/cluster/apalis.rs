//! The `apalis` contender of the Redis cases (cargo feature `apalis`, off by
//! default: CI does not compile it): apalis 1.0 with apalis-redis 1.0, the
//! Rust peer of a task queue on Redis, doing the same task (`square`) on
//! the same private `redis-server` as spindle's `RedisBroker`.
//!
//! Set up as close to spindle's side as apalis allows:
//! - two worker processes (forked), each a multi-thread tokio runtime with
//!   one apalis worker, `parallelize(tokio::spawn)` and `concurrency(2)`,
//!   as spindle's two workers of two threads;
//! - results kept (`persist_results`, apalis's default), and the submitter
//!   learns of each finished task from apalis's own `tasks:<queue>:done`
//!   publication, one `PUBLISH` per task, as spindle's submitter reads its
//!   result stream;
//! - apalis-redis 1.0.0 puts every pushed task in its scheduled set (a
//!   task's `run_at` is at least "now") and moves due tasks to the active
//!   list only when a worker fetches; an idle worker fetches when it is
//!   woken, so without a poll interval a task waits for the next wake-up
//!   (~150-300 ms measured). The workers poll every millisecond
//!   (`poll_with_interval`), the setting a user who wants latency picks;
//! - the fetch script `unpack`s every due scheduled id in one Lua call,
//!   which fails past Lua's stack limit (about 8,000: "too many results to
//!   unpack", and the worker's stream ends), so the throughput case keeps
//!   at most 4,000 tasks not yet done, pushing in batches of 500
//!   (`push_bulk`).
//!
//! Each sample starts its two workers on a fresh queue name and waits for
//! both to register before the clock starts, and stops them after, so
//! their 1 ms polling never runs beside spindle's samples.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use apalis::prelude::*;
use apalis_redis::{Config, RedisStorage};
use spindle::process::{Process, StartMethod};

/// Tasks not yet done that the throughput case allows (see the module doc).
const BACKLOG: u64 = 4_000;
/// Tasks per `push_bulk`.
const BATCH: u64 = 500;

async fn square(x: u64) -> Result<u64, BoxDynError> {
    Ok(x.wrapping_mul(x))
}

/// One apalis worker process on `queue`: runs until killed.
fn worker(url: &str, queue: &str) {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("apalis worker: no runtime: {e}");
            std::process::exit(1);
        }
    };
    let r = rt.block_on(async {
        let conn = apalis_redis::connect(url).await?;
        let storage = RedisStorage::new(conn)
            .with_config(Config::default().queue(queue))
            .poll_with_interval(Duration::from_millis(1));
        let w = WorkerBuilder::new(format!("apalis-{}", std::process::id()))
            .backend(storage)
            .parallelize(tokio::spawn)
            .concurrency(2)
            .build(square);
        w.run()
            .await
            .map_err(|e| -> BoxDynError { e.to_string().into() })
    });
    if let Err(e) = r {
        eprintln!("apalis worker: {e}");
        std::process::exit(1);
    }
}

/// The submitting side of one sample: two workers, a storage to push to,
/// and a thread reading the queue's "done" publications (one message per
/// finished task, handed over on `done`).
struct Sample {
    rt: tokio::runtime::Runtime,
    storage: RedisStorage<u64>,
    done: mpsc::Receiver<()>,
    stop: Arc<AtomicBool>,
    reader: Option<std::thread::JoinHandle<()>>,
    workers: Vec<Process>,
}

impl Sample {
    fn start(url: &str, queue: &str) -> Result<Sample, String> {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let mut plain = client.get_connection().map_err(|e| e.to_string())?;
        let mut sub = client.get_connection().map_err(|e| e.to_string())?;
        let (tx, done) = mpsc::channel();
        let (ready_tx, ready) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let channel = format!("tasks:{queue}:done");
        let halt = Arc::clone(&stop);
        let reader = std::thread::spawn(move || {
            let mut ps = sub.as_pubsub();
            let subscribed = ps
                .subscribe(&channel)
                .and_then(|()| ps.set_read_timeout(Some(Duration::from_millis(100))));
            let _ = ready_tx.send(subscribed.map_err(|e| e.to_string()));
            while !halt.load(Ordering::Relaxed) {
                match ps.get_message() {
                    Ok(_) => {
                        if tx.send(()).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.is_timeout() => {}
                    Err(_) => return,
                }
            }
        });
        ready
            .recv()
            .map_err(|_| "the subscriber thread ended".to_string())??;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let storage = rt.block_on(async {
            let conn = apalis_redis::connect(url)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(RedisStorage::new(conn).with_config(Config::default().queue(queue)))
        })?;
        let workers = (0..2)
            .map(|_| {
                let (url, queue) = (url.to_owned(), queue.to_owned());
                Process::builder()
                    .closure(move || worker(&url, &queue))
                    .start_method(StartMethod::Fork)
                    .start()
                    .map_err(|e| format!("start an apalis worker: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let s = Sample {
            rt,
            storage,
            done,
            stop,
            reader: Some(reader),
            workers,
        };
        // Both workers in apalis's worker set before the clock starts.
        let since = Instant::now();
        loop {
            let n: u64 = redis::cmd("ZCARD")
                .arg(format!("{queue}:workers"))
                .query(&mut plain)
                .map_err(|e| e.to_string())?;
            if n >= 2 {
                return Ok(s);
            }
            if s.workers.iter().any(|w| !w.is_alive()) {
                return Err("an apalis worker exited before registering".into());
            }
            if since.elapsed() > Duration::from_secs(30) {
                return Err("the apalis workers never registered".into());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for one task's "done" publication.
    fn one_done(&self) -> Result<(), String> {
        match self.done.recv_timeout(Duration::from_secs(30)) {
            Ok(()) => Ok(()),
            Err(_) => Err(if self.workers.iter().any(|w| !w.is_alive()) {
                "an apalis worker died (its stream ended)".into()
            } else {
                "no task finished for 30 s".into()
            }),
        }
    }

    fn push(&mut self, tasks: Vec<u64>) -> Result<(), String> {
        let storage = &mut self.storage;
        self.rt
            .block_on(async { storage.push_bulk(tasks).await })
            .map_err(|e| format!("apalis push: {e}"))
    }
}

impl Drop for Sample {
    fn drop(&mut self) {
        for w in &mut self.workers {
            let _ = w.kill();
            let _ = w.join();
        }
        self.stop.store(true, Ordering::Relaxed);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

/// A fresh queue name per sample (no task or worker left from another).
fn queue_name() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "bench-apalis-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// One task at a time: push it, wait until it is done. Tasks per second.
pub(super) fn roundtrip(url: &str, n: u64) -> Result<f64, String> {
    let mut s = Sample::start(url, &queue_name())?;
    let t = Instant::now();
    for i in 0..n {
        s.push(vec![i])?;
        s.one_done()?;
    }
    Ok(n as f64 / t.elapsed().as_secs_f64())
}

/// `n` tasks pushed in batches of [`BATCH`], at most [`BACKLOG`] not yet
/// done. Tasks per second.
pub(super) fn throughput(url: &str, n: u64) -> Result<f64, String> {
    let mut s = Sample::start(url, &queue_name())?;
    let t = Instant::now();
    let (mut pushed, mut done) = (0u64, 0u64);
    while pushed < n {
        while pushed - done >= BACKLOG {
            s.one_done()?;
            done += 1;
        }
        let end = (pushed + BATCH).min(n);
        s.push((pushed..end).collect())?;
        pushed = end;
    }
    while done < n {
        s.one_done()?;
        done += 1;
    }
    Ok(n as f64 / t.elapsed().as_secs_f64())
}
