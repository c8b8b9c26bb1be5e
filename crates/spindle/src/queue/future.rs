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
use super::core::{Core, wake};
use super::error::{PutError, ShutDown};
use super::order::{Order, Store};

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
    core: &'a Core<O::Store>,
    item: Option<T>,
    key: Option<u64>,
}

/// The future of [`OrderedQueue::get_async`].
#[must_use = "futures do nothing unless polled"]
pub struct GetFuture<'a, T, O: Order<T>> {
    core: &'a Core<O::Store>,
    key: Option<u64>,
    _item: std::marker::PhantomData<fn() -> T>,
}

/// The future of [`OrderedQueue::join_async`].
#[must_use = "futures do nothing unless polled"]
pub struct JoinFuture<'a, T, O: Order<T>> {
    core: &'a Core<O::Store>,
    key: Option<u64>,
    _item: std::marker::PhantomData<fn() -> T>,
}

// The futures never hand out pinned references to their fields.
impl<T, O: Order<T>> Unpin for PutFuture<'_, T, O> {}
impl<T, O: Order<T>> Unpin for GetFuture<'_, T, O> {}
impl<T, O: Order<T>> Unpin for JoinFuture<'_, T, O> {}

impl<T, O: Order<T>> Future for PutFuture<'_, T, O> {
    type Output = Result<(), PutError<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let core = this.core;
        let mut st = core.state.lock();
        let Some(item) = this.item.take() else {
            panic!("PutFuture polled after completion");
        };
        if st.shutdown || core.has_room::<T>(&st) {
            if let Some(key) = this.key.take() {
                st.async_putters.remove(key);
            }
            if st.shutdown {
                return Poll::Ready(Err(PutError(item)));
            }
            let w = core.push_locked(&mut st, item);
            drop(st);
            wake(w);
            return Poll::Ready(Ok(()));
        }
        this.item = Some(item);
        this.key = Some(st.async_putters.register(this.key, cx.waker()));
        Poll::Pending
    }
}

impl<T, O: Order<T>> Drop for PutFuture<'_, T, O> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let mut st = self.core.state.lock();
            // Not listed any more: we were woken for a free slot we will not
            // use; pass it on.
            if !st.async_putters.remove(key) && !st.shutdown && self.core.has_room::<T>(&st) {
                let w = self.core.notify_putter(&mut st);
                drop(st);
                wake(w);
            }
        }
    }
}

impl<T, O: Order<T>> Future for GetFuture<'_, T, O> {
    type Output = Result<T, ShutDown>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let core = this.core;
        let mut st = core.state.lock();
        if let Some((item, w)) = core.pop_locked::<T>(&mut st) {
            if let Some(key) = this.key.take() {
                st.async_getters.remove(key);
            }
            drop(st);
            wake(w);
            return Poll::Ready(Ok(item));
        }
        if st.shutdown {
            if let Some(key) = this.key.take() {
                st.async_getters.remove(key);
            }
            return Poll::Ready(Err(ShutDown));
        }
        this.key = Some(st.async_getters.register(this.key, cx.waker()));
        Poll::Pending
    }
}

impl<T, O: Order<T>> Drop for GetFuture<'_, T, O> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let mut st = self.core.state.lock();
            // Not listed any more: we were woken for an item we will not
            // take; pass the wakeup on so the item is not stranded.
            if !st.async_getters.remove(key) && st.store.len() > 0 {
                let w = self.core.notify_getter(&mut st);
                drop(st);
                wake(w);
            }
        }
    }
}

impl<T, O: Order<T>> Future for JoinFuture<'_, T, O> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let mut st = this.core.state.lock();
        if st.unfinished == 0 {
            if let Some(key) = this.key.take() {
                st.async_joiners.remove(key);
            }
            return Poll::Ready(());
        }
        this.key = Some(st.async_joiners.register(this.key, cx.waker()));
        Poll::Pending
    }
}

impl<T, O: Order<T>> Drop for JoinFuture<'_, T, O> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.core.state.lock().async_joiners.remove(key);
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
