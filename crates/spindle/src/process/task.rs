//! Tasks: named functions with serde arguments and result, found by name in
//! any process of the same program (the Rust form of "picklable").

use std::fmt;
use std::os::fd::OwnedFd;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ipc::fdpass;
use crate::ipc::sealed::{Filling, Mapped, MappedSlice};
use std::sync::Arc;

/// A function that can run in another process, found there by its stable
/// [`NAME`](Self::NAME). Implemented by `#[spindle::task]`; you do not
/// implement it by hand.
///
/// Python pickles a function by its qualified name; spindle does the same with
/// `module_path!() + "::" + fn name`, so a name means the same function in
/// every build of the same program (and, later, on other hosts).
pub trait Task: 'static {
    /// The arguments, as a tuple.
    type Args: Serialize + DeserializeOwned;
    /// The result.
    type Output: Serialize + DeserializeOwned;
    /// The stable name: `module::path::fn_name`.
    const NAME: &'static str;
    /// A hash of the task's signature *as written*: FNV-1a 64 of
    /// `(A1,A2,..)->R`, where each `Ai` is an argument type's tokens and `R`
    /// the return type's (`()` if none), all whitespace removed (so `fn
    /// f(a: u64, b: Vec<String>) -> bool` hashes `(u64,Vec<String>)->bool`;
    /// see [`signature_of`](super::signature_of)). `#[spindle::task]`
    /// computes it at compile time.
    ///
    /// [`invoke`](super::invoke) compares it with the caller's, so a caller
    /// built against another signature of the task gets
    /// [`TaskFault::SignatureMismatch`](super::TaskFault::SignatureMismatch)
    /// instead of a garbled decode. It hashes the *spelling*: `Vec<u8>` and
    /// `std::vec::Vec<u8>` differ, and a field changed inside a user struct
    /// used as an argument is not seen at all (the struct's name is the
    /// same); such a call then fails to decode, as
    /// [`TaskFault::ArgDecode`](super::TaskFault::ArgDecode), because the
    /// network encoding names its fields.
    const SIGNATURE: u64;
    /// Calls the function.
    fn run(args: Self::Args) -> Self::Output;
}

/// A task and its encoded arguments, ready to run in another process: the
/// untyped form of a [`Call`](super::Call) (`my_task::call(args..).into()`),
/// which [`Process::new`](super::Process::new) takes.
///
/// Arguments are encoded when the call is built; a [`Connection`] among them
/// travels as its file descriptors beside the bytes.
///
/// [`Connection`]: crate::ipc::Connection
pub struct TaskCall {
    pub(crate) name: String,
    pub(crate) args: Vec<u8>,
    pub(crate) fds: Vec<OwnedFd>,
    pub(crate) encode_error: Option<String>,
}

impl TaskCall {
    /// Encodes a call of `T` with `args`; used by the code `#[spindle::task]`
    /// generates.
    pub fn new<T: Task>(args: &T::Args) -> TaskCall {
        let (res, fds) = fdpass::collect(|| postcard::to_allocvec(args));
        match res {
            Ok(bytes) => TaskCall {
                name: T::NAME.to_string(),
                args: bytes,
                fds,
                encode_error: None,
            },
            Err(e) => TaskCall {
                name: T::NAME.to_string(),
                args: Vec::new(),
                fds: Vec::new(),
                encode_error: Some(e.to_string()),
            },
        }
    }

    /// A call by name with already-encoded (postcard) arguments: for tools
    /// that name tasks at run time. An unknown name fails at `start` with
    /// [`ProcessError::is_unknown_task`](super::ProcessError::is_unknown_task);
    /// bytes that do not decode fail in the child and come back from `join`
    /// as [`ProcessError::is_arg_decode`](super::ProcessError::is_arg_decode).
    pub fn from_raw(name: impl Into<String>, args: Vec<u8>) -> TaskCall {
        TaskCall {
            name: name.into(),
            args,
            fds: Vec::new(),
            encode_error: None,
        }
    }

