//! Iterators over a [`Queue`]: the worker loop `for item in &q { ... }`.
#![forbid(unsafe_code)]

use std::fmt;
use std::iter::FusedIterator;

use super::OrderedQueue;
use super::order::Order;

impl<T, O: Order<T>> OrderedQueue<T, O> {
    /// A blocking iterator: each `next()` is a [`get`](OrderedQueue::get), and the
    /// iteration ends when the queue is shut down (after the remaining items,
    /// for a non-immediate shutdown). The Rust form of Python's
    /// `while True: item = q.get()` loop ended by a sentinel.
    ///
    /// It does not call [`task_done`](OrderedQueue::task_done) for you.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = spindle::queue::Queue::new();
    /// q.put(1).unwrap();
    /// q.put(2).unwrap();
    /// q.shutdown(false);
    /// assert_eq!(q.iter().collect::<Vec<_>>(), [1, 2]);
    /// ```
    pub fn iter(&self) -> Iter<'_, T, O> {
        Iter {
            queue: self,
            done: false,
        }
    }

    /// A non-blocking iterator: each `next()` is a [`try_get`](OrderedQueue::try_get),
    /// and the iteration ends at the first empty (or shut down) queue, like
    /// Python workers calling `get(False)` until `queue.Empty`.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = spindle::queue::Queue::new();
    /// q.put('a').unwrap();
    /// q.put('b').unwrap();
    /// assert_eq!(q.try_iter().collect::<String>(), "ab");
    /// assert!(q.is_empty());
    /// ```
    pub fn try_iter(&self) -> TryIter<'_, T, O> {
        TryIter { queue: self }
    }
}

/// The blocking iterator of [`OrderedQueue::iter`]; ends on shutdown.
pub struct Iter<'a, T, O: Order<T>> {
    queue: &'a OrderedQueue<T, O>,
    done: bool,
}

/// The non-blocking iterator of [`OrderedQueue::try_iter`]; ends when the queue is empty.
pub struct TryIter<'a, T, O: Order<T>> {
    queue: &'a OrderedQueue<T, O>,
}

/// The owning blocking iterator of `Queue::into_iter`; ends on shutdown.
pub struct IntoIter<T, O: Order<T>> {
    queue: OrderedQueue<T, O>,
    done: bool,
}

impl<T, O: Order<T>> Iterator for Iter<'_, T, O> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        if self.done {
            return None;
        }
        let item = self.queue.get().ok();
        self.done = item.is_none();
        item
    }
}

impl<T, O: Order<T>> FusedIterator for Iter<'_, T, O> {}

impl<T, O: Order<T>> Iterator for TryIter<'_, T, O> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.queue.try_get().ok()
    }
}

impl<T, O: Order<T>> Iterator for IntoIter<T, O> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        if self.done {
            return None;
        }
        let item = self.queue.get().ok();
        self.done = item.is_none();
        item
    }
}

impl<T, O: Order<T>> FusedIterator for IntoIter<T, O> {}

impl<'a, T, O: Order<T>> IntoIterator for &'a OrderedQueue<T, O> {
    type Item = T;
    type IntoIter = Iter<'a, T, O>;
    fn into_iter(self) -> Iter<'a, T, O> {
        self.iter()
    }
}

impl<T, O: Order<T>> IntoIterator for OrderedQueue<T, O> {
    type Item = T;
    type IntoIter = IntoIter<T, O>;
    fn into_iter(self) -> IntoIter<T, O> {
        IntoIter {
            queue: self,
            done: false,
        }
    }
}

impl<T, O: Order<T>> fmt::Debug for Iter<'_, T, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").field("queue", self.queue).finish()
    }
}

impl<T, O: Order<T>> fmt::Debug for TryIter<'_, T, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryIter")
            .field("queue", self.queue)
            .finish()
    }
}

impl<T, O: Order<T>> fmt::Debug for IntoIter<T, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntoIter")
            .field("queue", &self.queue)
            .finish()
    }
}
