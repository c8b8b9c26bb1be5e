//! [`Backend`]: what a queue handle needs from the shared state behind it.
//!
//! Two implementations: [`Core`](super::core::Core), one mutex around the
//! store (LIFO and priority order, `core.rs`), and
//! [`FifoCore`](super::fifo::FifoCore), a lock-free FIFO whose mutex is only
//! taken to sleep and to wake sleepers (`fifo.rs`). The async futures
//! (`future.rs`) poll through `poll_*`/`cancel_*`, so each backend keeps its
//! own waiter protocol.
#![forbid(unsafe_code)]

use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};
use std::time::Instant;

use super::core::{Core, GetFail, PutFail, wake};
use super::error::{PutError, ShutDown};
use super::order::Store;
use crate::stats::QueueStats;
use crate::util::Wait;

/// The shared state of one queue (sealed: the crate's two cores).
#[doc(hidden)]
pub trait Backend<T>: Sized {
    /// An empty queue holding at most `maxsize` items (0: unbounded).
    fn new(maxsize: usize) -> Self;
    /// Puts, waiting as `block` says.
    fn put(&self, item: T, block: Wait) -> Result<(), PutFail<T>>;
    /// Gets, waiting as `block` says.
    fn get(&self, block: Wait) -> Result<T, GetFail>;
    /// False when `task_done` was called too often (count unchanged).
    fn task_done(&self) -> bool;
    /// Waits for the unfinished count to reach 0; false on timeout.
    fn join(&self, until: Option<Instant>) -> bool;
    /// Python 3.13's `shutdown(immediate)`.
    fn shutdown(&self, immediate: bool);
    /// Items waiting (a hint when others use the queue).
    fn len(&self) -> usize;
    /// `maxsize` (0: unbounded).
    fn maxsize(&self) -> usize;
    /// Items put and not yet marked done.
    fn unfinished(&self) -> usize;
    /// Whether `shutdown` was called.
    fn is_shutdown(&self) -> bool;
    /// The queue's counters ([`QueueStats`]).
    fn stats(&self) -> QueueStats;
    /// One poll of a `PutFuture`: `item` is taken when the poll is ready.
    fn poll_put(
        &self,
        item: &mut Option<T>,
        key: &mut Option<u64>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), PutError<T>>>;
    /// A pending `PutFuture` is dropped.
    fn cancel_put(&self, key: u64);
    /// One poll of a `GetFuture`.
    fn poll_get(&self, key: &mut Option<u64>, cx: &mut Context<'_>) -> Poll<Result<T, ShutDown>>;
    /// A pending `GetFuture` is dropped.
    fn cancel_get(&self, key: u64);
    /// One poll of a `JoinFuture`.
    fn poll_join(&self, key: &mut Option<u64>, cx: &mut Context<'_>) -> Poll<()>;
    /// A pending `JoinFuture` is dropped.
    fn cancel_join(&self, key: u64);
}

impl<T, S> Backend<T> for Core<S>
where
    S: Store<T>,
{
    fn new(maxsize: usize) -> Self {
        Core::new::<T>(maxsize)
    }
    fn put(&self, item: T, block: Wait) -> Result<(), PutFail<T>> {
        Core::put(self, item, block)
    }
    fn get(&self, block: Wait) -> Result<T, GetFail> {
        Core::get(self, block)
    }
    fn task_done(&self) -> bool {
        Core::task_done(self)
    }
    fn join(&self, until: Option<Instant>) -> bool {
        Core::join(self, until)
    }
    fn shutdown(&self, immediate: bool) {
        Core::shutdown::<T>(self, immediate);
    }
    fn len(&self) -> usize {
        self.len.load(std::sync::atomic::Ordering::Relaxed)
    }
    fn maxsize(&self) -> usize {
        self.maxsize
    }
    /// Derived, as the FIFO core's: `puts = unfinished + done`, `gets =
    /// puts - len - dropped` (exact: read under the lock).
    fn stats(&self) -> QueueStats {
        let st = self.state.lock();
        let (qsize, unfinished) = (st.store.len() as u64, st.unfinished as u64);
        let puts = unfinished + self.done.load(Relaxed);
        let gets = puts.saturating_sub(qsize + self.dropped.load(Relaxed));
        QueueStats::new(qsize, unfinished, puts, gets)
    }
    fn unfinished(&self) -> usize {
        self.state.lock().unfinished
    }
    fn is_shutdown(&self) -> bool {
        self.state.lock().shutdown
    }

    fn poll_put(
        &self,
        item: &mut Option<T>,
        key: &mut Option<u64>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), PutError<T>>> {
        let mut st = self.state.lock();
        let Some(it) = item.take() else {
            panic!("PutFuture polled after completion");
        };
        if st.shutdown || self.has_room::<T>(&st) {
            if let Some(key) = key.take() {
                st.async_putters.remove(key);
            }
            if st.shutdown {
                return Poll::Ready(Err(PutError(it)));
            }
            let w = self.push_locked(&mut st, it);
            drop(st);
            wake(w);
            return Poll::Ready(Ok(()));
        }
        *item = Some(it);
        *key = Some(st.async_putters.register(*key, cx.waker()));
        Poll::Pending
    }

    fn cancel_put(&self, key: u64) {
        let mut st = self.state.lock();
        // Not listed any more: we were woken for a free slot we will not
        // use; pass it on.
        if !st.async_putters.remove(key) && !st.shutdown && self.has_room::<T>(&st) {
            let w = self.notify_putter(&mut st);
            drop(st);
            wake(w);
        }
    }

    fn poll_get(&self, key: &mut Option<u64>, cx: &mut Context<'_>) -> Poll<Result<T, ShutDown>> {
        let mut st = self.state.lock();
        if let Some((item, w)) = self.pop_locked::<T>(&mut st) {
            if let Some(key) = key.take() {
                st.async_getters.remove(key);
            }
            drop(st);
            wake(w);
            return Poll::Ready(Ok(item));
        }
        if st.shutdown {
            if let Some(key) = key.take() {
                st.async_getters.remove(key);
            }
            return Poll::Ready(Err(ShutDown));
        }
        *key = Some(st.async_getters.register(*key, cx.waker()));
        Poll::Pending
    }

    fn cancel_get(&self, key: u64) {
        let mut st = self.state.lock();
        // Not listed any more: we were woken for an item we will not
        // take; pass the wakeup on so the item is not stranded.
        if !st.async_getters.remove(key) && st.store.len() > 0 {
            let w = self.notify_getter(&mut st);
            drop(st);
            wake(w);
        }
    }

    fn poll_join(&self, key: &mut Option<u64>, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = self.state.lock();
        if st.unfinished == 0 {
            if let Some(key) = key.take() {
                st.async_joiners.remove(key);
            }
            return Poll::Ready(());
        }
        *key = Some(st.async_joiners.register(*key, cx.waker()));
        Poll::Pending
    }

    fn cancel_join(&self, key: u64) {
        self.state.lock().async_joiners.remove(key);
    }
}

impl<S> std::fmt::Debug for Core<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("maxsize", &self.maxsize)
            .finish_non_exhaustive()
    }
}
