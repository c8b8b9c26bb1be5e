//! [`Call`]: a typed call of a registered task — what the process pools run —
//! and how it becomes a job of either executor.
#![forbid(unsafe_code)]

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use super::job::{self, Failure, Job, NetJob, PromiseSink, Sink};
use super::wire::{self, ItemOutcome};
use crate::futures::{
    BrokenPool, Executor, Future, MapFn, Promise, Task, ThreadJob, ThreadPoolExecutor, WorkerLost,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::process::remote;
use crate::process::{self, EncodedCall, TaskCall, TaskFault, WireError};

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
    /// How the calls' arguments are encoded in the [`CallJob`]s this
    /// executor gets, and how the results it completes them with are
    /// decoded: [`WireFormat::Postcard`] (the default: the pools' compact
    /// form, for workers of this same binary) or
    /// [`WireFormat::MessagePack`] (the network form of
    /// [`EncodedCall`](crate::process::EncodedCall), run by
    /// [`invoke`](crate::process::invoke), for workers on other hosts).
    const WIRE: WireFormat = WireFormat::Postcard;

    /// This executor's job for `job`: one call, or a `map` chunk of calls,
    /// of one registered task.
    fn call_job(job: CallJob) -> Self::Job;
}

/// How a [`RemoteExecutor`]'s call arguments and results are encoded
/// ([`RemoteExecutor::WIRE`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum WireFormat {
    /// postcard: compact, positional; what the process pools of this crate
    /// use. Descriptors among the arguments cannot be sent (the job is
    /// refused with a message).
    #[default]
    Postcard,
    /// MessagePack with named fields (`rmp_serde::to_vec_named`): the
    /// network form, self-describing, run by
    /// [`invoke`](crate::process::invoke). Arguments carrying descriptors
    /// are refused at submit ([`SubmitError::Unsendable`](crate::futures::SubmitError::Unsendable)
    /// through [`Task::check_wire`]).
    MessagePack,
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
        CallJob::of_wire(call, WireFormat::Postcard)
    }

    /// [`of`](Self::of), with the arguments encoded (and the result to be
    /// decoded) as `wire` says.
    pub fn of_wire<T>(call: Call<T>, wire: WireFormat) -> (CallJob, Future<T::Output>)
    where
        T: process::Task,
        T::Output: Send + 'static,
    {
        let (promise, fut) = Promise::new();
        let calls = std::slice::from_ref(&call);
        let job = match wire {
            WireFormat::MessagePack => {
                job_of_net(calls, promise, (decode_one_net, decode_one_net_ref))
            }
            _ => job_of(calls, promise, job::decode_one),
        };
        (CallJob(job), fut)
    }

    /// The submitting side's [`SIGNATURE`](process::Task::SIGNATURE) of the
    /// task, to send with the arguments ([`invoke`](crate::process::invoke)
    /// checks it): `Some` for a [`WireFormat::MessagePack`] job, `None` for
    /// a postcard one (its workers are this same program).
    pub fn signature(&self) -> Option<u64> {
        self.0.net.as_ref().map(|n| n.signature)
    }

    /// How [`args`](Self::args) are encoded and results must be.
    pub fn wire(&self) -> WireFormat {
        match self.0.net {
            Some(_) => WireFormat::MessagePack,
            None => WireFormat::Postcard,
        }
    }

    /// The calls in their network form, one per call, for a
    /// [`WireFormat::MessagePack`] job; `None` for a postcard job (its
    /// arguments are not what [`invoke`](crate::process::invoke) decodes)
    /// and for one whose arguments were [taken](Self::take_args).
    pub fn encoded_calls(&self) -> Option<Vec<EncodedCall>> {
        if self.0.args_taken {
            return None;
        }
        let net = self.0.net.as_ref()?;
        let calls = self
            .0
            .args
            .iter()
            .map(|a| EncodedCall {
                name: self.0.name.to_string(),
                signature: net.signature,
                args: a.clone(),
            })
            .collect();
        Some(calls)
    }

    /// Why a network-form job's arguments could not be encoded, typed
    /// (descriptors among them, or serde's refusal); see
    /// [`encode_error`](Self::encode_error).
    pub fn wire_error(&self) -> Option<&WireError> {
        self.0.net.as_ref()?.wire_error.as_ref()
    }

    /// The registered task's stable name (`module::path::fn_name`).
    pub fn name(&self) -> &'static str {
        self.0.name
    }

    /// The encoded argument tuple of each call, in order: one for a
    /// submitted call, one per item for a `map` chunk. Postcard, or
    /// MessagePack with named fields for a [`WireFormat::MessagePack`] job
    /// (see [`wire`](Self::wire)): then each is what
    /// [`invoke`](crate::process::invoke) decodes.
    pub fn args(&self) -> &[Vec<u8>] {
        &self.0.args
    }

    /// Moves the encoded arguments out, leaving each call's empty (the job
    /// still counts its calls, for [`complete`](Self::complete)): for an
    /// executor that has sent them elsewhere and never sends them again,
    /// so that their buffers are freed where they were made, now, not by
    /// whichever thread completes the job. A job whose arguments were
    /// taken cannot run here: [`run_here`](Self::run_here) fails its
    /// future, naming the cause.
    pub fn take_args(&mut self) -> Vec<Vec<u8>> {
        self.0.args_taken = true;
        self.0.args.iter_mut().map(std::mem::take).collect()
    }

    /// Why the arguments could not be encoded, if they could not (an
    /// [`ipc::Connection`](crate::ipc::Connection) cannot travel to a pool
    /// worker, for instance). Such a job must not be sent: [`run_here`](Self::run_here)
    /// and [`complete`](Self::complete) fail its future with this message.
    pub fn encode_error(&self) -> Option<&str> {
        self.0.refused.as_deref()
    }

    /// Lets `hook` decide whether [`Future::cancel`] may cancel the job's
    /// pending future ([`Promise::on_cancel`]): for an executor whose queue
    /// is elsewhere (a broker), the hook asks it to drop the job and returns
    /// `false` once a worker took it. Set it before handing the future out.
    pub fn on_cancel(&self, hook: impl Fn() -> bool + Send + Sync + 'static) {
        self.0.sink.on_cancel(Box::new(hook));
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
        if self.0.args_taken {
            let m = format!(
                "the arguments of this job of task {} were taken (sent elsewhere): \
                 it cannot run here",
                self.0.name
            );
            self.0.sink.fail(Failure::Refused(m));
            return;
        }
        if !self.0.sink.start() {
            return;
        }
        let outcomes = match &self.0.net {
            Some(net) => self
                .0
                .args
                .iter()
                .map(|a| fault_outcome(process::invoke(self.0.name, net.signature, a)))
                .collect(),
            None => wire::run_here(self.0.name, &self.0.args),
        };
        self.0.sink.finish(outcomes);
    }

    /// [`complete`](Self::complete) with what [`invoke`](crate::process::invoke)
    /// returned on the worker for each call: a [`TaskFault::Panicked`]
    /// becomes [`FutureError::Panicked`](crate::futures::FutureError::Panicked)
    /// with the panic's message, any other fault
    /// [`FutureError::Panicked`](crate::futures::FutureError::Panicked) with
    /// the fault's description (as a pool worker reports a task it could not
    /// run).
    pub fn complete_invoked(self, outcomes: Vec<Result<Vec<u8>, TaskFault>>) {
        let outcomes = outcomes
            .into_iter()
            .map(|o| o.map_err(job::fault_message))
            .collect();
        self.complete(outcomes);
    }

    /// [`complete_invoked`](Self::complete_invoked) with the results
    /// borrowed (read in place from the message they came in): a
    /// network-form job decodes each straight from its bytes, with no copy
    /// of them first. The same checks and the same outcome.
    pub fn complete_net(mut self, outcomes: Vec<Result<&[u8], TaskFault>>) {
        if let Some(m) = self.refused_or_miscounted(outcomes.len()) {
            self.0.sink.fail(Failure::Refused(m));
            return;
        }
        self.0.sink.finish_net(outcomes);
    }

    /// Why outcomes cannot complete the job: its arguments were refused,
    /// or `n` outcomes are not one per call.
    fn refused_or_miscounted(&mut self, n: usize) -> Option<String> {
        if let Some(m) = self.0.refused.take() {
            return Some(m);
        }
        (n != self.0.args.len()).then(|| {
            format!(
                "{n} outcomes came back for {} calls of task {}",
                self.0.args.len(),
                self.0.name
            )
        })
    }

    /// Completes the future with the outcomes of the calls, run elsewhere:
    /// one per call, in order, each the postcard-encoded result (`Ok`) or
    /// the message of the task's panic (`Err`). Outcomes that are not one
    /// per call, or a result that does not decode, fail the future with
    /// [`FutureError::Panicked`](crate::futures::FutureError::Panicked)
    /// naming the problem, as a pool worker's would.
    pub fn complete(mut self, outcomes: Vec<Result<Vec<u8>, String>>) {
        if let Some(m) = self.refused_or_miscounted(outcomes.len()) {
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

    /// Fails the future with [`FutureError::Unavailable`](crate::futures::FutureError::Unavailable):
    /// no worker could take the calls.
    pub fn fail_unavailable(self) {
        self.0.sink.fail(Failure::Unavailable);
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
        args_taken: false,
        refused,
        bulk: None,
        net: None,
        #[cfg(feature = "tracing")]
        trace: None,
    }
}

/// Decodes a job's outcomes, owned.
type Decode<O> = fn(Vec<ItemOutcome>) -> Result<O, crate::futures::FutureError>;

/// A network-form (MessagePack) job for `calls` of task `T`, completing
/// `promise` with the outcomes decoded by `decode`.
fn job_of_net<T: process::Task, O: Send + 'static>(
    calls: &[Call<T>],
    promise: Promise<O>,
    (decode, decode_net): (Decode<O>, job::NetDecode<O>),
) -> Job {
    let mut wire_error = None;
    let mut args = Vec::with_capacity(calls.len());
    for c in calls {
        match remote::encode_net(T::NAME, c.args()) {
            Ok(a) => args.push(a),
            Err(e) => {
                wire_error = Some(e);
                break;
            }
        }
    }
    Job {
        name: T::NAME,
        args,
        sink: PromiseSink::boxed_net(promise, decode, decode_net),
        retried: 0,
        args_taken: false,
        refused: wire_error.as_ref().map(ToString::to_string),
        bulk: None,
        net: Some(Box::new(NetJob {
            signature: T::SIGNATURE,
            wire_error,
        })),
        #[cfg(feature = "tracing")]
        trace: None,
    }
}

