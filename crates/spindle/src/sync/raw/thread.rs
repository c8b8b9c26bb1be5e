//! [`ThreadScope`]: the raw layer of the thread objects in [`crate::sync`].
//!
//! State lives inline in the object; a thread sleeps in `parking_lot_core`'s
//! table under the address of the word it waits on (a futex emulated in
//! user space: `validate` re-reads the word under the table's lock, so a
//! wake that follows a change of the word is never lost).

use std::cell::Cell;
use std::collections::VecDeque;
use std::ops::Deref;
use std::panic::Location;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Acquire, Relaxed, SeqCst};
use std::task::Waker;
use std::time::Instant;

use crate::loom::plc::{self, DEFAULT_PARK_TOKEN, DEFAULT_UNPARK_TOKEN, FilterOp};
use crate::loom::sync::Mutex;
use crate::loom::sync::atomic::{AtomicU64 as ModelU64, AtomicUsize};

use super::hook;
use super::lock_word::RawLock;
use super::wakers::{WakerTable, Watch};
use super::{LockKind, Locked, RawMutex, RawOwner, RawQueue, Scope, sealed};
use crate::sync::id::LockId;
use crate::util::{Wait, passed};

/// The thread scope: objects shared by the threads of one process.
#[derive(Debug)]
pub struct ThreadScope;

impl sealed::Sealed for ThreadScope {}

/// Async wakers registered on thread-scope words.
#[cfg(not(loom))]
static WAKERS: WakerTable = WakerTable::new();

// Loom's atomics belong to one model execution: a table per execution.
#[cfg(loom)]
::loom::lazy_static! {
    static ref WAKERS: WakerTable = WakerTable::new();
}

/// The table of [`WAKERS`].
#[inline(always)]
fn wakers() -> &'static WakerTable {
    &WAKERS
}

impl Scope for ThreadScope {
    type Word = AtomicUsize;
    type Place<T: Send + Sync + 'static> = Inline<T>;
    type Mutex = ThreadMutex;
    type Owner = ThreadOwner;
    type Queue = ThreadQueue;
    type Watch = Watch;

    const SEMAPHORE_MAX: usize = usize::MAX;

    #[inline]
    fn wait(word: &AtomicUsize, expected: usize, deadline: Option<Instant>) {
        // SAFETY: the key is the word's address, which only sleepers on this
        // word use; `validate` only reads the atomic and cannot unwind or
        // call into parking_lot; the other callbacks are empty.
        unsafe {
            plc::park(
                key_of(word),
                || word.load(Relaxed) == expected,
                || {},
                |_, _| {},
                DEFAULT_PARK_TOKEN,
                deadline,
            );
        }
    }

    #[inline]
    fn wake(word: &AtomicUsize, n: usize) {
        let key = key_of(word);
        if n == usize::MAX {
            // SAFETY: `unpark_all` never dereferences the key; every sleeper
            // re-checks its condition after waking.
            unsafe {
                plc::unpark_all(key, DEFAULT_UNPARK_TOKEN);
            }
        } else {
            let mut left = n;
            // SAFETY: our own key; `filter` and `callback` only count.
            unsafe {
                plc::unpark_filter(
                    key,
                    |_| {
                        if left == 0 {
                            FilterOp::Stop
                        } else {
                            left -= 1;
                            FilterOp::Unpark
                        }
                    },
                    |_| DEFAULT_UNPARK_TOKEN,
                );
            }
        }
        wakers().wake(key, n);
    }

    fn watch<T: Send + Sync + 'static>(
        _place: &Inline<T>,
        word: &AtomicUsize,
        expected: usize,
        waker: &Waker,
    ) -> Option<Watch> {
        wakers().watch(
            wakers(),
            key_of(word),
            || word.load(Relaxed) == expected,
            waker,
        )
    }

    fn unwatch(watch: Watch) -> bool {
        watch.cancel()
    }

    fn watch_mutex(place: &Inline<ThreadMutex>, waker: &Waker) -> Option<Watch> {
        let raw = &place.raw;
        if !raw.mark_parked() {
            return None;
        }
        // `still` is SeqCst after the table's SeqCst `live` increment; the
        // unlocker clears LOCKED, fences (SeqCst) and reads `live`: either it
        // sees us, or we see the lock free (see `RawLock::unlock_slow`).
        wakers().watch(wakers(), raw.key(), || raw.is_parked_on(), waker)
    }

    fn pass_mutex_wake(_place: &Inline<ThreadMutex>) {
        // Every async waiter was woken by the unlock, and a parked thread
        // got its own `unpark_one`.
    }

    fn poll_ticket(
        _queue: &Inline<ThreadQueue>,
        me: &Arc<AtomicUsize>,
        waker: &Waker,
    ) -> Result<(), Watch> {
        loop {
            // Announce the park as a sleeper does: `notify` wakes a PARKED
            // word (the wake reaches the waker table). SeqCst on both sides
            // (here and `notify`'s swap) with the table's SeqCst `live`.
            match me.compare_exchange(WAITING, PARKED, SeqCst, SeqCst) {
                Ok(_) | Err(PARKED) => {}
                Err(_) => return Ok(()), // NOTIFIED
            }
            let key = key_of(me);
            match wakers().watch(wakers(), key, || me.load(SeqCst) == PARKED, waker) {
                Some(w) => return Err(w),
                None => continue,
            }
        }
    }

    fn abandon_ticket(queue: &Inline<ThreadQueue>, me: Arc<AtomicUsize>) {
        // `cancel` is true when a notifier took us out of the queue.
        if queue.cancel(me) {
            Self::pass_notification(queue);
        }
    }

    fn pass_notification(queue: &Inline<ThreadQueue>) {
        queue.notify(1);
    }
}

