//! Executors written outside spindle, through the traits that carry
//! spindle's blanket impls (the orphan rule, E0210, forbids writing them
//! here): `CallThreads` implements `process::RemoteExecutor` and so runs
//! `process::Call`s, `map` with `my_task::call`, and `CallChunk`s;
//! `AsyncThreads` implements `futures::FutureExecutor` and so runs any
//! `Send` future. Both are a few dozen lines over one small thread pool, and
//! both pass the whole executor conformance suite.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future as StdFuture;
use std::pin::{Pin, pin};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Wake, Waker};
use std::thread::{self, JoinHandle, Thread};

use spindle::futures::{
    Executor, Future, FutureExecutor, FutureJob, MapFn, SubmitError, Task, fallible,
};
use spindle::process::{CallJob, RemoteExecutor};
use spindle_conformance::executor::{ExecutorUnderTest, Work, tasks::run_work};

/// What the toy pool needs of a job.
trait Job: Send + 'static {
    /// Runs the job to completion on this thread.
    fn run(self);
    /// Cancels the job (`shutdown(cancel_futures=true)`).
    fn cancel(self);
}

impl Job for CallJob {
    fn run(self) {
        self.run_here();
    }
    fn cancel(self) {
        CallJob::cancel(self);
    }
}

/// Wakes a thread parked in [`block_on`].
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

fn block_on(job: impl StdFuture<Output = ()>) {
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut job = pin!(job);
    while job.as_mut().poll(&mut cx).is_pending() {
        thread::park();
    }
}

impl Job for FutureJob {
    fn run(self) {
        block_on(self);
    }
    fn cancel(self) {
        FutureJob::cancel(self);
    }
}

struct Queue<J> {
    jobs: VecDeque<J>,
    closed: bool,
}

/// A fixed pool of threads running jobs of type `J` in submission order.
struct Threads<J> {
    shared: Arc<(Mutex<Queue<J>>, Condvar)>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    max_workers: usize,
}

impl<J: Job> Threads<J> {
    fn new(max_workers: usize) -> Threads<J> {
        let shared = Arc::new((
            Mutex::new(Queue::<J> {
                jobs: VecDeque::new(),
                closed: false,
            }),
            Condvar::new(),
        ));
        let workers = (0..max_workers)
            .map(|_| {
                let shared = shared.clone();
                thread::spawn(move || {
                    loop {
                        let job = {
                            let (queue, cond) = &*shared;
                            let mut q = queue.lock().unwrap();
                            loop {
                                if let Some(job) = q.jobs.pop_front() {
                                    break job;
                                }
                                if q.closed {
                                    return;
                                }
                                q = cond.wait(q).unwrap();
                            }
                        };
                        job.run();
                    }
                })
            })
            .collect();
        Threads {
            shared,
            workers: Mutex::new(workers),
            max_workers,
        }
    }

    fn submit<W, X>(&self, task: W) -> Result<Future<W::Output, W::Error>, SubmitError<W>>
    where
        X: Executor<Job = J>,
        W: Task<X>,
    {
        let (queue, cond) = &*self.shared;
        let mut q = queue.lock().unwrap();
        if q.closed {
            return Err(SubmitError::ShutDown(task));
        }
        let (job, fut) = task.into_job();
        q.jobs.push_back(job);
        cond.notify_one();
        Ok(fut)
    }

    fn shutdown(&self, wait: bool, cancel_futures: bool) {
        let cancelled: Vec<J> = {
            let (queue, cond) = &*self.shared;
            let mut q = queue.lock().unwrap();
            q.closed = true;
            cond.notify_all();
            if cancel_futures {
                q.jobs.drain(..).collect()
            } else {
                Vec::new()
            }
        };
        // Outside the lock: cancelling runs the futures' done-callbacks.
        cancelled.into_iter().for_each(J::cancel);
        if wait {
            let workers = std::mem::take(&mut *self.workers.lock().unwrap());
            for w in workers {
                w.join().ok();
            }
        }
    }
}

/// An executor of registered-task calls (a cluster executor would ship
/// `CallJob::name`/`args` to another host and `complete` the job with the
/// answer; this one runs them on its threads with `run_here`).
struct CallThreads(Threads<CallJob>);

impl Executor for CallThreads {
    type Job = CallJob;

    fn submit<W: Task<Self>>(
        &self,
        task: W,
    ) -> Result<Future<W::Output, W::Error>, SubmitError<W>> {
        self.0.submit::<W, Self>(task)
    }

    fn shutdown(&self, wait: bool, cancel_futures: bool) {
        self.0.shutdown(wait, cancel_futures);
    }

    fn max_workers(&self) -> usize {
        self.0.max_workers
    }
}

impl Drop for CallThreads {
    fn drop(&mut self) {
        self.shutdown(true, false);
    }
}

impl RemoteExecutor for CallThreads {
    fn call_job(job: CallJob) -> CallJob {
        job
    }
}

impl ExecutorUnderTest for CallThreads {
    fn with_workers(max_workers: usize) -> CallThreads {
        CallThreads(Threads::new(max_workers))
    }

    fn task(work: Work) -> impl Task<Self, Output = u64, Error = Infallible> {
        run_work::call(work)
    }

    fn map_fn() -> impl MapFn<Work, Self, Output = u64, Error = Infallible> {
        run_work::call
    }
}

/// An executor of Rust futures, each polled to completion on one of its
/// threads.
struct AsyncThreads(Threads<FutureJob>);

impl Executor for AsyncThreads {
    type Job = FutureJob;