/// A network-form result's bytes as `O`.
fn decode_net_bytes<O: DeserializeOwned>(bytes: &[u8]) -> Result<O, crate::futures::FutureError> {
    rmp_serde::from_slice(bytes).map_err(|e| {
        crate::futures::FutureError::Panicked(format!(
            "the task's result could not be decoded: {e}"
        ))
    })
}

/// One network-form result as `O`.
fn decode_net_item<O: DeserializeOwned>(
    out: ItemOutcome,
) -> Result<O, crate::futures::FutureError> {
    match out {
        ItemOutcome::Ok(bytes) => decode_net_bytes(&bytes),
        // Failures read the same in both forms.
        other => job::decode(other),
    }
}

fn decode_one_net<O: DeserializeOwned>(
    outs: Vec<ItemOutcome>,
) -> Result<O, crate::futures::FutureError> {
    job::decode_first(outs, decode_net_item)
}

fn decode_chunk_net<O: DeserializeOwned>(
    outs: Vec<ItemOutcome>,
) -> Result<Vec<O>, crate::futures::FutureError> {
    outs.into_iter().map(decode_net_item).collect()
}

/// One network-form result, borrowed, as `O`.
fn decode_net_ref<O: DeserializeOwned>(
    out: Result<&[u8], TaskFault>,
) -> Result<O, crate::futures::FutureError> {
    match out {
        Ok(bytes) => decode_net_bytes(bytes),
        Err(fault) => Err(crate::futures::FutureError::Panicked(job::fault_message(
            fault,
        ))),
    }
}