    /// The task's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for TaskCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskCall")
            .field("name", &self.name)
            .field("args_len", &self.args.len())
            .field("fds", &self.fds.len())
            .finish()
    }
}

/// The default limit on a task's encoded arguments and on its encoded
/// result (2 GiB), for [`Process`](super::Process),
/// [`Pool`](super::Pool) and [`ProcessPoolExecutor`](super::ProcessPoolExecutor)
/// (their builders' `max_payload`). Past it the sender refuses with
/// [`TooLarge`](crate::futures::TooLarge) before anything is written.
pub const DEFAULT_MAX_PAYLOAD: usize = 2 << 30;

/// Encoded arguments or results from this size on travel in a sealed memfd
/// (passed with `SCM_RIGHTS` and mapped read-only by the receiver) instead
/// of through the pipe.
pub(crate) const BULK_FROM: usize = 256 << 10;

/// At most this many bytes of arguments (or results) travel inline in one
/// pool frame; the rest of a large `map` chunk goes in memfds, so no frame
/// reaches the link's frame limit.
pub(crate) const INLINE_BUDGET: usize = 16 << 20;

/// Why a task could not run (the panic case is handled by the caller).
#[derive(Debug)]
pub(crate) enum RunFault {
    /// The argument bytes are not the task's `Args`.
    Decode(String),
    /// The result could not be encoded.
    Encode(String),
    /// The encoded result is larger than the limit (nothing was encoded).
    TooLarge { size: usize, limit: usize },
    /// The sealed memfd for a large result could not be made.
    Io(String),
}

/// Where a task's encoded result goes: inline below `bulk_from` bytes, a
/// sealed memfd from there, refused over `limit`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutPolicy {
    pub(crate) bulk_from: usize,
    pub(crate) limit: usize,
}

impl OutPolicy {
    /// Everything inline, no limit (a `Process` target, whose result stays
    /// in the child).
    pub(crate) const INLINE: OutPolicy = OutPolicy {
        bulk_from: usize::MAX,
        limit: usize::MAX,
    };
}

/// A task's encoded result.
#[derive(Debug)]
pub(crate) enum Encoded {
    Inline(Vec<u8>),
    /// Appended to the frame's memfd: offset and length.
    Bulk(usize, usize),
    /// An encoding (`Inline` or `Bulk`) whose frozen `SharedBytesMut`
    /// buffers travel by descriptor: each with its ordinal among the
    /// result's `SharedBytes` (`ipc::exporting`).
    Shared(Box<Encoded>, Vec<(u32, Arc<Mapped>)>),
}

/// A task's encoded arguments: borrowed bytes, or a received sealed memfd,
/// unmapped as soon as they are decoded.
pub(crate) enum ArgBytes<'a> {
    Borrowed(&'a [u8]),
    Owned(Vec<u8>),
    Mapped(MappedSlice),
}

impl std::ops::Deref for ArgBytes<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            ArgBytes::Borrowed(b) => b,
            ArgBytes::Owned(v) => v,
            ArgBytes::Mapped(m) => m,
        }
    }
}

