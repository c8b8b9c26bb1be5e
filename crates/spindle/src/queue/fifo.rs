//! [`FifoCore`]: the lock-free core behind [`Queue`](super::Queue) (and
//! [`SimpleQueue`](super::SimpleQueue)).
//!
//! The items live in a lock-free FIFO of our own (`fifo/store.rs`): a
//! Vyukov ring for a bounded queue of up to [`ARRAY_MAX`] places, a
//! segmented list otherwise. A put and a get touch no common lock, and a
//! put is one CAS (the store's reservation of a place) and one `Release`
//! store: no other read-modify-write.
//!
//! * The shutdown mark is bit 0 of the store's tail word: the reserving
//!   CAS fails once it is set, so a put racing `shutdown` is refused or
//!   owns a reserved place (a put *in flight*) that getters wait for. A
//!   getter reports `ShutDown` only when the tail is marked and every
//!   reserved place was taken: never an item nobody gets.
//!   `shutdown(immediate)` drains with the same pops, so it waits for the
//!   puts in flight, as CPython's lock orders them before it.
//! * The unfinished count is `pushes - done`: `pushes` is the store's tail
//!   position (places ever reserved), `done` counts `task_done` calls (and
//!   the items an immediate shutdown counted done). `task_done` raises
//!   `done` with a CAS that fails when `done` would pass `pushes`
//!   (Python's `ValueError`), so it never runs ahead.
//! * Sleepers are counted (`getters`, `putters`, `joiners`, the mutex's
//!   counts plus the async waker lists, published with a `SeqCst` store):
//!   a put (get, `task_done`) that nobody waits for takes no lock. The lost
//!   wake-up is excluded by Dekker pairs of `SeqCst` accesses: a sleeper
//!   publishes its count, then tries again (a getter's pop reads the
//!   store's tail with `SeqCst`, a putter's push the head, a joiner reads
//!   `done` and the tail), all under the mutex; a put's reserving CAS (a
//!   get's CAS on the head, `task_done`'s CAS on `done`) comes before its
//!   `SeqCst` load of the sleepers' count. Either the sleeper's retry sees
//!   the change, or the changer sees the sleeper and notifies it under the
//!   mutex (which the sleeper only releases inside its condition-variable
//!   wait).
//! * A sleeper a notify has unparked stops counting as asleep at once
//!   (`getters_woken`, `putters_woken`), not when it is back under the
//!   mutex: until then every put (get) would otherwise notify again, each
//!   taking the mutex the woken thread needs (on an idle Intel Xeon, ~200
//!   notifies per sleep of an SPSC consumer). A waiter that returns on its
//!   own (a timeout) takes one such mark with it, so the published count
//!   may only run high (a spare notify), never low (a sleeper missed).
//!
//! Under loom the store is a model ring over loom atomics (crossbeam's
//! algorithm with the same mark bit and counts), so the models
//! (`fifo/loom_model.rs`) check the protocol above around it.
#![deny(unsafe_code)]

use std::fmt;
use std::ops::Deref;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use crate::loom::SPIN;
use crate::loom::sync::atomic::{AtomicU64, AtomicUsize};
use crate::loom::sync::{Condvar, Mutex, MutexGuard};

use super::backend::Backend;
use super::core::{GetFail, PutFail, SPIN_ROUNDS, backoff, wake};
use super::error::{PutError, ShutDown};
use super::waiters::WaitList;
use crate::stats::QueueStats;
use crate::util::Wait;

// Under loom too, for its own models (the core uses the model store).
#[allow(unsafe_code)]
#[cfg_attr(loom, allow(dead_code))]
mod store;
#[cfg(not(loom))]
use store::{List, Pop, Push, Ring};

/// The biggest `maxsize` kept in a ring (allocated up front, about 16
/// bytes per place for small items); a larger bounded queue is a list
/// whose puts check the count of items held.
#[cfg(not(loom))]
const ARRAY_MAX: usize = 1 << 16;

/// On its own cache line: the producer's word and the consumer's word must
/// not share one.
#[repr(align(128))]
struct Padded<T>(T);