fn decode_one_net_ref<O: DeserializeOwned>(
    outs: Vec<Result<&[u8], TaskFault>>,
) -> Result<O, crate::futures::FutureError> {
    job::decode_first(outs, decode_net_ref)
}

fn decode_chunk_net_ref<O: DeserializeOwned>(
    outs: Vec<Result<&[u8], TaskFault>>,
) -> Result<Vec<O>, crate::futures::FutureError> {
    outs.into_iter().map(decode_net_ref).collect()
}

/// What [`invoke`](crate::process::invoke) returned, as a worker's outcome.
fn fault_outcome(r: Result<Vec<u8>, TaskFault>) -> ItemOutcome {
    match r {
        Ok(bytes) => ItemOutcome::Ok(bytes),
        Err(TaskFault::Panicked { message, .. }) => ItemOutcome::Panicked(message),
        Err(fault) => ItemOutcome::Fault(fault.to_string()),
    }
}

/// Whether `args` can travel in `wire`'s form: a counting pass for the
/// network form (nothing kept), nothing to check for postcard.
fn check_args<A: Serialize>(
    task: &'static str,
    args: &A,
    wire: WireFormat,
) -> Result<(), WireError> {
    match wire {
        WireFormat::MessagePack => remote::check_net(task, args),
        _ => Ok(()),
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
        let (job, fut) = CallJob::of_wire(self, X::WIRE);
        (X::call_job(job), fut)
    }

    /// The postcard size of the arguments (a counting pass, nothing
    /// written); `None` if they cannot be encoded (the job then fails with
    /// the reason), or if the executor uses the network form.
    fn payload_size(&self) -> Option<usize> {
        match X::WIRE {
            WireFormat::Postcard => postcard::experimental::serialized_size(&self.args).ok(),
            _ => None,
        }
    }

    /// For a [`WireFormat::MessagePack`] executor: a counting encoding pass
    /// that refuses descriptors among the arguments.
    fn check_wire(&self) -> Result<(), WireError> {
        check_args(T::NAME, &self.args, X::WIRE)
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

impl<T: process::Task> CallChunk<T> {
    /// The chunk of these calls.
    pub(crate) fn new(calls: Vec<Call<T>>) -> CallChunk<T> {
        CallChunk { calls }
    }
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
        let job = match X::WIRE {
            WireFormat::MessagePack => job_of_net(
                &self.calls,
                promise,
                (decode_chunk_net, decode_chunk_net_ref),
            ),
            _ => job_of(&self.calls, promise, job::decode_chunk),
        };
        (X::call_job(CallJob(job)), fut)
    }

    /// The largest postcard size of one call's arguments in the chunk
    /// (`None` for a network-form executor).
    fn payload_size(&self) -> Option<usize> {
        if X::WIRE != WireFormat::Postcard {
            return None;
        }
        self.calls.iter().try_fold(0, |m, c| {
            postcard::experimental::serialized_size(&c.args)
                .ok()
                .map(|n| m.max(n))
        })
    }

    /// As for one [`Call`], for each call of the chunk.
    fn check_wire(&self) -> Result<(), WireError> {
        self.calls
            .iter()
            .try_for_each(|c| check_args(T::NAME, &c.args, X::WIRE))
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

impl EncodedCall {
    /// Encodes `call`.
    ///
    /// # Errors
    ///
    /// [`WireError::CarriesDescriptors`] if an argument holds a file
    /// descriptor (an [`ipc::Connection`](crate::ipc::Connection), an
    /// `ipc::Queue`, a shared `Value`…): it cannot travel to another host;
    /// [`WireError::Encode`] if serde refuses the arguments.
    pub fn new<T: process::Task>(call: &Call<T>) -> Result<EncodedCall, WireError> {
        EncodedCall::of_args::<T>(call.args())
    }
}
