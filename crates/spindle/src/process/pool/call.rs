//! [`Call`]: a typed call of a registered task — what the process pools run —
//! and how it becomes a job of either executor.
#![forbid(unsafe_code)]

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use super::job::{self, Failure, Job, PromiseSink, Sink};
use super::wire::{self, ItemOutcome};
use crate::futures::{
    BrokenPool, Executor, Future, MapFn, Promise, Task, ThreadJob, ThreadPoolExecutor, WorkerLost,
};
use crate::process::{self, TaskCall};

/// A call of the task `T` with its arguments, typed by the task's result:
/// what [`submit`](crate::futures::Executor::submit) on a [`ProcessPoolExecutor`](super::ProcessPoolExecutor) and [`Pool::apply_async`](super::Pool::apply_async)
/// run (Python: the `fn, *args` given to `submit` / `apply_async`), and what
/// [`Process::new`](crate::process::Process::new) starts (as a [`TaskCall`]).
///
/// Built by the `my_task::call(args..)` function that `#[spindle::task]`
/// generates. A [`ThreadPoolExecutor`] accepts the same calls (and runs them
/// in-process without encoding), so code written with calls switches from
/// threads to processes by changing the executor's constructor.
///
/// # Examples
///
/// ```
/// use spindle::futures::{Executor, ThreadPoolExecutor};
/// use spindle::process::ProcessPoolExecutor;
///
/// #[spindle::task]
/// fn cube(n: u64) -> u64 {
///     n * n * n
/// }
///
/// let threads = ThreadPoolExecutor::new();
/// assert_eq!(threads.submit(cube::call(3)).unwrap().result(), Ok(27));
/// let procs = ProcessPoolExecutor::builder().max_workers(1).build()?;
/// assert_eq!(procs.submit(cube::call(3)).unwrap().result(), Ok(27));
/// # Ok::<(), spindle::process::PoolError>(())
/// ```
pub struct Call<T: process::Task> {
    args: T::Args,
    _task: PhantomData<fn() -> T>,
}

impl<T: process::Task> Call<T> {
    /// A call of `T` with `args` (the tuple of its arguments); prefer the
    /// generated `my_task::call(args..)`.
    pub fn new(args: T::Args) -> Call<T> {
        Call {
            args,
            _task: PhantomData,
        }
    }

    /// The task's stable name.
    pub fn name(&self) -> &'static str {
        T::NAME
    }

    /// The arguments.
    pub fn args(&self) -> &T::Args {
        &self.args
    }

    /// The arguments, consuming the call.
    pub fn into_args(self) -> T::Args {
        self.args
    }

    /// Runs the task here, in this process.
    pub fn run(self) -> T::Output {
        T::run(self.args)
    }

    /// The untyped form, for [`Process`](crate::process::Process).
    pub fn into_task_call(self) -> TaskCall {
        TaskCall::new::<T>(&self.args)
    }

    /// The encoded arguments, or why they cannot be encoded.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, String> {
        job::encode(&self.args)
    }
}

impl<T: process::Task> From<Call<T>> for TaskCall {
    fn from(call: Call<T>) -> TaskCall {
        call.into_task_call()
    }
}

impl<T: process::Task> fmt::Debug for Call<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("task", &T::NAME)
            .finish_non_exhaustive()
    }
}

impl<T: process::Task> Clone for Call<T>
where
    T::Args: Clone,
{
    fn clone(&self) -> Self {
        Call::new(self.args.clone())
    }
}

/// The job a [`ProcessPoolExecutor`](super::ProcessPoolExecutor) queues: the
/// task's name, the encoded arguments of one call or of a `map` chunk, and the
/// promise of its future.
pub struct ProcessJob(pub(crate) Job);

