//! [`FifoCore`]: the lock-free core behind [`Queue`](super::Queue) (and
//! [`SimpleQueue`](super::SimpleQueue)).
//!
//! The items live in a `crossbeam-queue` FIFO ([`ArrayQueue`] for a bounded
//! queue of up to [`ARRAY_MAX`] places, [`SegQueue`] otherwise), so a put and
//! a get touch no common lock. The rest is one word and an eventcount:
//!
//! * `state` (one `AtomicU64`): the shutdown bit, the count of puts *in
//!   flight* (past their shutdown check, not yet landed) and the unfinished
//!   count. A put adds one to both counts with a CAS that fails on the
//!   shutdown bit (so a refused put never shows in the counts), pushes, and
//!   then takes its in-flight one back. The unfinished count is thus raised
//!   before the item can be got (`task_done` cannot run ahead of it).
//! * A getter that finds the store empty and the shutdown bit set reports
//!   `ShutDown` only once no put is in flight and a last look finds nothing:
//!   a put racing `shutdown` lands before it (its item is got) or is
//!   refused — never an item nobody gets. `shutdown(immediate)` waits for
//!   the puts in flight to land before it drains, as CPython's lock orders
//!   them.
//! * Sleepers are counted (`getters`, `putters`, `joiners`, the mutex's
//!   counts plus the async waker lists, published with a `SeqCst` store):
//!   a put (get, `task_done`) that nobody waits for takes no lock. The lost
//!   wake-up is excluded by two Dekker pairs of `SeqCst` accesses: a sleeper
//!   publishes its count, then reads the other side's word (`state` for
//!   getters and joiners, `pops` for putters) and tries again, all under
//!   the mutex; a put writes `state` (its landing), then reads `getters`; a
//!   get of a bounded queue bumps `pops`, then reads `putters`. Either the
//!   sleeper's retry sees the change, or the changer sees the sleeper and
//!   notifies it under the mutex (which the sleeper only releases inside
//!   its condition-variable wait).
//! * A sleeper a notify has unparked stops counting as asleep at once
//!   (`getters_woken`, `putters_woken`), not when it is back under the
//!   mutex: until then every put (get) would otherwise notify again, each
//!   taking the mutex the woken thread needs (on an idle Intel Xeon, ~200
//!   notifies per sleep of an SPSC consumer). A waiter that returns on its
//!   own (a timeout) takes one such mark with it, so the published count
//!   may only run high (a spare notify), never low (a sleeper missed).
//!
//! Under loom the store is a loom `Mutex<VecDeque>` (crossbeam-queue's
//! internals are not instrumented; both are linearizable FIFOs), so the
//! models (`fifo/loom_model.rs`) check the protocol above around it.
#![forbid(unsafe_code)]

use std::fmt;
use std::ops::Deref;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use crate::loom::SPIN;
use crate::loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use crate::loom::sync::{Condvar, Mutex, MutexGuard};

use super::backend::Backend;
use super::core::{GetFail, PutFail, SPIN_ROUNDS, backoff, wake};
use super::error::{PutError, ShutDown};
use super::waiters::WaitList;
use crate::stats::QueueStats;
use crate::util::Wait;

/// The biggest `maxsize` kept in an [`ArrayQueue`] (allocated up front,
/// about 16 bytes per place for small items); a larger bounded queue is a
/// [`SegQueue`] with a count of reserved places.
#[cfg(not(loom))]
const ARRAY_MAX: usize = 1 << 16;

const CLOSED: u64 = 1;
const INFLIGHT_SHIFT: u32 = 1;
/// Puts in flight at once: at most one per thread, and Linux caps threads
/// at 2^22.
const INFLIGHT_BITS: u32 = 23;
const INFLIGHT: u64 = 1 << INFLIGHT_SHIFT;
const UNFINISHED_SHIFT: u32 = INFLIGHT_SHIFT + INFLIGHT_BITS;
const UNFINISHED: u64 = 1 << UNFINISHED_SHIFT;
/// The most unfinished tasks a `Queue` counts (2^39, half the field, so a
/// put counting itself never overflows it): a put beyond it waits (or
/// fails with `Full`) until a `task_done`. Documented in docs/PYTHON.md.
pub(crate) const MAX_UNFINISHED: u64 = 1 << 39;

