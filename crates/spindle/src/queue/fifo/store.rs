//! The lock-free stores of the FIFO core: [`Ring`] (bounded, up to
//! `ARRAY_MAX` places, allocated up front) and [`List`] (unbounded, or
//! bounded above `ARRAY_MAX`: a linked list of blocks).
//!
//! Both carry the queue's shutdown mark in bit 0 of their tail word, as
//! crossbeam-channel's array and list flavours carry their disconnect mark:
//! the CAS that reserves a put's place fails once the mark is set, so a put
//! is either refused or owns a reserved place that getters wait for (a put
//! "in flight"), and a getter reports [`Pop::Closed`] only when the tail is
//! marked and every reserved place was taken. The tail and head positions
//! also count the puts and gets ([`Ring::pushes`], [`Ring::pops`]), so the
//! core keeps no counter on the put path: a put is one CAS (the
//! reservation) and one `Release` store (the slot's stamp or written flag).
//!
//! The algorithms are Vyukov's bounded ring with per-slot stamps and the
//! segmented list of crossbeam-channel (blocks of 31 slots; a block is
//! freed by the reader that finds every other slot of it read), rewritten
//! here over `u64` positions (no wrap-around in practice: 2^62 puts).
//! The list's written flag is a word of its own, apart from the readers'
//! read/destroy bits, so the writer sets it with a plain store.

use std::mem::MaybeUninit;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release, SeqCst};

// Under loom, loom's own atomics and cell: the models at the end of this
// file check the stores themselves.
#[cfg(loom)]
use ::loom::cell::UnsafeCell;
#[cfg(loom)]
use ::loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicU64};
#[cfg(not(loom))]
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicU64};

/// `std::cell::UnsafeCell` with loom's closure API.
#[cfg(not(loom))]
struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    fn new(value: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(value))
    }

    #[inline]
    fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

use super::Padded;

/// Bit 0 of a tail word: the queue is shut down.
pub(super) const MARK: u64 = 1;
/// One position in a tail (or head) word.
const ONE: u64 = 2;

/// What a refused push hands back.
pub(super) enum Push<T> {
    Full(T),
    Closed(T),
}

/// What a pop found.
pub(super) enum Pop<T> {
    Item(T),
    Empty,
    /// Shut down and nothing left: every reserved place was taken.
    Closed,
}

/// Waits a little (spin, then yield) for another thread's step in
/// progress: a reserved place being written, a slot being freed, a block
/// being installed.
#[cfg(loom)]
fn pause(_: &mut u32) {
    ::loom::thread::yield_now();
}

/// Waits a little (spin, then yield) for another thread's step in
/// progress: a reserved place being written, a slot being freed, a block
/// being installed.
#[cfg(not(loom))]
#[inline]
fn pause(round: &mut u32) {
    if *round < 6 {
        for _ in 0..1 << *round {
            std::hint::spin_loop();
        }
    } else {
        std::thread::yield_now();
    }
    *round += 1;
}

// --- the ring ----------------------------------------------------------

struct Slot<T> {
    /// `p`: free for the put at position `p`; `p + 1`: holds its item.
    stamp: AtomicU64,
    value: UnsafeCell<MaybeUninit<T>>,
}

/// Vyukov's bounded MPMC ring. A position is `lap * one_lap + index`
/// (`index < cap`, `one_lap` a power of two above `cap`, so the stamps of
/// "free" and "full" never meet).
pub(super) struct Ring<T> {
    head: Padded<AtomicU64>,
    /// `position << 1 | MARK`.
    tail: Padded<AtomicU64>,
    slots: Box<[Slot<T>]>,
    cap: u64,
    one_lap: u64,
    lap_shift: u32,
}

// SAFETY: the ring hands each item from one thread to another (T: Send);
// a slot's value is only touched by the thread whose CAS reserved it,
// ordered by the slot's stamp (Release store, Acquire load).
unsafe impl<T: Send> Send for Ring<T> {}
// SAFETY: as above: shared access only moves items in and out through
// reserved slots, never hands out a `&T`.
unsafe impl<T: Send> Sync for Ring<T> {}

