//! Running a registered task by name from anywhere: [`invoke`] (what a
//! worker on another host calls), its typed [`TaskFault`], the wire form of
//! a call ([`EncodedCall`], MessagePack), task signatures
//! ([`signature_of`]) and the start-up check for duplicate names
//! ([`check_tasks`]).
//!
//! The pools of this crate keep their own, faster encoding (postcard, with
//! descriptors passed beside the bytes); this is the *network* form: it
//! names struct fields, so a peer built from a slightly different program
//! fails to decode with a message instead of reading garbage, and it never
//! carries file descriptors.
#![forbid(unsafe_code)]

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::task::{self, RunFault, Task};
use crate::ipc::fdpass;
use crate::util::panic_text;

/// FNV-1a 64 of `input`'s bytes: how a task's
/// [`SIGNATURE`](Task::SIGNATURE) is computed from its spelled-out
/// signature. `#[spindle::task]` hashes `(A1,A2,..)->R` — each argument
/// type's tokens and the return type's (`()` when there is none), every
/// whitespace character removed, arguments separated by `,` — so
///
/// ```
/// #[spindle::task]
/// fn scale(v: Vec<f64>, by: f64) -> Vec<f64> {
///     v.into_iter().map(|x| x * by).collect()
/// }
///
/// use spindle::process::{Task, signature_of};
/// assert_eq!(scale::SIGNATURE, signature_of("(Vec<f64>,f64)->Vec<f64>"));
/// ```
pub const fn signature_of(input: &str) -> u64 {
    let bytes = input.as_bytes();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

/// Why [`invoke`] could not give a task's result. Every variant names the
/// task. Serde-serialisable, so a worker can send it back to the caller.
///
/// Python's nearest equivalents: an `AttributeError` while unpickling a
/// function that does not exist, `TypeError` for wrong arguments, a
/// `PicklingError` for a result that cannot be pickled, and the exception the
/// function raised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum TaskFault {
    /// No task of this name is registered in this program.
    UnknownTask {
        /// The name asked for.
        name: String,
    },
    /// The task exists but the caller was built against another signature
    /// of it (see [`Task::SIGNATURE`]); nothing was decoded or run.
    SignatureMismatch {
        /// The task's name.
        name: String,
        /// The signature registered in this program.
        expected: u64,
        /// The signature the caller sent.
        found: u64,
    },
    /// The argument bytes are not a MessagePack encoding of the task's
    /// argument tuple; the task did not run.
    ArgDecode {
        /// The task's name.
        name: String,
        /// The decoder's message.
        reason: String,
    },
    /// The task ran but its result could not be encoded as MessagePack.
    ResultEncode {
        /// The task's name.
        name: String,
        /// The encoder's message.
        reason: String,
    },
    /// The task panicked; the panic was caught.
    Panicked {
        /// The task's name.
        name: String,
        /// The panic's message.
        message: String,
    },
}

impl TaskFault {
    /// The task's name.
    pub fn task(&self) -> &str {
        match self {
            TaskFault::UnknownTask { name }
            | TaskFault::SignatureMismatch { name, .. }
            | TaskFault::ArgDecode { name, .. }
            | TaskFault::ResultEncode { name, .. }
            | TaskFault::Panicked { name, .. } => name,
        }
    }
}

impl fmt::Display for TaskFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskFault::UnknownTask { name } => {
                write!(f, "no task named {name} is registered in this program")
            }
            TaskFault::SignatureMismatch {
                name,
                expected,
                found,
            } => write!(
                f,
                "task {name} has signature {expected:#018x} here, the caller sent \
                 {found:#018x}: the two sides were built from different code"
            ),
            TaskFault::ArgDecode { name, reason } => {
                write!(
                    f,
                    "the arguments of task {name} could not be decoded: {reason}"
                )
            }
            TaskFault::ResultEncode { name, reason } => {
                write!(
                    f,
                    "the result of task {name} could not be encoded: {reason}"
                )
            }
            TaskFault::Panicked { name, message } => write!(f, "task {name} panicked: {message}"),
        }
    }
}

impl std::error::Error for TaskFault {}

/// Runs the registered task `name` with MessagePack-encoded `args` (its
/// argument tuple) and returns its MessagePack-encoded result (named
/// fields): what a worker does with an [`EncodedCall`] that came over the
/// network. `signature` is the caller's [`Task::SIGNATURE`] of the task,
/// checked before anything is decoded. The task runs on this thread, under
/// `catch_unwind`: a panic is [`TaskFault::Panicked`] (the panic hook still
/// prints it, as everywhere in spindle).
///
/// # Errors
///
/// [`TaskFault::UnknownTask`], [`TaskFault::SignatureMismatch`],
/// [`TaskFault::ArgDecode`], [`TaskFault::ResultEncode`],
/// [`TaskFault::Panicked`].
///
/// # Examples
///
/// ```
/// use spindle::process::{EncodedCall, Task, invoke};
///
/// #[spindle::task]
/// fn add(a: u64, b: u64) -> u64 {
///     a + b
/// }
///
/// let call = EncodedCall::new(&add::call(2, 3)).unwrap();
/// let out = invoke(&call.name, add::SIGNATURE, &call.args).unwrap();
/// assert_eq!(EncodedCall::decode_result::<add>(&out).unwrap(), 5);
/// ```
pub fn invoke(name: &str, signature: u64, args: &[u8]) -> Result<Vec<u8>, TaskFault> {
    let mut out = Vec::with_capacity(task::RESULT_CAPACITY);
    invoke_into(name, signature, args, &mut out).map(|()| out)
}