impl fmt::Debug for ProcessJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An executor that runs calls of registered tasks — [`Call`](crate::process::Call)s
/// built by `my_task::call(args..)` — wherever its workers are: other
/// processes, other hosts. Python: an executor whose "function and arguments
/// must be picklable".
///
/// Implementing it is all an executor needs to accept calls: spindle's
/// blanket impls make every `Call<T>` a [`Task<Self>`](Task), every
/// `map` chunk of calls ([`CallChunk`](crate::process::CallChunk)) one too,
/// and every `Fn(A) -> Call<T>` (the generated `my_task::call`) a
/// [`MapFn<A, Self>`](crate::futures::MapFn). Each becomes a [`CallJob`]: the task's
/// name and encoded arguments, which the executor ships to a worker and
/// completes with what comes back ([`CallJob::complete`]), or runs in this
/// process ([`CallJob::run_here`]). [`ProcessPoolExecutor`](crate::process::ProcessPoolExecutor)
/// implements it.
///
/// # Examples
///
/// An executor of our own that runs each call at once, on the submitting
/// thread:
///
/// ```
/// use spindle::futures::{Executor, Future, SubmitError, Task};
/// use spindle::process::{CallJob, RemoteExecutor};
///
/// #[derive(Debug)]
/// struct Inline;
///
/// impl Executor for Inline {
///     type Job = CallJob;
///     fn submit<W: Task<Self>>(
///         &self,
///         task: W,
///     ) -> Result<Future<W::Output, W::Error>, SubmitError<W>> {
///         let (job, fut) = task.into_job();
///         job.run_here();
///         Ok(fut)
///     }
///     fn shutdown(&self, _wait: bool, _cancel_futures: bool) {}
///     fn max_workers(&self) -> usize {
///         1
///     }
/// }
///
/// impl RemoteExecutor for Inline {
///     fn call_job(job: CallJob) -> CallJob {
///         job
///     }
/// }
///
/// #[spindle::task]
/// fn double(n: u64) -> u64 {
///     n * 2
/// }
///
/// assert_eq!(Inline.submit(double::call(21)).unwrap().result(), Ok(42));
/// let doubled: Vec<u64> = Inline
///     .map(double::call, [1, 2, 3])
///     .unwrap()
///     .map(Result::unwrap)
///     .collect();
/// assert_eq!(doubled, [2, 4, 6]);
/// ```
pub trait RemoteExecutor: Executor {
    /// This executor's job for `job`: one call, or a `map` chunk of calls,
    /// of one registered task.
    fn call_job(job: CallJob) -> Self::Job;
}

/// The common job of every [`RemoteExecutor`]: one [`Call`], or a `map`
/// chunk of calls, of one registered task — its stable name and the
/// postcard-encoded arguments of each call — and the promise of the
/// [`Future`] they complete.
///
/// A `RemoteExecutor` turns it into its own job
/// ([`RemoteExecutor::call_job`]). To run it, ship [`name`](Self::name) and
/// [`args`](Self::args) to a worker of the same program (the name means the
/// same function in every build of it), mark the future running with
/// [`set_running_or_notify_cancel`](Self::set_running_or_notify_cancel)
/// (skip the job if that says it was cancelled), and complete it with the
/// outcomes that come back ([`complete`](Self::complete)); or run it in
/// this process with [`run_here`](Self::run_here). A job dropped without an
/// outcome fails its future with
/// [`FutureError::BrokenPool`](crate::futures::FutureError::BrokenPool): no
/// waiter hangs.
///
/// # Examples
///
/// ```
/// use spindle::process::CallJob;
///
/// #[spindle::task]
/// fn add(a: u64, b: u64) -> u64 {
///     a + b
/// }
///
/// // What `submit` on a RemoteExecutor makes of a call:
/// let (job, fut) = CallJob::of(add::call(2, 3));
/// assert!(job.name().ends_with("::add"));
/// assert_eq!(job.args().len(), 1); // one call
/// job.run_here();
/// assert_eq!(fut.result(), Ok(5));
/// ```
pub struct CallJob(pub(crate) Job);

impl CallJob {
    /// The job of one call, and the future it completes: what `submit` of a
    /// [`RemoteExecutor`] hands to [`RemoteExecutor::call_job`].
    pub fn of<T>(call: Call<T>) -> (CallJob, Future<T::Output>)
    where
        T: process::Task,
        T::Output: Send + 'static,
    {
        let (promise, fut) = Promise::new();
        let job = job_of(std::slice::from_ref(&call), promise, job::decode_one);
        (CallJob(job), fut)
    }