impl<T> Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// The lock-free FIFO store.
#[cfg(not(loom))]
enum Store<T> {
    Ring(Ring<T>),
    /// Unbounded (max 0), or bounded above [`ARRAY_MAX`].
    List(List<T>),
}

#[cfg(not(loom))]
impl<T> Store<T> {
    fn new(maxsize: usize) -> Self {
        match maxsize {
            n if n > 0 && n <= ARRAY_MAX => Store::Ring(Ring::new(n)),
            n => Store::List(List::new(n)),
        }
    }

    #[inline]
    fn push(&self, item: T) -> Result<(), Push<T>> {
        match self {
            Store::Ring(q) => q.push(item),
            Store::List(q) => q.push(item),
        }
    }

    #[inline]
    fn pop(&self) -> Pop<T> {
        match self {
            Store::Ring(q) => q.pop(),
            Store::List(q) => q.pop(),
        }
    }

    fn close(&self) -> bool {
        match self {
            Store::Ring(q) => q.close(),
            Store::List(q) => q.close(),
        }
    }

    fn is_closed(&self) -> bool {
        match self {
            Store::Ring(q) => q.is_closed(),
            Store::List(q) => q.is_closed(),
        }
    }

    fn pushes(&self) -> u64 {
        match self {
            Store::Ring(q) => q.pushes(),
            Store::List(q) => q.pushes(),
        }
    }

    fn pops(&self) -> u64 {
        match self {
            Store::Ring(q) => q.pops(),
            Store::List(q) => q.pops(),
        }
    }

    fn len(&self) -> usize {
        match self {
            Store::Ring(q) => q.len(),
            Store::List(q) => q.len(),
        }
    }

    #[inline]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline]
    fn is_full(&self) -> bool {
        match self {
            Store::Ring(q) => q.is_full(),
            Store::List(q) => q.is_full(),
        }
    }
}

/// What a refused push hands back (the model store's).
#[cfg(loom)]
enum Push<T> {
    Full(T),
    Closed(T),
}

/// What a pop found (the model store's).
#[cfg(loom)]
enum Pop<T> {
    Item(T),
    Empty,
    Closed,
}

/// The model's store: Vyukov's bounded MPMC ring (the real ring's
/// algorithm: stamps per slot, the shutdown mark in bit 0 of the tail, a
/// getter waiting for a reserved place), over loom atomics, with a loom
/// mutex around each slot's value in place of the `UnsafeCell`. A pop
/// that finds the ring empty only reads atomics, so it does not
/// synchronise with a later push: the model checks the sleepers' Dekker
/// pairs against a store that gives them no help. Where the real ring
/// spins for another thread's step in progress (a reserved place being
/// written, a taken place being freed), the model sleeps on the slot's
/// condition variable until its stamp changes (stamps change under the
/// slot's mutex): a spin would exceed loom's branch budget. An unbounded
/// queue gets [`MODEL_CAP`] places, more than a model puts.
#[cfg(loom)]
struct Store<T> {
    slots: Vec<ModelSlot<T>>,
    head: AtomicU64,
    /// `position << 1 | closed`.
    tail: AtomicU64,
    cap: u64,
}

#[cfg(loom)]
struct ModelSlot<T> {
    stamp: AtomicU64,
    value: Mutex<Option<T>>,
    changed: Condvar,
}

#[cfg(loom)]
impl<T> ModelSlot<T> {
    /// Sets the stamp (under the slot's mutex) and wakes its waiters.
    fn stamp(&self, g: MutexGuard<'_, Option<T>>, stamp: u64) {
        self.stamp
            .store(stamp, std::sync::atomic::Ordering::Release);
        drop(g);
        self.changed.notify_all();
    }

    /// Sleeps until the stamp is no longer `seen`.
    fn wait_change(&self, seen: u64) {
        let mut g = self.value.lock();
        while self.stamp.load(std::sync::atomic::Ordering::Acquire) == seen {
            self.changed.wait(&mut g);
        }
    }
}

#[cfg(loom)]
const MODEL_CAP: usize = 8;

