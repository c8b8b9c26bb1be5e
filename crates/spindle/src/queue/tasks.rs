//! [`Queue`]'s size queries, task tracking (`task_done`/`join`) and shutdown.
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use super::OrderedQueue;
use super::backend::Backend;
use super::error::{JoinTimeoutError, TaskDoneError};
use super::order::Order;
use crate::util::Wait;

impl<T, O: Order<T>> OrderedQueue<T, O> {
    /// How many items are waiting: Python's `qsize()`.
    ///
    /// Like Python's, the answer may be stale by the time it is read when
    /// other threads use the queue.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = spindle::queue::Queue::new();
    /// q.put(()).unwrap();
    /// assert_eq!(q.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        // A lock-free count (FIFO) or an atomic mirror (LIFO, priority).
        self.core.len()
    }

    /// The same as [`len`](OrderedQueue::len), under Python's name `qsize()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = spindle::queue::Queue::<u8>::new();
    /// assert_eq!(q.qsize(), 0);
    /// ```
    pub fn qsize(&self) -> usize {
        self.len()
    }

    /// Whether no item is waiting: Python's `empty()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = spindle::queue::Queue::<u8>::new();
    /// assert!(q.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the queue holds `maxsize` items (never for an unbounded
    /// queue): Python's `full()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = spindle::queue::Queue::with_maxsize(1);
    /// assert!(!q.is_full());
    /// q.put(1).unwrap();
    /// assert!(q.is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        self.core.maxsize() > 0 && self.len() >= self.core.maxsize()
    }

    /// The most items the queue holds, 0 meaning unbounded: Python's `maxsize`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(spindle::queue::Queue::<u8>::with_maxsize(3).maxsize(), 3);
    /// ```
    pub fn maxsize(&self) -> usize {
        self.core.maxsize()
    }

    /// How many items were put and not yet marked done with
    /// [`task_done`](OrderedQueue::task_done): Python's `unfinished_tasks`.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = spindle::queue::Queue::new();
    /// q.put(1).unwrap();
    /// q.get().unwrap();
    /// assert_eq!(q.unfinished_tasks(), 1);
    /// q.task_done().unwrap();
    /// assert_eq!(q.unfinished_tasks(), 0);
    /// ```
    pub fn unfinished_tasks(&self) -> usize {
        self.core.unfinished()
    }

    /// The queue's counters: `qsize`, `unfinished_tasks`, and the items put
    /// and got so far (spindle only: Python has no such counts; see
    /// [`QueueStats`](crate::stats::QueueStats)).
    ///
    /// Costs nothing on `put` and `get`: the counts are derived from the
    /// unfinished count, the length and two counters kept by `task_done`
    /// and `shutdown(immediate)`: `puts = unfinished + done` and
    /// `gets = puts - qsize - dropped`. Exact when no put, get or
    /// `task_done` of another thread is in progress (the LIFO and priority
    /// queues read them under their lock: always exact).
    ///
    /// ```
    /// use spindle::queue::LifoQueue;
    ///
    /// let q = LifoQueue::new();
    /// q.put(1).unwrap();
    /// q.put(2).unwrap();
    /// assert_eq!(q.get().unwrap(), 2);
    /// q.task_done().unwrap();
    /// let s = q.stats();
    /// assert_eq!((s.qsize, s.unfinished, s.puts, s.gets), (1, 1, 2, 1));
    /// ```
    pub fn stats(&self) -> crate::stats::QueueStats {
        self.core.stats()
    }

    /// Marks one item taken from the queue as processed: Python's `task_done()`.
    ///
    /// When every item put so far is done, [`join`](OrderedQueue::join) returns.
    ///
    /// # Errors
    ///
    /// [`TaskDoneError`] when called more times than items were put (Python
    /// raises `ValueError`); the count is left unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = spindle::queue::Queue::new();
    /// q.put("job").unwrap();
    /// q.get().unwrap();
    /// assert!(q.task_done().is_ok());
    /// assert!(q.task_done().is_err());
    /// ```
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        if self.core.task_done() {
            Ok(())
        } else {
            Err(TaskDoneError)
        }
    }

    /// Waits until every item put has been marked done with
    /// [`task_done`](OrderedQueue::task_done): Python's `join()`.
    ///
    /// An immediate [`shutdown`](OrderedQueue::shutdown) counts the items it drops
    /// as done, so it releases `join` unless items taken earlier are still
    /// being processed.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = spindle::queue::Queue::new();
    /// q.put(1).unwrap();
    /// let worker = {
    ///     let q = q.clone();
    ///     std::thread::spawn(move || {
    ///         q.get().unwrap();
    ///         q.task_done().unwrap();
    ///     })
    /// };
    /// q.join();
    /// assert_eq!(q.unfinished_tasks(), 0);
    /// worker.join().unwrap();
    /// ```
    pub fn join(&self) {
        self.core.join(None);
    }

    /// Waits at most `timeout` for every item to be done (Python's `join()`
    /// has no timeout).
    ///
    /// # Errors
    ///
    /// [`JoinTimeoutError`] when tasks were still unfinished at the deadline.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let q = spindle::queue::Queue::new();
    /// q.put(1).unwrap();
    /// assert!(q.join_timeout(Duration::from_millis(1)).is_err());
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), JoinTimeoutError> {
        match Wait::after(timeout) {
            Wait::Until(at) => self.join_deadline(at),
            _ => {
                self.join();
                Ok(())
            }
        }
    }

    /// Waits until `deadline` for every item to be done.
    ///
    /// # Errors
    ///
    /// [`JoinTimeoutError`] when tasks were still unfinished at the deadline.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    /// let q = spindle::queue::Queue::<u8>::new();
    /// assert!(q.join_deadline(Instant::now()).is_ok());
    /// ```
    pub fn join_deadline(&self, deadline: Instant) -> Result<(), JoinTimeoutError> {
        if self.core.join(Some(deadline)) {
            Ok(())
        } else {
            Err(JoinTimeoutError)
        }
    }

    /// Shuts the queue down: Python 3.13's `shutdown(immediate)`.
    ///
    /// From now on every put fails with `ShutDown`. With `immediate = false`,
    /// gets keep handing out the remaining items and fail once the queue is
    /// empty; with `immediate = true` the remaining items are dropped (each
    /// counted as done, which releases [`join`](OrderedQueue::join)) and gets fail
    /// at once. Every blocked getter and putter, thread or task, is woken.
    /// Shutting down again is allowed (a later immediate shutdown still
    /// drops what is left).
    ///
    /// # Examples
    ///
    /// ```
    /// use spindle::queue::{Queue, TryGetError};
    /// let q = Queue::new();
    /// q.put(1).unwrap();
    /// q.shutdown(true);
    /// assert!(q.is_shutdown());
    /// assert_eq!(q.try_get(), Err(TryGetError::ShutDown));
    /// q.join(); // the dropped item counts as done
    /// ```
    pub fn shutdown(&self, immediate: bool) {
        self.core.shutdown(immediate);
    }

    /// Whether [`shutdown`](OrderedQueue::shutdown) was called: Python's `is_shutdown`.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = spindle::queue::Queue::<u8>::new();
    /// assert!(!q.is_shutdown());
    /// q.shutdown(false);
    /// assert!(q.is_shutdown());
    /// ```
    pub fn is_shutdown(&self) -> bool {
        self.core.is_shutdown()
    }
}