impl<T> Ring<T> {
    /// A ring of `cap` places (`1 <= cap <= 2^32`).
    pub(super) fn new(cap: usize) -> Self {
        assert!(
            cap >= 1 && (cap as u64) <= 1 << 32,
            "ring capacity out of range"
        );
        let cap = cap as u64;
        let one_lap = (cap + 1).next_power_of_two();
        Ring {
            head: Padded(AtomicU64::new(0)),
            tail: Padded(AtomicU64::new(0)),
            slots: (0..cap)
                .map(|i| Slot {
                    stamp: AtomicU64::new(i),
                    value: UnsafeCell::new(MaybeUninit::uninit()),
                })
                .collect(),
            cap,
            one_lap,
            lap_shift: one_lap.trailing_zeros(),
        }
    }

    #[inline]
    fn slot(&self, pos: u64) -> &Slot<T> {
        &self.slots[(pos & (self.one_lap - 1)) as usize]
    }

    /// The position after `pos`.
    #[inline]
    fn next(&self, pos: u64) -> u64 {
        if (pos & (self.one_lap - 1)) + 1 < self.cap {
            pos + 1
        } else {
            (pos & !(self.one_lap - 1)) + self.one_lap
        }
    }

    /// How many places come before `pos`.
    #[inline]
    fn count(&self, pos: u64) -> u64 {
        (pos >> self.lap_shift) * self.cap + (pos & (self.one_lap - 1))
    }

    #[inline]
    pub(super) fn push(&self, item: T) -> Result<(), Push<T>> {
        let mut round = 0;
        let mut t = self.tail.load(Relaxed);
        loop {
            if t & MARK != 0 {
                return Err(Push::Closed(item));
            }
            let pos = t >> 1;
            let slot = self.slot(pos);
            let stamp = slot.stamp.load(Acquire);
            if stamp == pos {
                // SeqCst: the put's half of the Dekker pair with a sleeping
                // getter (which reads `tail` with SeqCst in `pop`).
                match self
                    .tail
                    .compare_exchange_weak(t, self.next(pos) << 1, SeqCst, Relaxed)
                {
                    Ok(_) => {
                        // SAFETY: the CAS reserved `pos`; the stamp said
                        // the slot is free (its last item was read, Acquire
                        // above), and no other thread touches the value
                        // until our stamp store below.
                        slot.value.with_mut(|v| unsafe { (*v).write(item) });
                        slot.stamp.store(pos + 1, Release);
                        return Ok(());
                    }
                    Err(now) => t = now,
                }
            } else if stamp + self.one_lap == pos + 1 {
                // The slot still holds the item of the lap before: full,
                // unless a get has taken it and is freeing the slot.
                // SeqCst: the Dekker pair with a get (its head CAS, then
                // its load of the sleeping putters).
                let head = self.head.load(SeqCst);
                if head + self.one_lap == pos {
                    return Err(Push::Full(item));
                }
                pause(&mut round);
                t = self.tail.load(Relaxed);
            } else {
                // Another put took `pos` first.
                pause(&mut round);
                t = self.tail.load(Relaxed);
            }
        }
    }

    #[inline]
    pub(super) fn pop(&self) -> Pop<T> {
        let mut round = 0;
        let mut h = self.head.load(Relaxed);
        loop {
            let slot = self.slot(h);
            let stamp = slot.stamp.load(Acquire);
            if stamp == h + 1 {
                match self
                    .head
                    .compare_exchange_weak(h, self.next(h), SeqCst, Relaxed)
                {
                    Ok(_) => {
                        // SAFETY: the stamp (Acquire) says the put at `h`
                        // wrote the value; the CAS made us its only reader.
                        let item = slot.value.with_mut(|v| unsafe { (*v).assume_init_read() });
                        slot.stamp.store(h + self.one_lap, Release);
                        return Pop::Item(item);
                    }
                    Err(now) => h = now,
                }
            } else if stamp == h {
                // Not written: empty, or a put reserved `h` and is writing.
                let t = self.tail.load(SeqCst);
                if t >> 1 == h {
                    return if t & MARK != 0 {
                        Pop::Closed
                    } else {
                        Pop::Empty
                    };
                }
                pause(&mut round);
                h = self.head.load(Relaxed);
            } else {
                // Another get took `h` first.
                pause(&mut round);
                h = self.head.load(Relaxed);
            }
        }
    }