/// One registry entry, placed by `#[spindle::task]` in the `spindle_tasks`
/// link section. Public only for the macro.
#[doc(hidden)]
#[derive(Debug)]
#[repr(C)]
pub struct TaskEntry {
    name: &'static str,
    signature: u64,
    invoke: fn(ArgBytes<'_>, OutPolicy, &mut Option<Filling>) -> Result<Encoded, RunFault>,
    /// Decode MessagePack arguments, run, encode the result as MessagePack
    /// (named fields): the network form ([`super::invoke`]).
    invoke_net: fn(&[u8], &mut Vec<u8>) -> Result<(), RunFault>,
}

impl TaskEntry {
    /// The entry of `T`.
    pub const fn of<T: Task>() -> TaskEntry {
        TaskEntry {
            name: T::NAME,
            signature: T::SIGNATURE,
            invoke: invoke::<T>,
            invoke_net: invoke_net::<T>,
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    pub(crate) fn signature(&self) -> u64 {
        self.signature
    }

    /// Decodes MessagePack arguments, runs the task, appends its result,
    /// encoded as MessagePack, to `out` (no `catch_unwind` here: the
    /// caller's). On an error `out` is as it was.
    pub(crate) fn invoke_net(&self, args: &[u8], out: &mut Vec<u8>) -> Result<(), RunFault> {
        (self.invoke_net)(args, out)
    }

    /// Decodes the arguments, runs the task, encodes its result (inline).
    pub(crate) fn invoke(&self, args: &[u8]) -> Result<Vec<u8>, RunFault> {
        match (self.invoke)(ArgBytes::Borrowed(args), OutPolicy::INLINE, &mut None)? {
            Encoded::Inline(v) => Ok(v),
            Encoded::Bulk(..) | Encoded::Shared(..) => unreachable!("inline policy"),
        }
    }

    /// Decodes the arguments (dropping their mapping before the task runs),
    /// runs the task, and encodes its result as `out` says: a large one is
    /// appended to `bulk` (made on first use).
    pub(crate) fn invoke_with(
        &self,
        args: ArgBytes<'_>,
        out: OutPolicy,
        bulk: &mut Option<Filling>,
    ) -> Result<Encoded, RunFault> {
        (self.invoke)(args, out, bulk)
    }
}

fn invoke_net<T: Task>(bytes: &[u8], out: &mut Vec<u8>) -> Result<(), RunFault> {
    let args: T::Args =
        rmp_serde::from_slice(bytes).map_err(|e| RunFault::Decode(e.to_string()))?;
    let value = T::run(args);
    let start = out.len();
    rmp_serde::encode::write_named(out, &value).map_err(|e| {
        out.truncate(start);
        RunFault::Encode(e.to_string())
    })
}

/// The first capacity of a network-form result's (and arguments')
/// buffer: most fit, larger ones grow from there (an empty Vec grows
/// 8 → 16 → 32 bytes while a `u64` is written: three allocations where
/// one does).
pub(crate) const RESULT_CAPACITY: usize = 32;

fn invoke<T: Task>(
    bytes: ArgBytes<'_>,
    policy: OutPolicy,
    bulk: &mut Option<Filling>,
) -> Result<Encoded, RunFault> {
    let decode = || postcard::from_bytes(&bytes).map_err(|e| RunFault::Decode(e.to_string()));
    let args: T::Args = match &bytes {
        // A `SharedBytes` argument shares the mapping instead of copying.
        ArgBytes::Mapped(m) => crate::ipc::decoding_from(m.map(), decode)?,
        _ => decode()?,
    };
    // A large argument's mapping goes before the task runs (unless a
    // `SharedBytes` argument holds it): it is not held beside the decoded
    // value and the result.
    drop(bytes);
    let out = T::run(args);
    if policy.bulk_from == usize::MAX && policy.limit == usize::MAX {
        return postcard::to_allocvec(&out)
            .map(Encoded::Inline)
            .map_err(|e| RunFault::Encode(e.to_string()));
    }
    // The common case in one pass: encoded into a vector that gives up
    // past what may travel inline (a small result costs one comparison per
    // write more than before). A frozen `SharedBytesMut` in the result goes
    // by descriptor (`ipc::exporting`): its place holds an empty byte
    // string, so such a result is usually inline.
    let inline_max = policy.limit.min(policy.bulk_from.saturating_sub(1));
    let bounded = Bounded {
        v: Vec::new(),
        max: inline_max,
    };
    let (first, shared) = crate::ipc::exporting(|| postcard::serialize_with_flavor(&out, bounded));
    let full = match &first {
        Ok(_) if shared.is_empty() => None,
        Ok(_) | Err(postcard::Error::SerializeBufferFull) => {
            // The size as if every byte travelled in the encoding: what the
            // limit is about, wherever the bytes go.
            Some(
                postcard::experimental::serialized_size(&out)
                    .map_err(|e| RunFault::Encode(e.to_string()))?,
            )
        }
        Err(e) => return Err(RunFault::Encode(e.to_string())),
    };
    if let Some(size) = full
        && size > policy.limit
    {
        return Err(RunFault::TooLarge {
            size,
            limit: policy.limit,
        });
    }
    let (enc, shared) = match first {
        Ok(v) => (Encoded::Inline(v), shared),
        Err(_) => {
            let (enc, shared) = crate::ipc::exporting(|| encode_large(&out, policy, bulk));
            (enc?, shared)
        }
    };
    Ok(if shared.is_empty() {
        enc
    } else {
        Encoded::Shared(Box::new(enc), shared)
    })
}

/// Encodes a result too large to travel inline (under the limit): inline
/// after all if its encoding, without the buffers that go by descriptor,
/// is small, else appended to the frame's memfd `bulk`.
fn encode_large<O: serde::Serialize>(
    out: &O,
    policy: OutPolicy,
    bulk: &mut Option<Filling>,
) -> Result<Encoded, RunFault> {
    // Measured under an exporting of its own (the caller's collects the
    // encoding's buffers once, below).
    let (size, _) = crate::ipc::exporting(|| postcard::experimental::serialized_size(out));
    let size = size.map_err(|e| RunFault::Encode(e.to_string()))?;
    if size < policy.bulk_from {
        return postcard::to_allocvec(out)
            .map(Encoded::Inline)
            .map_err(|e| RunFault::Encode(e.to_string()));
    }
    // Encoded once, straight into the memfd that carries it: a byte
    // string's bytes go from the value to the file in one `write`.
    let io = |e: std::io::Error| {
        RunFault::Io(format!("could not place the result in shared memory: {e}"))
    };
    if bulk.is_none() {
        *bulk = Some(Filling::new().map_err(io)?);
    }
    let filling = bulk.as_mut().expect("made above");
    let appended = filling.append_with(|file| {
        let mut w = FileFlavor {
            file,
            buf: Vec::with_capacity(FLAVOR_BUF),
            err: None,
        };
        let r = serde::Serialize::serialize(out, &mut postcard::Serializer { output: &mut w });
        w.flush();
        match (r, w.err) {
            (_, Some(e)) => Err(e.to_string()),
            (Err(e), None) => Err(e.to_string()),
            (Ok(()), None) => Ok(()),
        }
    });
    let (at, len) = match appended {
        Ok(x) => x,
        Err(e) => {
            // A half-written memfd is of no use to the other results.
            *bulk = None;
            return Err(io(e));
        }
    };
    if len != size {
        *bulk = None;
        return Err(RunFault::Encode(format!(
            "the result encoded to {len} bytes, announced {size}"
        )));
    }
    Ok(Encoded::Bulk(at, len))
}

/// A postcard output into a vector of at most `max` bytes: past that it
/// fails with `SerializeBufferFull` (the result then takes the memfd path,
/// or is too large).
struct Bounded {
    v: Vec<u8>,
    max: usize,
}

impl postcard::ser_flavors::Flavor for Bounded {
    type Output = Vec<u8>;

    #[inline]
    fn try_push(&mut self, b: u8) -> postcard::Result<()> {
        if self.v.len() >= self.max {
            return Err(postcard::Error::SerializeBufferFull);
        }
        self.v.push(b);
        Ok(())
    }

    #[inline]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        if data.len() > self.max - self.v.len() {
            return Err(postcard::Error::SerializeBufferFull);
        }
        self.v.extend_from_slice(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<Vec<u8>> {
        Ok(self.v)
    }
}

/// Bytes a [`FileFlavor`] gathers before a `write`.
const FLAVOR_BUF: usize = 64 << 10;

/// A postcard output writing to a file: small pieces gathered, large ones
/// (a byte string's bytes) written straight from the value.
struct FileFlavor<'a> {
    file: &'a mut std::fs::File,
    buf: Vec<u8>,
    err: Option<std::io::Error>,
}

impl FileFlavor<'_> {
    fn flush(&mut self) {
        if self.err.is_none()
            && !self.buf.is_empty()
            && let Err(e) = std::io::Write::write_all(self.file, &self.buf)
        {
            self.err = Some(e);
        }
        self.buf.clear();
    }