    /// The registered task's stable name (`module::path::fn_name`).
    pub fn name(&self) -> &'static str {
        self.0.name
    }

    /// The postcard-encoded argument tuple of each call, in order: one for
    /// a submitted call, one per item for a `map` chunk.
    pub fn args(&self) -> &[Vec<u8>] {
        &self.0.args
    }

    /// Why the arguments could not be encoded, if they could not (an
    /// [`ipc::Connection`](crate::ipc::Connection) cannot travel to a pool
    /// worker, for instance). Such a job must not be sent: [`run_here`](Self::run_here)
    /// and [`complete`](Self::complete) fail its future with this message.
    pub fn encode_error(&self) -> Option<&str> {
        self.0.refused.as_deref()
    }

    /// Marks the future running, unless it was cancelled while queued:
    /// Python's `Future.set_running_or_notify_cancel()`. `false` means
    /// cancelled: drop the job instead of running it.
    pub fn set_running_or_notify_cancel(&mut self) -> bool {
        self.0.sink.start()
    }

    /// Runs the calls here, in this process, each under `catch_unwind`
    /// (finding the task by name in this program), and completes the
    /// future; does nothing if the future was cancelled.
    pub fn run_here(mut self) {
        if let Some(m) = self.0.refused.take() {
            self.0.sink.fail(Failure::Refused(m));
            return;
        }
        if !self.0.sink.start() {
            return;
        }
        let outcomes = wire::run_here(self.0.name, &self.0.args);
        self.0.sink.finish(outcomes);
    }

    /// Completes the future with the outcomes of the calls, run elsewhere:
    /// one per call, in order, each the postcard-encoded result (`Ok`) or
    /// the message of the task's panic (`Err`). Outcomes that are not one
    /// per call, or a result that does not decode, fail the future with
    /// [`FutureError::Panicked`](crate::futures::FutureError::Panicked)
    /// naming the problem, as a pool worker's would.
    pub fn complete(mut self, outcomes: Vec<Result<Vec<u8>, String>>) {
        if let Some(m) = self.0.refused.take() {
            self.0.sink.fail(Failure::Refused(m));
            return;
        }
        if outcomes.len() != self.0.args.len() {
            let m = format!(
                "{} outcomes came back for {} calls of task {}",
                outcomes.len(),
                self.0.args.len(),
                self.0.name
            );
            self.0.sink.fail(Failure::Refused(m));
            return;
        }
        let outcomes = outcomes
            .into_iter()
            .map(|o| match o {
                Ok(bytes) => ItemOutcome::Ok(bytes),
                Err(m) => ItemOutcome::Panicked(m),
            })
            .collect();
        self.0.sink.finish(outcomes);
    }

    /// Cancels the job instead of running it (`shutdown(cancel_futures=true)`):
    /// its future becomes cancelled if it had not started, or fails with
    /// [`FutureError::Cancelled`](crate::futures::FutureError::Cancelled)
    /// if it had.
    pub fn cancel(self) {
        self.0.sink.fail(Failure::Cancelled);
    }

    /// Fails the future with [`FutureError::BrokenPool`](crate::futures::FutureError::BrokenPool):
    /// the executor broke before it could run the calls.
    pub fn fail_broken(self, broken: BrokenPool) {
        self.0.sink.fail(Failure::Broken(broken));
    }

    /// Fails the future with [`FutureError::WorkerLost`](crate::futures::FutureError::WorkerLost):
    /// the worker running the calls died.
    pub fn fail_lost(self, lost: WorkerLost) {
        self.0.sink.fail(Failure::Lost(lost));
    }
}

impl fmt::Debug for CallJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A job for `calls` of task `T` (a chunk), completing `promise` with the
/// outcomes decoded by `decode`.
pub(crate) fn job_of<T: process::Task, O: Send + 'static>(
    calls: &[Call<T>],
    promise: Promise<O>,
    decode: fn(Vec<super::wire::ItemOutcome>) -> Result<O, crate::futures::FutureError>,
) -> Job {
    job_of_sink(calls, PromiseSink::boxed(promise, decode))
}

