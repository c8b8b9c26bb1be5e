//! [`OrderedQueue`], the handle behind Python's `queue.Queue`, `LifoQueue`
//! and `PriorityQueue`.
#![forbid(unsafe_code)]

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::backend::Backend;
use super::core::{GetFail, PutFail};
use super::error::{
    GetTimeoutError, PutError, PutTimeoutError, ShutDown, TryGetError, TryPutError,
};
use super::order::{Fifo, Lifo, Order, Priority};
use crate::util::Wait;

/// A multi-producer, multi-consumer queue with task tracking and shutdown,
/// handing items out in the order `O`: the type behind [`Queue`] ([`Fifo`]),
/// [`LifoQueue`] ([`Lifo`]) and [`PriorityQueue`] ([`Priority`]). Use those
/// names; this one appears in signatures and in code generic over the order.
///
/// A queue is a cheap handle: [`Clone`] it to share one queue between
/// threads (and async tasks).
///
/// Every blocking operation comes in four variants: `put` blocks,
/// `try_put` never blocks, `put_timeout` and `put_deadline` bound the wait;
/// the same for `get` and `join`; `put_async`, `get_async` and `join_async`
/// are the async faces of the same queue.
///
/// Differences from Python: `put(item, block=False)` is `try_put`,
/// `get(timeout=t)` is `get_timeout(t)`, errors are typed and hand the item
/// back, `maxsize` is fixed at construction, and blocking waits have a
/// `_deadline` variant.
pub struct OrderedQueue<T, O: Order<T>> {
    pub(crate) core: Arc<O::Core>,
    _order: PhantomData<fn() -> (T, O)>,
}

/// A first-in, first-out queue: Python's `queue.Queue`.
///
/// All methods are [`OrderedQueue`]'s.
///
/// # Examples
///
/// ```
/// use spindle::queue::Queue;
/// use std::thread;
///
/// let q = Queue::new();
/// let worker = {
///     let q = q.clone();
///     thread::spawn(move || {
///         let mut sum = 0;
///         for n in &q {          // ends when the queue is shut down and drained
///             sum += n;
///             q.task_done().unwrap();
///         }
///         sum
///     })
/// };
/// for n in 1..=10 {
///     q.put(n).unwrap();
/// }
/// q.join();                      // every item was processed
/// q.shutdown(false);
/// assert_eq!(worker.join().unwrap(), 55);
/// ```
pub type Queue<T> = OrderedQueue<T, Fifo>;

/// A last-in, first-out queue: Python's `queue.LifoQueue`.
///
/// All methods are [`OrderedQueue`]'s.
///
/// # Examples
///
/// ```
/// use spindle::queue::LifoQueue;
///
/// let q = LifoQueue::new();
/// for n in [111, 333, 222] {
///     q.put(n).unwrap();
/// }
/// assert_eq!([q.get(), q.get(), q.get()], [Ok(222), Ok(333), Ok(111)]);
/// ```
pub type LifoQueue<T> = OrderedQueue<T, Lifo>;

/// A queue that hands out its smallest item first: Python's
/// `queue.PriorityQueue`.
///
/// Unlike Python's (built on `heapq`), items that compare equal come out in
/// the order they were put. Put `(priority, payload)` tuples as in Python, or
/// any `T: Ord`. All methods are [`OrderedQueue`]'s.
///
/// # Examples
///
/// ```
/// use spindle::queue::PriorityQueue;
///
/// let q = PriorityQueue::new();
/// for job in [(2, "write"), (1, "read"), (3, "close")] {
///     q.put(job).unwrap();
/// }
/// let order: Vec<_> = q.try_iter().map(|(_, name)| name).collect();
/// assert_eq!(order, ["read", "write", "close"]);
/// ```
pub type PriorityQueue<T> = OrderedQueue<T, Priority>;

impl<T, O: Order<T>> Clone for OrderedQueue<T, O> {
    fn clone(&self) -> Self {
        OrderedQueue {
            core: Arc::clone(&self.core),
            _order: PhantomData,
        }
    }
}

