//! [`ProcessScope`]: the raw layer of the process-shared objects.
//!
//! An object's state is a `#[repr(C)]` struct of 32-bit atomic words in a
//! shared region of its own (a `memfd`, word 0 its tag), which crosses into
//! children as a descriptor. Threads of any process sleep on its words with
//! futexes; the lock word records its holder (a process for a `Lock`, a
//! thread for an `RLock`) so that a holder found dead is taken over.

use std::marker::PhantomData;
use std::ops::Deref;
use std::panic::Location;
use std::sync::Arc;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::task::Waker;
use std::time::Instant;

use serde::{Deserializer, Serializer};

use super::core::{self, Got, HOLDER, Kind, Region};
use crate::ipc::shm::{futex_wait, futex_wake};
use crate::loom::sync::atomic::AtomicU32;
use crate::sync::generic::{BarrierState, EventState, RState, SemState};
use crate::sync::raw::{
    LockKind, Locked, RawMutex, RawOwner, RawQueue, RawWord, Scope, sealed, take_one,
};
use crate::util::{Wait, passed};

/// The largest semaphore value, Python's `SEM_VALUE_MAX` (`INT_MAX` on
/// Linux).
pub const SEM_VALUE_MAX: usize = i32::MAX as usize;

/// The process scope: objects in shared memory, shared by the processes
/// (and threads) that hold a handle.
#[derive(Debug)]
pub struct ProcessScope;

impl sealed::Sealed for ProcessScope {}

impl Scope for ProcessScope {
    type Word = AtomicU32;
    type Place<T: Send + Sync + 'static> = Shared<T>;
    type Mutex = ShmMutex;
    type Owner = ProcOwner;
    type Queue = ShmQueue;
    type Watch = ProcWatch;

    const SEMAPHORE_MAX: usize = SEM_VALUE_MAX;

    #[inline]
    fn wait(word: &AtomicU32, expected: usize, deadline: Option<Instant>) {
        futex_wait(word, expected as u32, deadline);
    }

    #[inline]
    fn wake(word: &AtomicU32, n: usize) {
        futex_wake(word, n.min(i32::MAX as usize) as i32);
    }

    fn watch<T: Send + Sync + 'static>(
        place: &Shared<T>,
        word: &AtomicU32,
        expected: usize,
        waker: &Waker,
    ) -> Option<ProcWatch> {
        ProcWatch::start(&place.region, word, expected as u32, waker, false)
    }

    fn unwatch(watch: ProcWatch) -> bool {
        watch.cancel()
    }

    fn watch_mutex(place: &Shared<ShmMutex>, waker: &Waker) -> Option<ProcWatch> {
        let word = &place.word;
        let mut cur = word.load(SeqCst);
        loop {
            if cur & HOLDER == 0 {
                return None;
            }
            if cur & core::WAITERS != 0 {
                break;
            }
            // Mark it waited on, so that its unlock wakes a sleeper.
            match word.compare_exchange(cur, cur | core::WAITERS, SeqCst, SeqCst) {
                Ok(_) => {
                    cur |= core::WAITERS;
                    break;
                }
                Err(now) => cur = now,
            }
        }
        ProcWatch::start(&place.region, word, cur, waker, true)
    }

    fn pass_mutex_wake(place: &Shared<ShmMutex>) {
        futex_wake(&place.word, 1);
    }

    fn poll_ticket(
        queue: &Shared<ShmQueue>,
        registered: &u32,
        waker: &Waker,
    ) -> Result<(), ProcWatch> {
        loop {
            let s = queue.seq.load(SeqCst);
            // As `sleep`: only a notification issued since we registered.
            if s != *registered && queue.take_permit() {
                return Ok(());
            }
            // `notify` bumps `seq` and wakes everyone on it.
            if let Some(w) = ProcWatch::start(&queue.region, &queue.seq, s, waker, false) {
                return Err(w);
            }
        }
    }

    fn abandon_ticket(queue: &Shared<ShmQueue>, registered: u32) {
        // Without the condition's lock: atomic updates only (`notify` and
        // `cancel` update `sleepers` atomically too).
        if queue.seq.load(SeqCst) != registered && queue.take_permit() {
            Self::pass_notification(queue);
        } else {
            queue.leave();
        }
    }

    fn pass_notification(queue: &Shared<ShmQueue>) {
        queue.notify(1);
    }
}

/// A state struct that may live in shared memory: `#[repr(C)]`, made of
/// 32-bit atomics only (valid for every bit pattern, nothing to drop, no
/// pointers), tagged with the [`Kind`] of its object.
///
/// # Safety
///
/// Implementors must be exactly such structs, so that a zeroed region, or
/// one another process wrote anything into, is a valid `Self`.
pub(crate) unsafe trait Plain: Send + Sync + Sized + 'static {
    /// The tag of regions holding this state.
    const KIND: Kind;
    /// Checks a state mapped from another process.
    fn validate(&self) -> Result<(), &'static str> {
        Ok(())
    }
}

