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
use crate::process::task::{self, TaskEntry};
use crate::util::panic_text;

/// What a worker is told (the owned, decoding side).
#[derive(Debug, Deserialize)]
pub(crate) enum ToWorker {
    /// Run the task `name` once per argument set, answer with `Done`.
    Run {
        name: String,
        #[serde(with = "bytes_seq")]
        args: Vec<Vec<u8>>,
    },
    /// Exit now (the pool is closing and has nothing more for this worker).
    Stop,
}

/// What a worker is told (the borrowed, encoding side; same wire format).
#[derive(Debug, Serialize)]
pub(crate) enum ToWorkerRef<'a> {
    Run {
        name: &'a str,
        #[serde(serialize_with = "bytes_seq::serialize")]
        args: &'a [Vec<u8>],
    },
    Stop,
}

/// What a worker answers.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum FromWorker {
    /// The outcomes of the oldest unanswered job, one per call.
    Done(Vec<ItemOutcome>),
    /// The initializer failed (its panic message); the worker exits.
    InitFailed(String),
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
}

/// Runs one call of `entry` under `catch_unwind`.
fn run_entry(entry: &TaskEntry, args: &[u8]) -> ItemOutcome {
    match panic::catch_unwind(AssertUnwindSafe(|| entry.invoke(args))) {
        Ok(Ok(bytes)) => ItemOutcome::Ok(bytes),
        Ok(Err(fault)) => {
            ItemOutcome::Fault(format!("task {} could not run: {fault:?}", entry.name()))
        }
        Err(payload) => ItemOutcome::Panicked(panic_text(&*payload)),
    }
}

fn lookup(name: &str) -> Result<&'static TaskEntry, String> {
    task::lookup(name).ok_or_else(|| format!("unknown task {name} in the pool worker"))
}

/// Runs every call of a job of task `name` here, in this process, as a
/// worker would (`CallJob::run_here`).
pub(crate) fn run_here(name: &str, args: &[Vec<u8>]) -> Vec<ItemOutcome> {
    match task::lookup(name) {
        Some(e) => args.iter().map(|a| run_entry(e, a)).collect(),
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
fn pool_worker(link: WorkerEnds, init: Option<(String, Vec<u8>)>, max_tasks: u64) {
    let (mut rx, tx) = link.open();
    let mut out = Vec::new();
    let mut send = |msg: &FromWorker| {
        out.clear();
        link::push_frame(&mut out, msg).is_ok() && tx.write_all(&out).is_ok()
    };
    if let Some((name, args)) = init {
        let failed = match lookup(&name) {
            Ok(entry) => match run_entry(entry, &args) {
                ItemOutcome::Ok(_) => None,
                ItemOutcome::Panicked(m) | ItemOutcome::Fault(m) => Some(m),
            },
            Err(m) => Some(m),
        };
        if let Some(m) = failed {
            send(&FromWorker::InitFailed(m));
            return;
        }
    }
    let mut cached: Option<&'static TaskEntry> = None;
    let mut done = 0u64;
    loop {
        let (name, args) = match rx.recv::<ToWorker>() {
            Ok(ToWorker::Run { name, args }) => (name, args),
            Ok(ToWorker::Stop) | Err(_) => return,
        };
        let entry = match cached {
            Some(e) if e.name() == name => Ok(e),
            _ => lookup(&name),
        };
        let outs = match entry {
            Ok(e) => {
                cached = Some(e);
                args.iter().map(|a| run_entry(e, a)).collect()
            }
            Err(m) => args.iter().map(|_| ItemOutcome::Fault(m.clone())).collect(),
        };
        // Answered before the next job starts: a worker that dies has run
        // exactly the jobs it answered, plus the one it was running.
        if !send(&FromWorker::Done(outs)) {
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
) -> crate::process::TaskCall {
    pool_worker::call(link, init, max_tasks).into()
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