impl<T, O: Order<T>> fmt::Debug for OrderedQueue<T, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("len", &self.core.len())
            .field("maxsize", &self.core.maxsize())
            .field("unfinished_tasks", &self.core.unfinished())
            .field("shutdown", &self.core.is_shutdown())
            .finish()
    }
}

macro_rules! constructors {
    ($python:literal, $alias:literal, $order:ty $(, $bound:path)?) => {
        impl<T $(: $bound)?> OrderedQueue<T, $order> {
            #[doc = concat!("An unbounded queue: Python's `", $python, "()` (`maxsize=0`).")]
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let q = spindle::queue::", $alias, "::<u32>::new();")]
            /// assert_eq!(q.maxsize(), 0);
            /// ```
            pub fn new() -> Self {
                Self::with_maxsize(0)
            }

            /// A queue that holds at most `maxsize` items (0 means unbounded):
            #[doc = concat!("Python's `", $python, "(maxsize)`.")]
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let q = spindle::queue::", $alias, "::with_maxsize(1);")]
            /// q.put(1).unwrap();
            /// assert!(q.is_full());
            /// assert!(q.try_put(2).unwrap_err().is_full());
            /// ```
            pub fn with_maxsize(maxsize: usize) -> Self {
                OrderedQueue {
                    core: Arc::new(<$order as Order<T>>::Core::new(maxsize)),
                    _order: PhantomData,
                }
            }
        }

        impl<T $(: $bound)?> Default for OrderedQueue<T, $order> {
            fn default() -> Self {
                Self::new()
            }
        }
    };
}

constructors!("Queue", "Queue", Fifo);
constructors!("LifoQueue", "LifoQueue", Lifo);
constructors!("PriorityQueue", "PriorityQueue", Priority, Ord);