    /// Sets the mark; true when this call set it.
    pub(super) fn close(&self) -> bool {
        self.tail.fetch_or(MARK, SeqCst) & MARK == 0
    }

    pub(super) fn is_closed(&self) -> bool {
        self.tail.load(SeqCst) & MARK != 0
    }

    /// Places ever reserved by puts (never counts a refused put).
    pub(super) fn pushes(&self) -> u64 {
        self.count(self.tail.load(SeqCst) >> 1)
    }

    /// Items ever taken by gets.
    pub(super) fn pops(&self) -> u64 {
        self.count(self.head.load(SeqCst))
    }

    pub(super) fn len(&self) -> usize {
        loop {
            let t = self.tail.load(SeqCst);
            let h = self.head.load(SeqCst);
            if self.tail.load(SeqCst) == t {
                let n = self.count(t >> 1).saturating_sub(self.count(h));
                return n.min(self.cap) as usize;
            }
        }
    }

    pub(super) fn is_full(&self) -> bool {
        self.len() as u64 >= self.cap
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        if !std::mem::needs_drop::<T>() {
            return;
        }
        let mut h = self.head.load(Relaxed);
        let t = self.tail.load(Relaxed) >> 1;
        while h != t {
            let idx = (h & (self.one_lap - 1)) as usize;
            // SAFETY: `&mut self`: every put has returned, so every place
            // in `head..tail` was written and none of them read.
            self.slots[idx]
                .value
                .with_mut(|v| unsafe { (*v).assume_init_drop() });
            h = self.next(h);
        }
    }
}

// --- the list ----------------------------------------------------------

/// Slots per block; a block spans `LAP` positions, the last one standing
/// for "the next block is being installed".
/// (3 under loom, so a model crosses blocks in a few puts.)
const BLOCK_CAP: usize = if cfg!(loom) { 3 } else { 31 };
const LAP: u64 = BLOCK_CAP as u64 + 1;
/// Bit 0 of the head word: the tail is in a later block (no need to read
/// the tail to know the slot at the head is reserved).
const FAR: u64 = 1;
/// A slot's `read` bits.
const READ: u8 = 1;
const DESTROY: u8 = 2;

struct LSlot<T> {
    value: UnsafeCell<MaybeUninit<T>>,
    /// Set (Release) by the put once the value is written.
    written: AtomicBool,
    /// `READ` by its get once the value is moved out; `DESTROY` by the get
    /// freeing the block, which leaves the freeing to this slot's reader.
    read: AtomicU8,
}

struct Block<T> {
    next: AtomicPtr<Block<T>>,
    slots: [LSlot<T>; BLOCK_CAP],
}

impl<T> Block<T> {
    /// A fresh block on the heap (zeroed there: not built on the stack,
    /// which a block of big items could overflow).
    #[cfg(not(loom))]
    fn alloc() -> *mut Block<T> {
        // SAFETY: all zeroes is a valid `Block`: a null `next`, `written`
        // false, `read` 0, and any bytes for a `MaybeUninit` value.
        Box::into_raw(unsafe { Box::<Block<T>>::new_zeroed().assume_init() })
    }

    /// Loom's atomics are not plain memory: built field by field.
    #[cfg(loom)]
    fn alloc() -> *mut Block<T> {
        Box::into_raw(Box::new(Block {
            next: AtomicPtr::new(std::ptr::null_mut()),
            slots: std::array::from_fn(|_| LSlot {
                value: UnsafeCell::new(MaybeUninit::uninit()),
                written: AtomicBool::new(false),
                read: AtomicU8::new(0),
            }),
        }))
    }

    /// The next block, once the put of this block's last slot installed it.
    fn wait_next(&self) -> *mut Block<T> {
        let mut round = 0;
        loop {
            let next = self.next.load(Acquire);
            if !next.is_null() {
                return next;
            }
            pause(&mut round);
        }
    }