    fn check(&self) -> postcard::Result<()> {
        match self.err {
            Some(_) => Err(postcard::Error::SerializeBufferFull),
            None => Ok(()),
        }
    }
}

impl postcard::ser_flavors::Flavor for &mut FileFlavor<'_> {
    type Output = ();

    fn try_push(&mut self, b: u8) -> postcard::Result<()> {
        self.buf.push(b);
        if self.buf.len() >= FLAVOR_BUF {
            self.flush();
        }
        self.check()
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        if self.buf.len() + data.len() <= FLAVOR_BUF {
            self.buf.extend_from_slice(data);
        } else {
            self.flush();
            if self.err.is_none()
                && let Err(e) = std::io::Write::write_all(self.file, data)
            {
                self.err = Some(e);
            }
        }
        self.check()
    }

    fn finalize(self) -> postcard::Result<()> {
        self.check()
    }
}

/// spindle's own task, a no-op: always registered, so the link section exists
/// in every program that can start processes. Written by hand (not with the
/// macro) so [`registry`] can name its entry and keep it in the link.
#[allow(non_camel_case_types)]
#[derive(Debug)]
pub(crate) struct __spindle_noop {}

impl Task for __spindle_noop {
    type Args = ();
    type Output = ();
    const NAME: &'static str = "spindle::process::noop";
    const SIGNATURE: u64 = super::signature_of("()->()");
    fn run((): ()) {}
}

