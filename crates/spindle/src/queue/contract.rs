//! [`BlockingQueue`]: the queue contract shared by every scope.
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use super::OrderedQueue;
use super::error::{
    GetTimeoutError, JoinTimeoutError, PutError, PutTimeoutError, ShutDown, TaskDoneError,
    TryGetError, TryPutError,
};
use super::order::Order;
use crate::util::Wait;

/// The blocking queue contract: Python's `queue.Queue` interface, which
/// `multiprocessing.Queue` shares.
///
/// [`OrderedQueue`] (that is [`Queue`](super::Queue), [`LifoQueue`](super::LifoQueue)
/// and [`PriorityQueue`](super::PriorityQueue)) implements it, and so does
/// the process queue [`ipc::Queue`](crate::ipc::Queue), the manager's
/// `QueueProxy` and the cluster queue (`spindle_cluster::Queue`), so code
/// written against
/// `impl BlockingQueue<T>` switches scope by changing one constructor, and
/// the conformance suite (`spindle_conformance::queue`, in the workspace's
/// `spindle-conformance` crate: a port of CPython's `test_queue.py`) runs
/// against every implementation.
///
/// # Implementing it
///
/// Follow Python 3.13's `queue.Queue` exactly (the conformance suite checks
/// it): `put` checks shutdown before room; `get` hands out the remaining items
/// after a normal shutdown and fails at once after an immediate one, which
/// also counts the dropped items as done; `task_done` beyond the number of
/// items put is an error that changes nothing. An implementation whose
/// transport can fail for good (a peer process died, a server went away)
/// reports that as the queue being shut down, so worker loops end instead of
/// hanging; richer diagnostics belong on the implementing type.
///
/// # Examples
///
/// ```
/// use spindle::queue::{BlockingQueue, LifoQueue, Queue};
///
/// fn drain<Q: BlockingQueue<u32>>(q: &Q) -> Vec<u32> {
///     q.shutdown(false);
///     std::iter::from_fn(|| q.get().ok()).collect()
/// }
/// let (fifo, lifo) = (Queue::new(), LifoQueue::new());
/// for n in 1..=3 {
///     fifo.put(n).unwrap();
///     lifo.put(n).unwrap();
/// }
/// assert_eq!(drain(&fifo), [1, 2, 3]);
/// assert_eq!(drain(&lifo), [3, 2, 1]);
/// ```
pub trait BlockingQueue<T> {
    /// Puts `item`, waiting for room: Python's `put(item)`.
    ///
    /// # Errors
    ///
    /// [`PutError`] with the item once the queue is shut down.
    fn put(&self, item: T) -> Result<(), PutError<T>>;

    /// Puts `item` if there is room now: Python's `put_nowait(item)`.
    ///
    /// # Errors
    ///
    /// [`TryPutError`] with the item: full or shut down.
    fn try_put(&self, item: T) -> Result<(), TryPutError<T>>;

    /// Puts `item`, waiting for room until `deadline`.
    ///
    /// # Errors
    ///
    /// [`PutTimeoutError`] with the item: timed out or shut down.
    fn put_deadline(&self, item: T, deadline: Instant) -> Result<(), PutTimeoutError<T>>;

    /// Puts `item`, waiting at most `timeout` for room: Python's `put(item, timeout=t)`.
    ///
    /// # Errors
    ///
    /// [`PutTimeoutError`] with the item: timed out or shut down.
    fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutTimeoutError<T>> {
        match Wait::after(timeout) {
            Wait::Until(at) => self.put_deadline(item, at),
            _ => self.put(item).map_err(|e| PutTimeoutError::ShutDown(e.0)),
        }
    }

    /// Takes the next item, waiting for one: Python's `get()`.
    ///
    /// # Errors
    ///
    /// [`ShutDown`] once the queue is shut down and empty.
    fn get(&self) -> Result<T, ShutDown>;

    /// Takes the next item if there is one now: Python's `get_nowait()`.
    ///
    /// # Errors
    ///
    /// [`TryGetError`]: empty or shut down.
    fn try_get(&self) -> Result<T, TryGetError>;

