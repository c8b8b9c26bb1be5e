//! Processes (Python's `multiprocessing.Process` and friends).
//!
//! A child process runs a **task** — a function registered with
//! [`#[spindle::task]`](crate::task), found by its stable name in the child —
//! or, with the [`Fork`](StartMethod::Fork) start method, a closure.
//!
//! Which start method should I use?
//! - [`ForkServer`](StartMethod::ForkServer) (the default, as in Python 3.14
//!   on Linux): safe in a multi-threaded program and starts children fast.
//! - [`Spawn`](StartMethod::Spawn): a fresh exec per child; the slowest, the
//!   most isolated.
//! - [`Fork`](StartMethod::Fork): the fastest and the only one that runs
//!   closures, but the child inherits a copy of every lock of the parent: if
//!   another thread held one (the allocator's, stdout's, a `Mutex`) at the
//!   moment of the fork, the child may deadlock on it. Use it in
//!   single-threaded programs, or for closures that touch nothing shared.
//!
//! Pools of worker processes (see `process/pool/README.md`):
//! - [`Pool`]: Python's `multiprocessing.Pool` — `apply`, `apply_async`
//!   with callbacks, `map`, `imap`, `imap_unordered`, `starmap`, `close`,
//!   `terminate`, `join`.
//! - [`ProcessPoolExecutor`]: Python's `concurrent.futures` executor over
//!   processes; the same [`Executor`](crate::futures::Executor) trait as the
//!   thread pool, so switching is one line.
//!
//! Both run [`Call`]s (`my_task::call(args..)`), and neither ever hangs: a
//! worker that dies fails its task with
//! [`FutureError::WorkerLost`](crate::futures::FutureError::WorkerLost) and
//! is replaced.
//!
//! Calls from elsewhere (a worker serving other hosts): [`invoke`] runs a
//! registered task by name with MessagePack arguments, checking its
//! [`Task::SIGNATURE`] and catching its panic, each failure a [`TaskFault`];
//! [`EncodedCall`] is a call's network form, [`check_tasks`] the start-up
//! check for duplicate names, and [`calls`] makes `map` run calls on every
//! executor kind.
//!
//! No line in `main` is needed: a spindle child is recognised before `main`
//! runs (see `process/README.md` for the bootstrap, the start methods and
//! failure handling). It works in binaries, examples, integration tests and
//! doc tests alike.
//!
//! ```
//! use spindle::process::{Process, StartMethod, current_process};
//!
//! #[spindle::task]
//! fn greet(who: String) {
//!     // Runs in the child.
//!     assert_ne!(current_process().name(), "MainProcess");
//!     println!("hello, {who}");
//! }
//!
//! for method in StartMethod::all() {
//!     let mut p = Process::builder()
//!         .task(greet::call("world".into()))
//!         .start_method(method)
//!         .start()?;
//!     p.join()?;
//!     assert_eq!(p.exitcode(), Some(0));
//! }
//! # Ok::<(), spindle::process::ProcessError>(())
//! ```

mod boot;
mod calls;
mod children;
mod current;
mod entry;
pub(crate) mod error;
mod fork;
mod forkserver;
mod pidfd;
mod pool;
#[allow(clippy::module_inception)]
mod process;
pub(crate) mod remote;
mod spawn;
pub(crate) mod task;

pub use calls::{Calls, CallsChunk, calls};
pub use children::{ActiveChild, active_children};
pub use current::{
    AuthKey, AuthKeyError, CurrentProcess, ParentProcess, cpu_count, current_process,
    parent_process,
};
pub use error::ProcessError;
pub use fork::{Fork, ForkedChild, fork};
pub use pool::{
    AsyncResult, Call, CallChunk, CallJob, Callbacks, IMapUnordered, Pool, PoolBuilder, PoolError,
    ProcessJob, ProcessPoolBuilder, ProcessPoolExecutor, RemoteExecutor, StarFn, TaskStart,
    WireFormat,
};
pub use process::{
    Builder, Context, Process, StartMethod, get_context, get_start_method, set_start_method,
};
pub use remote::{
    DuplicateTasks, EncodedCall, TaskFault, WireError, check_tasks, duplicate_tasks, invoke,
    invoke_into, signature_of,
};
pub use task::{DEFAULT_MAX_PAYLOAD, Task, TaskCall, task_names, task_signatures};

/// Items the `#[spindle::task]` macro needs; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use super::task::TaskEntry;
}
