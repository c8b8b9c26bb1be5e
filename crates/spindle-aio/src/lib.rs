//! Python's `asyncio`, gevent, greenlet and actor names for spindle, as thin
//! layers over [tokio](https://docs.rs/tokio): its runtime, `JoinHandle`,
//! `JoinSet`, `Semaphore`, timers and channels do the work; this crate gives
//! them the names and the typed errors of the rest of spindle.
//!
//! | Python                                   | here                                          |
//! |------------------------------------------|-----------------------------------------------|
//! | `asyncio.run(main())`                    | [`run`]                                       |
//! | `asyncio.ensure_future` / `gevent.spawn` | [`spawn`] → [`Task`] (the Greenlet)           |
//! | `await asyncio.gather(*tasks)`           | [`gather`] (input order, one `Result` each)   |
//! | `gevent.joinall(greenlets, timeout)`     | [`join_all`] (from plain threads)             |
//! | `asyncio.as_completed`                   | [`as_completed`] (a `Stream`)                 |
//! | `asyncio.wait(tasks, return_when=…)`     | [`wait`], [`wait_timeout`]                    |
//! | `asyncio.wait_for(aw, timeout)`          | [`wait_for`]                                  |
//! | `asyncio.TaskGroup`                      | [`TaskGroup`]                                 |
//! | `gevent.pool.Pool(n)`                    | [`Pool`]                                      |
//! | an `asyncio` `concurrent.futures.Executor` | [`AioExecutor`]                             |
//! | the Cookbook's generator `TaskScheduler` / `ActorScheduler` | [`sched::TaskScheduler`], [`sched::ActorScheduler`] |
//! | actors (Pykka, Thespian)                 | [`actor`]                                     |
//! | an `asyncio.start_server` / `ThreadingTCPServer` line echo server | [`echo`]     |
//!
//! The core crate `spindle` stays free of tokio; this crate is where the two
//! meet. See `docs/PYTHON.md` ("asyncio, gevent, greenlet and actors") for
//! every difference from Python.
#![forbid(unsafe_code)]

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Instant;

pub mod actor;
pub mod echo;
mod executor;
mod group;
mod pool;
pub mod sched;
mod task;

pub use executor::{AioExecutor, AioJob};
pub use group::{GroupError, TaskGroup};
pub use pool::{ImapUnordered, InvalidSize, Pool};
pub use spindle::futures::ReturnWhen;
pub use task::{
    AsCompleted, Done, Task, TaskError, Timeout, as_completed, gather, join_all, spawn, wait,
    wait_for, wait_timeout,
};

/// [`run`] was called on a thread that is already running a runtime
/// (Python: `RuntimeError: asyncio.run() cannot be called from a running
/// event loop`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InRuntime;

impl std::fmt::Display for InRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("called from inside a running tokio runtime, where it would block the runtime")
    }
}

impl std::error::Error for InRuntime {}

/// Runs `fut` to completion on a fresh multi-thread runtime and returns its
/// output: Python's `asyncio.run(main())`.
///
/// As in Python, tasks still running when `fut` ends are cancelled (the
/// runtime is dropped).
///
/// # Errors
///
/// [`InRuntime`] when called from inside a runtime (Python raises
/// `RuntimeError`); `fut` is dropped unpolled.
///
/// # Examples
///
/// ```
/// let n = spindle_aio::run(async {
///     let t = spindle_aio::spawn(async { 6 * 7 });
///     t.await.unwrap()
/// })
/// .unwrap();
/// assert_eq!(n, 42);
/// ```
pub fn run<F: Future>(fut: F) -> Result<F::Output, InRuntime> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(InRuntime);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("spindle-aio: cannot start a tokio runtime (out of threads?)");
    Ok(rt.block_on(fut))
}

/// The runtime behind [`spawn`] called outside any runtime (gevent's
/// implicit hub): built on first use, multi-thread, never shut down.
pub(crate) fn global() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .thread_name("spindle-aio")
            .enable_all()
            .build()
            .expect("spindle-aio: cannot start the global tokio runtime")
    })
}

/// The runtime to spawn on: the current one, else the global one.
pub(crate) fn handle() -> tokio::runtime::Handle {
    tokio::runtime::Handle::try_current().unwrap_or_else(|_| global().handle().clone())
}

/// Wakes a thread parked in [`block_on`].
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `fut` on this (non-runtime) thread, parking between wake-ups,
/// until it is ready or `deadline` passes (`None` then).
pub(crate) fn block_on_deadline<F: Future>(fut: F, deadline: Option<Instant>) -> Option<F::Output> {
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return Some(out);
        }
        match deadline {
            None => thread::park(),
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return None;
                }
                thread::park_timeout(d - now);
            }
        }
    }
}

/// Whether this thread is inside a runtime (blocking here could deadlock it).
pub(crate) fn in_runtime() -> bool {
    tokio::runtime::Handle::try_current().is_ok()
}