#[used]
#[unsafe(link_section = "spindle_tasks")]
static NOOP_ENTRY: TaskEntry = TaskEntry::of::<__spindle_noop>();

unsafe extern "Rust" {
    // Defined by the linker around the `spindle_tasks` section (GNU ld, lld
    // and gold do this for any section whose name is a C identifier).
    #[link_name = "__start_spindle_tasks"]
    static START: TaskEntry;
    #[link_name = "__stop_spindle_tasks"]
    static STOP: TaskEntry;
}

/// Every registered task of this program.
pub(crate) fn registry() -> &'static [TaskEntry] {
    // Keep spindle's own entry (and so the section) in the link.
    std::hint::black_box(&raw const NOOP_ENTRY);
    // SAFETY: the linker sets START/STOP to the bounds of the `spindle_tasks`
    // section, which only holds `TaskEntry` statics (the macro is the only
    // writer, `#[repr(C)]`, each aligned to `TaskEntry`'s alignment and of a
    // size that is a multiple of it, so there is no padding between them).
    // The section exists because `NOOP_ENTRY` is in it, and it
    // is never written after load.
    unsafe {
        let start = &raw const START;
        let stop = &raw const STOP;
        let len = (stop as usize - start as usize) / std::mem::size_of::<TaskEntry>();
        std::slice::from_raw_parts(start, len)
    }
}

/// Finds a task by name (the first registered, if the name is taken twice:
/// see [`check_tasks`](super::check_tasks)).
///
/// A thread's last find is kept: a worker running a chunk of calls of one
/// task compares one name per call instead of scanning the registry.
pub(crate) fn lookup(name: &str) -> Option<&'static TaskEntry> {
    thread_local! {
        static LAST: std::cell::Cell<Option<&'static TaskEntry>> =
            const { std::cell::Cell::new(None) };
    }
    if let Some(e) = LAST.with(std::cell::Cell::get)
        && e.name() == name
    {
        return Some(e);
    }
    let found = registry().iter().find(|e| e.name() == name)?;
    LAST.with(|l| l.set(Some(found)));
    Some(found)
}

/// Every registered task's name and [`Task::SIGNATURE`], sorted by name:
/// what a worker's `--list` prints.
pub fn task_signatures() -> Vec<(&'static str, u64)> {
    let mut v: Vec<_> = registry()
        .iter()
        .map(|e| (e.name(), e.signature()))
        .collect();
    v.sort_unstable();
    v
}

/// The names of every registered task (sorted), e.g. for a worker's
/// `--list`.
pub fn task_names() -> Vec<&'static str> {
    let mut v: Vec<_> = registry().iter().map(TaskEntry::name).collect();
    v.sort_unstable();
    v
}