/// [`invoke`], appending the encoded result to `out` instead of returning
/// it: a worker running many calls keeps their results in one buffer (one
/// allocation for all, not one each). On an error `out` is left as it was.
///
/// # Errors
///
/// As [`invoke`].
///
/// # Examples
///
/// ```
/// use spindle::process::{EncodedCall, Task, invoke_into};
///
/// #[spindle::task]
/// fn double(n: u64) -> u64 {
///     n * 2
/// }
///
/// let mut out = Vec::new();
/// let mut ends = Vec::new();
/// for n in 1..=3 {
///     let call = EncodedCall::new(&double::call(n)).unwrap();
///     invoke_into(&call.name, double::SIGNATURE, &call.args, &mut out).unwrap();
///     ends.push(out.len());
/// }
/// let second = &out[ends[0]..ends[1]];
/// assert_eq!(EncodedCall::decode_result::<double>(second).unwrap(), 4);
/// ```
pub fn invoke_into(
    name: &str,
    signature: u64,
    args: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), TaskFault> {
    let Some(entry) = task::lookup(name) else {
        return Err(TaskFault::UnknownTask { name: name.into() });
    };
    if entry.signature() != signature {
        return Err(TaskFault::SignatureMismatch {
            name: name.into(),
            expected: entry.signature(),
            found: signature,
        });
    }
    let start = out.len();
    match catch_unwind(AssertUnwindSafe(|| entry.invoke_net(args, out))) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(RunFault::Decode(reason))) => Err(TaskFault::ArgDecode {
            name: name.into(),
            reason,
        }),
        Ok(Err(RunFault::Encode(reason) | RunFault::Io(reason))) => Err(TaskFault::ResultEncode {
            name: name.into(),
            reason,
        }),
        // Not produced by the network path (no size limit there).
        Ok(Err(RunFault::TooLarge { size, limit })) => Err(TaskFault::ResultEncode {
            name: name.into(),
            reason: format!("{size} bytes over the limit of {limit}"),
        }),
        Err(payload) => {
            // A panic while the result was being written (a `Serialize`
            // that panics) leaves part of it: take it back.
            out.truncate(start);
            Err(TaskFault::Panicked {
                name: name.into(),
                message: panic_text(&*payload),
            })
        }
    }
}

/// A call in its network form: the task's stable name, its
/// [`SIGNATURE`](Task::SIGNATURE) and its argument tuple encoded as
/// MessagePack with named fields (`rmp_serde::to_vec_named`). Itself
/// serde-serialisable (the arguments as a MessagePack *bin*), to send to a
/// worker, which runs it with [`invoke`] (or [`EncodedCall::invoke`]).
///
/// # Examples
///
/// ```
/// use spindle::process::EncodedCall;
///
/// #[spindle::task]
/// fn shout(s: String) -> String {
///     s.to_uppercase()
/// }
///
/// let call = EncodedCall::new(&shout::call("hi".into())).unwrap();
/// let out = call.invoke().unwrap();
/// assert_eq!(EncodedCall::decode_result::<shout>(&out).unwrap(), "HI");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncodedCall {
    /// The task's stable name (`module::path::fn_name`).
    pub name: String,
    /// The caller's [`Task::SIGNATURE`] of the task.
    pub signature: u64,
    /// The MessagePack-encoded argument tuple.
    #[serde(with = "serde_bytes")]
    pub args: Vec<u8>,
}

impl EncodedCall {
    /// Encodes the arguments of a call of `T` (what
    /// [`EncodedCall::new`] does with a [`Call`](super::Call)'s).
    ///
    /// # Errors
    ///
    /// As [`EncodedCall::new`].
    pub(crate) fn of_args<T: Task>(args: &T::Args) -> Result<EncodedCall, WireError> {
        Ok(EncodedCall {
            name: T::NAME.to_string(),
            signature: T::SIGNATURE,
            args: encode_net(T::NAME, args)?,
        })
    }

    /// Runs it here: [`invoke`]`(&self.name, self.signature, &self.args)`.
    ///
    /// # Errors
    ///
    /// As [`invoke`].
    pub fn invoke(&self) -> Result<Vec<u8>, TaskFault> {
        invoke(&self.name, self.signature, &self.args)
    }

    /// Decodes a result that [`invoke`] returned for a call of `T`.
    ///
    /// # Errors
    ///
    /// [`WireError::Decode`] if the bytes are not `T`'s output.
    pub fn decode_result<T: Task>(bytes: &[u8]) -> Result<T::Output, WireError> {
        decode_net(T::NAME, bytes)
    }
}