    /// Takes the next item, waiting until `deadline`.
    ///
    /// # Errors
    ///
    /// [`GetTimeoutError`]: timed out or shut down.
    fn get_deadline(&self, deadline: Instant) -> Result<T, GetTimeoutError>;

    /// Takes the next item, waiting at most `timeout`: Python's `get(timeout=t)`.
    ///
    /// # Errors
    ///
    /// [`GetTimeoutError`]: timed out or shut down.
    fn get_timeout(&self, timeout: Duration) -> Result<T, GetTimeoutError> {
        match Wait::after(timeout) {
            Wait::Until(at) => self.get_deadline(at),
            _ => self.get().map_err(GetTimeoutError::from),
        }
    }

    /// How many items are waiting: Python's `qsize()`.
    fn qsize(&self) -> usize;

    /// Whether no item is waiting: Python's `empty()`.
    fn is_empty(&self) -> bool {
        self.qsize() == 0
    }

    /// Whether the queue is at `maxsize`: Python's `full()`.
    fn is_full(&self) -> bool {
        let max = self.maxsize();
        max > 0 && self.qsize() >= max
    }

    /// The most items the queue holds, 0 meaning unbounded: Python's `maxsize`.
    fn maxsize(&self) -> usize;

    /// Marks one taken item as processed: Python's `task_done()`.
    ///
    /// # Errors
    ///
    /// [`TaskDoneError`] when called more times than items were put.
    fn task_done(&self) -> Result<(), TaskDoneError>;

    /// Waits until every item put is done: Python's `join()`.
    fn join(&self);

    /// Waits until `deadline` for every item put to be done.
    ///
    /// # Errors
    ///
    /// [`JoinTimeoutError`] when tasks were still unfinished at the deadline.
    fn join_deadline(&self, deadline: Instant) -> Result<(), JoinTimeoutError>;

    /// Waits at most `timeout` for every item put to be done.
    ///
    /// # Errors
    ///
    /// [`JoinTimeoutError`] when tasks were still unfinished at the deadline.
    fn join_timeout(&self, timeout: Duration) -> Result<(), JoinTimeoutError> {
        match Wait::after(timeout) {
            Wait::Until(at) => self.join_deadline(at),
            _ => {
                self.join();
                Ok(())
            }
        }
    }

    /// Shuts the queue down: Python 3.13's `shutdown(immediate)`.
    fn shutdown(&self, immediate: bool);

    /// Whether the queue was shut down: Python's `is_shutdown`.
    fn is_shutdown(&self) -> bool;
}

impl<T, O: Order<T>> BlockingQueue<T> for OrderedQueue<T, O> {
    fn put(&self, item: T) -> Result<(), PutError<T>> {
        OrderedQueue::put(self, item)
    }
    fn try_put(&self, item: T) -> Result<(), TryPutError<T>> {
        OrderedQueue::try_put(self, item)
    }
    fn put_deadline(&self, item: T, deadline: Instant) -> Result<(), PutTimeoutError<T>> {
        OrderedQueue::put_deadline(self, item, deadline)
    }
    fn get(&self) -> Result<T, ShutDown> {
        OrderedQueue::get(self)
    }
    fn try_get(&self) -> Result<T, TryGetError> {
        OrderedQueue::try_get(self)
    }
    fn get_deadline(&self, deadline: Instant) -> Result<T, GetTimeoutError> {
        OrderedQueue::get_deadline(self, deadline)
    }
    fn qsize(&self) -> usize {
        OrderedQueue::len(self)
    }
    fn maxsize(&self) -> usize {
        OrderedQueue::maxsize(self)
    }
    fn task_done(&self) -> Result<(), TaskDoneError> {
        OrderedQueue::task_done(self)
    }
    fn join(&self) {
        OrderedQueue::join(self)
    }
    fn join_deadline(&self, deadline: Instant) -> Result<(), JoinTimeoutError> {
        OrderedQueue::join_deadline(self, deadline)
    }
    fn shutdown(&self, immediate: bool) {
        OrderedQueue::shutdown(self, immediate)
    }
    fn is_shutdown(&self) -> bool {
        OrderedQueue::is_shutdown(self)
    }
}