#[cfg(loom)]
impl<T> Store<T> {
    fn new(max: usize) -> Self {
        let cap = if max == 0 { MODEL_CAP } else { max };
        Store {
            slots: (0..cap)
                .map(|i| ModelSlot {
                    stamp: AtomicU64::new(2 * i as u64),
                    value: Mutex::new(None),
                    changed: Condvar::new(),
                })
                .collect(),
            head: AtomicU64::new(0),
            tail: AtomicU64::new(0),
            cap: cap as u64,
        }
    }
    // Positions here are plain counts: slot `pos % cap`. With one place a
    // written stamp `pos + 1` would equal the next lap's free one, so the
    // stamps are doubled: free for the put at `pos`: `2 * pos`; holding
    // its item: `2 * pos + 1`.
    fn push(&self, item: T) -> Result<(), Push<T>> {
        let cap = self.cap;
        let mut t = self.tail.load(Relaxed);
        loop {
            if t & 1 != 0 {
                return Err(Push::Closed(item));
            }
            let pos = t >> 1;
            let slot = &self.slots[(pos % cap) as usize];
            let s = slot.stamp.load(std::sync::atomic::Ordering::Acquire);
            if s == 2 * pos {
                match self
                    .tail
                    .compare_exchange(t, (pos + 1) << 1, SeqCst, Relaxed)
                {
                    Ok(_) => {
                        let mut g = slot.value.lock();
                        *g = Some(item);
                        slot.stamp(g, 2 * pos + 1);
                        return Ok(());
                    }
                    Err(now) => t = now,
                }
                continue;
            }
            if s + 2 * cap == 2 * pos + 1 && self.head.load(SeqCst) + cap == pos {
                return Err(Push::Full(item));
            }
            if s < 2 * pos {
                // The lap before is still in the slot: a get took it and
                // is freeing the slot (or a put is still writing it).
                slot.wait_change(s);
            }
            // Else another put took `pos`: look again.
            t = self.tail.load(Relaxed);
        }
    }
    fn pop(&self) -> Pop<T> {
        let cap = self.cap;
        let mut h = self.head.load(Relaxed);
        loop {
            let slot = &self.slots[(h % cap) as usize];
            let s = slot.stamp.load(std::sync::atomic::Ordering::Acquire);
            if s == 2 * h + 1 {
                match self.head.compare_exchange(h, h + 1, SeqCst, Relaxed) {
                    Ok(_) => {
                        let mut g = slot.value.lock();
                        let item = g.take().expect("a written slot");
                        slot.stamp(g, 2 * (h + cap));
                        return Pop::Item(item);
                    }
                    Err(now) => h = now,
                }
                continue;
            }
            if s == 2 * h {
                let t = self.tail.load(SeqCst);
                if t >> 1 == h {
                    return if t & 1 != 0 { Pop::Closed } else { Pop::Empty };
                }
            }
            if s <= 2 * h {
                // A put reserved `h` and is writing it (or the lap before
                // is still being freed).
                slot.wait_change(s);
            }
            // Else another get took `h`: look again.
            h = self.head.load(Relaxed);
        }
    }
    fn close(&self) -> bool {
        self.tail.fetch_or(1, SeqCst) & 1 == 0
    }
    fn is_closed(&self) -> bool {
        self.tail.load(SeqCst) & 1 != 0
    }
    fn pushes(&self) -> u64 {
        self.tail.load(SeqCst) >> 1
    }
    fn pops(&self) -> u64 {
        self.head.load(SeqCst)
    }
    fn len(&self) -> usize {
        let tail = self.pushes();
        let head = self.pops();
        tail.saturating_sub(head) as usize
    }
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn is_full(&self) -> bool {
        self.len() as u64 >= self.cap
    }
}

/// Who sleeps, under the mutex.
#[derive(Default)]
struct Sleepers {
    getters: usize,
    putters: usize,
    /// Of `getters` (`putters`), those a notify has unparked that have not
    /// yet taken the mutex back: no longer counted as asleep, so puts
    /// (gets) in the meantime do not notify again (each would take the
    /// mutex the woken thread needs).
    getters_woken: usize,
    putters_woken: usize,
    joiners: usize,
    async_getters: WaitList,
    async_putters: WaitList,
    async_joiners: WaitList,
}

