//! The shared-memory ring under [`Queue`](super::Queue): fixed-size slots in
//! one memfd, a producer lock and a consumer lock whose holders can be taken
//! over when they die, and the queue's shared counters.
//!
//! Layout (32-bit words; hot words on their own 64-byte line):
//!
//! | words | what |
//! |---|---|
//! | 0–3 | magic, capacity (a power of two), slot size, `maxsize` |
//! | 4–5 | arena size; largest encoded item a put accepts (0: the default 1 GiB) |
//! | 16– | producers': `tail` (next index to write), producer lock, publish futex, items in feeder buffers, arena tail, items published (64 bits: low, high word) |
//! | 32– | consumers': `head` (next index to read), consumer lock, take futex, arena head, items taken (64 bits) |
//! | 48– | shutdown state and sleeper counts (read often, written rarely), async waiter threads |
//! | 64, 80 | free places of a bounded queue; unfinished tasks |
//! | 96 | the async doorbell (bumped on every change an async waiter may wait for, while one exists) |
//! | 128– | `capacity` slots of [`SLOT`] bytes: length, tag, payload |
//! | then | the arena: [`ARENA`] bytes for items larger than a slot |
//!
//! The arena is a circular byte buffer filled under the producer lock in the
//! same order as the slots and emptied under the consumer lock in slot
//! order, so it needs no allocator: an item that does not fit before the
//! end starts again at 0, and taking it frees everything up to its end.
//!
//! `qsize` is `tail - head` plus the items waiting in feeder buffers, so the
//! hot paths update no shared counter besides the indexes.
//!
//! Indexes are `u32` that wrap; the capacity divides 2³², so `tail - head`
//! is the number of items and `index & mask` the slot. A producer writes the
//! slot, then publishes it by storing `tail`; a consumer copies the slot
//! out, then frees it by storing `head`. Both stores come last, so a process
//! that dies holding a lock leaves the ring consistent, and the next caller
//! takes the lock over (see `ipc::sync::core::mutex_lock`).

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::atomic::Ordering::{Acquire, Relaxed, SeqCst};
use std::time::Instant;

use crate::ipc::shm::{SharedWords, futex_wait, futex_wake};
use crate::ipc::sync::core::{mutex_lock, mutex_unlock, my_tid};
use crate::loom::sync::atomic::AtomicU32;
use crate::sync::Wait;
use crate::util::passed;

/// Bytes per slot.
pub(super) const SLOT: usize = 128;
const SLOT_HEAD: usize = 8;
/// The largest encoded item a slot holds; larger items travel on the socket.
pub(super) const INLINE: usize = SLOT - SLOT_HEAD;
/// Slots of an unbounded queue (2 MiB of shared memory, touched as used).
pub(super) const UNBOUNDED_CAP: u32 = 16 * 1024;
/// The longest a getter sleeps before it looks again by itself.
const SLEEP_SLICE: std::time::Duration = std::time::Duration::from_millis(500);
/// Bytes of the arena for items too large for a slot (touched as used); a
/// few KiB under loom and miri, whose words and heap buffers cost per byte.
const ARENA: u32 = if cfg!(any(loom, miri)) {
    4 << 10
} else {
    4 << 20
};
/// The largest encoded item the arena takes; larger ones go on the socket.
pub(super) const ARENA_ITEM_MAX: usize = (ARENA / 4) as usize;

const MAGIC: u32 = 0x5350_5155; // "SPQU"
const HEADER_WORDS: usize = 128;

// Line 0: fixed at creation.
const W_MAGIC: usize = 0;
const W_CAP: usize = 1;
const W_SLOT: usize = 2;
const W_MAXSIZE: usize = 3;
const W_ARENA: usize = 4;
/// The largest encoded item a put accepts; 0 means [`super::record::ITEM_MAX`].
const W_MAX_ITEM: usize = 5;
// Line 1: written by producers.
const W_TAIL: usize = 16;
const W_PLOCK: usize = 17;
/// Bumped on every publish; getters sleep on it.
const W_ITEMS: usize = 18;
/// Items put but not in the ring yet (in a feeder buffer).
pub(super) const W_BUFFERED: usize = 20;
/// Next arena byte to write.
const W_BTAIL: usize = 21;
/// Items published so far, low and high words (under the producer lock).
const W_PUTS: usize = 22;
// Line 2: written by consumers.
const W_HEAD: usize = 32;
const W_CLOCK: usize = 33;
/// Bumped on every take; producers waiting for a slot sleep on it.
const W_SPACE: usize = 34;
/// First arena byte still in use.
const W_BHEAD: usize = 35;
/// Items taken by a get so far, low and high words (under the consumer lock).
const W_GETS: usize = 36;
// Line 3: read often, written rarely.
/// 0 open, 1 shut down, 2 shut down immediately.
pub(super) const W_SHUTDOWN: usize = 48;
const W_GETTERS: usize = 49;
const W_SPACE_WAITERS: usize = 50;
/// Putters sleeping on `W_FREE`.
const W_FREE_WAITERS: usize = 51;
/// Join waiters sleeping on `W_UNFINISHED`.
const W_JOINERS: usize = 52;
/// 1 while a wake-up of a getter is on its way (see [`Ring::wait_items`]).
const W_WOKEN: usize = 53;
/// Async waiter threads (one per process whose tasks wait on the queue,
/// `super::future`): while it is not 0, every change such a thread may
/// wait for rings the doorbell [`W_BELL`].
const W_ASYNC: usize = 54;
// Line 4: free places of a bounded queue (a semaphore).
const W_FREE: usize = 64;
// Line 5: items put and not yet marked done.
pub(super) const W_UNFINISHED: usize = 80;
// Line 6: the async doorbell, the one word the async waiter threads sleep
// on (a thread sleeps on one futex word, and async tasks wait for items,
// places and `join` at once).
const W_BELL: usize = 96;

