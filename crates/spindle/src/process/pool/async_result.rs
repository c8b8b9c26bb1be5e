//! [`AsyncResult`] (Python's `multiprocessing.pool.AsyncResult` /
//! `MapResult`), [`Callbacks`], and the sink that gathers a job's chunks.
#![forbid(unsafe_code)]

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::de::DeserializeOwned;

use super::job::{self, Failure, Sink};
use super::wire::ItemOutcome;
use crate::futures::{Future, FutureAwait, FutureError, Promise};

type OnValue<R> = Box<dyn FnOnce(&R) + Send>;
type OnError = Box<dyn FnOnce(&FutureError) + Send>;

/// The `callback` and `error_callback` of `apply_async` / `map_async` /
/// `starmap_async`. Both run in this (the parent) process, on the pool's
/// thread that received the result, before [`AsyncResult::get`] sees it — as
/// in Python. Keep them short: that thread serves one worker meanwhile.
///
/// # Examples
///
/// ```
/// use spindle::process::{Callbacks, Pool};
///
/// #[spindle::task]
/// fn double(n: u64) -> u64 { n * 2 }
///
/// let pool = Pool::new(2)?;
/// let (tx, rx) = std::sync::mpsc::channel();
/// let cbs = Callbacks::new().callback(move |v: &u64| tx.send(*v).unwrap());
/// let r = pool.apply_async_with(double::call(21), cbs).unwrap();
/// assert_eq!(r.get(), Ok(42));
/// assert_eq!(rx.recv().unwrap(), 42);
/// # Ok::<(), spindle::process::PoolError>(())
/// ```
pub struct Callbacks<R> {
    on_value: Option<OnValue<R>>,
    on_error: Option<OnError>,
}

impl<R> Callbacks<R> {
    /// No callbacks.
    pub fn new() -> Callbacks<R> {
        Callbacks {
            on_value: None,
            on_error: None,
        }
    }

    /// Called with the result on success (Python's `callback`; for the map
    /// family, with the whole list of results).
    pub fn callback(mut self, f: impl FnOnce(&R) + Send + 'static) -> Callbacks<R> {
        self.on_value = Some(Box::new(f));
        self
    }

    /// Called with the error on failure (Python's `error_callback`).
    pub fn error_callback(mut self, f: impl FnOnce(&FutureError) + Send + 'static) -> Callbacks<R> {
        self.on_error = Some(Box::new(f));
        self
    }
}

impl<R> Default for Callbacks<R> {
    fn default() -> Self {
        Callbacks::new()
    }
}

impl<R> fmt::Debug for Callbacks<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Callbacks")
            .field("callback", &self.on_value.is_some())
            .field("error_callback", &self.on_error.is_some())
            .finish()
    }
}

fn guarded(f: impl FnOnce()) {
    if panic::catch_unwind(AssertUnwindSafe(f)).is_err() {
        eprintln!("spindle::process::Pool: a result callback panicked");
    }
}

/// The chunks of one `apply_async` / `map_async` call, gathered in order.
pub(crate) struct Gather<O, R> {
    inner: Mutex<GatherInner<O, R>>,
}

struct GatherInner<O, R> {
    chunks: Vec<Option<Vec<O>>>,
    remaining: usize,
    finalize: fn(Vec<O>) -> R,
    callbacks: Callbacks<R>,
    promise: Option<Promise<R>>,
}

impl<O: Send + 'static, R: Send + 'static> Gather<O, R> {
    /// A gather of `chunks` chunks and the future of its final value.
    pub(crate) fn new(
        chunks: usize,
        finalize: fn(Vec<O>) -> R,
        callbacks: Callbacks<R>,
    ) -> (Arc<Gather<O, R>>, Future<R>) {
        let (promise, fut) = Promise::new();
        let g = Arc::new(Gather {
            inner: Mutex::new(GatherInner {
                chunks: (0..chunks).map(|_| None).collect(),
                remaining: chunks,
                finalize,
                callbacks,
                promise: Some(promise),
            }),
        });
        if chunks == 0 {
            g.done(Ok(None));
        }
        (g, fut)
    }