/// Wakes every async waiter of the lock word keyed `key` (after an unlock
/// that found it waited on).
#[inline]
pub(crate) fn wake_lock_watchers(key: usize) {
    wakers().wake(key, usize::MAX);
}

/// The parking key of a word: its address.
#[inline(always)]
fn key_of(word: &AtomicUsize) -> usize {
    word as *const AtomicUsize as usize
}

/// Where a thread object keeps its state: in itself.
#[derive(Debug, Default)]
pub struct Inline<T>(pub(crate) T);

impl<T> Deref for Inline<T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        &self.0
    }
}

/// The thread scope's lock word: the one-byte lock any thread may unlock,
/// with the lock-order hook and a [`LockId`].
pub struct ThreadMutex {
    pub(crate) raw: RawLock,
    id: AtomicU64,
}

impl ThreadMutex {
    crate::loom::const_fn! {
        pub(crate) fn new() -> ThreadMutex {
            ThreadMutex {
                raw: RawLock::new(),
                id: AtomicU64::new(0),
            }
        }
    }

    /// The lock's stable unique id, assigned on first use.
    pub(crate) fn id(&self) -> LockId {
        LockId::of(&self.id)
    }

    /// The acquisition with the hook's verdict as a value.
    #[inline(always)]
    pub(crate) fn lock_tracked(
        &self,
        kind: LockKind,
        wait: Wait,
        site: &'static Location<'static>,
    ) -> Locked {
        if hook::active() && kind != LockKind::Internal {
            return self.lock_hooked(kind, wait, site);
        }
        if hook::raw_acquire(&self.raw, wait) {
            Locked::Acquired
        } else {
            Locked::Failed
        }
    }

    /// Out of line, so the fast path keeps its registers.
    #[cold]
    #[inline(never)]
    fn lock_hooked(&self, kind: LockKind, wait: Wait, site: &'static Location<'static>) -> Locked {
        hook::acquire(self.id(), kind, wait, site, &self.raw)
    }

    #[cold]
    #[inline(never)]
    fn released_hooked(&self, kind: LockKind) {
        hook::released(self.id(), kind);
    }
}

impl std::fmt::Debug for ThreadMutex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadMutex")
            .field("locked", &self.raw.is_locked())
            .finish_non_exhaustive()
    }
}

impl RawMutex for ThreadMutex {
    #[inline(always)]
    fn lock(&self, kind: LockKind, wait: Wait, site: &'static Location<'static>) -> Locked {
        self.lock_tracked(kind, wait, site)
    }

    #[inline(always)]
    fn unlock(&self, kind: LockKind) -> bool {
        if !self.raw.unlock() {
            return false;
        }
        if hook::active() && kind != LockKind::Internal {
            self.released_hooked(kind);
        }
        true
    }

    #[inline]
    fn is_locked(&self) -> bool {
        self.raw.is_locked()
    }

    #[inline]
    fn held_by_me(&self, _kind: LockKind) -> bool {
        // A thread `Lock` has no owner: held by anyone counts (CPython's
        // `Condition._is_owned` for a plain lock).
        self.raw.is_locked()
    }

    fn parked(&self) -> usize {
        self.raw.parked()
    }
}

/// The owner of a thread `RLock`: a never-reused thread number.
#[derive(Debug, Default)]
pub struct ThreadOwner(ModelU64);

impl ThreadOwner {
    crate::loom::const_fn! {
        pub(crate) fn new() -> ThreadOwner {
            ThreadOwner(ModelU64::new(0))
        }
    }
}

impl RawOwner for ThreadOwner {
    type Token = u64;
    #[inline]
    fn me() -> u64 {
        current_thread_id()
    }
    #[inline]
    fn is(&self, who: u64) -> bool {
        self.0.load(Relaxed) == who
    }
    #[inline]
    fn set(&self, who: u64) {
        self.0.store(who, Relaxed)
    }
    #[inline]
    fn clear(&self) {
        self.0.store(0, Relaxed)
    }
}

