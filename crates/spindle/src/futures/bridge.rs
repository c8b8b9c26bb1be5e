//! The async bridge: `.await` a [`Future`] from any async runtime.
#![forbid(unsafe_code)]

use std::fmt;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use super::Future;
use super::error::FutureError;

/// Awaiting a [`Future`] from async code yields its result, without blocking
/// the runtime's thread: the completing worker wakes the task.
///
/// This is the `spawn_blocking` pattern for any runtime: submit blocking work
/// to a [`ThreadPoolExecutor`](super::ThreadPoolExecutor) and `.await` it. No
/// runtime is assumed (the core crate has no tokio dependency).
///
/// # Cancel safety
///
/// Dropping the awaiting future does not cancel the task; call
/// [`Future::cancel`] on a clone for that.
///
/// # Examples
///
/// ```
/// use spindle::futures::{Executor, ThreadPoolExecutor};
///
/// async fn checksum(pool: &ThreadPoolExecutor) -> u64 {
///     let data = vec![7u8; 1 << 16];
///     pool.submit(move || data.iter().map(|&b| u64::from(b)).sum::<u64>())
///         .unwrap()
///         .await
///         .unwrap()
/// }
/// # let _ = checksum;
/// ```
impl<T: Clone, E> std::future::IntoFuture for Future<T, E> {
    type Output = Result<T, FutureError<E>>;
    type IntoFuture = FutureAwait<T, E>;

    fn into_future(self) -> FutureAwait<T, E> {
        FutureAwait { fut: Some(self) }
    }
}

/// The `std::future::Future` a [`Future`] becomes under `.await` (Python:
/// `asyncio.wrap_future(future)`).
///
/// # Panics
///
/// Polling it again after it returned `Ready` panics, as for most futures.
pub struct FutureAwait<T, E> {
    fut: Option<Future<T, E>>,
}

impl<T: Clone, E> std::future::Future for FutureAwait<T, E> {
    type Output = Result<T, FutureError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let fut = this
            .fut
            .as_ref()
            .expect("FutureAwait polled after completion");
        let mut g = fut.shared.inner.lock();
        if !g.state.is_done() {
            let wakers = &mut g.lists().wakers;
            if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                wakers.push(cx.waker().clone());
            }
            return Poll::Pending;
        }
        let out = if fut.shared.handles.load(Ordering::Acquire) == 1 {
            g.take()
        } else {
            g.cloned()
        };
        drop(g);
        this.fut = None;
        Poll::Ready(out)
    }
}

// `FutureAwait` holds only an `Arc` handle: moving it is always fine.
impl<T, E> Unpin for FutureAwait<T, E> {}

impl<T, E> fmt::Debug for FutureAwait<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FutureAwait")
            .field("future", &self.fut)
            .finish()
    }
}