#[inline]
fn inflight(s: u64) -> u64 {
    (s >> INFLIGHT_SHIFT) & ((1 << INFLIGHT_BITS) - 1)
}

#[inline]
fn unfinished(s: u64) -> u64 {
    s >> UNFINISHED_SHIFT
}

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

#[inline]
fn yield_now() {
    #[cfg(loom)]
    ::loom::thread::yield_now();
    #[cfg(not(loom))]
    std::thread::yield_now();
}

/// The lock-free FIFO store.
#[cfg(not(loom))]
// One per queue, inside its `Arc`: boxing a variant would add a pointer
// chase to every put and get.
#[allow(clippy::large_enum_variant)]
enum Store<T> {
    Array(crossbeam_queue::ArrayQueue<T>),
    /// Unbounded, or bounded above [`ARRAY_MAX`] with the places taken
    /// counted (reserved before the push, freed after the pop).
    Seg(
        crossbeam_queue::SegQueue<T>,
        Option<(usize, Padded<AtomicUsize>)>,
    ),
}

#[cfg(not(loom))]
impl<T> Store<T> {
    fn new(maxsize: usize) -> Self {
        match maxsize {
            0 => Store::Seg(crossbeam_queue::SegQueue::new(), None),
            n if n <= ARRAY_MAX => Store::Array(crossbeam_queue::ArrayQueue::new(n)),
            n => Store::Seg(
                crossbeam_queue::SegQueue::new(),
                Some((n, Padded(AtomicUsize::new(0)))),
            ),
        }
    }

    #[inline]
    fn try_push(&self, item: T) -> Result<(), T> {
        match self {
            Store::Array(q) => q.push(item),
            Store::Seg(q, None) => {
                q.push(item);
                Ok(())
            }
            Store::Seg(q, Some((max, taken))) => {
                if taken.fetch_add(1, Acquire) >= *max {
                    taken.fetch_sub(1, Release);
                    return Err(item);
                }
                q.push(item);
                Ok(())
            }
        }
    }

    #[inline]
    fn pop(&self) -> Option<T> {
        match self {
            Store::Array(q) => q.pop(),
            Store::Seg(q, taken) => {
                let item = q.pop()?;
                if let Some((_, taken)) = taken {
                    taken.fetch_sub(1, Release);
                }
                Some(item)
            }
        }
    }

    fn len(&self) -> usize {
        match self {
            Store::Array(q) => q.len(),
            Store::Seg(q, _) => q.len(),
        }
    }

    #[inline]
    fn is_empty(&self) -> bool {
        match self {
            Store::Array(q) => q.is_empty(),
            Store::Seg(q, _) => q.is_empty(),
        }
    }

    #[inline]
    fn is_full(&self) -> bool {
        match self {
            Store::Array(q) => q.is_full(),
            Store::Seg(_, None) => false,
            Store::Seg(_, Some((max, taken))) => taken.load(Relaxed) >= *max,
        }
    }
}

/// The model's store: Vyukov's bounded MPMC ring (the algorithm of
/// crossbeam's `ArrayQueue`, without its `SeqCst` fence on the empty
/// path), over loom atomics. A pop that finds the ring empty only reads
/// atomics, so it does not synchronise with a later push: the model checks
/// the sleepers' Dekker pairs against a store that gives them no help (a
/// mutex around the store would order every push and pop and hide a
/// missing `SeqCst`). An unbounded queue gets [`MODEL_CAP`] places, more
/// than a model puts.
#[cfg(loom)]
struct Store<T> {
    slots: Vec<(AtomicUsize, Mutex<Option<T>>)>,
    head: AtomicUsize,
    tail: AtomicUsize,
    max: usize,
}

#[cfg(loom)]
const MODEL_CAP: usize = 8;

