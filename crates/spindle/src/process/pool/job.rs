//! What the pools queue: a [`Job`] (one task call, or a chunk of calls of the
//! same task) and the typed [`Sink`] that completes its future.
#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::wire::ItemOutcome;
use std::sync::Arc;

use crate::futures::{BrokenPool, FutureError, Payload, Promise, TooLarge, WorkerLost};
use crate::ipc::sealed::{Filling, Sealed};
use crate::process::TaskFault;
use crate::process::task::{BULK_FROM, INLINE_BUDGET};

/// Why a job ended without a result from a worker.
#[derive(Debug, Clone)]
pub(crate) enum Failure {
    /// The worker died (or was killed for overrunning its time limit).
    Lost(WorkerLost),
    /// The pool broke (initializer failed, a worker could not start).
    Broken(BrokenPool),
    /// The pool was terminated (or shut down with `cancel_futures`).
    Cancelled,
    /// The job could not even be sent (arguments that cannot be encoded).
    Refused(String),
    /// The arguments were over the pool's payload limit (never sent).
    TooLarge(TooLarge),
    /// No worker could take the job (a remote executor's `CallJob::fail_unavailable`).
    Unavailable,
}

/// Completes one job's future, whatever its output type.
pub(crate) trait Sink: Send {
    /// Marks the future running; `false` if it was cancelled (skip the job).
    fn start(&mut self) -> bool;
    /// Decodes the worker's outcomes and completes the future.
    fn finish(self: Box<Self>, outcomes: Vec<ItemOutcome>);
    /// Decodes network-form outcomes read in place (a cluster client's:
    /// borrowed from the message they came in) and completes the future.
    /// By default they are made owned and handed to [`finish`](Self::finish).
    fn finish_net(self: Box<Self>, outcomes: Vec<Result<&[u8], TaskFault>>) {
        self.finish(owned_net_outcomes(outcomes));
    }
    /// Fails the future.
    fn fail(self: Box<Self>, failure: Failure);
    /// Lets `hook` decide whether the future may be cancelled
    /// (`Promise::on_cancel`); ignored by sinks without a future.
    fn on_cancel(&self, _hook: Box<dyn Fn() -> bool + Send + Sync>) {}
}

/// One unit of work for a worker: the task's name and the encoded arguments
/// of each call (one call, or a chunk of `map`).
pub(crate) struct Job {
    pub(crate) name: &'static str,
    pub(crate) args: Vec<Vec<u8>>,
    pub(crate) sink: Box<dyn Sink>,
    /// Times this job was re-run after losing its worker.
    pub(crate) retried: u32,
    /// Set when the arguments could not be encoded: fail at dispatch.
    pub(crate) refused: Option<String>,
    /// The arguments were moved out (`CallJob::take_args`): the job can
    /// no longer run here.
    pub(crate) args_taken: bool,
    /// Arguments moved to one sealed memfd (`args[i]` is then empty): the
    /// memfd, and each moved argument's index, offset and length in it.
    /// Kept until the job ends, so a retry sends it again.
    pub(crate) bulk: Option<Box<Bulk>>,
    /// Set for a network-form (MessagePack) job, `None` for postcard
    /// (boxed: a pool job stays small).
    pub(crate) net: Option<Box<NetJob>>,
    /// Its submit's `spindle.task` span and W3C traceparent (feature
    /// `tracing`), opened when the pool accepts it.
    #[cfg(feature = "tracing")]
    pub(crate) trace: Option<Box<(tracing::Span, String)>>,
}

/// What a network-form job carries beyond a pool job.
#[derive(Debug)]
pub(crate) struct NetJob {
    /// The submitting side's `Task::SIGNATURE` of the task.
    pub(crate) signature: u64,
    /// The typed form of `Job::refused`.
    pub(crate) wire_error: Option<crate::process::WireError>,
}

/// The sealed memfd of a job's large arguments.
#[derive(Debug)]
pub(crate) struct Bulk {
    pub(crate) sealed: Arc<Sealed>,
    /// Index, offset and length of each argument set moved into it.
    pub(crate) moved: Vec<(usize, usize, usize)>,
}

impl Job {
    /// Opens its submit's span (once: a retry keeps it), whose context
    /// travels to the worker.
    #[cfg(feature = "tracing")]
    pub(crate) fn open_trace(&mut self) {
        if self.trace.is_none() {
            let (span, ctx) = crate::trace::submit_span("process", self.name);
            tracing::trace!(parent: &span, calls = self.args.len(), "submitted");
            self.trace = Some(Box::new((span, ctx.traceparent())));
        }
    }