#[doc(hidden)]
pub struct FifoCore<T> {
    /// Tasks marked done (`task_done`, and the items an immediate shutdown
    /// counted as done): the unfinished count is the store's pushes minus
    /// this.
    done: Padded<AtomicU64>,
    /// Sleeping getters plus listed async getters: read by every put.
    getters: Padded<AtomicUsize>,
    /// Sleeping putters plus listed async putters: read by every get of a
    /// bounded queue.
    putters: AtomicUsize,
    /// Sleeping joiners plus listed async joiners.
    joiners: AtomicUsize,
    maxsize: usize,
    store: Store<T>,
    sleepers: Mutex<Sleepers>,
    not_empty: Condvar,
    not_full: Condvar,
    all_done: Condvar,
    /// Items an immediate shutdown dropped: with the store's pop count it
    /// gives the gets of [`QueueStats`] (`stats`). A plain std atomic,
    /// outside the loom models: nothing synchronises through it.
    dropped: std::sync::atomic::AtomicU64,
}

impl<T> fmt::Debug for FifoCore<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FifoCore")
            .field("len", &self.store.len())
            .field("shutdown", &self.store.is_closed())
            .finish_non_exhaustive()
    }
}

/// Waits on `cv`; returns true when the deadline passed.
fn wait(cv: &Condvar, g: &mut MutexGuard<'_, Sleepers>, until: Option<Instant>) -> bool {
    match until {
        None => {
            cv.wait(g);
            false
        }
        Some(at) => cv.wait_until(g, at).timed_out(),
    }
}

/// What a put that did not happen hands back, before it is mapped to
/// `PutFail`.
enum Refused<T> {
    Full(T),
    ShutDown(T),
}

impl<T> From<Refused<T>> for PutFail<T> {
    fn from(r: Refused<T>) -> Self {
        match r {
            Refused::Full(t) => PutFail::Full(t),
            Refused::ShutDown(t) => PutFail::ShutDown(t),
        }
    }
}

impl<T> FifoCore<T> {
    // --- counts published for the lock-free side -------------------------

    fn publish_getters(&self, s: &Sleepers) {
        self.getters
            .store(s.getters - s.getters_woken + s.async_getters.len(), SeqCst);
    }
    fn publish_putters(&self, s: &Sleepers) {
        self.putters
            .store(s.putters - s.putters_woken + s.async_putters.len(), SeqCst);
    }
    fn publish_joiners(&self, s: &Sleepers) {
        self.joiners
            .store(s.joiners + s.async_joiners.len(), SeqCst);
    }

    // --- the lock-free steps ---------------------------------------------

    /// One put attempt, never blocking. `Ok(true)`: a getter sleeps, notify.
    #[inline]
    fn try_put(&self, item: T) -> Result<bool, Refused<T>> {
        match self.store.push(item) {
            // Dekker: the push's reserving CAS (SeqCst), then this load.
            Ok(()) => Ok(self.getters.load(SeqCst) > 0),
            Err(Push::Full(it)) => Err(Refused::Full(it)),
            Err(Push::Closed(it)) => Err(Refused::ShutDown(it)),
        }
    }

    /// One get attempt, never blocking (but for a put in flight, which it
    /// waits for). `Ok((item, true))`: a putter sleeps, notify.
    #[inline]
    fn try_get(&self) -> Result<(T, bool), GetFail> {
        match self.store.pop() {
            // Dekker: the pop's CAS on the head (SeqCst), then this load.
            Pop::Item(item) => Ok((item, self.maxsize != 0 && self.putters.load(SeqCst) > 0)),
            Pop::Empty => Err(GetFail::Empty),
            Pop::Closed => Err(GetFail::ShutDown),
        }
    }

    /// The unfinished count: `done` read first, so the count read is one
    /// that held at that moment or after (never below 0).
    fn unfinished_count(&self) -> u64 {
        let done = self.done.load(SeqCst);
        self.store.pushes().saturating_sub(done)
    }

    // --- notifications (under the mutex; wakers woken after it) ----------