    /// Frees `this` once the slots `start..BLOCK_CAP - 1` are read (the
    /// last slot's reader is the caller, or called `destroy(.., 0)`); a
    /// slot whose reader is still at it gets `DESTROY`, and that reader
    /// goes on from there.
    ///
    /// # Safety
    /// `this` is a block every slot of which was reserved by a get, and
    /// the caller read the last slot (`start == 0`) or slot `start - 1`
    /// and found `DESTROY` on it.
    unsafe fn destroy(this: *mut Block<T>, start: usize) {
        for i in start..BLOCK_CAP - 1 {
            // SAFETY: the block is live: slot `i`'s reader (or we) will
            // free it, and only after this loop passed slot `i`.
            let slot = unsafe { &(*this).slots[i] };
            if slot.read.load(Acquire) & READ == 0
                && slot.read.fetch_or(DESTROY, AcqRel) & READ == 0
            {
                return;
            }
        }
        // SAFETY: every slot was read (their values moved out), no thread
        // holds a reference into the block (each reader was done before
        // setting READ), and it came from `Box::into_raw` in `alloc`.
        drop(unsafe { Box::from_raw(this) });
    }
}

struct End<T> {
    /// Tail: `position << 1 | MARK`; head: `position << 1 | FAR`.
    index: AtomicU64,
    block: AtomicPtr<Block<T>>,
}

/// The segmented MPMC list.
pub(super) struct List<T> {
    head: Padded<End<T>>,
    tail: Padded<End<T>>,
    /// 0: unbounded; else the most items held.
    max: u64,
}

// SAFETY: items move from one thread to another (T: Send); a slot's value
// is touched by the put that reserved it, then by the get that reserved
// it, ordered by the slot's `written` flag (Release store, Acquire load).
unsafe impl<T: Send> Send for List<T> {}
// SAFETY: as above; no `&T` is ever handed out.
unsafe impl<T: Send> Sync for List<T> {}

#[inline]
fn count(pos: u64) -> u64 {
    (pos / LAP) * BLOCK_CAP as u64 + pos % LAP
}

impl<T> List<T> {
    /// `max` 0: unbounded.
    pub(super) fn new(max: usize) -> Self {
        let first = Block::alloc();
        List {
            head: Padded(End {
                index: AtomicU64::new(0),
                block: AtomicPtr::new(first),
            }),
            tail: Padded(End {
                index: AtomicU64::new(0),
                block: AtomicPtr::new(first),
            }),
            max: max as u64,
        }
    }

    #[inline]
    pub(super) fn push(&self, item: T) -> Result<(), Push<T>> {
        let mut round = 0;
        loop {
            let t = self.tail.index.load(Acquire);
            if t & MARK != 0 {
                return Err(Push::Closed(item));
            }
            let pos = t >> 1;
            let offset = (pos % LAP) as usize;
            if offset == BLOCK_CAP {
                // The next block is being installed.
                pause(&mut round);
                continue;
            }
            if self.max != 0 {
                // SeqCst: the Dekker pair with a get (its head CAS, then
                // its load of the sleeping putters). Exact: the CAS below
                // fails unless the tail is still `pos`.
                let head = self.head.index.load(SeqCst) >> 1;
                if count(pos).saturating_sub(count(head)) >= self.max {
                    return Err(Push::Full(item));
                }
            }
            let block = self.tail.block.load(Acquire);
            // SeqCst: the put's half of the Dekker pair with a sleeping
            // getter (which reads the tail with SeqCst in `pop`).
            if self
                .tail
                .index
                .compare_exchange_weak(t, t + ONE, SeqCst, Relaxed)
                .is_err()
            {
                pause(&mut round);
                continue;
            }
            // SAFETY: `block` is the block of `pos` (read after the index
            // with Acquire; the tail leaves a block only once its positions
            // are all taken, and the CAS proved the index unchanged), and
            // it is live: it is freed only after every slot of it was
            // read, and slot `offset` is ours, not yet written.
            let b = unsafe { &*block };
            if offset + 1 == BLOCK_CAP {
                // The last slot: install the next block (before the write,
                // so the reader of this slot finds `next` set).
                let next = Block::alloc();
                self.tail.block.store(next, Release);
                self.tail.index.fetch_add(ONE, Release);
                b.next.store(next, Release);
            }
            let slot = &b.slots[offset];
            // SAFETY: the CAS reserved this slot: no other put writes it,
            // and its get reads it only after `written` (Release below).
            slot.value.with_mut(|v| unsafe { (*v).write(item) });
            slot.written.store(true, Release);
            return Ok(());
        }
    }

