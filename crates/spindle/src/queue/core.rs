//! The shared state behind every queue handle: one mutex, three condition
//! variables for blocked threads, three waker lists for parked async tasks.
//!
//! Waiters are counted, so a put or get that nobody waits for touches neither
//! a condition variable nor a waker list. Wakers are always woken after the
//! mutex is released.
#![forbid(unsafe_code)]

use std::sync::atomic::Ordering::Relaxed;
use std::task::Waker;
use std::time::Instant;

use crate::loom::SPIN;
use crate::loom::sync::atomic::{AtomicBool, AtomicUsize};
use crate::loom::sync::{Condvar, Mutex, MutexGuard};

use super::order::Store;
use super::waiters::WaitList;
use crate::util::Wait;

/// Why a put did not happen (the item is handed back).
#[derive(Debug)]
pub enum PutFail<T> {
    Full(T),
    ShutDown(T),
}

/// Why a get did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetFail {
    Empty,
    ShutDown,
}

pub(crate) struct State<S> {
    pub(crate) store: S,
    pub(crate) shutdown: bool,
    pub(crate) unfinished: usize,
    getters: usize,
    putters: usize,
    joiners: usize,
    pub(crate) async_getters: WaitList,
    pub(crate) async_putters: WaitList,
    pub(crate) async_joiners: WaitList,
}

#[doc(hidden)]
pub struct Core<S> {
    pub(crate) state: Mutex<State<S>>,
    not_empty: Condvar,
    not_full: Condvar,
    all_done: Condvar,
    pub(crate) maxsize: usize,
    /// `store.len()`, mirrored under the lock so waiters can poll it while
    /// spinning without taking the lock.
    pub(crate) len: AtomicUsize,
    /// `shutdown`, mirrored likewise.
    closed: AtomicBool,
    /// Tasks marked done (`task_done`, and those an immediate shutdown
    /// counted done) and items an immediate shutdown dropped: with
    /// `unfinished` and the store's length they give the puts and gets of
    /// [`QueueStats`](crate::stats::QueueStats) (`Backend::stats`), so a put
    /// or get counts nothing more. Written only under the lock (a relaxed
    /// load and store), read under it; kept out of `State` so the fields
    /// a put and a get touch keep their layout. Plain std atomics, outside
    /// the loom models: nothing synchronises through them.
    pub(crate) done: std::sync::atomic::AtomicU64,
    pub(crate) dropped: std::sync::atomic::AtomicU64,
}

/// Adds `n` to a counter written only under the queue's lock.
fn add_locked(c: &std::sync::atomic::AtomicU64, n: u64) {
    c.store(c.load(Relaxed) + n, Relaxed);
}

/// Spin-then-yield rounds a waiter takes before it parks (crossbeam's
/// `Backoff` idea: a handoff between running threads is far cheaper than a
/// park and unpark). Measured with `spindle bench queue` on 2 cores: long
/// pure spinning hurts (it starves the thread being waited for), yielding
/// early helps; 16 rounds of which 2 spin won on every case. None under
/// loom (`crate::loom::SPIN`).
pub(crate) const SPIN_ROUNDS: u32 = 16;

/// Rounds that spin (1, then 4 `spin_loop`s) before the rest yield.
const SPIN_ONLY: u32 = 2;

pub(crate) fn backoff(round: u32) {
    if round < SPIN_ONLY {
        for _ in 0..(1 << (round * 2)) {
            std::hint::spin_loop();
        }
    } else {
        std::thread::yield_now();
    }
}

/// Wakes after the guard is gone.
#[inline]
pub(crate) fn wake(w: Option<Waker>) {
    if let Some(w) = w {
        w.wake();
    }
}

impl<S> Core<S> {
    pub(crate) fn new<T>(maxsize: usize) -> Self
    where
        S: Store<T>,
    {
        Core {
            state: Mutex::new(State {
                store: S::new(),
                shutdown: false,
                unfinished: 0,
                getters: 0,
                putters: 0,
                joiners: 0,
                async_getters: WaitList::default(),
                async_putters: WaitList::default(),
                async_joiners: WaitList::default(),
            }),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            all_done: Condvar::new(),
            maxsize,
            len: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            done: std::sync::atomic::AtomicU64::new(0),
            dropped: std::sync::atomic::AtomicU64::new(0),
        }
    }

    #[inline]
    pub(crate) fn has_room<T>(&self, st: &State<S>) -> bool
    where
        S: Store<T>,
    {
        self.maxsize == 0 || st.store.len() < self.maxsize
    }

    /// One item arrived: let one waiting getter know.
    #[inline]
    pub(crate) fn notify_getter(&self, st: &mut State<S>) -> Option<Waker> {
        if st.getters > 0 && self.not_empty.notify_one() {
            return None;
        }
        if st.async_getters.is_empty() {
            None
        } else {
            st.async_getters.take_one()
        }
    }

    /// One slot freed: let one waiting putter know.
    #[inline]
    pub(crate) fn notify_putter(&self, st: &mut State<S>) -> Option<Waker> {
        if self.maxsize == 0 {
            return None;
        }
        if st.putters > 0 && self.not_full.notify_one() {
            return None;
        }
        if st.async_putters.is_empty() {
            None
        } else {
            st.async_putters.take_one()
        }
    }

    /// Pushes under the lock (room and shutdown already checked).
    #[inline]
    pub(crate) fn push_locked<T>(&self, st: &mut State<S>, item: T) -> Option<Waker>
    where
        S: Store<T>,
    {
        // Counted first: a heap whose `Ord` panics mid-push keeps the item.
        st.unfinished += 1;
        self.len.store(st.store.len() + 1, Relaxed);
        st.store.push(item);
        self.notify_getter(st)
    }

