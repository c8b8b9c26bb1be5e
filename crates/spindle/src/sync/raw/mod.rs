//! The raw layer: what a scope provides so that every synchronisation
//! object is written once.
//!
//! parking_lot's `lock_api` pattern: the objects of [`generic`](super::generic)
//! (`Lock`, `RLock`, `Condition`, `Semaphore`, `BoundedSemaphore`, `Event`,
//! `Barrier`) hold all the logic — the four-variant method families,
//! re-entrancy, Python's barrier state machine, the condition protocol — and
//! stand on a [`Scope`], which says where their state lives and how a
//! thread sleeps on it:
//!
//! * [`ThreadScope`]: state inline in the object, words are `AtomicUsize`,
//!   sleeping parks the thread in `parking_lot_core`'s table keyed by the
//!   word's address;
//! * `ProcessScope` (in [`crate::ipc::sync`]): state in a shared-memory
//!   region that crosses into children, words are `AtomicU32`, sleeping is a
//!   futex wait; a lock held by a process that died is taken over.
//!
//! A scope gives: atomic [`RawWord`]s and a futex-like
//! [`wait`](Scope::wait)/[`wake`](Scope::wake) on them (Event, Semaphore,
//! Barrier), a [`RawMutex`] (Lock, RLock, the barrier's own lock), an owner
//! cell for re-entrant locks ([`RawOwner`]), a condition wait queue
//! ([`RawQueue`]), and a hook for async wakers ([`Scope::watch`]). The
//! traits are sealed: a new scope is added in this crate.
//!
//! # Model checking
//!
//! The thread scope's lock word (`lock_word.rs`), its wait/wake on words,
//! the condition queue (`thread.rs`) and the async waker table
//! (`wakers.rs`) are written against the crate's `loom` shim:
//! `parking_lot_core`'s parking table, `parking_lot`'s mutex and the atomics
//! in a normal build (nothing changes in the generated code), loom's under
//! `--cfg loom`. The loom models of the lock word (`lock_word/loom_model.rs`)
//! and of `Event`, `Semaphore`, `Condition`, `Lock::lock_async` and
//! `Condition::wait_async` over this layer (`generic/loom_model.rs`) run with
//!
//! ```text
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test --release -p spindle --lib loom_model -- --test-threads=1 --nocapture
//! ```
//!
//! (all models of the crate; add a path such as `sync::` to run fewer).
//! `crates/spindle/src/loom/mod.rs` says how parking, timeouts and
//! `SeqCst` are modelled.

pub(crate) mod hook;
mod lock_word;
mod thread;
mod wakers;
mod word;

pub(crate) use lock_word::{RawLock, Taken, wake_all};
pub(crate) use thread::current_thread_id;
pub use thread::{Inline, ThreadMutex, ThreadOwner, ThreadQueue, ThreadScope};
pub use word::RawWord;
pub(crate) use word::take_one;

use std::any::Any;
use std::ops::Deref;
use std::panic::Location;
use std::task::Waker;
use std::time::Instant;

pub use crate::util::Wait;

pub(crate) mod sealed {
    /// Only this crate adds scopes.
    pub trait Sealed {}
}

