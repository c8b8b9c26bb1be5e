//! The three orders a [`Queue`](super::Queue) can hand items out in.
//!
//! An order is a zero-sized marker type naming the store behind the queue:
//! [`Fifo`] (a ring buffer, Python's `queue.Queue`), [`Lifo`] (a stack, Python's
//! `queue.LifoQueue`) and [`Priority`] (a binary heap, Python's
//! `queue.PriorityQueue`, but stable: equal items come out in insertion order).
#![forbid(unsafe_code)]

use std::cmp::Ordering;
use std::collections::VecDeque;

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
///
/// Panic-safe in the sense the queue needs: an item's `Ord` may panic, and
/// then nothing is lost. `push` stores the item before it compares (a panic
/// leaves it in the heap, maybe out of place); `pop` makes every comparison
/// first and moves items only once they all returned, so a panic leaves the
/// heap exactly as it was, its top item included (`std`'s `BinaryHeap::pop`,
/// like Python's `heappop`, drops the top item when a comparison panics).
#[doc(hidden)]
#[derive(Debug)]
pub struct Heap<T> {
    data: Vec<Entry<T>>,
    seq: u64,
}

#[derive(Debug)]
struct Entry<T> {
    item: T,
    seq: u64,
}

impl<T: Ord> Entry<T> {
    /// Whether `self` comes out before `other`: the smaller item, and among
    /// equal items the older.
    #[inline]
    fn before(&self, other: &Self) -> bool {
        match self.item.cmp(&other.item) {
            Ordering::Less => true,
            Ordering::Greater => false,
            // Sequence numbers wrap only after 2^64 pushes.
            Ordering::Equal => self.seq < other.seq,
        }
    }
}

impl<T: Ord> Heap<T> {
    /// Moves the entry at `pos` up while it comes out before its parent.
    /// Each step swaps, so a panicking comparison leaves every entry in
    /// the vector.
    fn sift_up(&mut self, mut pos: usize) {
        while pos > 0 {
            let parent = (pos - 1) / 2;
            if !self.data[pos].before(&self.data[parent]) {
                break;
            }
            self.data.swap(pos, parent);
            pos = parent;
        }
    }
}

impl<T: Ord> Store<T> for Heap<T> {
    fn new() -> Self {
        Heap {
            data: Vec::new(),
            seq: 0,
        }
    }
    fn push(&mut self, item: T) {
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        self.data.push(Entry { item, seq });
        let last = self.data.len() - 1;
        self.sift_up(last);
    }
    fn pop(&mut self) -> Option<T> {
        let n = self.data.len();
        if n <= 1 {
            return self.data.pop().map(|e| e.item);
        }
        // The last entry will fill the root's place: find where it sinks to
        // (the path of the smaller children it does not come out before),
        // comparing only. A panic here changes nothing.
        let last = n - 1;
        // The path as one bit per level (1: the right child): a heap in
        // memory is less than 64 levels deep.
        let (mut turns, mut depth) = (0u64, 0u32);
        let mut pos = 0;
        loop {
            let left = 2 * pos + 1;
            if left >= last {
                break;
            }
            let right = left + 1;
            let go_right = right < last && self.data[right].before(&self.data[left]);
            let child = if go_right { right } else { left };
            if !self.data[child].before(&self.data[last]) {
                break;
            }
            turns |= u64::from(go_right) << depth;
            depth += 1;
            pos = child;
        }
        // Then move, without comparing: each entry of the path up one level
        // (the root's entry travels down to the path's end), then the root's
        // entry out and the last entry into its place.
        let mut hole = 0;
        for level in 0..depth {
            let child = 2 * hole + 1 + ((turns >> level) & 1) as usize;
            self.data.swap(hole, child);
            hole = child;
        }
        Some(self.data.swap_remove(hole).item)
    }
    fn len(&self) -> usize {
        self.data.len()
    }
    fn drain_all(&mut self) -> Vec<T> {
        self.data.drain(..).map(|e| e.item).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::{Heap, Store};

    /// The heap hands items out smallest first, equal items in insertion
    /// order, through any mix of pushes and pops.
    #[test]
    fn heap_pops_in_stable_priority_order() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..50 {
            let mut heap: Heap<(u8, u32)> = Heap::new();
            let mut model: Vec<(u8, u32)> = Vec::new();
            let mut tag = 0;
            for _ in 0..(round * 7 + 1) {
                if next() % 3 == 0 {
                    // `model` holds (key, insertion tag): its smallest is
                    // what the heap must give (ties: the smallest tag).
                    let want = model.iter().min().copied();
                    if let Some(w) = want {
                        model.retain(|e| *e != w);
                    }
                    assert_eq!(heap.pop(), want);
                } else {
                    let item = ((next() % 5) as u8, tag);
                    tag += 1;
                    heap.push(item);
                    model.push(item);
                }
                assert_eq!(heap.len(), model.len());
            }
            model.sort_unstable();
            let rest: Vec<_> = std::iter::from_fn(|| heap.pop()).collect();
            assert_eq!(rest, model);
        }
    }

    /// Equal items come out in insertion order (the sequence number, not
    /// the item, breaks the tie).
    #[test]
    fn heap_is_stable() {
        #[derive(Debug, PartialEq, Eq)]
        struct K(u8, u32);
        impl PartialOrd for K {
            fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(o))
            }
        }
        impl Ord for K {
            fn cmp(&self, o: &Self) -> std::cmp::Ordering {
                self.0.cmp(&o.0)
            }
        }
        let mut heap = Heap::new();
        for i in 0..100u32 {
            heap.push(K((i % 3) as u8, i));
        }
        let out: Vec<(u8, u32)> = std::iter::from_fn(|| heap.pop().map(|k| (k.0, k.1))).collect();
        let mut want: Vec<(u8, u32)> = (0..100u32).map(|i| ((i % 3) as u8, i)).collect();
        want.sort_by_key(|&(k, i)| (k, i));
        assert_eq!(out, want);
    }
}