    /// Pops under the lock, if an item is there.
    #[inline]
    pub(crate) fn pop_locked<T>(&self, st: &mut State<S>) -> Option<(T, Option<Waker>)>
    where
        S: Store<T>,
    {
        let item = st.store.pop()?;
        self.len.store(st.store.len(), Relaxed);
        Some((item, self.notify_putter(st)))
    }

    pub(crate) fn put<T>(&self, item: T, block: Wait) -> Result<(), PutFail<T>>
    where
        S: Store<T>,
    {
        let mut st = self.state.lock();
        let mut timed_out = false;
        let mut spins = 0;
        loop {
            // CPython 3.13 `Queue.put`: shutdown is checked first, then room.
            if st.shutdown {
                return Err(PutFail::ShutDown(item));
            }
            if self.has_room(&st) {
                let w = self.push_locked(&mut st, item);
                drop(st);
                wake(w);
                return Ok(());
            }
            let until = match block {
                Wait::Never => return Err(PutFail::Full(item)),
                _ if timed_out => return Err(PutFail::Full(item)),
                Wait::Forever => None,
                Wait::Until(at) => Some(at),
            };
            if SPIN && spins < SPIN_ROUNDS && until.is_none_or(|at| Instant::now() < at) {
                spins += 1;
                MutexGuard::unlocked(&mut st, || {
                    backoff(spins);
                    while spins < SPIN_ROUNDS
                        && self.len.load(Relaxed) >= self.maxsize
                        && !self.closed.load(Relaxed)
                    {
                        spins += 1;
                        backoff(spins);
                    }
                });
                continue;
            }
            st.putters += 1;
            timed_out = wait(&self.not_full, &mut st, until);
            st.putters -= 1;
        }
    }

    pub(crate) fn get<T>(&self, block: Wait) -> Result<T, GetFail>
    where
        S: Store<T>,
    {
        let mut st = self.state.lock();
        let mut timed_out = false;
        let mut spins = 0;
        loop {
            // CPython 3.13 `Queue.get`: remaining items are handed out even
            // after a (non-immediate) shutdown; ShutDown only once empty.
            if let Some((item, w)) = self.pop_locked(&mut st) {
                drop(st);
                wake(w);
                return Ok(item);
            }
            if st.shutdown {
                return Err(GetFail::ShutDown);
            }
            let until = match block {
                Wait::Never => return Err(GetFail::Empty),
                _ if timed_out => return Err(GetFail::Empty),
                Wait::Forever => None,
                Wait::Until(at) => Some(at),
            };
            if SPIN && spins < SPIN_ROUNDS && until.is_none_or(|at| Instant::now() < at) {
                spins += 1;
                MutexGuard::unlocked(&mut st, || {
                    backoff(spins);
                    while spins < SPIN_ROUNDS
                        && self.len.load(Relaxed) == 0
                        && !self.closed.load(Relaxed)
                    {
                        spins += 1;
                        backoff(spins);
                    }
                });
                continue;
            }
            st.getters += 1;
            timed_out = wait(&self.not_empty, &mut st, until);
            st.getters -= 1;
        }
    }

    /// Returns false when `task_done` was called too often.
    pub(crate) fn task_done(&self) -> bool {
        let mut st = self.state.lock();
        if st.unfinished == 0 {
            return false;
        }
        st.unfinished -= 1;
        add_locked(&self.done, 1);
        if st.unfinished == 0 {
            let wakers = self.notify_joiners(&mut st);
            drop(st);
            wakers.into_iter().for_each(Waker::wake);
        }
        true
    }

    fn notify_joiners(&self, st: &mut State<S>) -> Vec<Waker> {
        if st.joiners > 0 {
            self.all_done.notify_all();
        }
        st.async_joiners.take_all()
    }

    /// Returns false on timeout.
    pub(crate) fn join(&self, until: Option<Instant>) -> bool {
        let mut st = self.state.lock();
        while st.unfinished > 0 {
            st.joiners += 1;
            let timed_out = wait(&self.all_done, &mut st, until);
            st.joiners -= 1;
            if timed_out && st.unfinished > 0 {
                return false;
            }
        }
        true
    }

    pub(crate) fn shutdown<T>(&self, immediate: bool)
    where
        S: Store<T>,
    {
        let mut st = self.state.lock();
        st.shutdown = true;
        self.closed.store(true, Relaxed);
        let mut wakers = Vec::new();
        let mut drained = Vec::new();
        if immediate {
            // CPython 3.13: drop what is queued, count each as done, and
            // release `join()`.
            drained = st.store.drain_all();
            self.len.store(0, Relaxed);
            let done = st.unfinished.min(drained.len());
            st.unfinished -= done;
            add_locked(&self.done, done as u64);
            add_locked(&self.dropped, drained.len() as u64);
            wakers = self.notify_joiners(&mut st);
        }
        // Every getter and putter re-checks and sees the shutdown.
        if st.getters > 0 {
            self.not_empty.notify_all();
        }
        if st.putters > 0 {
            self.not_full.notify_all();
        }
        wakers.extend(st.async_getters.take_all());
        wakers.extend(st.async_putters.take_all());
        drop(st);
        wakers.into_iter().for_each(Waker::wake);
        // Dropped here, outside the lock: an item's Drop may touch the queue.
        drop(drained);
    }
}

/// Waits on `cv`; returns true when the deadline passed.
#[inline]
fn wait<S>(cv: &Condvar, st: &mut MutexGuard<'_, State<S>>, until: Option<Instant>) -> bool {
    match until {
        None => {
            cv.wait(st);
            false
        }
        Some(at) => cv.wait_until(st, at).timed_out(),
    }
}

#[cfg(all(test, loom))]
mod loom_model;