/// What a slot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Tag {
    /// The encoded item itself.
    Inline = 1,
    /// The item is the next record on the queue's socket.
    Socket = 2,
    /// The item is in the arena; the slot holds its offset.
    Arena = 3,
}

/// An encoded item to publish.
#[derive(Clone, Copy)]
pub(super) enum Item<'a> {
    /// At most [`INLINE`] bytes, copied into the slot.
    Slot(&'a [u8]),
    /// At most [`ARENA_ITEM_MAX`] bytes, copied into the arena.
    Arena(&'a [u8]),
    /// Its record was sent on the socket; the slot only says so (empty).
    Socket(&'a [u8]),
}

impl<'a> Item<'a> {
    /// Where an encoded item of this size goes (not `Socket`).
    pub(super) fn of(payload: &'a [u8]) -> Option<Self> {
        if payload.len() <= INLINE {
            Some(Item::Slot(payload))
        } else if payload.len() <= ARENA_ITEM_MAX {
            Some(Item::Arena(payload))
        } else {
            None
        }
    }

    /// Arena bytes it needs (0 for a slot).
    pub(super) fn arena_bytes(&self) -> usize {
        match self {
            Item::Arena(p) => p.len(),
            _ => 0,
        }
    }
}

/// What [`Ring::push`] did.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Push {
    Done,
    Full,
    ShutDown,
}

/// What [`Ring::try_pop`] found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Popped {
    Item(Tag),
    Empty,
    /// Shut down immediately: nothing is handed out any more.
    ShutDown,
    /// The slot does not hold a valid item (it is consumed).
    Corrupt,
}

pub(super) struct Ring {
    shm: SharedWords,
    cap: u32,
    arena: u32,
}

/// Words of a region with `cap` slots and an arena of `arena` bytes.
fn words(cap: u32, arena: u32) -> usize {
    HEADER_WORDS + (cap as usize * SLOT + arena as usize) / 4
}

/// Holds a ring lock; releases it when dropped (also on unwind).
struct Held<'a>(&'a AtomicU32);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        mutex_unlock(self.0);
    }
}

impl Ring {
    /// A fresh ring of `cap` slots (rounded up to a power of two) for a queue
    /// of `maxsize` (0 = unbounded).
    pub(super) fn new(cap: u32, maxsize: u32) -> io::Result<Ring> {
        let cap = cap.max(1).next_power_of_two();
        let shm = SharedWords::new(words(cap, ARENA))?;
        let w = |i: usize| shm.word(i);
        w(W_MAGIC).store(MAGIC, Relaxed);
        w(W_CAP).store(cap, Relaxed);
        w(W_SLOT).store(SLOT as u32, Relaxed);
        w(W_MAXSIZE).store(maxsize, Relaxed);
        w(W_ARENA).store(ARENA, Relaxed);
        w(W_FREE).store(maxsize, SeqCst);
        Ok(Ring {
            shm,
            cap,
            arena: ARENA,
        })
    }