    /// Total size of the encoded arguments.
    pub(crate) fn weight(&self) -> usize {
        self.args.iter().map(Vec::len).sum::<usize>()
            + self.bulk.as_ref().map_or(0, |b| b.sealed.len())
    }

    /// The first argument over `limit`, as the error to report.
    pub(crate) fn too_large(&self, limit: usize) -> Option<TooLarge> {
        self.args
            .iter()
            .map(Vec::len)
            .find(|&n| n > limit)
            .map(|n| TooLarge::new(Payload::Argument, n as u64, limit as u64))
    }

    /// Whether some arguments should go in memfds ([`seal`](Self::seal)).
    pub(crate) fn needs_sealing(&self) -> bool {
        let mut inline = 0usize;
        self.args.iter().any(|a| {
            inline += a.len();
            a.len() >= BULK_FROM || inline > INLINE_BUDGET
        })
    }

    /// Moves the large arguments (and those past the inline budget of a
    /// frame) into one sealed memfd, freeing their bytes here. Written with
    /// `write(2)`, not mapped, so the copy does not count in this process's
    /// memory.
    pub(crate) fn seal(&mut self) -> std::io::Result<()> {
        let mut inline = 0usize;
        let mut filling: Option<Filling> = None;
        let mut moved = Vec::new();
        for (i, a) in self.args.iter().enumerate() {
            if a.len() >= BULK_FROM || inline + a.len() > INLINE_BUDGET {
                let f = match &mut filling {
                    Some(f) => f,
                    None => filling.insert(Filling::new()?),
                };
                let (at, len) = f.append(a)?;
                moved.push((i, at, len));
            } else {
                inline += a.len();
            }
        }
        if let Some(f) = filling {
            let sealed = f.seal()?;
            for &(i, _, _) in &moved {
                self.args[i] = Vec::new();
            }
            self.bulk = Some(Box::new(Bulk {
                sealed: Arc::new(sealed),
                moved,
            }));
        }
        Ok(())
    }
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("name", &self.name)
            .field("calls", &self.args.len())
            .field("retried", &self.retried)
            .finish_non_exhaustive()
    }
}

/// Decodes one item's outcome as `O`.
pub(crate) fn decode<O: DeserializeOwned>(out: ItemOutcome) -> Result<O, FutureError> {
    let from = |bytes: &[u8]| {
        postcard::from_bytes(bytes).map_err(|e| {
            FutureError::Panicked(format!("the task's result could not be decoded: {e}"))
        })
    };
    match out {
        ItemOutcome::Ok(bytes) => from(&bytes),
        // A `SharedBytes` in the result shares the mapping instead of
        // copying out of it.
        ItemOutcome::Mapped(m) => crate::ipc::decoding_from(m.map(), || from(&m)),
        ItemOutcome::Panicked(m) => Err(FutureError::Panicked(m)),
        ItemOutcome::Fault(m) => Err(FutureError::Panicked(m)),
        ItemOutcome::TooLarge { size, limit } => Err(FutureError::TooLarge(TooLarge::new(
            Payload::Result,
            size,
            limit,
        ))),
        ItemOutcome::Bulk(..) => Err(FutureError::Panicked(
            "a large result arrived without its memory".into(),
        )),
        // Frozen `SharedBytesMut` buffers that came by descriptor, each
        // taken by the `SharedBytes` of its ordinal.
        ItemOutcome::Shared { inner, bufs, held } => {
            if held.len() != bufs.len() {
                return Err(FutureError::Panicked(
                    "a large result arrived without its memory".into(),
                ));
            }
            let table = bufs.iter().map(|b| b.0).zip(held).collect();
            match crate::ipc::importing(table, || decode(*inner)) {
                (Ok(_), false) => Err(FutureError::Panicked(
                    "the task's result could not be decoded: its shared buffers \
                     did not match its encoding"
                        .into(),
                )),
                (r, _) => r,
            }
        }
    }
}

/// Encodes one call's arguments (a `Connection` or `ipc::Queue` among them
/// cannot travel to a pool worker, as in Python).
pub(crate) fn encode<A: Serialize>(args: &A) -> Result<Vec<u8>, String> {
    postcard::to_allocvec(args)
        .map_err(|e| format!("the task's arguments could not be encoded for a pool worker: {e}"))
}

/// A [`Sink`] completing a `Promise<O>` with `decode(outcomes)`.
pub(crate) struct PromiseSink<O> {
    promise: Promise<O>,
    decode: fn(Vec<ItemOutcome>) -> Result<O, FutureError>,
    /// Decodes network-form outcomes in place ([`Sink::finish_net`]);
    /// `None`: they go through `decode`.
    decode_net: Option<NetDecode<O>>,
    started: bool,
}