/// Bytes before the state in its region: the tag word and a spare word, so
/// the state starts 8-aligned.
const HEADER: usize = 8;

/// Where a process object keeps its state: a shared region of its own.
pub struct Shared<T> {
    region: Region,
    _state: PhantomData<T>,
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared {
            region: self.region.clone(),
            _state: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

/// Words a region holding `T` needs.
const fn words_for<T>() -> usize {
    (HEADER + std::mem::size_of::<T>()).div_ceil(4)
}

impl<T> Shared<T> {
    /// A fresh region holding a zeroed `T`, set up by `init` before anyone
    /// else can see it.
    pub(crate) fn new(init: impl FnOnce(&T)) -> std::io::Result<Shared<T>>
    where
        T: Plain,
    {
        let place = Shared {
            region: Region::new(T::KIND, words_for::<T>())?,
            _state: PhantomData,
        };
        init(&place);
        Ok(place)
    }

    /// Serialises the region as the index of its descriptor among those a
    /// task call carries.
    pub(crate) fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.region.serialize(s)
    }

    /// Maps a region received from another process, checking its size, its
    /// tag and its contents.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Shared<T>, D::Error>
    where
        T: Plain,
    {
        let region = Region::deserialize(d, T::KIND, words_for::<T>())?;
        let place: Shared<T> = Shared {
            region,
            _state: PhantomData,
        };
        place.validate().map_err(serde::de::Error::custom)?;
        Ok(place)
    }
}

impl<T> Deref for Shared<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // Loom's atomics are not words of memory: the process scope is not
        // modelled (its logic is the generic objects' and the futex's).
        #[cfg(loom)]
        unimplemented!("process-scope objects are not modelled under loom");
        #[cfg(not(loom))]
        // SAFETY: `Shared<T>` is only made by `new`/`deserialize`, which
        // require `T: Plain` and a region of at least `words_for::<T>()`
        // words; the state starts 8 bytes into a page-aligned mapping, so it
        // is in bounds and aligned for the 4-byte atomics it is made of; the
        // mapping lives as long as `self.region`; any bit pattern is a valid
        // `T` and it is only accessed through atomics.
        unsafe {
            &*self.region.shm().base().as_ptr().add(HEADER).cast::<T>()
        }
    }
}

/// The lock word of a process `Lock`/`RLock`: the holder's id (a process
/// id for a `Lock`, a thread id for an `RLock`) and the count of holders
/// found dead and taken over.
#[derive(Debug)]
#[repr(C)]
pub struct ShmMutex {
    word: AtomicU32,
    pub(crate) deaths: AtomicU32,
}

// SAFETY: two 32-bit atomics, `repr(C)`.
unsafe impl Plain for ShmMutex {
    const KIND: Kind = Kind::Lock;
}

/// The id a lock of `kind` records for the caller.
#[inline]
fn holder_id(kind: LockKind) -> u32 {
    match kind {
        LockKind::Lock | LockKind::Internal => core::my_pid(),
        LockKind::RLock => core::my_tid(),
    }
}

impl RawMutex for ShmMutex {
    #[inline]
    fn lock(&self, kind: LockKind, wait: Wait, _site: &'static Location<'static>) -> Locked {
        match core::mutex_lock(&self.word, holder_id(kind), wait) {
            Got::Acquired => Locked::Acquired,
            Got::Recovered => {
                self.deaths.fetch_add(1, Relaxed);
                Locked::Acquired
            }
            Got::TimedOut => Locked::Failed,
        }
    }

    #[inline]
    fn unlock(&self, _kind: LockKind) -> bool {
        core::mutex_unlock(&self.word) != 0
    }

    fn is_locked(&self) -> bool {
        self.word.load(SeqCst) & HOLDER != 0
    }

    fn held_by_me(&self, kind: LockKind) -> bool {
        self.word.load(SeqCst) & HOLDER == holder_id(kind)
    }

    fn parked(&self) -> usize {
        0
    }
}

/// The owner of a process `RLock`: its process and thread.
#[derive(Debug)]
#[repr(C)]
pub struct ProcOwner {
    pid: AtomicU32,
    tid: AtomicU32,
}

