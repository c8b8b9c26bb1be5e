//! The three orders a [`Queue`](super::Queue) can hand items out in.
//!
//! An order is a zero-sized marker type naming the store behind the queue:
//! [`Fifo`] (a ring buffer, Python's `queue.Queue`), [`Lifo`] (a stack, Python's
//! `queue.LifoQueue`) and [`Priority`] (a binary heap, Python's
//! `queue.PriorityQueue`, but stable: equal items come out in insertion order).
#![forbid(unsafe_code)]

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

mod sealed {
    pub trait Sealed {}
}

/// The order in which a [`Queue`](super::Queue) hands out its items.
///
/// Sealed: the implementations are [`Fifo`], [`Lifo`] and [`Priority`].
pub trait Order<T>: sealed::Sealed {
    /// The container that holds the waiting items.
    #[doc(hidden)]
    type Store: Store<T>;
    /// The shared state of a queue of this order.
    #[doc(hidden)]
    type Core: super::backend::Backend<T>;
}

/// The container behind a queue: push, pop and count.
#[doc(hidden)]
pub trait Store<T> {
    /// An empty store.
    fn new() -> Self;
    /// Adds an item.
    fn push(&mut self, item: T);
    /// Removes the next item in this store's order.
    fn pop(&mut self) -> Option<T>;
    /// How many items are stored.
    fn len(&self) -> usize;
    /// Removes every item, in no particular order.
    fn drain_all(&mut self) -> Vec<T>;
}

/// First in, first out: Python's `queue.Queue`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fifo;

/// Last in, first out: Python's `queue.LifoQueue`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lifo;

/// Smallest first, equal items in insertion order: Python's
/// `queue.PriorityQueue`, made stable.
#[derive(Debug, Clone, Copy, Default)]
pub struct Priority;

impl sealed::Sealed for Fifo {}
impl sealed::Sealed for Lifo {}
impl sealed::Sealed for Priority {}

impl<T> Order<T> for Fifo {
    type Store = VecDeque<T>;
    // Lock-free (`fifo.rs`); `Store` is unused for this order.
    type Core = super::fifo::FifoCore<T>;
}

impl<T> Order<T> for Lifo {
    type Store = Vec<T>;
    type Core = super::core::Core<Vec<T>>;
}

impl<T: Ord> Order<T> for Priority {
    type Store = Heap<T>;
    type Core = super::core::Core<Heap<T>>;
}

impl<T> Store<T> for VecDeque<T> {
    fn new() -> Self {
        VecDeque::new()
    }
    #[inline]
    fn push(&mut self, item: T) {
        self.push_back(item);
    }
    #[inline]
    fn pop(&mut self) -> Option<T> {
        self.pop_front()
    }
    #[inline]
    fn len(&self) -> usize {
        VecDeque::len(self)
    }
    fn drain_all(&mut self) -> Vec<T> {
        self.drain(..).collect()
    }
}

impl<T> Store<T> for Vec<T> {
    fn new() -> Self {
        Vec::new()
    }
    #[inline]
    fn push(&mut self, item: T) {
        Vec::push(self, item);
    }
    #[inline]
    fn pop(&mut self) -> Option<T> {
        Vec::pop(self)
    }
    #[inline]
    fn len(&self) -> usize {
        Vec::len(self)
    }
    fn drain_all(&mut self) -> Vec<T> {
        std::mem::take(self)
    }
}

/// A min-heap that breaks ties by insertion sequence, so equal items keep
/// their insertion order (Python's `heapq` does not promise that).
#[doc(hidden)]
#[derive(Debug)]
pub struct Heap<T> {
    heap: BinaryHeap<Entry<T>>,
    seq: u64,
}

#[derive(Debug)]
struct Entry<T> {
    item: T,
    seq: u64,
}

impl<T: Ord> Ord for Entry<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        // BinaryHeap is a max-heap: reverse both keys so the smallest item,
        // and among equal items the oldest, is on top.
        other
            .item
            .cmp(&self.item)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

impl<T: Ord> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T: Ord> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<T: Ord> Eq for Entry<T> {}

impl<T: Ord> Store<T> for Heap<T> {
    fn new() -> Self {
        Heap {
            heap: BinaryHeap::new(),
            seq: 0,
        }
    }
    fn push(&mut self, item: T) {
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        self.heap.push(Entry { item, seq });
    }
    fn pop(&mut self) -> Option<T> {
        self.heap.pop().map(|e| e.item)
    }
    fn len(&self) -> usize {
        self.heap.len()
    }
    fn drain_all(&mut self) -> Vec<T> {
        self.heap.drain().map(|e| e.item).collect()
    }
}