    /// Maps a ring received from another process, checking its header.
    pub(super) fn map(fd: OwnedFd) -> io::Result<Ring> {
        let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, format!("queue ring: {m}"));
        let size = nix::sys::stat::fstat(&fd)?.st_size as usize;
        if size < HEADER_WORDS * 4 {
            return Err(bad("region too small"));
        }
        let head = SharedWords::map(fd, HEADER_WORDS)?;
        let (magic, cap, slot, arena) = (
            head.word(W_MAGIC).load(SeqCst),
            head.word(W_CAP).load(SeqCst),
            head.word(W_SLOT).load(SeqCst),
            head.word(W_ARENA).load(SeqCst),
        );
        if magic != MAGIC {
            return Err(bad("not a spindle queue"));
        }
        if slot as usize != SLOT
            || !cap.is_power_of_two()
            || cap > 1 << 24
            || !arena.is_power_of_two()
            || arena > 1 << 30
        {
            return Err(bad("unknown layout"));
        }
        let words = words(cap, arena);
        if size < words * 4 {
            return Err(bad("region shorter than its slots"));
        }
        let fd = head.fd().try_clone_to_owned()?;
        drop(head);
        Ok(Ring {
            shm: SharedWords::map(fd, words)?,
            cap,
            arena,
        })
    }

    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.shm.fd()
    }

    #[inline]
    pub(super) fn w(&self, i: usize) -> &AtomicU32 {
        self.shm.word(i)
    }

    pub(super) fn maxsize(&self) -> u32 {
        self.w(W_MAXSIZE).load(Relaxed)
    }

    /// The largest encoded item a put accepts (shared by every handle).
    pub(super) fn max_item(&self) -> usize {
        match self.w(W_MAX_ITEM).load(Relaxed) {
            0 => super::record::ITEM_MAX,
            n => n as usize,
        }
    }

    /// Sets [`max_item`](Self::max_item) (at creation, before any handle
    /// is shared).
    pub(super) fn set_max_item(&self, n: u32) {
        self.w(W_MAX_ITEM).store(n, Relaxed);
    }

    pub(super) fn shutdown_state(&self) -> u32 {
        self.w(W_SHUTDOWN).load(SeqCst)
    }

    fn lock(&self, word: usize) -> Held<'_> {
        let w = self.w(word);
        // Forever never times out; a dead holder is taken over.
        let _ = mutex_lock(w, my_tid(), Wait::Forever);
        Held(w)
    }

    /// The first byte of the slot for `index`.
    fn slot(&self, index: u32) -> *mut u8 {
        let off = HEADER_WORDS * 4 + (index & (self.cap - 1)) as usize * SLOT;
        // SAFETY: `off + SLOT` is within the mapping (HEADER_WORDS words
        // plus `cap` slots were mapped, checked in `map`).
        unsafe { self.shm.base().as_ptr().add(off) }
    }

    /// The arena byte at `offset` (taken modulo the arena size).
    fn arena_at(&self, offset: u32) -> *mut u8 {
        let off =
            HEADER_WORDS * 4 + self.cap as usize * SLOT + (offset & (self.arena - 1)) as usize;
        // SAFETY: within the mapping: the arena follows the slots and
        // `offset & (arena - 1) < arena`.
        unsafe { self.shm.base().as_ptr().add(off) }
    }

    /// Whether some published item is waiting.
    #[inline]
    pub(super) fn has_items(&self) -> bool {
        self.w(W_TAIL).load(SeqCst) != self.w(W_HEAD).load(SeqCst)
    }

    /// Whether an item of `need` arena bytes (0 for a slot item) would not
    /// fit now.
    fn is_full(&self, need: u32) -> bool {
        if self.len() >= self.cap {
            return true;
        }
        // Conservative: the item may have to skip the arena's tail end.
        need > 0 && self.arena_used().saturating_add(2 * need) > self.arena
    }

    /// Arena bytes in use.
    fn arena_used(&self) -> u32 {
        self.w(W_BTAIL)
            .load(SeqCst)
            .wrapping_sub(self.w(W_BHEAD).load(SeqCst))
            .min(self.arena)
    }

    /// Publishes an item if there is room, unless the shutdown state is at
    /// least `refuse_at` (checked under the producer lock, so once
    /// [`shutdown`](Self::shutdown) has passed that lock nothing is
    /// published against its state).
    pub(super) fn push(&self, item: Item<'_>, refuse_at: u32) -> Push {
        {
            let _held = self.lock(W_PLOCK);
            if self.w(W_SHUTDOWN).load(SeqCst) >= refuse_at {
                return Push::ShutDown;
            }
            let tail = self.w(W_TAIL).load(Relaxed);
            let head = self.w(W_HEAD).load(Acquire);
            if tail.wrapping_sub(head) >= self.cap {
                return Push::Full;
            }
            let p = self.slot(tail);
            match item {
                Item::Slot(payload) | Item::Socket(payload) => {
                    debug_assert!(payload.len() <= INLINE);
                    let tag = if matches!(item, Item::Slot(_)) {
                        Tag::Inline
                    } else {
                        Tag::Socket
                    };
                    let len = payload.len().min(INLINE);
                    let head_bytes = ((len as u32) | ((tag as u32) << 24)).to_le_bytes();
                    // SAFETY: slot `tail` lies in the mapping and is free:
                    // consumers only read slots below `tail`, and `tail -
                    // head < cap` means no unread item lives there. We hold
                    // the producer lock, so no other producer writes it. The
                    // copy is at most SLOT_HEAD + INLINE bytes.
                    unsafe {
                        std::ptr::copy_nonoverlapping(head_bytes.as_ptr(), p, 4);
                        std::ptr::copy_nonoverlapping(payload.as_ptr(), p.add(SLOT_HEAD), len);
                    }
                }
                Item::Arena(payload) => {
                    if payload.len() > ARENA_ITEM_MAX {
                        return Push::Full;
                    }
                    let len = payload.len() as u32;
                    let btail = self.w(W_BTAIL).load(Relaxed);
                    let bhead = self.w(W_BHEAD).load(Acquire);
                    let pos = btail & (self.arena - 1);
                    // Items never wrap around the end: skip to 0 if needed.
                    let start = if pos + len > self.arena {
                        btail.wrapping_add(self.arena - pos)
                    } else {
                        btail
                    };
                    let end = start.wrapping_add(len);
                    if end.wrapping_sub(bhead) > self.arena {
                        return Push::Full;
                    }
                    let head_bytes = (len | ((Tag::Arena as u32) << 24)).to_le_bytes();
                    let at = start.to_le_bytes();
                    // SAFETY: slot `tail` is free (as above); the arena bytes
                    // `start..end` are free: consumers free arena bytes in
                    // slot order up to `bhead`, and `end - bhead <= arena`
                    // means none belongs to an unread item. `start & (arena
                    // - 1) + len <= arena` keeps the copy inside the arena.
                    // We hold the producer lock: no other producer writes.
                    unsafe {
                        std::ptr::copy_nonoverlapping(head_bytes.as_ptr(), p, 4);
                        std::ptr::copy_nonoverlapping(at.as_ptr(), p.add(SLOT_HEAD), 4);
                        std::ptr::copy_nonoverlapping(
                            payload.as_ptr(),
                            self.arena_at(start),
                            payload.len(),
                        );
                    }
                    self.w(W_BTAIL).store(end, SeqCst);
                }
            }
            self.w(W_TAIL).store(tail.wrapping_add(1), SeqCst);
            self.count(W_PUTS);
        }
        self.announce();
        Push::Done
    }

    /// Takes the oldest item into `out` (its payload) if there is one.
    pub(super) fn try_pop(&self, out: &mut Vec<u8>) -> Popped {
        let popped = {
            let _held = self.lock(W_CLOCK);
            if self.w(W_SHUTDOWN).load(SeqCst) == 2 {
                return Popped::ShutDown;
            }
            let popped = self.pop_locked(out);
            if let Popped::Item(_) = popped {
                self.count(W_GETS);
            }
            popped
        };
        if popped != Popped::Empty {
            self.after_take(1);
        }
        popped
    }

    /// The body of a take; the caller holds the consumer lock.
    fn pop_locked(&self, out: &mut Vec<u8>) -> Popped {
        let head = self.w(W_HEAD).load(Relaxed);
        let tail = self.w(W_TAIL).load(Acquire);
        if head == tail {
            return Popped::Empty;
        }
        let p = self.slot(head);
        let mut word = [0u8; 4];
        // SAFETY: slot `head` lies in the mapping and holds a published item
        // (`head != tail`, `tail` loaded with Acquire after the producer's
        // writes); producers do not touch it, nor the arena bytes of an arena
        // item, until `head` (and `bhead`) move past them, and we hold the
        // consumer lock. Lengths and arena bounds are checked before copying.
        let popped = unsafe {
            std::ptr::copy_nonoverlapping(p, word.as_mut_ptr(), 4);
            let word = u32::from_le_bytes(word);
            let (len, tag) = ((word & 0xff_ffff) as usize, word >> 24);
            out.clear();
            match tag {
                1 if len <= INLINE => {
                    out.extend_from_slice(std::slice::from_raw_parts(p.add(SLOT_HEAD), len));
                    Popped::Item(Tag::Inline)
                }
                2 if len == 0 => Popped::Item(Tag::Socket),
                3 => {
                    let mut at = [0u8; 4];
                    std::ptr::copy_nonoverlapping(p.add(SLOT_HEAD), at.as_mut_ptr(), 4);
                    let start = u32::from_le_bytes(at);
                    let bhead = self.w(W_BHEAD).load(Relaxed);
                    let btail = self.w(W_BTAIL).load(Acquire);
                    let end = start.wrapping_add(len as u32);
                    // The item lies between `bhead` and `btail`, and not
                    // across the end of the arena.
                    if len > ARENA_ITEM_MAX
                        || start.wrapping_sub(bhead) > self.arena
                        || btail.wrapping_sub(end) > self.arena
                        || (start & (self.arena - 1)) as usize + len > self.arena as usize
                    {
                        Popped::Corrupt
                    } else {
                        out.extend_from_slice(std::slice::from_raw_parts(
                            self.arena_at(start),
                            len,
                        ));
                        self.w(W_BHEAD).store(end, SeqCst);
                        Popped::Item(Tag::Arena)
                    }
                }
                _ => Popped::Corrupt,
            }
        };
        self.w(W_HEAD).store(head.wrapping_add(1), SeqCst);
        popped
    }

    /// After `n` takes: frees places of a bounded queue, wakes producers
    /// waiting for a slot.
    fn after_take(&self, n: u32) {
        self.give_places(n);
        self.w(W_SPACE).fetch_add(1, SeqCst);
        // A producer waits for a full ring; wake it once half is free, so
        // it refills in bursts instead of one wake-up per take.
        if self.w(W_SPACE_WAITERS).load(SeqCst) > 0
            && self.len() <= self.cap / 2
            && self.arena_used() <= self.arena / 2
        {
            futex_wake(self.w(W_SPACE), i32::MAX);
        }
    }

    /// Takes one free place of a bounded queue (a semaphore in `W_FREE`),
    /// waiting until `deadline`: `Done`, `Full` at the deadline, or
    /// `ShutDown` (checked first, and again after every wake-up).
    pub(super) fn take_place(&self, deadline: Option<Instant>) -> Push {
        let free = self.w(W_FREE);
        loop {
            if self.shutdown_state() != 0 {
                return Push::ShutDown;
            }
            let v = free.load(SeqCst);
            if v > 0 {
                if free.compare_exchange(v, v - 1, SeqCst, SeqCst).is_ok() {
                    return Push::Done;
                }
                continue;
            }
            if passed(deadline) {
                return Push::Full;
            }
            self.w(W_FREE_WAITERS).fetch_add(1, SeqCst);
            if self.shutdown_state() == 0 {
                futex_wait(free, 0, deadline);
            }
            self.w(W_FREE_WAITERS).fetch_sub(1, SeqCst);
        }
    }

    /// Gives back `n` places of a bounded queue (nothing for an unbounded
    /// one) and wakes as many waiting putters.
    pub(super) fn give_places(&self, n: u32) {
        if self.maxsize() > 0 {
            self.w(W_FREE).fetch_add(n, SeqCst);
            if self.w(W_FREE_WAITERS).load(SeqCst) > 0 {
                futex_wake(self.w(W_FREE), n.min(i32::MAX as u32) as i32);
            }
            self.ring_bell();
        }
    }

    /// Adds one to the 64-bit count at words `at`, `at + 1`; the caller
    /// holds the lock that guards it (relaxed words: only the lock holder
    /// writes them, [`counts`](Self::counts) reads them under it too).
    fn count(&self, at: usize) {
        let lo = self.w(at).load(Relaxed).wrapping_add(1);
        self.w(at).store(lo, Relaxed);
        if lo == 0 {
            let hi = self.w(at + 1);
            hi.store(hi.load(Relaxed).wrapping_add(1), Relaxed);
        }
    }

    fn read_count(&self, at: usize) -> u64 {
        u64::from(self.w(at + 1).load(Relaxed)) << 32 | u64::from(self.w(at).load(Relaxed))
    }

    /// Items published and items taken by a get so far, each read under
    /// its lock (one at a time: never both held).
    pub(super) fn counts(&self) -> (u64, u64) {
        let puts = {
            let _held = self.lock(W_PLOCK);
            self.read_count(W_PUTS)
        };
        let gets = {
            let _held = self.lock(W_CLOCK);
            self.read_count(W_GETS)
        };
        (puts, gets)
    }

    /// Items in the ring.
    pub(super) fn len(&self) -> u32 {
        self.w(W_TAIL)
            .load(SeqCst)
            .wrapping_sub(self.w(W_HEAD).load(SeqCst))
            .min(self.cap)
    }

    /// Python's `qsize`: items in the ring and in feeder buffers.
    pub(super) fn qsize(&self) -> usize {
        self.len() as usize + self.w(W_BUFFERED).load(SeqCst) as usize
    }

    /// Announces an item (a put, or a getter passing a wake-up on): bumps
    /// `W_ITEMS`, the word getters sleep on, and wakes one sleeping getter
    /// unless a wake-up is already on its way (`W_WOKEN`): while a woken
    /// getter has not run yet, further puts make no system call.
    ///
    /// The flag is taken *before* the bump. A wake that found no getter
    /// asleep yet (one counted in `W_GETTERS` but not in its futex wait)
    /// leaves the flag set with nobody on the way; the getter about to
    /// sleep read the flag clear before it was taken, so it read `W_ITEMS`
    /// before the bump too, and its futex wait returns at once. (Bumping
    /// first, as this used to, let that getter sleep with the flag stuck:
    /// later puts made no wake-up and it slept through available items
    /// until its [`SLEEP_SLICE`] ended; the loom model
    /// `loom_model_ring_two_getters_two_puts` found it.)
    fn announce(&self) {
        let wake = self.w(W_GETTERS).load(SeqCst) > 0 && self.w(W_WOKEN).swap(1, SeqCst) == 0;
        self.w(W_ITEMS).fetch_add(1, SeqCst);
        if wake {
            futex_wake(self.w(W_ITEMS), 1);
        }
        self.ring_bell();
    }

    /// Announces the items still in the ring again: the pass-on of an async
    /// getter that was woken for an item and went away without taking it
    /// (a blocking getter and every async waiter thread re-check).
    pub(super) fn pass_items_on(&self) {
        if self.has_items() {
            self.announce();
        }
    }

    /// Passes on a free place an async putter was woken for and did not
    /// take (it went away): wakes a blocking putter and the async waiter
    /// threads.
    pub(super) fn pass_place_on(&self) {
        if self.free_places() > 0 {
            if self.w(W_FREE_WAITERS).load(SeqCst) > 0 {
                futex_wake(self.w(W_FREE), 1);
            }
            self.ring_bell();
        }
    }

    /// Rings the async doorbell if some process has an async waiter thread
    /// on this queue: a change (`W_ITEMS`, `W_FREE`, `W_UNFINISHED`,
    /// shutdown) was made before, with `SeqCst`, and the thread publishes
    /// itself in `W_ASYNC` before it checks the state and reads `W_BELL`
    /// before it sleeps (a Dekker pair: either its check sees the change or
    /// this sees it counted, and the bump ends its futex wait).
    fn ring_bell(&self) {
        if self.w(W_ASYNC).load(SeqCst) > 0 {
            self.w(W_BELL).fetch_add(1, SeqCst);
            futex_wake(self.w(W_BELL), i32::MAX);
        }
    }

    /// Counts an async waiter thread in (before it starts, and before any
    /// of its tasks checks the state after registering).
    pub(super) fn async_enter(&self) {
        self.w(W_ASYNC).fetch_add(1, SeqCst);
    }

    /// Counts an async waiter thread out (it ends).
    pub(super) fn async_leave(&self) {
        dec(self.w(W_ASYNC));
    }

    /// Async waiter threads counted, in every process (test support).
    pub(super) fn async_threads(&self) -> u32 {
        self.w(W_ASYNC).load(SeqCst)
    }

    /// The doorbell's value, read before a waiter thread checks the state.
    pub(super) fn bell(&self) -> u32 {
        self.w(W_BELL).load(SeqCst)
    }

    /// Sleeps while the doorbell still reads `seen`, until `until`.
    pub(super) fn wait_bell(&self, seen: u32, until: Instant) {
        futex_wait(self.w(W_BELL), seen, Some(until));
    }

    /// Free places of a bounded queue (0 for an unbounded one).
    pub(super) fn free_places(&self) -> u32 {
        if self.maxsize() > 0 {
            self.w(W_FREE).load(SeqCst)
        } else {
            0
        }
    }

    /// Waits until an item may be there, the shutdown state changes from
    /// `shut`, or `until`. Spurious returns are possible.
    ///
    /// A getter does not sleep while a wake-up is on its way (`W_WOKEN`
    /// set: it may have been meant for a getter that was not asleep yet,
    /// see [`announce`](Self::announce)). Every getter leaving here (woken
    /// or not) clears `W_WOKEN` and, if items wait, announces them again;
    /// so a put that saw a wake-up on its way and made none loses nothing.
    /// Sleeps last at most [`SLEEP_SLICE`], so a process killed between
    /// being woken and passing the flag on delays the others by that much,
    /// never forever.
    pub(super) fn wait_items(&self, shut: u32, until: Option<Instant>) {
        let getters = self.w(W_GETTERS);
        getters.fetch_add(1, SeqCst);
        let seen = self.w(W_ITEMS).load(SeqCst);
        if !self.has_items() && self.shutdown_state() == shut && self.w(W_WOKEN).load(SeqCst) == 0 {
            let slice = Instant::now() + SLEEP_SLICE;
            futex_wait(
                self.w(W_ITEMS),
                seen,
                Some(until.map_or(slice, |u| u.min(slice))),
            );
        }
        getters.fetch_sub(1, SeqCst);
        self.w(W_WOKEN).store(0, SeqCst);
        if self.has_items() {
            self.announce();
        }
    }

    /// Waits until there may be room for an item of `need` arena bytes (0
    /// for a slot item), or `until`.
    pub(super) fn wait_space(&self, need: usize, until: Option<Instant>) {
        let waiters = self.w(W_SPACE_WAITERS);
        waiters.fetch_add(1, SeqCst);
        let seen = self.w(W_SPACE).load(SeqCst);
        let need = u32::try_from(need).unwrap_or(u32::MAX);
        if self.is_full(need) && self.shutdown_state() != 2 {
            futex_wait(self.w(W_SPACE), seen, until);
        }
        waiters.fetch_sub(1, SeqCst);
    }

    /// Shuts the queue down (never back to open; immediate wins). The state
    /// changes under the producer lock, so no push publishes against the
    /// new state, and whoever sees the new state sees every item published
    /// before it (a getter that finds the ring shut down and empty can say
    /// `ShutDown`: nothing is still on its way). An immediate shutdown then
    /// drops every published item under the consumer lock, calling
    /// `socket_item` for each one whose record is on the socket, and
    /// returns how many it dropped. Every sleeper is woken to re-check.
    pub(super) fn shutdown(&self, immediate: bool, socket_item: impl FnMut()) -> u32 {
        let dropped = {
            let _producers = self.lock(W_PLOCK);
            self.w(W_SHUTDOWN)
                .fetch_max(if immediate { 2 } else { 1 }, SeqCst);
            if immediate {
                self.drain(socket_item)
            } else {
                0
            }
        };
        self.wake_everyone();
        dropped
    }

    /// Bumps and wakes every word a sleeper may wait on. Each word is bumped,
    /// so a sleeper that checked the state before the shutdown and is about
    /// to sleep finds its word changed and does not sleep. `W_FREE` counts
    /// free places, and the bump adds one that nobody can publish with:
    /// `take_place` checks the state first, and a putter that took it
    /// anyway (having read the state before the shutdown) is refused by
    /// `push` under the producer lock and gives it back. (Without the bump
    /// a putter blocked on a full bounded queue could sleep through the
    /// shutdown for good: `.ci/valgrind` hung on it, and
    /// `loom_model_ring_blocked_put_vs_shutdown` shows it.)
    fn wake_everyone(&self) {
        for word in [W_ITEMS, W_SPACE, W_FREE] {
            self.w(word).fetch_add(1, SeqCst);
            futex_wake(self.w(word), i32::MAX);
        }
        self.ring_bell();
    }

    /// Drops every published item under the consumer lock.
    fn drain(&self, mut socket_item: impl FnMut()) -> u32 {
        let mut out = Vec::new();
        let mut n = 0;
        {
            let _held = self.lock(W_CLOCK);
            loop {
                match self.pop_locked(&mut out) {
                    Popped::Empty => break,
                    Popped::Item(Tag::Socket) => socket_item(),
                    _ => {}
                }
                n += 1;
            }
        }
        if n > 0 {
            self.after_take(n);
        }
        n
    }

    /// Counts one task as done; false if none was unfinished.
    pub(super) fn task_done(&self) -> bool {
        match dec(self.w(W_UNFINISHED)) {
            None => false,
            Some(was) => {
                if was == 1 {
                    self.wake_joiners();
                }
                true
            }
        }
    }

    /// Counts up to `n` unfinished tasks as done (items dropped or lost).
    pub(super) fn tasks_dropped(&self, n: u32) {
        let w = self.w(W_UNFINISHED);
        let _ = w.fetch_update(SeqCst, SeqCst, |v| Some(v.saturating_sub(n)));
        if w.load(SeqCst) == 0 {
            self.wake_joiners();
        }
    }

    fn wake_joiners(&self) {
        if self.w(W_JOINERS).load(SeqCst) > 0 {
            futex_wake(self.w(W_UNFINISHED), i32::MAX);
        }
        self.ring_bell();
    }

    /// Waits until no task is unfinished or `deadline`; true if none is.
    pub(super) fn join(&self, deadline: Option<Instant>) -> bool {
        let w = self.w(W_UNFINISHED);
        loop {
            let v = w.load(SeqCst);
            if v == 0 {
                return true;
            }
            if passed(deadline) {
                return false;
            }
            self.w(W_JOINERS).fetch_add(1, SeqCst);
            if w.load(SeqCst) == v {
                futex_wait(w, v, deadline);
            }
            self.w(W_JOINERS).fetch_sub(1, SeqCst);
        }
    }
}

