//! The pool's wire messages and the worker's main loop (runs in the child).
//!
//! Parent → worker: [`ToWorker`] frames on the worker's own `Connection`;
//! worker → parent: [`FromWorker`]. The worker answers jobs strictly in the
//! order it receives them, which is how the parent knows which job a dead
//! worker was running (the first unanswered one) and which it never started
//! (the rest, which go back to the queue). See `README.md` beside this file.

use std::panic::{self, AssertUnwindSafe};

use serde::{Deserialize, Serialize};

use super::link::{self, WorkerEnds};
use std::sync::Arc;

use crate::ipc::sealed::{Filling, Mapped, MappedSlice};
use crate::process::task::{
    self, ArgBytes, BULK_FROM, Encoded, INLINE_BUDGET, OutPolicy, RunFault, TaskEntry,
};
use crate::util::panic_text;

/// What a worker is told (the owned, decoding side).
#[derive(Debug, Deserialize)]
pub(crate) enum ToWorker {
    /// Run the task `name` once per argument set, answer with `Done`.
    Run {
        name: String,
        #[serde(with = "bytes_seq")]
        args: Vec<Vec<u8>>,
        /// The submit's W3C traceparent (feature `tracing`: parent and
        /// worker are one binary, so both sides have the field or neither).
        #[cfg(feature = "tracing")]
        trace: Option<String>,
    },
    /// Exit now (the pool is closing and has nothing more for this worker).
    Stop,
    /// `Run` with some arguments in one sealed memfd of `bulk` bytes, sent
    /// on the link's socket before this frame.
    RunBulk {
        name: String,
        bulk: u64,
        args: Vec<WireArg>,
        #[cfg(feature = "tracing")]
        trace: Option<String>,
    },
}

/// One argument set of a `RunBulk`.
#[derive(Debug, Deserialize)]
pub(crate) enum WireArg {
    Inline(#[serde(with = "bytes_one")] Vec<u8>),
    /// At this offset and length of the frame's memfd.
    Bulk(u64, u64),
}

/// One argument set of a `RunBulk` (encoding side).
#[derive(Debug, Serialize)]
pub(crate) enum WireArgRef<'a> {
    Inline(#[serde(serialize_with = "bytes_one::serialize")] &'a [u8]),
    Bulk(u64, u64),
}

/// What a worker is told (the borrowed, encoding side; same wire format).
#[derive(Debug, Serialize)]
pub(crate) enum ToWorkerRef<'a> {
    Run {
        name: &'a str,
        #[serde(serialize_with = "bytes_seq::serialize")]
        args: &'a [Vec<u8>],
        #[cfg(feature = "tracing")]
        trace: Option<&'a str>,
    },
    Stop,
    RunBulk {
        name: &'a str,
        bulk: u64,
        args: Vec<WireArgRef<'a>>,
        #[cfg(feature = "tracing")]
        trace: Option<&'a str>,
    },
}

/// What a worker answers.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum FromWorker {
    /// The outcomes of the oldest unanswered job, one per call.
    Done(Vec<ItemOutcome>),
    /// The initializer failed (its panic message); the worker exits.
    InitFailed(String),
    /// `Done` with some results in one sealed memfd of this many bytes,
    /// sent on the link's socket before this frame.
    DoneBulk(u64, Vec<ItemOutcome>),
}

/// The outcome of one call.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ItemOutcome {
    /// The postcard-encoded result.
    Ok(#[serde(with = "bytes_one")] Vec<u8>),
    /// The task panicked: its message.
    Panicked(String),
    /// The task could not run (unknown name, undecodable arguments or result).
    Fault(String),
    /// The encoded result is at this offset and length of the frame's
    /// memfd (see `FromWorker::DoneBulk`).
    Bulk(u64, u64),
    /// The encoded result was over the pool's payload limit; nothing of it
    /// was sent.
    TooLarge { size: u64, limit: u64 },
    /// `inner` (`Ok` or `Bulk`: the encoding), whose frozen
    /// `SharedBytesMut` buffers travel by descriptor: one sealed memfd per
    /// entry of `bufs` (the buffer's ordinal among the result's
    /// `SharedBytes`, and its length), sent on the link's socket after the
    /// frame's memfd, in the order of the frame's outcomes.
    Shared {
        inner: Box<ItemOutcome>,
        bufs: Vec<(u32, u64)>,
        /// The buffers themselves: the worker's, to send; the parent's,
        /// mapped once received (`slot::receive_shared`).
        #[serde(skip)]
        held: Vec<Arc<Mapped>>,
    },
    /// A `Bulk` result once received: its part of the mapped memfd (never
    /// on the wire). Last: serde numbers the variants on the wire by their
    /// place, counting a skipped one when encoding but not when decoding.
    #[serde(skip)]
    Mapped(MappedSlice),
}

