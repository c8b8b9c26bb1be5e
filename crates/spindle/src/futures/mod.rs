//! Futures and executors: Python's `concurrent.futures` for Rust.
//!
//! Submit a function, get a [`Future`], block on its result or attach
//! callbacks, iterate [`as_completed`], [`wait`] for a condition, [`map`](Executor::map) in
//! input order, shut the pool down — the same model and names as Python, with
//! typed errors and threads that really run in parallel.
//!
//! ```
//! use spindle::futures::{as_completed, Executor, ThreadPoolExecutor};
//!
//! let pool = ThreadPoolExecutor::builder().max_workers(4).build().unwrap();
//! let futures: Vec<_> = (1..=4u64)
//!     .map(|n| pool.submit(move || n * 10).unwrap())
//!     .collect();
//! futures[0].add_done_callback(|f| println!("first: {:?}", f.result()));
//! let total: u64 = as_completed(&futures).map(|f| f.result().unwrap()).sum();
//! assert_eq!(total, 100);
//! ```
//!
//! # Which one should I use?
//!
//! | you want to …                                 | use                                   | Python                               |
//! |-----------------------------------------------|---------------------------------------|--------------------------------------|
//! | run closures on a pool of threads             | [`ThreadPoolExecutor`]                | `ThreadPoolExecutor`                 |
//! | get the value (blocking, bounded)             | [`Future::result`], [`result_timeout`](Future::result_timeout) | `future.result(timeout)` |
//! | be called back when done                      | [`Future::add_done_callback`]         | `future.add_done_callback(fn)`       |
//! | handle results in completion order            | [`as_completed`], [`as_completed_timeout`] | `as_completed(fs, timeout)`     |
//! | wait for the first / first failure / all      | [`wait`] with [`ReturnWhen`]          | `wait(fs, timeout, return_when)`     |
//! | apply a function to many items, keep order    | [`Executor::map`], [`Executor::map_with`] | `executor.map(fn, it, timeout, chunksize)` |
//! | make a task's `Err` the future's error        | [`fallible`]                          | a function that raises               |
//! | await pool work from async code               | `.await` on a [`Future`]              | `asyncio.wrap_future` / `run_in_executor` |
//! | complete futures yourself (write an executor) | [`Promise`]                           | `Future()` + `set_result`            |
//! | let a broker decide whether a queued task can still be cancelled | [`Promise::on_cancel`] | `Future.cancel()` returning `False` |
//! | `map` the calls of a registered task on any executor | [`process::calls`](crate::process::calls) | `executor.map(fn, it)` |
//! | write an executor of registered-task calls or of async futures, in any crate | [`RemoteExecutor`](crate::process::RemoteExecutor), [`FutureExecutor`] | subclass `Executor` |
//!
//! # The `Executor` contract and how it generalises
//!
//! [`Executor::submit`] is generic over [`Task<Self>`](Task): each executor
//! decides what it can run. A thread pool accepts any `FnOnce() -> T + Send`
//! closure. An executor whose tasks cross a process or host boundary cannot
//! ship closures; it implements `Task<Self>` only for calls of registered,
//! serde-serialisable functions (Python: "the function and its arguments must
//! be picklable"), and a thread pool can accept those same calls too — so
//! code written with registered tasks switches scope by changing one
//! constructor. An associated task type (one `Task` per executor) was
//! rejected: it would fix the output type per executor. A generic
//! `submit<F, T>` with a fixed `FnOnce` bound could not express
//! serialisable calls. [`Task::into_job`] turns a task into the executor's
//! own [`Executor::Job`] and the [`Future`] it completes (a thread pool keeps
//! both in one allocation; a process pool keeps a [`Promise`] until the
//! result comes back); `map` is written once, on top of `submit`, through
//! [`MapFn`].
//!
//! An executor in another crate cannot write the blanket impls it needs —
//! `impl<T> Task<MyExecutor> for Call<T>`, `impl<F: Future> Task<MyExecutor>
//! for F` — because of the orphan rule (E0210). spindle writes them once over
//! two traits, and an executor implements the one that fits:
//! [`RemoteExecutor`](crate::process::RemoteExecutor) (it runs
//! [`Call`](crate::process::Call)s of registered tasks elsewhere: every call,
//! `map` chunk of calls and `Fn(A) -> Call<T>` becomes a
//! [`CallJob`](crate::process::CallJob) it turns into its job;
//! [`ProcessPoolExecutor`](crate::process::ProcessPoolExecutor) is one; it
//! lives in `process`, beside the calls) or [`FutureExecutor`] (it polls Rust
//! futures: every `async` block becomes a [`FutureJob`]). The thread pool's
//! closure impls do not overlap them: it implements neither.
//!
//! # A task's own error
//!
//! A task returning a plain `T` yields `Future<T>`; its only failures are a
//! panic ([`FutureError::Panicked`], caught on the worker), a cancellation, a
//! timeout or a broken pool. A task that can fail returns `Result<T, E>` and
//! is wrapped in [`fallible`]: its `Err(e)` becomes
//! [`FutureError::Failed(e)`](FutureError::Failed) of a `Future<T, E>` — the
//! Rust form of "the function raised", which [`Future::exception`] reports.
//! Without `fallible`, a `Result` is just a value (`Future<Result<T, E>>`,
//! read with `result()??`, as with tokio's `JoinHandle`).
//!
//! # Differences from Python
//!
//! - Errors are typed: [`FutureError`] and [`SubmitError`] (which hands the
//!   task back) instead of exceptions.
//! - A cancelled future tells its waiters at once; there is no
//!   `CANCELLED_AND_NOTIFIED` state.
//! - Completing is done through a [`Promise`], consumed by use: a future
//!   cannot be completed twice, and a promise dropped unfinished fails its
//!   future instead of leaving waiters hanging.
//! - `map` is lazy with a bounded window (Python 3.14's `buffersize`,
//!   defaulting to four tasks per worker) and its items are `Result`s, so an
//!   error does not end the iteration; a timeout does, cancelling the rest.
//! - `chunksize` is honoured by the thread pool too.
//! - Values are read by clone (`T: Clone`) because many handles may read one
//!   future; the last handle moves the value out.
//! - A panicking task still prints the standard panic message on stderr.
#![forbid(unsafe_code)]

mod bridge;
mod closures;
mod error;
mod executor;
mod future;
mod kinds;
mod promise;
mod shared;
mod thread_pool;
mod thread_task;
mod wait;
mod waiter;

pub use bridge::FutureAwait;
pub use closures::{FallibleMapChunk, MapChunk};
pub use error::{
    BrokenPool, BuildError, FutureError, Payload, SubmitError, Timeout, TooLarge, WorkerLost,
};
pub use executor::{Executor, Fallible, Map, MapFn, MapOptions, Task, fallible};
pub use future::{Future, State};
pub use kinds::{FutureExecutor, FutureJob};
pub use promise::Promise;
pub use thread_pool::{ThreadPoolBuilder, ThreadPoolExecutor, default_max_workers};
pub use thread_task::ThreadJob;
pub use wait::{
    AsCompleted, AsCompletedTimeout, DoneAndNotDone, ReturnWhen, as_completed,
    as_completed_deadline, as_completed_timeout, wait, wait_deadline, wait_timeout,
};