/// A job for `calls` of task `T` (a chunk), reporting to `sink`.
pub(crate) fn job_of_sink<T: process::Task>(calls: &[Call<T>], sink: Box<dyn Sink>) -> Job {
    let mut refused = None;
    let mut args = Vec::with_capacity(calls.len());
    for c in calls {
        match c.encode() {
            Ok(a) => args.push(a),
            Err(m) => {
                refused = Some(m);
                break;
            }
        }
    }
    Job {
        name: T::NAME,
        args,
        sink,
        retried: 0,
        refused,
        bulk: None,
    }
}

/// Every [`RemoteExecutor`] (a
/// [`ProcessPoolExecutor`](super::ProcessPoolExecutor), say) runs calls.
impl<T, X> Task<X> for Call<T>
where
    X: RemoteExecutor + ?Sized,
    T: process::Task,
    T::Output: Send + 'static,
{
    type Output = T::Output;
    type Error = std::convert::Infallible;

    fn into_job(self) -> (X::Job, Future<T::Output>) {
        let (job, fut) = CallJob::of(self);
        (X::call_job(job), fut)
    }

    /// The postcard size of the arguments (a counting pass, nothing
    /// written); `None` if they cannot be encoded (the job then fails with
    /// the reason).
    fn payload_size(&self) -> Option<usize> {
        postcard::experimental::serialized_size(&self.args).ok()
    }
}

impl<T> Task<ThreadPoolExecutor> for Call<T>
where
    T: process::Task,
    T::Args: Send,
    T::Output: Send + 'static,
{
    type Output = T::Output;
    type Error = std::convert::Infallible;

    fn into_job(self) -> (ThreadJob, Future<T::Output>) {
        ThreadJob::new(move || Ok(self.run()))
    }
}

/// The task [`Executor::map`](crate::futures::Executor::map) submits for one
/// chunk on a [`RemoteExecutor`] such as the
/// [`ProcessPoolExecutor`](super::ProcessPoolExecutor): calls of one task
/// (Python's `_process_chunk`).
pub struct CallChunk<T: process::Task> {
    calls: Vec<Call<T>>,
}

impl<T: process::Task> fmt::Debug for CallChunk<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallChunk")
            .field("task", &T::NAME)
            .field("calls", &self.calls.len())
            .finish()
    }
}

impl<T, X> Task<X> for CallChunk<T>
where
    X: RemoteExecutor + ?Sized,
    T: process::Task,
    T::Output: Send + 'static,
{
    type Output = Vec<T::Output>;
    type Error = std::convert::Infallible;

    fn into_job(self) -> (X::Job, Future<Vec<T::Output>>) {
        let (promise, fut) = Promise::new();
        let job = job_of(&self.calls, promise, job::decode_chunk);
        (X::call_job(CallJob(job)), fut)
    }

    /// The largest postcard size of one call's arguments in the chunk.
    fn payload_size(&self) -> Option<usize> {
        self.calls.iter().try_fold(0, |m, c| {
            postcard::experimental::serialized_size(&c.args)
                .ok()
                .map(|n| m.max(n))
        })
    }
}

/// `map` on a [`RemoteExecutor`] (a
/// [`ProcessPoolExecutor`](super::ProcessPoolExecutor), say) takes a function
/// making a [`Call`] from each item — the generated `my_task::call`.
impl<F, A, T, X> MapFn<A, X> for F
where
    X: RemoteExecutor + ?Sized,
    F: Fn(A) -> Call<T>,
    T: process::Task,
    T::Output: Send + 'static,
{
    type Output = T::Output;
    type Error = std::convert::Infallible;
    type Task = CallChunk<T>;

    fn bind(this: &Arc<F>, chunk: Vec<A>) -> CallChunk<T> {
        CallChunk {
            calls: chunk.into_iter().map(|a| this(a)).collect(),
        }
    }
}