impl ItemOutcome {
    /// The outcome of the encoding itself (`inner` of a `Shared`).
    pub(crate) fn encoding_mut(&mut self) -> &mut ItemOutcome {
        match self {
            ItemOutcome::Shared { inner, .. } => inner,
            o => o,
        }
    }

    /// As [`encoding_mut`](Self::encoding_mut).
    pub(crate) fn encoding(&self) -> &ItemOutcome {
        match self {
            ItemOutcome::Shared { inner, .. } => inner,
            o => o,
        }
    }
}

/// The outcome of an encoded result.
fn outcome_of(enc: Encoded) -> ItemOutcome {
    match enc {
        Encoded::Inline(bytes) => ItemOutcome::Ok(bytes),
        Encoded::Bulk(at, len) => ItemOutcome::Bulk(at as u64, len as u64),
        Encoded::Shared(inner, bufs) => ItemOutcome::Shared {
            inner: Box::new(outcome_of(*inner)),
            bufs: bufs.iter().map(|(o, m)| (*o, m.len() as u64)).collect(),
            held: bufs.into_iter().map(|(_, m)| m).collect(),
        },
    }
}

/// Runs one call of `entry` under `catch_unwind`; a large result is
/// appended to `bulk` (its outcome is `Bulk`).
fn run_entry(
    entry: &TaskEntry,
    args: ArgBytes<'_>,
    policy: OutPolicy,
    bulk: &mut Option<Filling>,
    lost: &mut bool,
) -> ItemOutcome {
    match panic::catch_unwind(AssertUnwindSafe(|| entry.invoke_with(args, policy, bulk))) {
        Ok(Ok(enc)) => outcome_of(enc),
        Ok(Err(RunFault::TooLarge { size, limit })) => ItemOutcome::TooLarge {
            size: size as u64,
            limit: limit as u64,
        },
        Ok(Err(fault)) => {
            // A failed memfd was dropped with the results already in it.
            *lost |= matches!(fault, RunFault::Io(_));
            ItemOutcome::Fault(format!("task {} could not run: {fault:?}", entry.name()))
        }
        Err(payload) => ItemOutcome::Panicked(panic_text(&*payload)),
    }
}

/// Runs the calls of one job in the worker: each result inline, in the
/// job's memfd (`bulk`) if large or past the frame's inline budget, or
/// refused over the limit.
fn run_job<'a>(
    entry: &TaskEntry,
    args: impl Iterator<Item = ArgBytes<'a>>,
    policy: OutPolicy,
    bulk: &mut Option<Filling>,
    lost: &mut bool,
) -> Vec<ItemOutcome> {
    let mut inline = 0usize;
    args.map(|a| {
        let mut out = run_entry(entry, a, policy, bulk, lost);
        let enc = out.encoding_mut();
        match enc {
            ItemOutcome::Ok(v) if inline + v.len() > INLINE_BUDGET => {
                let appended = match bulk.take() {
                    Some(f) => Ok(f),
                    None => Filling::new(),
                }
                .and_then(|mut f| f.append(v).map(|r| (f, r)));
                *enc = match appended {
                    Ok((f, (at, len))) => {
                        *bulk = Some(f);
                        ItemOutcome::Bulk(at as u64, len as u64)
                    }
                    // The memfd is dropped with whatever it held: a later
                    // result starts a new one, and an earlier one in it is
                    // failed afterwards (`lost_bulk`).
                    Err(e) => {
                        *lost = true;
                        ItemOutcome::Fault(format!(
                            "could not place the result in shared memory: {e}"
                        ))
                    }
                };
            }
            ItemOutcome::Ok(v) => inline += v.len(),
            _ => {}
        }
        out
    })
    .collect()
}