    #[inline]
    pub(super) fn pop(&self) -> Pop<T> {
        let mut round = 0;
        loop {
            let h = self.head.index.load(Acquire);
            let block = self.head.block.load(Acquire);
            let pos = h >> 1;
            let offset = (pos % LAP) as usize;
            if offset == BLOCK_CAP {
                pause(&mut round);
                continue;
            }
            let mut new = h + ONE;
            if h & FAR == 0 {
                // SeqCst: the getter's half of the Dekker pair with a put.
                let t = self.tail.index.load(SeqCst);
                let tail = t >> 1;
                if tail == pos {
                    return if t & MARK != 0 {
                        Pop::Closed
                    } else {
                        Pop::Empty
                    };
                }
                if pos / LAP != tail / LAP {
                    new |= FAR;
                }
            }
            if self
                .head
                .index
                .compare_exchange_weak(h, new, SeqCst, Relaxed)
                .is_err()
            {
                pause(&mut round);
                continue;
            }
            // SAFETY: as in `push`: the CAS proved `block` is the block of
            // `pos`, and it lives until slot `offset` (ours) is read.
            let b = unsafe { &*block };
            if offset + 1 == BLOCK_CAP {
                // The block's last slot: move the head to the next block.
                let next = b.wait_next();
                let mut index = (new & !FAR) + ONE;
                // SAFETY: `next` is live: none of its slots was read yet.
                if !unsafe { &*next }.next.load(Relaxed).is_null() {
                    index |= FAR;
                }
                self.head.block.store(next, Release);
                self.head.index.store(index, Release);
            }
            let slot = &b.slots[offset];
            let mut wait = 0;
            while !slot.written.load(Acquire) {
                // Reserved by a put that is writing.
                pause(&mut wait);
            }
            // SAFETY: `written` (Acquire) says the value is there, and the
            // CAS made us its only reader.
            let item = slot.value.with_mut(|v| unsafe { (*v).assume_init_read() });
            if offset + 1 == BLOCK_CAP {
                // SAFETY: we read the last slot; every slot was reserved.
                unsafe { Block::destroy(block, 0) };
            } else if slot.read.fetch_or(READ, AcqRel) & DESTROY != 0 {
                // SAFETY: the block's destroyer left the rest to us.
                unsafe { Block::destroy(block, offset + 1) };
            }
            return Pop::Item(item);
        }
    }

    pub(super) fn close(&self) -> bool {
        self.tail.index.fetch_or(MARK, SeqCst) & MARK == 0
    }

    pub(super) fn is_closed(&self) -> bool {
        self.tail.index.load(SeqCst) & MARK != 0
    }

    pub(super) fn pushes(&self) -> u64 {
        count(self.tail.index.load(SeqCst) >> 1)
    }

    pub(super) fn pops(&self) -> u64 {
        count(self.head.index.load(SeqCst) >> 1)
    }

    pub(super) fn len(&self) -> usize {
        loop {
            let t = self.tail.index.load(SeqCst);
            let h = self.head.index.load(SeqCst);
            if self.tail.index.load(SeqCst) == t {
                let n = count(t >> 1).saturating_sub(count(h >> 1));
                return usize::try_from(n).unwrap_or(usize::MAX);
            }
        }
    }

    pub(super) fn is_full(&self) -> bool {
        self.max != 0 && self.len() as u64 >= self.max
    }
}