    fn notify_getter_locked(&self, s: &mut Sleepers) -> Option<Waker> {
        if s.getters > s.getters_woken && self.not_empty.notify_one() {
            s.getters_woken += 1;
            self.publish_getters(s);
            return None;
        }
        let w = s.async_getters.take_one();
        self.publish_getters(s);
        w
    }

    fn notify_putter_locked(&self, s: &mut Sleepers) -> Option<Waker> {
        if s.putters > s.putters_woken && self.not_full.notify_one() {
            s.putters_woken += 1;
            self.publish_putters(s);
            return None;
        }
        let w = s.async_putters.take_one();
        self.publish_putters(s);
        w
    }

    fn notify_getter(&self) {
        let mut s = self.sleepers.lock();
        let w = self.notify_getter_locked(&mut s);
        drop(s);
        wake(w);
    }

    fn notify_putter(&self) {
        let mut s = self.sleepers.lock();
        let w = self.notify_putter_locked(&mut s);
        drop(s);
        wake(w);
    }

    /// The unfinished count reached 0 (or `always`, an immediate shutdown).
    fn notify_joiners(&self, always: bool) {
        if !always && self.joiners.load(SeqCst) == 0 {
            return;
        }
        let mut s = self.sleepers.lock();
        if s.joiners > 0 {
            self.all_done.notify_all();
        }
        let wakers = s.async_joiners.take_all();
        self.publish_joiners(&s);
        drop(s);
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Unlocks `s` and wakes `w` (a notification owed after a retry that
    /// succeeded under the mutex).
    fn release(&self, s: MutexGuard<'_, Sleepers>, w: Option<Waker>) {
        drop(s);
        wake(w);
    }
}

impl<T> FifoCore<T> {
    fn make(maxsize: usize) -> Self {
        FifoCore {
            done: Padded(AtomicU64::new(0)),
            getters: Padded(AtomicUsize::new(0)),
            putters: AtomicUsize::new(0),
            joiners: AtomicUsize::new(0),
            maxsize,
            store: Store::new(maxsize),
            sleepers: Mutex::new(Sleepers::default()),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            all_done: Condvar::new(),
            dropped: std::sync::atomic::AtomicU64::new(0),
        }
    }

    #[inline]
    fn put(&self, item: T, block: Wait) -> Result<(), PutFail<T>> {
        // The fast path inline, the waiting out of line (a big frame to
        // set up costs more than the put itself).
        match self.try_put(item) {
            Ok(notify) => {
                if notify {
                    self.notify_getter();
                }
                Ok(())
            }
            Err(Refused::ShutDown(it)) => Err(PutFail::ShutDown(it)),
            Err(Refused::Full(it)) => match block {
                Wait::Never => Err(PutFail::Full(it)),
                _ => self.put_slow(it, block),
            },
        }
    }

    #[inline]
    fn get(&self, block: Wait) -> Result<T, GetFail> {
        match self.try_get() {
            Ok((item, notify)) => {
                if notify {
                    self.notify_putter();
                }
                Ok(item)
            }
            Err(GetFail::Empty) if !matches!(block, Wait::Never) => self.get_slow(block),
            Err(e) => Err(e),
        }
    }

    #[cold]
    #[inline(never)]
    fn put_slow(&self, mut item: T, block: Wait) -> Result<(), PutFail<T>> {
        let mut timed_out = false;
        let mut spins = 0;
        loop {
            // CPython 3.13 `Queue.put`: shutdown is checked first, then room.
            match self.try_put(item) {
                Ok(notify) => {
                    if notify {
                        self.notify_getter();
                    }
                    return Ok(());
                }
                Err(Refused::ShutDown(it)) => return Err(PutFail::ShutDown(it)),
                Err(Refused::Full(it)) => {
                    item = it;
                }
            }
            let until = match block {
                Wait::Never => return Err(PutFail::Full(item)),
                _ if timed_out => return Err(PutFail::Full(item)),
                Wait::Forever => None,
                Wait::Until(at) => Some(at),
            };
            if SPIN && spins < SPIN_ROUNDS && until.is_none_or(|at| Instant::now() < at) {
                spins += 1;
                backoff(spins);
                while spins < SPIN_ROUNDS && self.store.is_full() && !self.store.is_closed() {
                    spins += 1;
                    backoff(spins);
                }
                continue;
            }
            let mut s = self.sleepers.lock();
            s.putters += 1;
            self.publish_putters(&s);
            // Dekker: a get that did not see us moved the store's head
            // first; the push reads the head (SeqCst) before it reports
            // full.
            let retry = self.try_put(item);
            match retry {
                Ok(notify) => {
                    s.putters -= 1;
                    self.publish_putters(&s);
                    let w = if notify {
                        self.notify_getter_locked(&mut s)
                    } else {
                        None
                    };
                    self.release(s, w);
                    return Ok(());
                }
                Err(Refused::ShutDown(it)) => {
                    s.putters -= 1;
                    self.publish_putters(&s);
                    return Err(PutFail::ShutDown(it));
                }
                Err(Refused::Full(it)) => {
                    item = it;
                }
            }
            timed_out = wait(&self.not_full, &mut s, until);
            s.putters -= 1;
            // Woken by a notify, or not (a timeout, a spurious wake-up): either
            // way one notified sleeper fewer is on its way back.
            s.putters_woken = s.putters_woken.saturating_sub(1);
            self.publish_putters(&s);
        }
    }
}

impl<T> FifoCore<T> {
    #[cold]
    #[inline(never)]
    fn get_slow(&self, block: Wait) -> Result<T, GetFail> {
        let mut timed_out = false;
        let mut spins = 0;
        loop {
            // CPython 3.13 `Queue.get`: remaining items are handed out even
            // after a (non-immediate) shutdown; ShutDown only once empty.
            match self.try_get() {
                Ok((item, notify)) => {
                    if notify {
                        self.notify_putter();
                    }
                    return Ok(item);
                }
                Err(GetFail::ShutDown) => return Err(GetFail::ShutDown),
                Err(GetFail::Empty) => {}
            }
            let until = match block {
                Wait::Never => return Err(GetFail::Empty),
                _ if timed_out => return Err(GetFail::Empty),
                Wait::Forever => None,
                Wait::Until(at) => Some(at),
            };
            if SPIN && spins < SPIN_ROUNDS && until.is_none_or(|at| Instant::now() < at) {
                spins += 1;
                backoff(spins);
                while spins < SPIN_ROUNDS && self.store.is_empty() && !self.store.is_closed() {
                    spins += 1;
                    backoff(spins);
                }
                continue;
            }
            let mut s = self.sleepers.lock();
            s.getters += 1;
            // Dekker: a put that did not see us reserved its place in the
            // store first; the pop reads the tail (SeqCst) before it
            // reports empty, and waits for a reserved place's item.
            self.publish_getters(&s);
            let retry = self.try_get();
            match retry {
                Ok((item, notify)) => {
                    s.getters -= 1;
                    self.publish_getters(&s);
                    let w = if notify {
                        self.notify_putter_locked(&mut s)
                    } else {
                        None
                    };
                    self.release(s, w);
                    return Ok(item);
                }
                Err(GetFail::ShutDown) => {
                    s.getters -= 1;
                    self.publish_getters(&s);
                    return Err(GetFail::ShutDown);
                }
                Err(GetFail::Empty) => {}
            }
            timed_out = wait(&self.not_empty, &mut s, until);
            s.getters -= 1;
            s.getters_woken = s.getters_woken.saturating_sub(1);
            self.publish_getters(&s);
        }
    }
}

impl<T> Backend<T> for FifoCore<T> {
    fn new(maxsize: usize) -> Self {
        FifoCore::make(maxsize)
    }

    #[inline]
    fn put(&self, item: T, block: Wait) -> Result<(), PutFail<T>> {
        FifoCore::put(self, item, block)
    }

    #[inline]
    fn get(&self, block: Wait) -> Result<T, GetFail> {
        FifoCore::get(self, block)
    }

    fn task_done(&self) -> bool {
        let mut done = self.done.load(SeqCst);
        let mut pushes;
        loop {
            pushes = self.store.pushes();
            if done >= pushes {
                // Python's ValueError: more task_done calls than puts.
                return false;
            }
            // Dekker with a joiner: this CAS, then `notify_joiners`' load.
            match self
                .done
                .compare_exchange_weak(done, done + 1, SeqCst, SeqCst)
            {
                Ok(_) => break,
                Err(now) => done = now,
            }
        }
        if done + 1 == pushes {
            self.notify_joiners(false);
        }
        true
    }

    fn join(&self, until: Option<Instant>) -> bool {
        if self.unfinished_count() == 0 {
            return true;
        }
        let mut s = self.sleepers.lock();
        loop {
            s.joiners += 1;
            self.publish_joiners(&s);
            // Dekker with `task_done`: it wrote `done`, then reads `joiners`.
            let done = self.unfinished_count() == 0;
            let timed_out = !done && wait(&self.all_done, &mut s, until);
            s.joiners -= 1;
            self.publish_joiners(&s);
            if done || self.unfinished_count() == 0 {
                return true;
            }
            if timed_out {
                return false;
            }
        }
    }

    fn shutdown(&self, immediate: bool) {
        self.store.close();
        let mut drained = Vec::new();
        if immediate {
            // The pops wait for the puts let in before the shutdown (their
            // places are reserved) to land: CPython's lock orders them
            // before it, so their items are dropped too.
            while let Pop::Item(item) = self.store.pop() {
                drained.push(item);
            }
            // CPython 3.13: each dropped item counts as done (never below
            // 0). The pushes are final: the store is closed.
            let n = drained.len() as u64;
            let pushes = self.store.pushes();
            let _ = self.done.fetch_update(SeqCst, SeqCst, |d| {
                Some(d + n.min(pushes.saturating_sub(d)))
            });
            self.dropped.fetch_add(n, Relaxed);
        }
        let mut s = self.sleepers.lock();
        let mut wakers = Vec::new();
        if immediate {
            if s.joiners > 0 {
                self.all_done.notify_all();
            }
            wakers.extend(s.async_joiners.take_all());
        }
        // Every getter and putter re-checks and sees the shutdown.
        if s.getters > 0 {
            self.not_empty.notify_all();
            s.getters_woken = s.getters;
        }
        if s.putters > 0 {
            self.not_full.notify_all();
            s.putters_woken = s.putters;
        }
        wakers.extend(s.async_getters.take_all());
        wakers.extend(s.async_putters.take_all());
        self.publish_getters(&s);
        self.publish_putters(&s);
        self.publish_joiners(&s);
        drop(s);
        wakers.into_iter().for_each(Waker::wake);
        // Dropped here, outside the lock: an item's Drop may touch the queue.
        drop(drained);
    }

    fn len(&self) -> usize {
        self.store.len()
    }

    fn maxsize(&self) -> usize {
        self.maxsize
    }

    fn unfinished(&self) -> usize {
        usize::try_from(self.unfinished_count()).unwrap_or(usize::MAX)
    }

    /// From the store's positions: `puts` are the places ever reserved,
    /// `gets` the items ever taken but those an immediate shutdown
    /// dropped. Exact when no put, get or `task_done` is in progress (a
    /// put in flight is counted before its item is in the store).
    fn stats(&self) -> QueueStats {
        let done = self.done.load(SeqCst);
        let pops = self.store.pops();
        let puts = self.store.pushes();
        let qsize = puts.saturating_sub(pops);
        let unfinished = puts.saturating_sub(done);
        let gets = pops.saturating_sub(self.dropped.load(Relaxed));
        QueueStats::new(qsize, unfinished, puts, gets)
    }

    fn is_shutdown(&self) -> bool {
        self.store.is_closed()
    }

    fn poll_put(
        &self,
        item: &mut Option<T>,
        key: &mut Option<u64>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), PutError<T>>> {
        let Some(it) = item.take() else {
            panic!("PutFuture polled after completion");
        };
        let outcome = match self.try_put(it) {
            Err(Refused::Full(it)) => {
                // List ourselves, then try again (the Dekker pair with a
                // get's CAS on the store's head), under the mutex.
                let mut s = self.sleepers.lock();
                *key = Some(s.async_putters.register(*key, cx.waker()));
                self.publish_putters(&s);
                match self.try_put(it) {
                    Err(Refused::Full(it)) => {
                        drop(s);
                        *item = Some(it);
                        return Poll::Pending;
                    }
                    done => (done, Some(s)),
                }
            }
            done => (done, None),
        };
        let (outcome, guard) = outcome;
        let mut s = match (guard, key.is_some()) {
            (Some(s), _) => Some(s),
            (None, true) => Some(self.sleepers.lock()),
            (None, false) => None,
        };
        if let (Some(s), Some(k)) = (s.as_mut(), key.take()) {
            s.async_putters.remove(k);
            self.publish_putters(s);
        }
        match outcome {
            Ok(notify) => {
                match (s, notify) {
                    (Some(mut s), true) => {
                        let w = self.notify_getter_locked(&mut s);
                        self.release(s, w);
                    }
                    (None, true) => self.notify_getter(),
                    _ => {}
                }
                Poll::Ready(Ok(()))
            }
            Err(Refused::ShutDown(it)) => Poll::Ready(Err(PutError(it))),
            Err(Refused::Full(..)) => unreachable!("handled above"),
        }
    }

    fn cancel_put(&self, key: u64) {
        let mut s = self.sleepers.lock();
        let listed = s.async_putters.remove(key);
        self.publish_putters(&s);
        // Not listed any more: we were woken for a free place we will not
        // use; pass it on.
        if !listed && !self.is_shutdown() && !self.store.is_full() {
            let w = self.notify_putter_locked(&mut s);
            self.release(s, w);
        }
    }

    fn poll_get(&self, key: &mut Option<u64>, cx: &mut Context<'_>) -> Poll<Result<T, ShutDown>> {
        let (outcome, guard) = match self.try_get() {
            Err(GetFail::Empty) => {
                // List ourselves, then try again (the Dekker pair with a
                // put's reserving CAS), under the mutex.
                let mut s = self.sleepers.lock();
                *key = Some(s.async_getters.register(*key, cx.waker()));
                self.publish_getters(&s);
                match self.try_get() {
                    Err(GetFail::Empty) => return Poll::Pending,
                    done => (done, Some(s)),
                }
            }
            done => (done, None),
        };
        let mut s = match (guard, key.is_some()) {
            (Some(s), _) => Some(s),
            (None, true) => Some(self.sleepers.lock()),
            (None, false) => None,
        };
        if let (Some(s), Some(k)) = (s.as_mut(), key.take()) {
            s.async_getters.remove(k);
            self.publish_getters(s);
        }
        match outcome {
            Ok((item, notify)) => {
                match (s, notify) {
                    (Some(mut s), true) => {
                        let w = self.notify_putter_locked(&mut s);
                        self.release(s, w);
                    }
                    (None, true) => self.notify_putter(),
                    _ => {}
                }
                Poll::Ready(Ok(item))
            }
            Err(_) => Poll::Ready(Err(ShutDown)),
        }
    }

    fn cancel_get(&self, key: u64) {
        let mut s = self.sleepers.lock();
        let listed = s.async_getters.remove(key);
        self.publish_getters(&s);
        // Not listed any more: we were woken for an item we will not
        // take; pass the wakeup on so the item is not stranded.
        if !listed && !self.store.is_empty() {
            let w = self.notify_getter_locked(&mut s);
            self.release(s, w);
        }
    }

    fn poll_join(&self, key: &mut Option<u64>, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.sleepers.lock();
        *key = Some(s.async_joiners.register(*key, cx.waker()));
        self.publish_joiners(&s);
        // Dekker with `task_done` (see `join`).
        if self.unfinished_count() == 0 {
            if let Some(k) = key.take() {
                s.async_joiners.remove(k);
                self.publish_joiners(&s);
            }
            return Poll::Ready(());
        }
        Poll::Pending
    }

    fn cancel_join(&self, key: u64) {
        let mut s = self.sleepers.lock();
        s.async_joiners.remove(key);
        self.publish_joiners(&s);
    }
}

#[cfg(all(test, loom))]
mod loom_model;
