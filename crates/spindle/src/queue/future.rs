//! The async faces of [`Queue`]: `put_async`, `get_async`, `join_async`.
//!
//! Runtime-agnostic: the futures park on the queue's own waker lists, so any
//! executor can poll them, and a blocking thread and an async task can share
//! one queue. A future that was woken but dropped before it finished passes
//! the wakeup on to the next waiter, so cancelling never strands an item.
#![forbid(unsafe_code)]

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::OrderedQueue;
use super::backend::Backend;
use super::error::{PutError, ShutDown};
use super::order::Order;

impl<T, O: Order<T>> OrderedQueue<T, O> {
    /// Puts `item`, waiting asynchronously for room: the async face of
    /// [`put`](OrderedQueue::put).
    ///
    /// # Errors
    ///
    /// [`PutError`] with the item when the queue is (or becomes) shut down.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: if the future is dropped before it completes, the item
    /// was not put and is dropped with the future.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let mut f = std::pin::pin!(f);
    /// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
    /// # }
    /// let q = spindle::queue::Queue::new();
    /// block_on(q.put_async(5)).unwrap();
    /// assert_eq!(block_on(q.get_async()), Ok(5));
    /// ```
    pub fn put_async(&self, item: T) -> PutFuture<'_, T, O> {
        PutFuture {
            core: &self.core,
            item: Some(item),
            key: None,
        }
    }

    /// Takes the next item, waiting asynchronously: the async face of
    /// [`get`](OrderedQueue::get).
    ///
    /// # Errors
    ///
    /// [`ShutDown`] when the queue is shut down and empty.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: an item is only removed from the queue in the poll that
    /// returns it, so dropping the future (say, in a `select!` that took
    /// another branch) loses no item.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let mut f = std::pin::pin!(f);
    /// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
    /// # }
    /// let q = spindle::queue::Queue::new();
    /// let producer = {
    ///     let q = q.clone();
    ///     std::thread::spawn(move || q.put("from a thread").unwrap())
    /// };
    /// assert_eq!(block_on(q.get_async()), Ok("from a thread"));
    /// producer.join().unwrap();
    /// ```
    pub fn get_async(&self) -> GetFuture<'_, T, O> {
        GetFuture {
            core: &self.core,
            key: None,
            _item: std::marker::PhantomData,
        }
    }

    /// Waits asynchronously until every item put has been marked done: the
    /// async face of [`join`](OrderedQueue::join).
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: it only observes the count.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let mut f = std::pin::pin!(f);
    /// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
    /// # }
    /// let q = spindle::queue::Queue::new();
    /// q.put(1).unwrap();
    /// q.get().unwrap();
    /// q.task_done().unwrap();
    /// block_on(q.join_async());
    /// ```
    pub fn join_async(&self) -> JoinFuture<'_, T, O> {
        JoinFuture {
            core: &self.core,
            key: None,
            _item: std::marker::PhantomData,
        }
    }
}

/// The future of [`OrderedQueue::put_async`].
#[must_use = "futures do nothing unless polled"]
pub struct PutFuture<'a, T, O: Order<T>> {
    core: &'a O::Core,
    item: Option<T>,
    key: Option<u64>,
}

/// The future of [`OrderedQueue::get_async`].
#[must_use = "futures do nothing unless polled"]
pub struct GetFuture<'a, T, O: Order<T>> {
    core: &'a O::Core,
    key: Option<u64>,
    _item: std::marker::PhantomData<fn() -> T>,
}

/// The future of [`OrderedQueue::join_async`].
#[must_use = "futures do nothing unless polled"]
pub struct JoinFuture<'a, T, O: Order<T>> {
    core: &'a O::Core,
    key: Option<u64>,
    _item: std::marker::PhantomData<fn() -> T>,
}

// The futures never hand out pinned references to their fields.
impl<T, O: Order<T>> Unpin for PutFuture<'_, T, O> {}
impl<T, O: Order<T>> Unpin for GetFuture<'_, T, O> {}
impl<T, O: Order<T>> Unpin for JoinFuture<'_, T, O> {}

// Each backend keeps its own waiter protocol (`backend.rs`): `core.rs`
// under its one mutex, `fifo.rs` lock-free with an eventcount. Both list a
// pending future under a key; a notifier removes the entry it wakes, and a
// future dropped after it was notified passes the notification on.

impl<T, O: Order<T>> Future for PutFuture<'_, T, O> {
    type Output = Result<(), PutError<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.core.poll_put(&mut this.item, &mut this.key, cx)
    }
}

impl<T, O: Order<T>> Drop for PutFuture<'_, T, O> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.core.cancel_put(key);
        }
    }
}

impl<T, O: Order<T>> Future for GetFuture<'_, T, O> {
    type Output = Result<T, ShutDown>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.core.poll_get(&mut this.key, cx)
    }
}

impl<T, O: Order<T>> Drop for GetFuture<'_, T, O> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.core.cancel_get(key);
        }
    }
}

impl<T, O: Order<T>> Future for JoinFuture<'_, T, O> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        this.core.poll_join(&mut this.key, cx)
    }
}

impl<T, O: Order<T>> Drop for JoinFuture<'_, T, O> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.core.cancel_join(key);
        }
    }
}

macro_rules! debug_future {
    ($($name:ident),*) => {$(
        impl<T, O: Order<T>> fmt::Debug for $name<'_, T, O> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).field("waiting", &self.key.is_some()).finish()
            }
        }
    )*};
}

debug_future!(PutFuture, GetFuture, JoinFuture);