/// A scope's raw layer (see the [module docs](self)). Sealed.
pub trait Scope: sealed::Sealed + Sized + Send + Sync + 'static {
    /// An atomic word of this scope's memory.
    type Word: RawWord;
    /// Where an object's state `T` lives: inline for threads, a shared
    /// mapping for processes.
    type Place<T: Send + Sync + 'static>: Deref<Target = T> + Send + Sync;
    /// The lock word of `Lock` and `RLock`.
    type Mutex: RawMutex;
    /// Who owns an `RLock`.
    type Owner: RawOwner;
    /// The waiters of a `Condition`.
    type Queue: RawQueue;
    /// A handle on an async waker registration ([`watch`](Scope::watch)).
    type Watch: Send + Unpin;

    /// The most permits a semaphore of this scope counts.
    const SEMAPHORE_MAX: usize;

    /// Sleeps while `word` holds `expected`, until woken by [`wake`](Scope::wake),
    /// `deadline`, or spuriously: callers re-check their condition.
    fn wait(word: &Self::Word, expected: usize, deadline: Option<Instant>);

    /// Wakes up to `n` sleepers on `word` (`usize::MAX`: all of them), and
    /// as many async wakers registered on it.
    fn wake(word: &Self::Word, n: usize);

    /// The async hook: registers `waker` to be woken by the next
    /// [`wake`](Scope::wake) of `word` — `word` must lie inside `place` —
    /// unless `word` no longer holds `expected`, in which case nothing is
    /// registered and `None` comes back (poll again). A registration is
    /// one-shot; dropping the returned handle (or [`unwatch`](Scope::unwatch))
    /// withdraws it. An async waiter must also count itself wherever the
    /// object counts its sleepers, since objects only wake a word that has
    /// some.
    fn watch<T: Send + Sync + 'static>(
        place: &Self::Place<T>,
        word: &Self::Word,
        expected: usize,
        waker: &Waker,
    ) -> Option<Self::Watch>;

    /// Withdraws a registration; whether it was still pending (not woken).
    fn unwatch(watch: Self::Watch) -> bool;

    /// The async hook of a lock word: marks `mutex` (held) as waited on and
    /// registers `waker` to be woken by a later unlock, unless `mutex` is
    /// free now, in which case nothing is registered and `None` comes back
    /// (try to take it again). One-shot, withdrawn by dropping or
    /// [`unwatch`](Scope::unwatch) like [`watch`](Scope::watch). Thread
    /// scope: an unlock that finds the lock waited on wakes every
    /// registration (each retries). Process scope: one registration is woken
    /// per unlock (a withdrawn one that had been woken passes the wake on),
    /// and one whose holder died is woken to take the lock over.
    fn watch_mutex(place: &Self::Place<Self::Mutex>, waker: &Waker) -> Option<Self::Watch>;

    /// Passes on an unlock's wake-up that reached a registration of
    /// [`watch_mutex`](Scope::watch_mutex) whose waiter then went away:
    /// wakes another sleeper on `mutex` (nothing to do for threads, whose
    /// unlock wakes every async waiter).
    fn pass_mutex_wake(place: &Self::Place<Self::Mutex>);

    /// The async face of [`RawQueue::sleep`] for a `Condition` waiter that
    /// released its lock: `Ok` if a notification reached `ticket` (it is
    /// taken), else `waker` is registered to be woken by a later notify
    /// (one-shot, as [`watch`](Scope::watch)).
    fn poll_ticket(
        queue: &Self::Place<Self::Queue>,
        ticket: &<Self::Queue as RawQueue>::Ticket,
        waker: &Waker,
    ) -> Result<(), Self::Watch>;

    /// An async waiter that goes away before [`poll_ticket`](Scope::poll_ticket)
    /// returned `Ok`, without the lock: leaves the queue, and if a
    /// notification reached it meanwhile, passes it on
    /// ([`pass_notification`](Scope::pass_notification)).
    fn abandon_ticket(queue: &Self::Place<Self::Queue>, ticket: <Self::Queue as RawQueue>::Ticket);

    /// Passes on a notification that an async waiter took but will not use
    /// (it went away): notifies one other waiter, if any. Callable without
    /// the condition's lock.
    fn pass_notification(queue: &Self::Place<Self::Queue>);
}

/// How a raw acquisition ended.
#[derive(Debug)]
pub enum Locked {
    /// The lock is held now.
    Acquired,
    /// Busy (`try_`) or the deadline passed.
    Failed,
    /// The deadlock detector aborted the wait; the payload is the error to
    /// unwind with (a `lockorder::DeadlockError`).
    Aborted(Box<dyn Any + Send>),
}

/// Which lock a raw lock word serves: a process lock records its holder's
/// process for a `Lock` and its thread for an `RLock`; lock-order tracking
/// reports the kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockKind {
    /// `Lock`.
    Lock,
    /// `RLock` (outermost acquisition and last release only).
    RLock,
    /// The lock inside another object (a `Barrier`'s): never tracked; a
    /// process lock records its holder's process.
    Internal,
}

/// A scope's lock word.
pub trait RawMutex: Send + Sync + 'static {
    /// Acquires as `wait` allows; `site` is the caller (for lock-order
    /// reports).
    fn lock(&self, kind: LockKind, wait: Wait, site: &'static Location<'static>) -> Locked;
    /// Releases; `false` if it was not locked. Any thread may release.
    fn unlock(&self, kind: LockKind) -> bool;
    /// Whether anyone holds it.
    fn is_locked(&self) -> bool;
    /// Whether the caller may count as its holder (a `Condition` over a
    /// `Lock` checks this before `wait`/`notify`): held at all for threads,
    /// held by this process for processes.
    fn held_by_me(&self, kind: LockKind) -> bool;
    /// How many threads sleep on it now, when the scope can tell (test
    /// support).
    fn parked(&self) -> usize;
}

/// The owner of a re-entrant lock.
pub trait RawOwner: Send + Sync + 'static {
    /// The calling thread's identity.
    type Token: Copy + Eq;
    /// The calling thread's token.
    fn me() -> Self::Token;
    /// Whether `who` owns it.
    fn is(&self, who: Self::Token) -> bool;
    /// Records `who` as the owner (the lock word is held).
    fn set(&self, who: Self::Token);
    /// Forgets the owner (before the lock word is released).
    fn clear(&self);
}

/// The waiters of a condition variable, notified in order.
pub trait RawQueue: Send + Sync + 'static {
    /// A registered waiter.
    type Ticket: Send + Unpin;
    /// Registers the caller as a waiter (with the condition's lock held).
    fn enqueue(&self) -> Self::Ticket;
    /// Sleeps (lock released) until notified or `deadline`; whether notified.
    fn sleep(&self, ticket: &Self::Ticket, deadline: Option<Instant>) -> bool;
    /// After a sleep that timed out, with the lock held again: leaves the
    /// queue; `true` if a notification reached the waiter meanwhile (it then
    /// counts as notified).
    fn cancel(&self, ticket: Self::Ticket) -> bool;
    /// Wakes up to `n` waiters, oldest first; how many.
    fn notify(&self, n: usize) -> usize;
    /// How many are registered now.
    fn waiting(&self) -> usize;
}