#[cfg(loom)]
impl<T> Store<T> {
    fn new(max: usize) -> Self {
        // Vyukov's stamps need two places at least; `max` is checked apart.
        let cap = if max == 0 { MODEL_CAP } else { max.max(2) };
        Store {
            slots: (0..cap)
                .map(|i| (AtomicUsize::new(i), Mutex::new(None)))
                .collect(),
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
            max,
        }
    }
    fn try_push(&self, item: T) -> Result<(), T> {
        let cap = self.slots.len();
        let mut pos = self.tail.load(Relaxed);
        loop {
            let (seq, cell) = &self.slots[pos % cap];
            let diff = seq.load(std::sync::atomic::Ordering::Acquire) as isize - pos as isize;
            if diff == 0 && self.max > 0 && pos - self.head.load(Relaxed) >= self.max {
                return Err(item);
            }
            if diff == 0 {
                match self.tail.compare_exchange(pos, pos + 1, SeqCst, Relaxed) {
                    Ok(_) => {
                        *cell.lock() = Some(item);
                        seq.store(pos + 1, std::sync::atomic::Ordering::Release);
                        return Ok(());
                    }
                    Err(now) => pos = now,
                }
            } else if diff < 0 {
                assert!(self.max > 0, "a loom model put more than MODEL_CAP items");
                return Err(item);
            } else {
                pos = self.tail.load(Relaxed);
            }
        }
    }
    fn pop(&self) -> Option<T> {
        let cap = self.slots.len();
        let mut pos = self.head.load(Relaxed);
        loop {
            let (seq, cell) = &self.slots[pos % cap];
            let diff = seq.load(std::sync::atomic::Ordering::Acquire) as isize - (pos + 1) as isize;
            if diff == 0 {
                match self.head.compare_exchange(pos, pos + 1, SeqCst, Relaxed) {
                    Ok(_) => {
                        let item = cell.lock().take();
                        seq.store(pos + cap, std::sync::atomic::Ordering::Release);
                        return item;
                    }
                    Err(now) => pos = now,
                }
            } else if diff < 0 {
                return None;
            } else {
                pos = self.head.load(Relaxed);
            }
        }
    }
    fn len(&self) -> usize {
        let tail = self.tail.load(SeqCst);
        let head = self.head.load(SeqCst);
        tail.saturating_sub(head)
    }
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn is_full(&self) -> bool {
        self.max > 0 && self.len() >= self.max
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
    /// Shutdown bit, puts in flight, unfinished count: written by every put.
    state: Padded<AtomicU64>,
    /// Bumped by every get of a bounded queue: the getters' side of the
    /// Dekker pair with a sleeping putter.
    pops: Padded<AtomicUsize>,
    /// Sleeping getters plus listed async getters: read by every put.
    getters: Padded<AtomicUsize>,
    /// Sleeping putters plus listed async putters: read by every get of a
    /// bounded queue.
    putters: AtomicUsize,
    /// Sleeping joiners plus listed async joiners.
    joiners: AtomicUsize,
    /// The shutdown bit, alone, for spinning waiters to watch.
    closed: AtomicBool,
    maxsize: usize,
    store: Store<T>,
    sleepers: Mutex<Sleepers>,
    not_empty: Condvar,
    not_full: Condvar,
    all_done: Condvar,
    /// Tasks marked done (`task_done`, and the items an immediate shutdown
    /// counted as done), and items an immediate shutdown dropped: with
    /// `state`'s unfinished count and the store's length they give the
    /// puts and gets of [`QueueStats`] (`stats`) without a counter on the
    /// put or get path. Plain std atomics, outside the loom models: nothing
    /// synchronises through them.
    done: std::sync::atomic::AtomicU64,
    dropped: std::sync::atomic::AtomicU64,
}

impl<T> fmt::Debug for FifoCore<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FifoCore")
            .field("state", &self.state.load(Relaxed))
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
    /// The store was full; `true`: the count this put had reserved was the
    /// last, so joiners must be notified (outside the mutex).
    Full(T, bool),
    ShutDown(T),
}