impl<T> Drop for List<T> {
    fn drop(&mut self) {
        let mut pos = self.head.index.load(Relaxed) >> 1;
        let tail = self.tail.index.load(Relaxed) >> 1;
        let mut block = self.head.block.load(Relaxed);
        // `&mut self`: every put and get has returned, so every slot in
        // `head..tail` holds an item, and the blocks before the head's
        // were freed by their readers.
        while pos != tail {
            let offset = (pos % LAP) as usize;
            if offset == BLOCK_CAP {
                // SAFETY: the block is ours alone (see above).
                let next = unsafe { &*block }.next.load(Relaxed);
                // SAFETY: from `Box::into_raw`, its items dropped.
                drop(unsafe { Box::from_raw(block) });
                block = next;
            } else {
                // SAFETY: a written slot not read (see above).
                unsafe { &*block }.slots[offset]
                    .value
                    .with_mut(|v| unsafe { (*v).assume_init_drop() });
            }
            pos += 1;
        }
        // SAFETY: the last block, from `Box::into_raw`, its items dropped
        // (a push of a block's last slot installs the next one, so the
        // tail's block is never null).
        drop(unsafe { Box::from_raw(block) });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    use std::thread;

    use super::*;

    fn ok<T>(r: Result<(), Push<T>>) {
        assert!(r.is_ok(), "push refused");
    }

    fn item<T>(p: Pop<T>) -> T {
        match p {
            Pop::Item(x) => x,
            Pop::Empty => panic!("empty"),
            Pop::Closed => panic!("closed"),
        }
    }

    #[test]
    fn ring_fifo_full_and_close() {
        for cap in [1, 2, 3, 4, 5, 7, 8] {
            let r = Ring::new(cap);
            for round in 0..3 {
                for i in 0..cap {
                    ok(r.push(round * 100 + i));
                }
                assert!(matches!(r.push(99), Err(Push::Full(99))));
                assert!(r.is_full());
                assert_eq!(r.len(), cap);
                for i in 0..cap {
                    assert_eq!(item(r.pop()), round * 100 + i);
                }
                assert!(matches!(r.pop(), Pop::Empty));
            }
            assert_eq!(r.pushes(), 3 * cap as u64);
            assert_eq!(r.pops(), 3 * cap as u64);
            ok(r.push(1));
            assert!(r.close());
            assert!(!r.close());
            assert!(matches!(r.push(2), Err(Push::Closed(2))));
            assert_eq!(item(r.pop()), 1);
            assert!(matches!(r.pop(), Pop::Closed));
        }
    }

    #[test]
    fn list_fifo_across_blocks_and_close() {
        let l = List::new(0);
        for i in 0..100 {
            ok(l.push(i));
        }
        assert_eq!(l.len(), 100);
        assert_eq!(l.pushes(), 100);
        for i in 0..70 {
            assert_eq!(item(l.pop()), i);
        }
        assert_eq!(l.pops(), 70);
        assert!(l.close());
        assert!(matches!(l.push(0), Err(Push::Closed(0))));
        for i in 70..100 {
            assert_eq!(item(l.pop()), i);
        }
        assert!(matches!(l.pop(), Pop::Closed));
    }

    #[test]
    fn bounded_list_is_full_at_max() {
        let l = List::new(40);
        for i in 0..40 {
            ok(l.push(i));
        }
        assert!(l.is_full());
        assert!(matches!(l.push(40), Err(Push::Full(40))));
        assert_eq!(item(l.pop()), 0);
        ok(l.push(40));
        for i in 1..=40 {
            assert_eq!(item(l.pop()), i);
        }
        assert!(matches!(l.pop(), Pop::Empty));
    }

    /// Blocks of big items (3 MB a block here) are made on the heap: built
    /// on the stack first they would overflow a test thread's 2 MiB.
    #[cfg(not(miri))]
    #[test]
    fn list_of_big_items() {
        let l = List::new(0);
        for i in 0..40u8 {
            ok(l.push([i; 100_000]));
        }
        for i in 0..40u8 {
            let big = item(l.pop());
            assert!(big.iter().all(|&b| b == i));
        }
    }

    /// Counts drops, to check each item is dropped exactly once.
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Relaxed);
        }
    }

    #[test]
    fn dropping_a_store_drops_its_items_once() {
        let drops = Arc::new(AtomicUsize::new(0));
        {
            let l = List::new(0);
            for _ in 0..75 {
                ok(l.push(Counted(drops.clone())));
            }
            for _ in 0..40 {
                drop(item(l.pop()));
            }
            let r = Ring::new(5);
            for _ in 0..5 {
                ok(r.push(Counted(drops.clone())));
            }
            drop(item(r.pop()));
            drop(item(r.pop()));
            ok(r.push(Counted(drops.clone())));
        }
        assert_eq!(drops.load(Relaxed), 81);
    }

    /// Zero-sized items travel through both stores, counted right.
    #[test]
    fn zero_sized_items() {
        let l = List::new(0);
        let r = Ring::new(2);
        for _ in 0..70 {
            ok(l.push(()));
        }
        ok(r.push(()));
        ok(r.push(()));
        assert!(matches!(r.push(()), Err(Push::Full(()))));
        assert_eq!((l.len(), r.len()), (70, 2));
        for _ in 0..70 {
            item(l.pop());
        }
        item(r.pop());
        assert!(matches!(l.pop(), Pop::Empty));
        assert_eq!((l.pushes(), l.pops(), r.len()), (70, 70, 1));
    }

    /// A list dropped with its reads and writes ending exactly at a block's
    /// edge (a whole block read; two whole blocks unread; one read past
    /// the edge) drops each item once and frees every block (memcheck and
    /// miri see a leak or a double free).
    #[test]
    fn list_dropped_at_block_edges() {
        let drops = Arc::new(AtomicUsize::new(0));
        let mut want = 0;
        for (pushed, popped) in [(31, 31), (62, 0), (62, 31), (63, 32), (31, 0)] {
            let l = List::new(0);
            for _ in 0..pushed {
                ok(l.push(Counted(drops.clone())));
            }
            for _ in 0..popped {
                drop(item(l.pop()));
            }
            drop(l);
            want += pushed;
            assert_eq!(
                drops.load(Relaxed),
                want,
                "{pushed} pushed, {popped} popped"
            );
        }
    }

    /// A ring of one, lapped many times, then dropped full and empty: the
    /// stamps keep every item in order and each is dropped once.
    #[test]
    fn ring_of_one_after_many_laps() {
        let drops = Arc::new(AtomicUsize::new(0));
        let r = Ring::new(1);
        for i in 0..1_000u32 {
            ok(r.push(i));
            assert!(matches!(r.push(i), Err(Push::Full(_))));
            assert_eq!(item(r.pop()), i);
            assert!(matches!(r.pop(), Pop::Empty));
        }
        let full = Ring::new(1);
        for _ in 0..500 {
            ok(full.push(Counted(drops.clone())));
            drop(item(full.pop()));
        }
        ok(full.push(Counted(drops.clone())));
        drop(full);
        assert_eq!(drops.load(Relaxed), 501);
    }

    /// Producers and consumers on both stores: every item is got exactly
    /// once, each producer's items in order, and a close after the
    /// producers leaves the consumers seeing `Closed`.
    fn mpmc(
        push: impl Fn(u64) -> Result<(), Push<u64>> + Sync,
        pop: impl Fn() -> Pop<u64> + Sync,
        close: impl Fn() + Sync,
    ) {
        let (producers, per): (u64, u64) = if cfg!(miri) { (2, 60) } else { (3, 20_000) };
        let got = std::sync::Mutex::new(Vec::new());
        let left = AtomicUsize::new(producers as usize);
        thread::scope(|s| {
            for p in 0..producers {
                let (push, left, close) = (&push, &left, &close);
                s.spawn(move || {
                    for i in 0..per {
                        let v = p << 32 | i;
                        while push(v).is_err() {
                            thread::yield_now();
                        }
                    }
                    if left.fetch_sub(1, SeqCst) == 1 {
                        close();
                    }
                });
            }
            for _ in 0..2 {
                let (pop, got) = (&pop, &got);
                s.spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        match pop() {
                            Pop::Item(v) => mine.push(v),
                            Pop::Empty => thread::yield_now(),
                            Pop::Closed => break,
                        }
                    }
                    let mut last = [None; 4];
                    for &v in &mine {
                        let (p, i) = ((v >> 32) as usize, v & 0xffff_ffff);
                        assert!(last[p].is_none_or(|l| l < i), "out of order");
                        last[p] = Some(i);
                    }
                    got.lock().unwrap().extend(mine);
                });
            }
        });
        let mut got = got.into_inner().unwrap();
        got.sort_unstable();
        let want: Vec<u64> = (0..producers)
            .flat_map(|p| (0..per).map(move |i| p << 32 | i))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn ring_mpmc_every_item_once() {
        let r = Ring::new(3);
        mpmc(
            |v| r.push(v),
            || r.pop(),
            || {
                r.close();
            },
        );
    }

    #[test]
    fn list_mpmc_every_item_once() {
        let l = List::new(0);
        mpmc(
            |v| l.push(v),
            || l.pop(),
            || {
                l.close();
            },
        );
        let b = List::new(5);
        mpmc(
            |v| b.push(v),
            || b.pop(),
            || {
                b.close();
            },
        );
    }
}