/// Decrements `w` unless it is 0; returns the value it had, `None` if 0.
pub(super) fn dec(w: &AtomicU32) -> Option<u32> {
    w.fetch_update(SeqCst, SeqCst, |v| v.checked_sub(1)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The thread id of a thread that has exited.
    #[cfg(not(miri))]
    fn dead_tid() -> u32 {
        use std::time::Duration;
        let tid = std::thread::spawn(my_tid).join().unwrap();
        // Its /proc entry goes once it is reaped, which join waits for.
        let t = Instant::now();
        while crate::ipc::sync::core::alive(tid) && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(1));
        }
        tid
    }

    #[test]
    fn slot_arena_and_socket_items_round_trip_in_order() {
        let ring = Ring::new(4, 0).unwrap();
        // An arena item (the arena is a few KiB under miri).
        let big = vec![9u8; ARENA_ITEM_MAX.min(5000)];
        assert_eq!(ring.push(Item::Slot(b"abc"), 1), Push::Done);
        assert_eq!(ring.push(Item::Arena(&big), 1), Push::Done);
        assert_eq!(ring.push(Item::Socket(&[]), 1), Push::Done);
        assert_eq!(ring.push(Item::Slot(b""), 1), Push::Done);
        assert_eq!(ring.push(Item::Slot(b"x"), 1), Push::Full, "4 slots");
        assert_eq!(ring.qsize(), 4);
        let mut out = Vec::new();
        assert_eq!(ring.try_pop(&mut out), Popped::Item(Tag::Inline));
        assert_eq!(out, b"abc");
        assert_eq!(ring.try_pop(&mut out), Popped::Item(Tag::Arena));
        assert_eq!(out, big);
        assert_eq!(ring.try_pop(&mut out), Popped::Item(Tag::Socket));
        assert_eq!(ring.try_pop(&mut out), Popped::Item(Tag::Inline));
        assert!(out.is_empty());
        assert_eq!(ring.try_pop(&mut out), Popped::Empty);
        assert_eq!(ring.qsize(), 0);
    }

    #[test]
    fn arena_items_skip_the_end_and_free_in_order() {
        let ring = Ring::new(64, 0).unwrap();
        let mut out = Vec::new();
        // Items of a fifth of the arena: the 6th must skip the end and start
        // again at 0 once the first is taken.
        let n = ARENA as usize / 5;
        for k in 0..20u8 {
            let item = vec![k; n];
            if ring.push(Item::Arena(&item), 1) == Push::Full {
                assert_eq!(ring.try_pop(&mut out), Popped::Item(Tag::Arena));
                assert!(out.iter().all(|&b| b == out[0]) && out.len() == n);
                assert_eq!(
                    ring.push(Item::Arena(&item), 1),
                    Push::Done,
                    "room after a take"
                );
            }
            assert!(ring.arena_used() <= ring.arena);
        }
        let mut last = None;
        while ring.try_pop(&mut out) == Popped::Item(Tag::Arena) {
            assert!(last < Some(out[0]), "arena items come back in order");
            last = Some(out[0]);
        }
        assert_eq!(last, Some(19));
        assert_eq!(ring.arena_used(), 0);
    }

    #[test]
    fn refuses_pushes_once_shut_down() {
        let ring = Ring::new(4, 0).unwrap();
        assert_eq!(ring.push(Item::Slot(b"a"), 1), Push::Done);
        assert_eq!(ring.shutdown(false, || {}), 0);
        assert_eq!(ring.push(Item::Slot(b"b"), 1), Push::ShutDown);
        // A feeder's push (refused only at 2) still lands after a normal one.
        assert_eq!(ring.push(Item::Slot(b"c"), 2), Push::Done);
        let mut sockets = 0;
        assert_eq!(ring.push(Item::Socket(&[]), 2), Push::Done);
        assert_eq!(ring.shutdown(true, || sockets += 1), 3);
        assert_eq!(sockets, 1);
        assert_eq!(ring.push(Item::Slot(b"d"), 2), Push::ShutDown);
        assert_eq!(ring.try_pop(&mut Vec::new()), Popped::ShutDown);
        assert_eq!(ring.qsize(), 0);
    }

    // Needs a thread the system knows to be dead (see `core::alive`).
    #[cfg(not(miri))]
    #[test]
    fn dead_lock_holders_are_taken_over() {
        let ring = Ring::new(4, 0).unwrap();
        let dead = dead_tid();
        // A producer died holding the lock after writing half a slot.
        ring.w(W_PLOCK).store(dead, SeqCst);
        // SAFETY: slot 0 is free and in the mapping; garbage there must be
        // overwritten by the next push.
        unsafe { std::ptr::write_bytes(ring.slot(0), 0xee, SLOT) };
        assert_eq!(ring.push(Item::Slot(b"ok"), 1), Push::Done);
        // A consumer died holding its lock.
        ring.w(W_CLOCK).store(dead, SeqCst);
        let mut out = Vec::new();
        assert_eq!(ring.try_pop(&mut out), Popped::Item(Tag::Inline));
        assert_eq!(out, b"ok");
    }

    #[test]
    fn damaged_slots_are_reported_not_trusted() {
        let ring = Ring::new(4, 0).unwrap();
        let mut out = Vec::new();
        for bad in [
            (INLINE as u32 + 1) | 1 << 24,         // inline, too long
            5 | 2 << 24,                           // socket with a length
            7 << 24,                               // unknown tag
            (ARENA_ITEM_MAX as u32 + 1) | 3 << 24, // arena, too long
            100 | 3 << 24,                         // arena, outside btail
        ] {
            assert_eq!(ring.push(Item::Slot(b""), 1), Push::Done);
            let tail = ring.w(W_TAIL).load(SeqCst).wrapping_sub(1);
            // SAFETY: the slot is published and nobody else uses the ring.
            unsafe {
                std::ptr::copy_nonoverlapping(bad.to_le_bytes().as_ptr(), ring.slot(tail), 4);
                std::ptr::write_bytes(ring.slot(tail).add(SLOT_HEAD), 0x40, 4);
            }
            assert_eq!(ring.try_pop(&mut out), Popped::Corrupt, "{bad:#x}");
        }
        // The ring goes on working.
        assert_eq!(ring.push(Item::Slot(b"z"), 1), Push::Done);
        assert_eq!(ring.try_pop(&mut out), Popped::Item(Tag::Inline));
    }

    // Maps the ring's descriptor: no shared mappings under miri.
    #[cfg(not(miri))]
    #[test]
    fn mapping_checks_the_header() {
        let ring = Ring::new(8, 3).unwrap();
        let again = Ring::map(ring.fd().try_clone_to_owned().unwrap()).unwrap();
        assert_eq!((again.cap, again.maxsize()), (8, 3));
        // Items put through one mapping come out of the other.
        assert_eq!(ring.push(Item::Slot(b"hi"), 1), Push::Done);
        let mut out = Vec::new();
        assert_eq!(again.try_pop(&mut out), Popped::Item(Tag::Inline));
        assert_eq!(out, b"hi");

        let words = SharedWords::new(HEADER_WORDS).unwrap();
        let fd = || words.fd().try_clone_to_owned().unwrap();
        assert!(Ring::map(fd()).is_err(), "no magic");
        words.word(W_MAGIC).store(MAGIC, SeqCst);
        words.word(W_SLOT).store(SLOT as u32, SeqCst);
        words.word(W_ARENA).store(ARENA, SeqCst);
        words.word(W_CAP).store(3, SeqCst);
        assert!(Ring::map(fd()).is_err(), "capacity not a power of two");
        words.word(W_CAP).store(1024, SeqCst);
        let e = Ring::map(fd()).err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("shorter"), "{e}");
        let small = SharedWords::new(4).unwrap();
        assert!(Ring::map(small.fd().try_clone_to_owned().unwrap()).is_err());
    }
}

#[cfg(all(test, loom))]
mod loom_model;