/// A small, never-reused, non-zero number for the calling thread (the owner
/// of an `RLock`). Unlike the address of a thread-local, it is never handed
/// to a later thread, so a dead owner can never be mistaken for a live one.
#[inline]
pub(crate) fn current_thread_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    #[cfg(not(loom))]
    thread_local!(static ID: Cell<u64> = const { Cell::new(0) });
    // Loom runs every model thread on one OS thread: a loom thread-local.
    #[cfg(loom)]
    ::loom::thread_local!(static ID: Cell<u64> = Cell::new(0));
    ID.with(|id| {
        let v = id.get();
        if v != 0 {
            v
        } else {
            let v = NEXT.fetch_add(1, Relaxed);
            id.set(v);
            v
        }
    })
}

/// The waiters of a thread `Condition`: CPython's algorithm — each waiter
/// gets a word of its own, queued in order; `notify(n)` sets the first `n`
/// and wakes those that parked.
#[derive(Debug, Default)]
pub struct ThreadQueue {
    waiters: Mutex<VecDeque<Arc<AtomicUsize>>>,
}

/// A waiter's word: still spinning, parked (a notifier must wake it), or
/// notified.
const WAITING: usize = 0;
const PARKED: usize = 1;
const NOTIFIED: usize = 2;

impl ThreadQueue {
    pub(crate) fn new() -> ThreadQueue {
        ThreadQueue {
            waiters: Mutex::new(VecDeque::new()),
        }
    }
}

impl RawQueue for ThreadQueue {
    type Ticket = Arc<AtomicUsize>;

    fn enqueue(&self) -> Arc<AtomicUsize> {
        let me = Arc::new(AtomicUsize::new(WAITING));
        self.waiters.lock().push_back(Arc::clone(&me));
        me
    }

    fn sleep(&self, me: &Arc<AtomicUsize>, deadline: Option<Instant>) -> bool {
        // A short spin catches a notification already on its way (ping-pong
        // between two running threads) without parking, and then without
        // the notifier paying for an unpark.
        let mut spin = plc::SpinWait::new();
        while spin.spin() {
            if me.load(Acquire) == NOTIFIED {
                return true;
            }
        }
        // Announce the park: a notifier wakes only a waiter that did.
        if me
            .compare_exchange(WAITING, PARKED, Acquire, Acquire)
            .is_err()
        {
            return true;
        }
        loop {
            if me.load(Acquire) == NOTIFIED {
                return true;
            }
            if passed(deadline) {
                return false;
            }
            ThreadScope::wait(me, PARKED, deadline);
        }
    }

    fn cancel(&self, me: Arc<AtomicUsize>) -> bool {
        let mut waiters = self.waiters.lock();
        match waiters.iter().position(|w| Arc::ptr_eq(w, &me)) {
            Some(i) => {
                waiters.remove(i);
                false
            }
            // A notifier took us out: it set our word under this lock.
            None => true,
        }
    }

    fn notify(&self, n: usize) -> usize {
        let mut woken = 0;
        let mut waiters = self.waiters.lock();
        while woken < n {
            let Some(w) = waiters.pop_front() else { break };
            // SeqCst: pairs with an async waiter's registration
            // (`ThreadScope::poll_ticket`).
            if w.swap(NOTIFIED, SeqCst) == PARKED {
                ThreadScope::wake(&w, 1);
            }
            woken += 1;
        }
        woken
    }

    fn waiting(&self) -> usize {
        self.waiters.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testing::flag_waker as flag;
    use std::sync::atomic::Ordering::SeqCst;

    #[test]
    fn the_async_hook_is_woken_by_the_wake_of_its_word() {
        let place = Inline(AtomicUsize::new(0));
        let (woken, waker) = flag();
        // The word no longer holds what the caller saw: poll again.
        assert!(ThreadScope::watch(&place, &place, 1, &waker).is_none());
        let watch = ThreadScope::watch(&place, &place, 0, &waker).unwrap();
        place.store(1, SeqCst);
        ThreadScope::wake(&place, 1);
        assert!(woken.woken());
        // One-shot: nothing left to withdraw.
        assert!(!ThreadScope::unwatch(watch));
    }

    #[test]
    fn a_withdrawn_watch_is_not_woken() {
        let place = Inline(AtomicUsize::new(0));
        let (woken, waker) = flag();
        let watch = ThreadScope::watch(&place, &place, 0, &waker).unwrap();
        assert!(ThreadScope::unwatch(watch));
        ThreadScope::wake(&place, usize::MAX);
        assert!(!woken.woken());
    }
}