/// Loom models of the stores themselves (loom's atomics and cell): FIFO
/// order and every item once between threads, a full ring freed by a get,
/// a list crossing blocks with the block freed by whichever reader comes
/// last, and a push racing the shutdown mark: got or refused. Run them as
/// `crate::loom` says.
#[cfg(all(test, loom))]
mod loom_models {
    use ::loom::sync::Arc;
    use ::loom::thread;

    use super::*;
    use crate::loom::check;

    fn push_until_taken<T>(push: impl Fn(T) -> Result<(), Push<T>>, mut item: T) {
        loop {
            match push(item) {
                Ok(()) => return,
                Err(Push::Full(it)) => {
                    item = it;
                    thread::yield_now();
                }
                Err(Push::Closed(_)) => panic!("closed"),
            }
        }
    }

    /// Pops until `n` items came or the store is closed and empty.
    fn pop_n<T>(pop: impl Fn() -> Pop<T>, n: usize) -> Vec<T> {
        let mut got = Vec::new();
        while got.len() < n {
            match pop() {
                Pop::Item(x) => got.push(x),
                Pop::Empty => thread::yield_now(),
                Pop::Closed => break,
            }
        }
        got
    }

    #[test]
    fn loom_model_store_ring_of_one_hands_items_over_in_order() {
        check("store: ring of 1, put 3 vs get 3", 2, || {
            let r = Arc::new(Ring::new(1));
            let producer = {
                let r = Arc::clone(&r);
                thread::spawn(move || {
                    for i in 0..3u32 {
                        push_until_taken(|v| r.push(v), i);
                    }
                })
            };
            assert_eq!(pop_n(|| r.pop(), 3), [0, 1, 2]);
            producer.join().unwrap();
            assert_eq!(r.pushes(), 3);
            assert_eq!(r.pops(), 3);
        });
    }