impl RawOwner for ProcOwner {
    type Token = (u32, u32);
    #[inline]
    fn me() -> (u32, u32) {
        (core::my_pid(), core::my_tid())
    }
    #[inline]
    fn is(&self, (pid, tid): (u32, u32)) -> bool {
        self.tid.load(Relaxed) == tid && self.pid.load(Relaxed) == pid
    }
    #[inline]
    fn set(&self, (pid, tid): (u32, u32)) {
        self.pid.store(pid, Relaxed);
        self.tid.store(tid, Relaxed);
    }
    #[inline]
    fn clear(&self) {
        self.tid.store(0, Relaxed);
        self.pid.store(0, Relaxed);
    }
}

/// The waiters of a process `Condition`: a notification sequence number,
/// the number of registered sleepers and the notifications not yet taken.
/// A waiter takes a permit only for a notification issued after it
/// registered (the sequence moved on).
#[derive(Debug)]
#[repr(C)]
pub struct ShmQueue {
    seq: AtomicU32,
    sleepers: AtomicU32,
    permits: AtomicU32,
}

// SAFETY: three 32-bit atomics, `repr(C)`.
unsafe impl Plain for ShmQueue {
    const KIND: Kind = Kind::Condition;
}

impl ShmQueue {
    fn take_permit(&self) -> bool {
        take_one(&self.permits, SeqCst, SeqCst)
    }

    /// One registered sleeper leaves (atomically: an async waiter leaves
    /// without the condition's lock).
    fn leave(&self) {
        let _ = self
            .sleepers
            .fetch_update(SeqCst, SeqCst, |n| Some(n.saturating_sub(1)));
    }
}

impl RawQueue for ShmQueue {
    /// The sequence number when the waiter registered.
    type Ticket = u32;

    fn enqueue(&self) -> u32 {
        self.sleepers.fetch_add(1, SeqCst);
        self.seq.load(SeqCst)
    }

    fn sleep(&self, registered: &u32, deadline: Option<Instant>) -> bool {
        loop {
            let s = self.seq.load(SeqCst);
            // Only a notification issued since we registered is ours.
            if s != *registered && self.take_permit() {
                return true;
            }
            if passed(deadline) {
                return false;
            }
            core::wait_on(&self.seq, s, deadline);
        }
    }

    fn cancel(&self, registered: u32) -> bool {
        // Under the lock again: a notify that raced with the timeout counts;
        // otherwise leave the sleepers.
        if self.seq.load(SeqCst) != registered && self.take_permit() {
            return true;
        }
        self.leave();
        false
    }

    fn notify(&self, n: usize) -> usize {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        // Atomically: an async waiter may leave (or pass a notification
        // on) without the condition's lock.
        let mut k = 0;
        let _ = self.sleepers.fetch_update(SeqCst, SeqCst, |sleepers| {
            k = sleepers.min(n);
            Some(sleepers - k)
        });
        if k > 0 {
            self.permits.fetch_add(k, SeqCst);
            self.seq.fetch_add(1, SeqCst);
            // Everyone: a waiter registered after an earlier notify must not
            // be the only one woken while an older one sleeps on.
            core::wake_all(&self.seq);
        }
        k as usize
    }

    fn waiting(&self) -> usize {
        self.sleepers.load(Relaxed) as usize
    }
}

// SAFETY: the generic states instantiated for this scope are `repr(C)`
// structs of `AtomicU32` words and of the `Plain` structs above.
unsafe impl Plain for EventState<ProcessScope> {
    const KIND: Kind = Kind::Event;
}

// SAFETY: as above.
unsafe impl Plain for SemState<ProcessScope> {
    const KIND: Kind = Kind::Semaphore;
    fn validate(&self) -> Result<(), &'static str> {
        if RawWord::load(&self.bound, SeqCst) > SEM_VALUE_MAX {
            return Err("semaphore bound above SEM_VALUE_MAX");
        }
        Ok(())
    }
}

// SAFETY: as above.
unsafe impl Plain for RState<ProcessScope> {
    const KIND: Kind = Kind::RLock;
}

// SAFETY: as above.
unsafe impl Plain for BarrierState<ProcessScope> {
    const KIND: Kind = Kind::Barrier;
    fn validate(&self) -> Result<(), &'static str> {
        match RawWord::load(&self.parties, SeqCst) {
            0 => Err("barrier with 0 parties"),
            p if p >= <AtomicU32 as RawWord>::MAX => Err("barrier parties out of range"),
            _ => Ok(()),
        }
    }
}

/// An async waker registered on a process word: a thread sleeps on the
/// word's futex and wakes the waker (one thread per registration; a
/// waiter thread per object is the coroutine layer's refinement).
pub struct ProcWatch {
    state: Arc<AtomicU32>,
    region: Region,
    index: usize,
}

impl std::fmt::Debug for ProcWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcWatch")
            .field("state", &self.state.load(Relaxed))
            .finish_non_exhaustive()
    }
}