impl<T> From<Refused<T>> for PutFail<T> {
    fn from(r: Refused<T>) -> Self {
        match r {
            Refused::Full(t, _) => PutFail::Full(t),
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
        let mut s = self.state.load(Relaxed);
        loop {
            if s & CLOSED != 0 {
                return Err(Refused::ShutDown(item));
            }
            if unfinished(s) >= MAX_UNFINISHED {
                return Err(Refused::Full(item, false));
            }
            match self
                .state
                .compare_exchange_weak(s, s + INFLIGHT + UNFINISHED, SeqCst, Relaxed)
            {
                Ok(_) => break,
                Err(now) => s = now,
            }
        }
        if let Err(item) = self.store.try_push(item) {
            return Err(Refused::Full(item, self.unreserve()));
        }
        // Landed: the write getters (and immediate shutdown) wait for.
        self.state.fetch_sub(INFLIGHT, SeqCst);
        Ok(self.getters.load(SeqCst) > 0)
    }

    /// Takes back a put's in-flight and unfinished counts (its push found
    /// the store full). The unfinished count saturates at 0: a `task_done`
    /// that ran in between took the one this put had added.
    /// Returns true when joiners must be notified (the count reached 0).
    fn unreserve(&self) -> bool {
        let mut s = self.state.load(Relaxed);
        loop {
            let new = s - INFLIGHT - if unfinished(s) > 0 { UNFINISHED } else { 0 };
            match self.state.compare_exchange_weak(s, new, SeqCst, Relaxed) {
                Ok(_) => break,
                Err(now) => s = now,
            }
        }
        if unfinished(s) == 0 {
            // A `task_done` took this put's count: that done was for no
            // item, so `puts = unfinished + done` (see `stats`) stays true.
            self.done.fetch_sub(1, Relaxed);
        }
        unfinished(s) == 1
    }

    /// One get attempt, never blocking. `Ok((item, true))`: a putter sleeps,
    /// notify.
    #[inline]
    fn try_get(&self) -> Result<(T, bool), GetFail> {
        loop {
            if let Some(item) = self.store.pop() {
                return Ok((item, self.popped()));
            }
            // The hint first: `state` is the putters' hot line, and an
            // empty queue is polled often. The hint is set before
            // `shutdown` takes the mutex, so a sleeper (which reads `state`
            // itself first) cannot miss it.
            if !self.closed.load(Acquire) {
                return Err(GetFail::Empty);
            }
            let s = self.state.load(SeqCst);
            if inflight(s) == 0 {
                // Every put let in before the shutdown has landed (this
                // load read its landing): one last look.
                return match self.store.pop() {
                    Some(item) => Ok((item, self.popped())),
                    None => Err(GetFail::ShutDown),
                };
            }
            // A put let in before the shutdown is landing.
            yield_now();
        }
    }

    /// After a pop: the getters' half of the putters' Dekker pair.
    #[inline]
    fn popped(&self) -> bool {
        if self.maxsize == 0 {
            return false;
        }
        self.pops.fetch_add(1, SeqCst);
        self.putters.load(SeqCst) > 0
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
            state: Padded(AtomicU64::new(0)),
            pops: Padded(AtomicUsize::new(0)),
            getters: Padded(AtomicUsize::new(0)),
            putters: AtomicUsize::new(0),
            joiners: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            maxsize,
            store: Store::new(maxsize),
            sleepers: Mutex::new(Sleepers::default()),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            all_done: Condvar::new(),
            done: std::sync::atomic::AtomicU64::new(0),
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
            Err(Refused::Full(it, joiners)) => {
                if joiners {
                    self.notify_joiners(false);
                }
                match block {
                    Wait::Never => Err(PutFail::Full(it)),
                    _ => self.put_slow(it, block),
                }
            }
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
                Err(Refused::Full(it, joiners)) => {
                    if joiners {
                        self.notify_joiners(false);
                    }
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
                while spins < SPIN_ROUNDS && self.store.is_full() && !self.closed.load(Relaxed) {
                    spins += 1;
                    backoff(spins);
                }
                continue;
            }
            let mut s = self.sleepers.lock();
            s.putters += 1;
            self.publish_putters(&s);
            // Dekker: a get that did not see us bumped `pops` first.
            self.pops.load(SeqCst);
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
                Err(Refused::Full(it, joiners)) => {
                    if joiners {
                        // Not under our mutex: notify_joiners takes it.
                        s.putters -= 1;
                        self.publish_putters(&s);
                        drop(s);
                        self.notify_joiners(false);
                        item = it;
                        continue;
                    }
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
                while spins < SPIN_ROUNDS && self.store.is_empty() && !self.closed.load(Relaxed) {
                    spins += 1;
                    backoff(spins);
                }
                continue;
            }
            let mut s = self.sleepers.lock();
            s.getters += 1;
            // Dekker: a put that did not see us landed (wrote `state`)
            // first; `try_get` reads `state` before it reports empty.
            self.publish_getters(&s);
            self.state.load(SeqCst);
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
        let mut s = self.state.load(Relaxed);
        loop {
            if unfinished(s) == 0 {
                return false;
            }
            match self
                .state
                .compare_exchange_weak(s, s - UNFINISHED, SeqCst, Relaxed)
            {
                Ok(_) => break,
                Err(now) => s = now,
            }
        }
        self.done.fetch_add(1, Relaxed);
        if unfinished(s) == 1 {
            self.notify_joiners(false);
        } else if unfinished(s) == MAX_UNFINISHED && self.putters.load(SeqCst) > 0 {
            // A put waiting for the count to drop below its limit.
            self.notify_putter();
        }
        true
    }

    fn join(&self, until: Option<Instant>) -> bool {
        if unfinished(self.state.load(SeqCst)) == 0 {
            return true;
        }
        let mut s = self.sleepers.lock();
        loop {
            s.joiners += 1;
            self.publish_joiners(&s);
            // Dekker with `task_done`: it wrote `state`, then reads `joiners`.
            let done = unfinished(self.state.load(SeqCst)) == 0;
            let timed_out = !done && wait(&self.all_done, &mut s, until);
            s.joiners -= 1;
            self.publish_joiners(&s);
            if done || unfinished(self.state.load(SeqCst)) == 0 {
                return true;
            }
            if timed_out {
                return false;
            }
        }
    }

    fn shutdown(&self, immediate: bool) {
        self.state.fetch_or(CLOSED, SeqCst);
        self.closed.store(true, Release);
        let mut drained = Vec::new();
        if immediate {
            // The puts let in before the shutdown land first (CPython's
            // lock orders them before it): their items are dropped too.
            while inflight(self.state.load(SeqCst)) != 0 {
                yield_now();
            }
            while let Some(item) = self.store.pop() {
                drained.push(item);
            }
            // CPython 3.13: each dropped item counts as done (never below 0).
            let n = drained.len() as u64;
            if let Ok(s) = self.state.fetch_update(SeqCst, Relaxed, |s| {
                Some(s - UNFINISHED * unfinished(s).min(n))
            }) {
                self.done.fetch_add(unfinished(s).min(n), Relaxed);
            }
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
        usize::try_from(unfinished(self.state.load(SeqCst))).unwrap_or(usize::MAX)
    }

    /// Derived: every accepted put raised the unfinished count by one and
    /// every `done` lowered it by one, so `puts = unfinished + done`; every
    /// item put is in the store, was got, or was dropped, so `gets = puts -
    /// qsize - dropped`. Exact when no put, get or `task_done` is in
    /// progress (a put in flight is counted before its item is in the store).
    fn stats(&self) -> QueueStats {
        let unfinished = unfinished(self.state.load(SeqCst));
        let qsize = self.store.len() as u64;
        // Wrapping: `unreserve` may take its one back just before the
        // `task_done` it answers adds it.
        let puts = unfinished.wrapping_add(self.done.load(Relaxed));
        let gets = puts.saturating_sub(qsize + self.dropped.load(Relaxed));
        QueueStats::new(qsize, unfinished, puts, gets)
    }

    fn is_shutdown(&self) -> bool {
        self.state.load(SeqCst) & CLOSED != 0
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
            Err(Refused::Full(it, joiners)) => {
                if joiners {
                    self.notify_joiners(false);
                }
                // List ourselves, then try again (the Dekker pair with
                // `popped`), under the mutex.
                let mut s = self.sleepers.lock();
                *key = Some(s.async_putters.register(*key, cx.waker()));
                self.publish_putters(&s);
                self.pops.load(SeqCst);
                match self.try_put(it) {
                    Err(Refused::Full(it, joiners)) => {
                        drop(s);
                        if joiners {
                            self.notify_joiners(false);
                        }
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
                // put's landing), under the mutex.
                let mut s = self.sleepers.lock();
                *key = Some(s.async_getters.register(*key, cx.waker()));
                self.publish_getters(&s);
                self.state.load(SeqCst);
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
        if unfinished(self.state.load(SeqCst)) == 0 {
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