    #[test]
    fn loom_model_store_list_block_freed_by_the_last_reader() {
        check("store: list of 5 (two blocks), two getters", 3, || {
            let l = Arc::new(List::new(0));
            for i in 0..5u32 {
                assert!(l.push(i).is_ok());
            }
            l.close();
            // The getters race on the first block: whichever reads last
            // frees it (READ/DESTROY), and one of them moves the head on.
            let other = {
                let l = Arc::clone(&l);
                thread::spawn(move || pop_n(|| l.pop(), 5))
            };
            let mine = pop_n(|| l.pop(), 5);
            let theirs = other.join().unwrap();
            assert!(mine.is_sorted() && theirs.is_sorted(), "FIFO per getter");
            let mut all: Vec<u32> = mine.into_iter().chain(theirs).collect();
            all.sort_unstable();
            assert_eq!(all, [0, 1, 2, 3, 4]);
        });
    }

    #[test]
    fn loom_model_store_list_crosses_blocks_under_a_getter() {
        check("store: list, 4 puts (two blocks) vs a getter", 2, || {
            let l = Arc::new(List::new(0));
            let producer = {
                let l = Arc::clone(&l);
                thread::spawn(move || {
                    for i in 0..4u32 {
                        push_until_taken(|v| l.push(v), i);
                    }
                })
            };
            assert_eq!(pop_n(|| l.pop(), 4), [0, 1, 2, 3]);
            producer.join().unwrap();
            assert_eq!(l.pushes(), 4);
            assert_eq!(l.pops(), 4);
        });
    }

    #[test]
    fn loom_model_store_push_racing_close_is_got_or_refused() {
        check("store: push vs close vs pop", 3, || {
            let r = Arc::new(Ring::new(2));
            let l = Arc::new(List::new(0));
            let pusher = {
                let (r, l) = (Arc::clone(&r), Arc::clone(&l));
                thread::spawn(move || (r.push(7u32).is_ok(), l.push(7u32).is_ok()))
            };
            let closer = {
                let (r, l) = (Arc::clone(&r), Arc::clone(&l));
                thread::spawn(move || {
                    r.close();
                    l.close();
                })
            };
            let got_r = pop_n(|| r.pop(), 2);
            let got_l = pop_n(|| l.pop(), 2);
            let (put_r, put_l) = pusher.join().unwrap();
            closer.join().unwrap();
            assert_eq!(got_r, if put_r { vec![7] } else { vec![] });
            assert_eq!(got_l, if put_l { vec![7] } else { vec![] });
        });
    }
}