/// Decodes a network-form job's outcomes, borrowed.
pub(crate) type NetDecode<O> =
    for<'a> fn(Vec<Result<&'a [u8], TaskFault>>) -> Result<O, FutureError>;

/// What a fault becomes in the future's `Panicked`: the panic's message,
/// or the fault's description (as a pool worker reports a task it could
/// not run).
pub(crate) fn fault_message(fault: TaskFault) -> String {
    match fault {
        TaskFault::Panicked { message, .. } => message,
        other => other.to_string(),
    }
}

/// Network-form outcomes made owned, as a worker's: a fault is the
/// future's `Panicked` with [`fault_message`].
fn owned_net_outcomes(outcomes: Vec<Result<&[u8], TaskFault>>) -> Vec<ItemOutcome> {
    outcomes
        .into_iter()
        .map(|o| match o {
            Ok(bytes) => ItemOutcome::Ok(bytes.to_vec()),
            Err(fault) => ItemOutcome::Panicked(fault_message(fault)),
        })
        .collect()
}

impl<O: Send + 'static> PromiseSink<O> {
    pub(crate) fn boxed(
        promise: Promise<O>,
        decode: fn(Vec<ItemOutcome>) -> Result<O, FutureError>,
    ) -> Box<dyn Sink> {
        Box::new(PromiseSink {
            promise,
            decode,
            decode_net: None,
            started: false,
        })
    }

    /// A sink that also decodes network-form outcomes in place.
    pub(crate) fn boxed_net(
        promise: Promise<O>,
        decode: fn(Vec<ItemOutcome>) -> Result<O, FutureError>,
        decode_net: NetDecode<O>,
    ) -> Box<dyn Sink> {
        Box::new(PromiseSink {
            promise,
            decode,
            decode_net: Some(decode_net),
            started: false,
        })
    }
}

impl<O: Send + 'static> Sink for PromiseSink<O> {
    fn start(&mut self) -> bool {
        self.started = self.promise.set_running_or_notify_cancel();
        self.started
    }

    fn on_cancel(&self, hook: Box<dyn Fn() -> bool + Send + Sync>) {
        self.promise.on_cancel(hook);
    }

    fn finish(self: Box<Self>, outcomes: Vec<ItemOutcome>) {
        let outcome = (self.decode)(outcomes);
        self.promise.complete(outcome, || {}).ok();
    }

    fn finish_net(self: Box<Self>, outcomes: Vec<Result<&[u8], TaskFault>>) {
        let Some(decode) = self.decode_net else {
            return self.finish(owned_net_outcomes(outcomes));
        };
        self.promise.complete(decode(outcomes), || {}).ok();
    }

    fn fail(self: Box<Self>, failure: Failure) {
        let err: FutureError<Infallible> = match failure {
            Failure::Lost(w) => FutureError::WorkerLost(w),
            Failure::Broken(b) => FutureError::BrokenPool(b),
            Failure::Refused(m) => FutureError::Panicked(m),
            Failure::TooLarge(t) => FutureError::TooLarge(t),
            Failure::Unavailable => FutureError::Unavailable,
            Failure::Cancelled if !self.started => {
                self.promise.cancel_pending();
                return;
            }
            Failure::Cancelled => FutureError::Cancelled,
        };
        self.promise.complete(Err(err), || {}).ok();
    }
}

/// Decodes a single call's outcome.
pub(crate) fn decode_one<O: DeserializeOwned>(outs: Vec<ItemOutcome>) -> Result<O, FutureError> {
    decode_first(outs, decode)
}

/// The first of a job's outcomes (a submitted call's), decoded by
/// `decode`, in whichever form they came.
pub(crate) fn decode_first<I, O>(
    outs: Vec<I>,
    decode: impl FnOnce(I) -> Result<O, FutureError>,
) -> Result<O, FutureError> {
    match outs.into_iter().next() {
        Some(out) => decode(out),
        None => Err(FutureError::Panicked("the worker sent no result".into())),
    }
}

/// Decodes a chunk's outcomes; the first failure fails the whole chunk (as
/// Python's `ProcessPoolExecutor.map` with `chunksize`).
pub(crate) fn decode_chunk<O: DeserializeOwned>(
    outs: Vec<ItemOutcome>,
) -> Result<Vec<O>, FutureError> {
    outs.into_iter().map(decode).collect()
}