/// A call or a result that cannot be put in (or read from) its network form.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    /// An argument holds file descriptors (a `Connection`, a queue, a
    /// shared object), which cannot travel to another host. Python raises
    /// a `TypeError` pickling such an object for a remote process.
    CarriesDescriptors {
        /// The task's name.
        task: &'static str,
        /// How many descriptors were found (at most 64 are counted).
        count: usize,
    },
    /// serde could not encode the arguments.
    Encode {
        /// The task's name.
        task: &'static str,
        /// The encoder's message.
        reason: String,
    },
    /// The bytes are not the task's result.
    Decode {
        /// The task's name.
        task: &'static str,
        /// The decoder's message.
        reason: String,
    },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::CarriesDescriptors { task, count } => write!(
                f,
                "the arguments of task {task} carry {count} file descriptor(s) (a Connection, \
                 a queue or a shared object), which cannot travel over the network"
            ),
            WireError::Encode { task, reason } => {
                write!(
                    f,
                    "the arguments of task {task} could not be encoded: {reason}"
                )
            }
            WireError::Decode { task, reason } => {
                write!(
                    f,
                    "the result of task {task} could not be decoded: {reason}"
                )
            }
        }
    }
}

impl std::error::Error for WireError {}

/// Encodes `args` in the network form, refusing descriptors.
pub(crate) fn encode_net<A: Serialize>(task: &'static str, args: &A) -> Result<Vec<u8>, WireError> {
    // A descriptor-carrying value serialises its descriptors into the
    // collection while one is active: seeing any is the refusal (outside a
    // collection it would fail with a message about `TaskCall`, which is
    // not the cause here).
    let (res, fds) = fdpass::collect(|| {
        let mut buf = Vec::with_capacity(task::RESULT_CAPACITY);
        rmp_serde::encode::write_named(&mut buf, args).map(|()| buf)
    });
    if !fds.is_empty() {
        return Err(WireError::CarriesDescriptors {
            task,
            count: fds.len(),
        });
    }
    res.map_err(|e| WireError::Encode {
        task,
        reason: e.to_string(),
    })
}

/// [`encode_net`]'s checks without keeping the bytes (encoded into a
/// counting sink).
pub(crate) fn check_net<A: Serialize>(task: &'static str, args: &A) -> Result<(), WireError> {
    let (res, fds) = fdpass::collect(|| rmp_serde::encode::write_named(&mut std::io::sink(), args));
    if !fds.is_empty() {
        return Err(WireError::CarriesDescriptors {
            task,
            count: fds.len(),
        });
    }
    res.map_err(|e| WireError::Encode {
        task,
        reason: e.to_string(),
    })
}

/// Decodes a network-form result.
pub(crate) fn decode_net<O: DeserializeOwned>(
    task: &'static str,
    bytes: &[u8],
) -> Result<O, WireError> {
    rmp_serde::from_slice(bytes).map_err(|e| WireError::Decode {
        task,
        reason: e.to_string(),
    })
}

/// The task names registered more than once in this program, sorted (empty
/// when every name is unique).
///
/// Two `#[spindle::task]` functions of one name in one module (in two
/// function bodies) share a name; [`invoke`] and the pools then run the
/// first registered, which the linker picks. Within one binary that choice
/// is the same in every process, but two builds may pick differently, so a
/// worker serving calls from other hosts should refuse to start:
/// [`check_tasks`].
pub fn duplicate_tasks() -> Vec<&'static str> {
    // Sorted, so a name registered twice is next to itself.
    let names = super::task_names();
    let mut dups: Vec<&'static str> = names
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| w[0])
        .collect();
    dups.dedup();
    dups
}

/// Checks that every registered task name is unique; to call when a worker
/// starts.
///
/// # Errors
///
/// [`DuplicateTasks`] naming the duplicated names.
pub fn check_tasks() -> Result<(), DuplicateTasks> {
    let names = duplicate_tasks();
    if names.is_empty() {
        Ok(())
    } else {
        Err(DuplicateTasks { names })
    }
}

/// Task names registered more than once ([`check_tasks`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateTasks {
    names: Vec<&'static str>,
}

impl DuplicateTasks {
    /// The duplicated names, sorted.
    pub fn names(&self) -> &[&'static str] {
        &self.names
    }
}

impl fmt::Display for DuplicateTasks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "task names registered more than once (two #[spindle::task] functions of one \
             name in one module): {}",
            self.names.join(", ")
        )
    }
}

impl std::error::Error for DuplicateTasks {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_known_values() {
        // The FNV reference values (draft-eastlake-fnv): "" and "a".
        assert_eq!(signature_of(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(signature_of("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(signature_of("foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn fault_names_its_task() {
        let f = TaskFault::ArgDecode {
            name: "x::y".into(),
            reason: "bad".into(),
        };
        assert_eq!(f.task(), "x::y");
        assert!(f.to_string().contains("x::y"));
    }
}