impl<T, O: Order<T>> OrderedQueue<T, O> {
    /// Puts `item`, waiting for room while the queue is full: Python's `put(item)`.
    ///
    /// # Errors
    ///
    /// [`PutError`] with the item when the queue is (or becomes, while
    /// waiting) shut down.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = spindle::queue::Queue::new();
    /// q.put(7).unwrap();
    /// q.shutdown(false);
    /// assert_eq!(q.put(8).unwrap_err().into_inner(), 8);
    /// ```
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.core.put(item, Wait::Forever).map_err(|e| match e {
            PutFail::ShutDown(item) | PutFail::Full(item) => PutError(item),
        })
    }

    /// Puts `item` if there is room now: Python's `put_nowait(item)`.
    ///
    /// # Errors
    ///
    /// [`TryPutError::Full`] when the queue is at `maxsize`,
    /// [`TryPutError::ShutDown`] after a shutdown; both hand the item back.
    ///
    /// # Examples
    ///
    /// ```
    /// use spindle::queue::{Queue, TryPutError};
    /// let q = Queue::with_maxsize(1);
    /// q.try_put(1).unwrap();
    /// assert_eq!(q.try_put(2), Err(TryPutError::Full(2)));
    /// ```
    pub fn try_put(&self, item: T) -> Result<(), TryPutError<T>> {
        self.core.put(item, Wait::Never).map_err(|e| match e {
            PutFail::Full(item) => TryPutError::Full(item),
            PutFail::ShutDown(item) => TryPutError::ShutDown(item),
        })
    }

    /// Puts `item`, waiting at most `timeout` for room: Python's
    /// `put(item, timeout=t)`.
    ///
    /// # Errors
    ///
    /// [`PutTimeoutError::Timeout`] when the queue stayed full (Python's
    /// `Full`), [`PutTimeoutError::ShutDown`] after a shutdown; both hand the
    /// item back.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let q = spindle::queue::Queue::with_maxsize(1);
    /// q.put(1).unwrap();
    /// let err = q.put_timeout(2, Duration::from_millis(1)).unwrap_err();
    /// assert!(err.is_timeout());
    /// ```
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutTimeoutError<T>> {
        self.put_block(item, Wait::after(timeout))
    }

    /// Puts `item`, waiting for room until `deadline`.
    ///
    /// # Errors
    ///
    /// As [`put_timeout`](OrderedQueue::put_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let q = spindle::queue::Queue::with_maxsize(1);
    /// q.put_deadline(1, Instant::now() + Duration::from_secs(1)).unwrap();
    /// assert!(q.put_deadline(2, Instant::now()).is_err());
    /// ```
    pub fn put_deadline(&self, item: T, deadline: Instant) -> Result<(), PutTimeoutError<T>> {
        self.put_block(item, Wait::Until(deadline))
    }

    fn put_block(&self, item: T, block: Wait) -> Result<(), PutTimeoutError<T>> {
        self.core.put(item, block).map_err(|e| match e {
            PutFail::Full(item) => PutTimeoutError::Timeout(item),
            PutFail::ShutDown(item) => PutTimeoutError::ShutDown(item),
        })
    }

    /// Takes the next item, waiting while the queue is empty: Python's `get()`.
    ///
    /// After a non-immediate shutdown the remaining items are still handed
    /// out; after an immediate one there are none.
    ///
    /// # Errors
    ///
    /// [`ShutDown`] when the queue is shut down and empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use spindle::queue::{Queue, ShutDown};
    /// let q = Queue::new();
    /// q.put("last").unwrap();
    /// q.shutdown(false);
    /// assert_eq!(q.get(), Ok("last"));
    /// assert_eq!(q.get(), Err(ShutDown));
    /// ```
    pub fn get(&self) -> Result<T, ShutDown> {
        self.core.get(Wait::Forever).map_err(|_| ShutDown)
    }

    /// Takes the next item if there is one now: Python's `get_nowait()`.
    ///
    /// # Errors
    ///
    /// [`TryGetError::Empty`] (Python's `Empty`) or [`TryGetError::ShutDown`].
    ///
    /// # Examples
    ///
    /// ```
    /// use spindle::queue::{Queue, TryGetError};
    /// let q = Queue::<i32>::new();
    /// assert_eq!(q.try_get(), Err(TryGetError::Empty));
    /// ```
    pub fn try_get(&self) -> Result<T, TryGetError> {
        self.core.get(Wait::Never).map_err(|e| match e {
            GetFail::Empty => TryGetError::Empty,
            GetFail::ShutDown => TryGetError::ShutDown,
        })
    }

    /// Takes the next item, waiting at most `timeout`: Python's `get(timeout=t)`.
    ///
    /// # Errors
    ///
    /// [`GetTimeoutError::Timeout`] (Python's `Empty`) or
    /// [`GetTimeoutError::ShutDown`].
    ///
    /// # Examples
    ///
    /// ```
    /// use spindle::queue::{GetTimeoutError, Queue};
    /// use std::time::Duration;
    /// let q = Queue::<i32>::new();
    /// assert_eq!(q.get_timeout(Duration::from_millis(1)), Err(GetTimeoutError::Timeout));
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetTimeoutError> {
        self.get_block(Wait::after(timeout))
    }

    /// Takes the next item, waiting until `deadline`.
    ///
    /// # Errors
    ///
    /// As [`get_timeout`](OrderedQueue::get_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    /// let q = spindle::queue::Queue::new();
    /// q.put(1).unwrap();
    /// assert_eq!(q.get_deadline(Instant::now()), Ok(1));
    /// ```
    pub fn get_deadline(&self, deadline: Instant) -> Result<T, GetTimeoutError> {
        self.get_block(Wait::Until(deadline))
    }

    fn get_block(&self, block: Wait) -> Result<T, GetTimeoutError> {
        self.core.get(block).map_err(|e| match e {
            GetFail::Empty => GetTimeoutError::Timeout,
            GetFail::ShutDown => GetTimeoutError::ShutDown,
        })
    }
}