/// After a memfd failed (and was dropped), fails every `Bulk` outcome of
/// the job and drops the memfd: none of them is sent.
fn lost_bulk(outs: &mut [ItemOutcome], bulk: &mut Option<Filling>) {
    *bulk = None;
    for o in outs {
        if let ItemOutcome::Bulk(..) = o.encoding() {
            // A `Shared` one's buffers go with it (none is sent).
            *o = ItemOutcome::Fault("could not place the result in shared memory".into());
        }
    }
}

fn lookup(name: &str) -> Result<&'static TaskEntry, String> {
    task::lookup(name).ok_or_else(|| format!("unknown task {name} in the pool worker"))
}

/// Runs every call of a job of task `name` here, in this process, as a
/// worker would (`CallJob::run_here`).
pub(crate) fn run_here(name: &str, args: &[Vec<u8>]) -> Vec<ItemOutcome> {
    match task::lookup(name) {
        Some(e) => args
            .iter()
            .map(|a| {
                run_entry(
                    e,
                    ArgBytes::Borrowed(a),
                    OutPolicy::INLINE,
                    &mut None,
                    &mut false,
                )
            })
            .collect(),
        None => {
            let m = format!("unknown task {name} in this program");
            args.iter().map(|_| ItemOutcome::Fault(m.clone())).collect()
        }
    }
}

/// The pool worker: runs the initializer, then jobs until told to stop, the
/// parent goes away, or `max_tasks` jobs are done (Python's `worker()` of
/// `multiprocessing.pool` and `_process_worker` of `concurrent.futures`).
#[crate::task]
fn pool_worker(
    link: WorkerEnds,
    init: Option<(String, Vec<u8>)>,
    max_tasks: u64,
    max_payload: u64,
) {
    let Ok((mut rx, tx)) = link.open() else {
        return;
    };
    let policy = OutPolicy {
        bulk_from: BULK_FROM,
        limit: usize::try_from(max_payload).unwrap_or(usize::MAX),
    };
    let mut out = Vec::new();
    // The frame's memfd (its `Bulk` outcomes) goes first, on the socket,
    // then each `Shared` outcome's buffers, in order.
    let mut send = |msg: &FromWorker, bulk: Option<Filling>| {
        out.clear();
        if let Some(f) = bulk {
            let Ok(sealed) = f.seal() else {
                return false;
            };
            if tx.send_fds(&[sealed.fd()]).is_err() {
                return false;
            }
        }
        if let FromWorker::Done(outs) | FromWorker::DoneBulk(_, outs) = msg {
            let fds: Option<Vec<_>> = outs
                .iter()
                .flat_map(|o| match o {
                    ItemOutcome::Shared { held, .. } => held.as_slice(),
                    _ => &[][..],
                })
                .map(|m| m.fd())
                .collect();
            // (Every exported buffer keeps its descriptor.)
            match fds {
                Some(fds) if tx.send_fds(&fds).is_ok() => {}
                _ => return false,
            }
        }
        link::push_frame(&mut out, msg).is_ok() && tx.write_all(&out).is_ok()
    };
    if let Some((name, args)) = init {
        let failed = match lookup(&name) {
            Ok(entry) => match run_entry(
                entry,
                ArgBytes::Borrowed(&args),
                policy,
                &mut None,
                &mut false,
            ) {
                ItemOutcome::Panicked(m) | ItemOutcome::Fault(m) => Some(m),
                _ => None,
            },
            Err(m) => Some(m),
        };
        if let Some(m) = failed {
            send(&FromWorker::InitFailed(m), None);
            return;
        }
    }
    let mut cached: Option<&'static TaskEntry> = None;
    let mut done = 0u64;
    loop {
        let msg = match rx.recv::<ToWorker>() {
            Ok(ToWorker::Stop) | Err(_) => return,
            Ok(m) => m,
        };
        let (ToWorker::Run { name, .. } | ToWorker::RunBulk { name, .. }) = &msg else {
            return;
        };
        // The run's span, a child of the submit's (feature `tracing`).
        #[cfg(feature = "tracing")]
        let remote = {
            let tp = match &msg {
                ToWorker::Run { trace, .. } | ToWorker::RunBulk { trace, .. } => trace.as_deref(),
                ToWorker::Stop => None,
            };
            crate::trace::RemoteSpan::new("process", name, &std::process::id().to_string(), tp)
        };
        #[cfg(feature = "tracing")]
        let entered = remote.enter();
        #[cfg(feature = "tracing")]
        tracing::trace!("started");
        let entry = match cached {
            Some(e) if e.name() == name => Ok(e),
            _ => lookup(name),
        };
        let mut bulk = None;
        let mut lost = false;
        let mut outs = match msg {
            ToWorker::Run { args, .. } => match entry {
                Ok(e) => {
                    cached = Some(e);
                    let args = args.iter().map(|a| ArgBytes::Borrowed(a));
                    run_job(e, args, policy, &mut bulk, &mut lost)
                }
                Err(m) => args.iter().map(|_| ItemOutcome::Fault(m.clone())).collect(),
            },
            ToWorker::RunBulk {
                bulk: size, args, ..
            } => {
                let n = args.len();
                // The frame's memfd came first: take it even if the task is
                // unknown (the socket stays in step).
                let map = rx
                    .recv_fd()
                    .and_then(|fd| Mapped::open(fd, size as usize))
                    .map(Arc::new)
                    .map_err(|e| format!("the large arguments could not be received: {e}"));
                match (entry, map) {
                    (Ok(e), Ok(map)) => {
                        cached = Some(e);
                        let args: Result<Vec<ArgBytes<'_>>, String> = args
                            .into_iter()
                            .map(|a| match a {
                                WireArg::Inline(v) => Ok(ArgBytes::Owned(v)),
                                WireArg::Bulk(at, len) => MappedSlice::new(&map, at, len)
                                    .map(ArgBytes::Mapped)
                                    .map_err(|e| e.to_string()),
                            })
                            .collect();
                        // The slices hold the mapping; it goes with the last.
                        drop(map);
                        match args {
                            Ok(args) => run_job(e, args.into_iter(), policy, &mut bulk, &mut lost),
                            Err(m) => (0..n).map(|_| ItemOutcome::Fault(m.clone())).collect(),
                        }
                    }
                    (Err(m), _) | (_, Err(m)) => {
                        (0..n).map(|_| ItemOutcome::Fault(m.clone())).collect()
                    }
                }
            }
            ToWorker::Stop => return,
        };
        if lost {
            lost_bulk(&mut outs, &mut bulk);
        }
        #[cfg(feature = "tracing")]
        {
            let failed = outs
                .iter()
                .filter(|o| !matches!(o.encoding(), ItemOutcome::Ok(_) | ItemOutcome::Bulk(..)))
                .count();
            tracing::trace!(calls = outs.len(), failed, "finished");
            drop(entered);
        }
        // Answered before the next job starts: a worker that dies has run
        // exactly the jobs it answered, plus the one it was running.
        let msg = match &bulk {
            Some(f) => FromWorker::DoneBulk(f.len() as u64, outs),
            None => FromWorker::Done(outs),
        };
        if !send(&msg, bulk) {
            return;
        }
        done += 1;
        if max_tasks != 0 && done >= max_tasks {
            return;
        }
    }
}