    /// Records chunk `index` (or the failure that ends everything).
    fn done(&self, res: Result<Option<(usize, Vec<O>)>, FutureError>) {
        let mut g = self.inner.lock();
        if g.promise.is_none() {
            return;
        }
        let outcome = match res {
            Err(e) => Err(e),
            Ok(Some((i, v))) => {
                g.chunks[i] = Some(v);
                g.remaining -= 1;
                if g.remaining > 0 {
                    return;
                }
                let all: Vec<O> = g.chunks.drain(..).flatten().flatten().collect();
                Ok((g.finalize)(all))
            }
            Ok(None) => Ok((g.finalize)(Vec::new())),
        };
        let promise = g.promise.take().expect("checked above");
        let cbs = std::mem::take(&mut g.callbacks);
        drop(g);
        match &outcome {
            Ok(v) => {
                if let Some(f) = cbs.on_value {
                    guarded(|| f(v));
                }
            }
            Err(e) => {
                if let Some(f) = cbs.on_error {
                    guarded(|| f(e));
                }
            }
        }
        promise.complete(outcome, || {}).ok();
    }

    fn finished(&self) -> bool {
        self.inner.lock().promise.is_none()
    }

    /// The sink of chunk `index`.
    pub(crate) fn sink(self: &Arc<Self>, index: usize) -> Box<dyn Sink>
    where
        O: DeserializeOwned,
    {
        Box::new(GatherSink {
            gather: Some(self.clone()),
            index,
        })
    }
}

/// Reports one chunk to its [`Gather`]; dropped unreported (never sent to a
/// worker), it fails the gather so nobody waits forever.
struct GatherSink<O, R> {
    gather: Option<Arc<Gather<O, R>>>,
    index: usize,
}

impl<O, R> Drop for GatherSink<O, R> {
    fn drop(&mut self) {
        if let Some(g) = self.gather.take() {
            g.fail_dropped();
        }
    }
}

impl<O, R> Gather<O, R> {
    fn fail_dropped(&self) {
        let mut g = self.inner.lock();
        if let Some(p) = g.promise.take() {
            drop(g);
            p.set_broken(crate::futures::BrokenPool::new(
                "the task was dropped before it ran",
            ));
        }
    }
}

impl<O, R> Sink for GatherSink<O, R>
where
    O: DeserializeOwned + Send + 'static,
    R: Send + 'static,
{
    fn start(&mut self) -> bool {
        self.gather.as_ref().is_some_and(|g| !g.finished())
    }

    fn finish(mut self: Box<Self>, outcomes: Vec<ItemOutcome>) {
        let res = job::decode_chunk::<O>(outcomes).map(|v| Some((self.index, v)));
        if let Some(g) = self.gather.take() {
            g.done(res);
        }
    }

    fn fail(mut self: Box<Self>, failure: Failure) {
        let e = match failure {
            Failure::Lost(w) => FutureError::WorkerLost(w),
            Failure::Broken(b) => FutureError::BrokenPool(b),
            Failure::Cancelled => FutureError::Cancelled,
            Failure::Refused(m) => FutureError::Panicked(m),
            Failure::TooLarge(t) => FutureError::TooLarge(t),
            Failure::Unavailable => FutureError::Unavailable,
        };
        if let Some(g) = self.gather.take() {
            g.done(Err(e));
        }
    }
}

/// The pending result of `apply_async`, `map_async` or `starmap_async`:
/// Python's `AsyncResult` (and `MapResult`).
///
/// Differences from Python: results of a terminated pool fail with
/// [`FutureError::Cancelled`] instead of never arriving, and a worker that
/// died fails the result with [`FutureError::WorkerLost`] instead of hanging
/// it forever.
pub struct AsyncResult<R> {
    fut: Future<R>,
}

impl<R> AsyncResult<R> {
    pub(crate) fn new(fut: Future<R>) -> AsyncResult<R> {
        AsyncResult { fut }
    }

    /// Blocks until the result arrives and returns it (Python's `get()`).
    ///
    /// # Errors
    /// The task's panic ([`FutureError::Panicked`]), a lost worker
    /// ([`FutureError::WorkerLost`]), a terminated pool
    /// ([`FutureError::Cancelled`]) or a broken one.
    pub fn get(&self) -> Result<R, FutureError>
    where
        R: Clone,
    {
        self.fut.result()
    }

    /// [`get`](Self::get), consuming this handle: the result is moved out,
    /// not cloned (`Pool::apply`, whose handle no one else sees).
    pub(crate) fn into_get(self) -> Result<R, FutureError>
    where
        R: Clone,
    {
        self.fut.into_result()
    }