/// [`ProcWatch`] states.
const PENDING: u32 = 0;
const FIRED: u32 = 1;
const CANCELLED: u32 = 2;

impl ProcWatch {
    /// Starts a watch of `word` while it holds `expected`. For a mutex
    /// word (`mutex`), the thread sleeps in slices and also fires when the
    /// holder in `expected` died, so that the task takes the lock over.
    fn start(
        region: &Region,
        word: &AtomicU32,
        expected: u32,
        waker: &Waker,
        mutex: bool,
    ) -> Option<ProcWatch> {
        if word.load(SeqCst) != expected {
            return None;
        }
        let base = region.shm().base().as_ptr() as usize;
        let index = (word as *const AtomicU32 as usize - base) / 4;
        let watch = ProcWatch {
            state: Arc::new(AtomicU32::new(PENDING)),
            region: region.clone(),
            index,
        };
        let (state, r, w) = (Arc::clone(&watch.state), region.clone(), waker.clone());
        let spawned = std::thread::Builder::new()
            .name("spindle-watch".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                let word = r.word(index);
                if mutex {
                    // As `core::mutex_lock`: check the holder between slices.
                    let mut slice = std::time::Duration::from_millis(2);
                    while word.load(SeqCst) == expected
                        && state.load(SeqCst) == PENDING
                        && core::alive(expected & HOLDER)
                    {
                        futex_wait(word, expected, Instant::now().checked_add(slice));
                        slice = (slice * 2).min(std::time::Duration::from_millis(200));
                    }
                } else {
                    futex_wait(word, expected, None);
                }
                if state
                    .compare_exchange(PENDING, FIRED, SeqCst, SeqCst)
                    .is_ok()
                {
                    w.wake();
                } else {
                    // Cancelled: a wake meant for a sleeper may have come to
                    // us; pass it on.
                    futex_wake(word, 1);
                }
            });
        if spawned.is_err() {
            // No thread to watch with: have the task poll again rather than
            // never wake it.
            watch.state.store(FIRED, SeqCst);
            waker.wake_by_ref();
        }
        Some(watch)
    }

    /// Withdraws the registration; whether it was still pending.
    fn cancel(self) -> bool {
        let was = self
            .state
            .compare_exchange(PENDING, CANCELLED, SeqCst, SeqCst);
        if was.is_ok() {
            // Release the watching thread (sleepers woken with it re-check).
            futex_wake(self.region.word(self.index), i32::MAX);
        }
        was.is_ok()
    }
}

impl Drop for ProcWatch {
    fn drop(&mut self) {
        if self
            .state
            .compare_exchange(PENDING, CANCELLED, SeqCst, SeqCst)
            .is_ok()
        {
            futex_wake(self.region.word(self.index), i32::MAX);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testing::flag_waker as flag;
    use std::time::{Duration, Instant};

    #[test]
    fn the_async_hook_is_woken_through_the_futex() {
        let place: Shared<EventState<ProcessScope>> = Shared::new(|_| {}).unwrap();
        let (woken, waker) = flag();
        assert!(ProcessScope::watch(&place, &place.flag, 1, &waker).is_none());
        let watch = ProcessScope::watch(&place, &place.flag, 0, &waker).unwrap();
        // Whether the watching thread sleeps already or not: a changed word
        // or a wake ends its futex wait.
        place.flag.store(1, SeqCst);
        ProcessScope::wake(&place.flag, usize::MAX);
        let start = Instant::now();
        while !woken.woken() {
            assert!(start.elapsed() < Duration::from_secs(20), "never woken");
            std::thread::yield_now();
        }
        assert!(!ProcessScope::unwatch(watch));
    }

    #[test]
    fn a_withdrawn_process_watch_is_not_woken() {
        let place: Shared<EventState<ProcessScope>> = Shared::new(|_| {}).unwrap();
        let (woken, waker) = flag();
        let watch = ProcessScope::watch(&place, &place.flag, 0, &waker).unwrap();
        assert!(ProcessScope::unwatch(watch));
        // Withdrawn before anything fired: the state machine never calls it.
        place.flag.store(1, SeqCst);
        ProcessScope::wake(&place.flag, usize::MAX);
        assert!(!woken.woken());
    }

    #[test]
    fn mapped_states_are_validated() {
        // Plain states check what they map: a barrier of 0 parties.
        let b: Shared<BarrierState<ProcessScope>> = Shared::new(|_| {}).unwrap();
        assert!(b.validate().is_err());
        let s = Shared::new(|st: &SemState<ProcessScope>| {
            st.bound.store(u32::MAX, SeqCst);
        })
        .unwrap();
        assert!(s.validate().is_err());
    }
}