/// The worker's call, for `Process::builder().task(..)`.
pub(crate) fn worker_call(
    link: WorkerEnds,
    init: Option<(String, Vec<u8>)>,
    max_tasks: u64,
    max_payload: usize,
) -> crate::process::TaskCall {
    pool_worker::call(link, init, max_tasks, max_payload as u64).into()
}

/// The message of a panic payload (`&str` or `String`), like the default hook.
/// Byte strings as serde *bytes* (one length and a copy in postcard), not as
/// sequences of `u8` (one call per byte).
struct BytesRef<'a>(&'a [u8]);

impl Serialize for BytesRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

struct ByteBuf(Vec<u8>);

impl<'de> Deserialize<'de> for ByteBuf {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ByteBuf;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<ByteBuf, E> {
                Ok(ByteBuf(v.to_vec()))
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<ByteBuf, E> {
                Ok(ByteBuf(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<ByteBuf, A::Error> {
                let mut v = Vec::new();
                while let Some(b) = a.next_element::<u8>()? {
                    v.push(b);
                }
                Ok(ByteBuf(v))
            }
        }
        d.deserialize_bytes(V)
    }
}

mod bytes_seq {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::{ByteBuf, BytesRef};

    pub(super) fn serialize<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|b| BytesRef(b)))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        let v: Vec<ByteBuf> = Vec::deserialize(d)?;
        Ok(v.into_iter().map(|b| b.0).collect())
    }
}

mod bytes_one {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{ByteBuf, BytesRef};

    pub(super) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        BytesRef(v).serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        Ok(ByteBuf::deserialize(d)?.0)
    }
}