    /// [`get`](Self::get), waiting at most `timeout` (Python's
    /// `get(timeout)`). A timeout too long to represent waits forever.
    ///
    /// # Errors
    /// As [`get`](Self::get), plus [`FutureError::Timeout`] if the result is
    /// not there in time (the task goes on).
    pub fn get_timeout(&self, timeout: Duration) -> Result<R, FutureError>
    where
        R: Clone,
    {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.get_deadline(deadline),
            None => self.get(),
        }
    }

    /// [`get`](Self::get), waiting until `deadline` at the latest (Python's
    /// `get(timeout)` with the timeout as an instant).
    ///
    /// # Errors
    /// As [`get_timeout`](Self::get_timeout).
    ///
    /// # Examples
    /// ```
    /// use std::time::{Duration, Instant};
    /// use spindle::process::Pool;
    ///
    /// #[spindle::task]
    /// fn double(n: u64) -> u64 { n * 2 }
    ///
    /// let pool = Pool::new(1)?;
    /// let r = pool.apply_async(double::call(21)).unwrap();
    /// let deadline = Instant::now() + Duration::from_secs(60);
    /// assert_eq!(r.get_deadline(deadline), Ok(42));
    /// # Ok::<(), spindle::process::PoolError>(())
    /// ```
    pub fn get_deadline(&self, deadline: Instant) -> Result<R, FutureError>
    where
        R: Clone,
    {
        self.fut.result_deadline(deadline)
    }

    /// Blocks until the result is available (Python's `wait()`).
    pub fn wait(&self) {
        self.fut.wait();
    }

    /// Blocks at most `timeout`; returns whether the result is available
    /// (Python's `wait(timeout)`, which returns `None`). A timeout too long
    /// to represent waits forever.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.wait_deadline(deadline),
            None => {
                self.wait();
                true
            }
        }
    }

    /// Blocks until `deadline` at the latest; returns whether the result is
    /// available (Python's `wait(timeout)` with the timeout as an instant).
    pub fn wait_deadline(&self, deadline: Instant) -> bool {
        self.fut.wait_deadline(deadline)
    }

    /// Whether the call has completed (Python's `ready()`): the
    /// non-blocking form of [`wait`](Self::wait); once it is true,
    /// [`get`](Self::get) returns at once.
    pub fn ready(&self) -> bool {
        self.fut.done()
    }

    /// Whether the call completed without error; `None` if it is not ready
    /// (where Python raises `ValueError`).
    pub fn successful(&self) -> Option<bool> {
        if !self.fut.done() {
            return None;
        }
        Some(self.fut.exception().is_none())
    }

    /// The underlying [`Future`] (for `as_completed`, `wait`, callbacks).
    pub fn future(&self) -> &Future<R> {
        &self.fut
    }

    /// The underlying [`Future`].
    pub fn into_future(self) -> Future<R> {
        self.fut
    }
}

/// Awaiting an `AsyncResult` yields what [`get`](AsyncResult::get) would,
/// without blocking the runtime's thread (Python: `await
/// asyncio.wrap_future(...)` around a pool result). Runtime-agnostic: the
/// parent's result thread wakes the task. Written `.await` (this trait's
/// `into_future`); the inherent [`AsyncResult::into_future`] still returns
/// the underlying [`Future`].
///
/// # Cancel safety
///
/// Dropping the awaiting future loses nothing: the call goes on, its
/// callbacks still run, and a clone of [`future()`](AsyncResult::future)
/// taken before still gets the result.
///
/// # Examples
///
/// ```
/// # fn block_on<F: std::future::IntoFuture>(f: F) -> F::Output {
/// #     let mut f = std::pin::pin!(f.into_future());
/// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
/// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
/// # }
/// use spindle::process::Pool;
///
/// #[spindle::task]
/// fn double(n: u64) -> u64 { n * 2 }
///
/// let pool = Pool::new(1)?;
/// let r = pool.apply_async(double::call(21)).unwrap();
/// assert_eq!(block_on(async { r.await }), Ok(42));
/// # Ok::<(), spindle::process::PoolError>(())
/// ```
impl<R: Clone> std::future::IntoFuture for AsyncResult<R> {
    type Output = Result<R, FutureError>;
    type IntoFuture = FutureAwait<R, std::convert::Infallible>;

    fn into_future(self) -> Self::IntoFuture {
        std::future::IntoFuture::into_future(self.fut)
    }
}

impl<R> fmt::Debug for AsyncResult<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncResult")
            .field("ready", &self.fut.done())
            .finish()
    }
}