    fn submit<W: Task<Self>>(
        &self,
        task: W,
    ) -> Result<Future<W::Output, W::Error>, SubmitError<W>> {
        self.0.submit::<W, Self>(task)
    }

    fn shutdown(&self, wait: bool, cancel_futures: bool) {
        self.0.shutdown(wait, cancel_futures);
    }

    fn max_workers(&self) -> usize {
        self.0.max_workers
    }
}

impl Drop for AsyncThreads {
    fn drop(&mut self) {
        self.shutdown(true, false);
    }
}

impl FutureExecutor for AsyncThreads {
    fn future_job(job: FutureJob) -> FutureJob {
        job
    }
}

/// `map` on `AsyncThreads`: a chunk is one future doing each item's work.
struct MapWork;

type BoxFuture<T> = Pin<Box<dyn StdFuture<Output = T> + Send>>;

impl MapFn<Work, AsyncThreads> for MapWork {
    type Output = u64;
    type Error = Infallible;
    type Task = BoxFuture<Vec<u64>>;

    fn bind(_: &Arc<MapWork>, chunk: Vec<Work>) -> BoxFuture<Vec<u64>> {
        Box::pin(async move { chunk.into_iter().map(Work::run).collect() })
    }
}

impl ExecutorUnderTest for AsyncThreads {
    fn with_workers(max_workers: usize) -> AsyncThreads {
        AsyncThreads(Threads::new(max_workers))
    }

    fn task(work: Work) -> impl Task<Self, Output = u64, Error = Infallible> {
        async move { work.run() }
    }

    fn map_fn() -> impl MapFn<Work, Self, Output = u64, Error = Infallible> {
        MapWork
    }
}

mod call_threads {
    spindle_conformance::executor_suite!(super::CallThreads);
}

mod async_threads {
    spindle_conformance::executor_suite!(super::AsyncThreads);
}

#[spindle::task]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

/// The blanket impls by hand: `submit` of a `Call`, `map` of
/// `my_task::call`, and of futures, fallible futures included.
#[test]
fn blanket_impls_reach_foreign_executors() {
    let calls = CallThreads::with_workers(2);
    assert_eq!(calls.submit(add::call(2, 3)).unwrap().result(), Ok(5));
    let sums: Vec<u64> = calls
        .map(|n: u64| add::call(n, 1), 0..5)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(sums, [1, 2, 3, 4, 5]);

    let futures = AsyncThreads::with_workers(2);
    assert_eq!(futures.submit(async { 6 * 7 }).unwrap().result(), Ok(42));
    let parsed = futures
        .submit(fallible(async { "x1".parse::<u32>() }))
        .unwrap();
    assert!(parsed.result().unwrap_err().task_error().is_some());
    let parsed = futures
        .submit(fallible(async { "41".parse::<u32>() }))
        .unwrap();
    assert_eq!(parsed.result(), Ok(41));
}

/// A `CallJob` completed with outcomes from elsewhere (as a cluster
/// executor would): a result decodes; a panic message and a missing answer
/// fail the future.
#[test]
fn call_job_completes_from_remote_outcomes() {
    let (job, fut) = CallJob::of(add::call(20, 22));
    assert_eq!(job.args().len(), 1);
    assert!(job.encode_error().is_none());
    let mut job = job;
    assert!(job.set_running_or_notify_cancel());
    assert!(fut.running());
    // A worker answers with the postcard encoding of the task's result.
    job.complete(vec![Ok(postcard::to_allocvec(&42u64).unwrap())]);
    assert_eq!(fut.result(), Ok(42));

    let (job, fut) = CallJob::of(add::call(1, 1));
    job.complete(vec![Err("remote panic".into())]);
    assert_eq!(
        fut.result().unwrap_err().panic_message(),
        Some("remote panic")
    );

    for outcomes in [Vec::new(), vec![Ok(vec![2]), Ok(vec![2])]] {
        let (job, fut) = CallJob::of(add::call(1, 1));
        job.complete(outcomes);
        let err = fut.result().unwrap_err();
        assert!(
            err.panic_message()
                .unwrap()
                .contains("outcomes came back for 1 calls"),
            "{err:?}"
        );
    }

    let (job, fut) = CallJob::of(add::call(1, 1));
    job.complete(vec![Ok(Vec::new())]); // not a u64
    assert!(
        fut.result()
            .unwrap_err()
            .panic_message()
            .unwrap()
            .contains("decoded")
    );

    let (job, fut) = CallJob::of(add::call(1, 1));
    drop(job);
    assert!(fut.result().unwrap_err().is_broken());

    let (job, fut) = CallJob::of(add::call(1, 1));
    assert!(fut.cancel());
    job.run_here(); // skipped: cancelled while queued
    assert!(fut.cancelled());
}

/// A `FutureJob` dropped unpolled, failed, or polled after its future was
/// cancelled: no waiter hangs, and a cancelled task never runs.
#[test]
fn future_job_edges() {
    let (job, fut) = FutureJob::new(async { 1 });
    drop(job);
    assert!(fut.result().unwrap_err().is_broken());

    let (job, fut) = FutureJob::new(async { 1 });
    job.fail_broken(spindle::futures::BrokenPool::new("gone"));
    assert_eq!(
        fut.result().unwrap_err().to_string(),
        "the pool is broken: gone"
    );

    let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = ran.clone();
    let (job, fut) = FutureJob::new(async move {
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    assert!(fut.cancel());
    block_on(job);
    assert!(fut.cancelled());
    assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));

    let (job, fut) = FutureJob::new(async { 1 });
    job.cancel();
    assert_eq!(fut.result(), Err(spindle::futures::FutureError::Cancelled));
}
