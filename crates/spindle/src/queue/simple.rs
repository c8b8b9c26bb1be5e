//! [`SimpleQueue`]: Python's `queue.SimpleQueue`.
#![forbid(unsafe_code)]

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::OrderedQueue;
use super::backend::Backend;
use super::future::GetFuture;
use super::order::Fifo;
use crate::util::Wait;

/// An unbounded FIFO queue without task tracking or shutdown: Python's
/// `queue.SimpleQueue`.
///
/// Use it when nobody calls `task_done`/`join` and nothing needs to be shut
/// down: `put` never blocks and never fails, `get` waits for an item.
/// Use [`Queue`](super::Queue) when you need a `maxsize`, `join` or `shutdown`.
///
/// Differences from Python: `get_nowait()` is [`try_get`](SimpleQueue::try_get)
/// returning `None` where Python raises `Empty`.
///
/// # Examples
///
/// ```
/// use spindle::queue::SimpleQueue;
///
/// let q = SimpleQueue::new();
/// let producer = {
///     let q = q.clone();
///     std::thread::spawn(move || (0..3).for_each(|n| q.put(n)))
/// };
/// assert_eq!([q.get(), q.get(), q.get()], [0, 1, 2]);
/// producer.join().unwrap();
/// ```
pub struct SimpleQueue<T> {
    inner: OrderedQueue<T, Fifo>,
}

impl<T> Clone for SimpleQueue<T> {
    fn clone(&self) -> Self {
        SimpleQueue {
            inner: self.inner.clone(),
        }
    }
}

impl<T> Default for SimpleQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> fmt::Debug for SimpleQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimpleQueue")
            .field("len", &self.len())
            .finish()
    }
}

impl<T> SimpleQueue<T> {
    /// An empty queue: Python's `SimpleQueue()`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(spindle::queue::SimpleQueue::<u8>::new().is_empty());
    /// ```
    pub fn new() -> Self {
        SimpleQueue {
            inner: OrderedQueue::<T, Fifo>::new(),
        }
    }

    /// Adds `item`; never blocks: Python's `put(item)`.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = spindle::queue::SimpleQueue::new();
    /// q.put("x");
    /// assert_eq!(q.len(), 1);
    /// ```
    pub fn put(&self, item: T) {
        if self.inner.core.put(item, Wait::Never).is_err() {
            unreachable!("a SimpleQueue is unbounded and never shut down");
        }
    }

    /// Takes the next item, waiting for one: Python's `get()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = spindle::queue::SimpleQueue::new();
    /// q.put(1);
    /// assert_eq!(q.get(), 1);
    /// ```
    pub fn get(&self) -> T {
        match self.inner.core.get(Wait::Forever) {
            Ok(item) => item,
            Err(_) => unreachable!("a SimpleQueue is never shut down"),
        }
    }

    /// Takes the next item if there is one: Python's `get_nowait()` (`None`
    /// where Python raises `Empty`).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = spindle::queue::SimpleQueue::<u8>::new();
    /// assert_eq!(q.try_get(), None);
    /// ```
    pub fn try_get(&self) -> Option<T> {
        self.inner.core.get(Wait::Never).ok()
    }

    /// Takes the next item, waiting at most `timeout`: Python's
    /// `get(timeout=t)` (`None` where Python raises `Empty`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let q = spindle::queue::SimpleQueue::<u8>::new();
    /// assert_eq!(q.get_timeout(Duration::from_millis(1)), None);
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Option<T> {
        self.inner.core.get(Wait::after(timeout)).ok()
    }

    /// Takes the next item, waiting until `deadline`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    /// let q = spindle::queue::SimpleQueue::new();
    /// q.put(3);
    /// assert_eq!(q.get_deadline(Instant::now()), Some(3));
    /// ```
    pub fn get_deadline(&self, deadline: Instant) -> Option<T> {
        self.inner.core.get(Wait::Until(deadline)).ok()
    }

    /// Takes the next item, waiting asynchronously: the async face of
    /// [`get`](SimpleQueue::get).
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: dropping the future loses no item.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let mut f = std::pin::pin!(f);
    /// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
    /// # }
    /// let q = spindle::queue::SimpleQueue::new();
    /// q.put(9);
    /// assert_eq!(block_on(q.get_async()), 9);
    /// ```
    pub fn get_async(&self) -> SimpleGetFuture<'_, T> {
        SimpleGetFuture(self.inner.get_async())
    }

    /// How many items are waiting: Python's `qsize()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = spindle::queue::SimpleQueue::new();
    /// q.put(());
    /// assert_eq!(q.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// The same as [`len`](SimpleQueue::len), under Python's name `qsize()`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(spindle::queue::SimpleQueue::<u8>::new().qsize(), 0);
    /// ```
    pub fn qsize(&self) -> usize {
        self.len()
    }

    /// Whether no item is waiting: Python's `empty()`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(spindle::queue::SimpleQueue::<u8>::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A non-blocking iterator that takes items until the queue is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = spindle::queue::SimpleQueue::new();
    /// q.put(1);
    /// q.put(2);
    /// assert_eq!(q.try_iter().sum::<i32>(), 3);
    /// ```
    pub fn try_iter(&self) -> super::TryIter<'_, T, Fifo> {
        self.inner.try_iter()
    }
}

/// The future of [`SimpleQueue::get_async`].
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct SimpleGetFuture<'a, T: 'a>(GetFuture<'a, T, Fifo>);

impl<T> Future for SimpleGetFuture<'_, T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        match Pin::new(&mut self.get_mut().0).poll(cx) {
            Poll::Ready(Ok(item)) => Poll::Ready(item),
            Poll::Ready(Err(_)) => unreachable!("a SimpleQueue is never shut down"),
            Poll::Pending => Poll::Pending,
        }
    }
}
