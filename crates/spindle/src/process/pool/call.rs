//! [`Call`]: a typed call of a registered task — what the process pools run —
//! and how it becomes a job of either executor.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use super::executor::ProcessPoolExecutor;
use super::job::{self, Job, PromiseSink, Sink};
use crate::futures::{Future, MapFn, Promise, Task, ThreadJob, ThreadPoolExecutor};
use crate::process::{self, TaskCall};

/// A call of the task `T` with its arguments, typed by the task's result:
/// what [`submit`](crate::futures::Executor::submit) on a [`ProcessPoolExecutor`] and [`Pool::apply_async`](super::Pool::apply_async)
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

/// The job a [`ProcessPoolExecutor`] queues: the task's name, the encoded
/// arguments of one call or of a `map` chunk, and the promise of its future.
pub struct ProcessJob(pub(crate) Job);

impl fmt::Debug for ProcessJob {
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
    }
}

impl<T> Task<ProcessPoolExecutor> for Call<T>
where
    T: process::Task,
    T::Output: Send + 'static,
{
    type Output = T::Output;
    type Error = std::convert::Infallible;

    fn into_job(self) -> (ProcessJob, Future<T::Output>) {
        let (promise, fut) = Promise::new();
        let job = job_of(std::slice::from_ref(&self), promise, job::decode_one);
        (ProcessJob(job), fut)
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

/// The task [`Executor::map`](crate::futures::Executor::map) submits for one chunk on a
/// [`ProcessPoolExecutor`]: calls of one task (Python's `_process_chunk`).
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

impl<T> Task<ProcessPoolExecutor> for CallChunk<T>
where
    T: process::Task,
    T::Output: Send + 'static,
{
    type Output = Vec<T::Output>;
    type Error = std::convert::Infallible;

    fn into_job(self) -> (ProcessJob, Future<Vec<T::Output>>) {
        let (promise, fut) = Promise::new();
        let job = job_of(&self.calls, promise, job::decode_chunk);
        (ProcessJob(job), fut)
    }
}

/// `map` on a [`ProcessPoolExecutor`] takes a function making a [`Call`]
/// from each item — the generated `my_task::call`.
impl<F, A, T> MapFn<A, ProcessPoolExecutor> for F
where
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
