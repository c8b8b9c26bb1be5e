//! The thread scope's constructors and the thread-only parts of the objects
//! (lock ids for lock-order checking, barrier actions).
#![forbid(unsafe_code)]

use std::marker::PhantomData;
use std::panic::Location;
use std::sync::Arc;

use crate::loom::sync::atomic::AtomicUsize;

use super::error::CreateError;
use super::generic::{
    self, Barrier, BarrierState, Bounded, Condition, ConditionLock, Event, EventState, Lock, RLock,
    RState, SemState, Semaphore, Unbounded, check_parties,
};
use super::id::LockId;
use super::raw::{Inline, Locked, ThreadMutex, ThreadOwner, ThreadQueue, ThreadScope};
use crate::util::Wait;

impl Lock<ThreadScope> {
    crate::loom::const_fn! {
        /// Creates an unlocked lock (`threading.Lock()`); usable in a `static`.
        pub fn new() -> Self {
            Lock {
                state: Inline(ThreadMutex::new()),
            }
        }
    }

    /// This lock's stable unique id.
    pub fn id(&self) -> LockId {
        self.state.id()
    }

    /// The acquisition path with the detector's verdict as a value (used by
    /// `lockorder`'s ordered acquisition); `site` is the caller's location.
    pub(crate) fn acquire_locked(&self, wait: Wait, site: &'static Location<'static>) -> Locked {
        self.state
            .lock_tracked(super::raw::LockKind::Lock, wait, site)
    }
}

impl Default for Lock<ThreadScope> {
    fn default() -> Self {
        Self::new()
    }
}

impl RLock<ThreadScope> {
    crate::loom::const_fn! {
        /// Creates an unlocked re-entrant lock (`threading.RLock()`); usable in a
        /// `static`.
        pub fn new() -> Self {
            RLock {
                state: Inline(RState {
                    mutex: ThreadMutex::new(),
                    owner: ThreadOwner::new(),
                    depth: AtomicUsize::new(0),
                    generation: AtomicUsize::new(0),
                }),
            }
        }
    }

    /// This lock's stable unique id.
    pub fn id(&self) -> LockId {
        self.state.mutex.id()
    }
}

impl Default for RLock<ThreadScope> {
    fn default() -> Self {
        Self::new()
    }
}

impl Condition<ThreadScope, RLock<ThreadScope>> {
    /// Creates a condition over a fresh [`RLock`] (`threading.Condition()`).
    pub fn new() -> Self {
        Self::with_lock(Arc::new(RLock::<ThreadScope>::new()))
    }
}

impl Default for Condition<ThreadScope, RLock<ThreadScope>> {
    fn default() -> Self {
        Self::new()
    }
}

impl<L: ConditionLock<Scope = ThreadScope>> Condition<ThreadScope, L> {
    /// Creates a condition over an existing lock (`threading.Condition(lock)`).
    ///
    /// # Examples
    ///
    /// ```
    /// use spindle::sync::{Condition, Lock};
    /// use std::sync::Arc;
    ///
    /// let mutex = Arc::new(Lock::new());
    /// let not_empty = Condition::with_lock(Arc::clone(&mutex));
    /// let not_full = Condition::with_lock(Arc::clone(&mutex));
    /// let _held = not_empty.lock();
    /// assert!(mutex.is_locked());
    /// not_full.notify_all().unwrap(); // same lock, so this is allowed
    /// ```
    pub fn with_lock(lock: Arc<L>) -> Self {
        Condition {
            lock,
            queue: Inline(ThreadQueue::new()),
        }
    }
}

impl Event<ThreadScope> {
    crate::loom::const_fn! {
        /// Creates a clear event (`threading.Event()`); usable in a `static`.
        pub fn new() -> Self {
            Event {
                state: Inline(EventState {
                    flag: AtomicUsize::new(0),
                    waiting: AtomicUsize::new(0),
                }),
            }
        }
    }
}

impl Default for Event<ThreadScope> {
    fn default() -> Self {
        Self::new()
    }
}

crate::loom::const_fn! {
    fn sem_state(value: usize, bound: usize) -> Inline<SemState<ThreadScope>> {
        Inline(SemState {
            value: AtomicUsize::new(value),
            waiters: AtomicUsize::new(0),
            bound: AtomicUsize::new(bound),
        })
    }
}

impl Semaphore<ThreadScope, Unbounded> {
    crate::loom::const_fn! {
        /// Creates a semaphore with `value` permits (`threading.Semaphore(value)`);
        /// usable in a `static`.
        pub fn new(value: usize) -> Self {
            Semaphore {
                state: sem_state(value, usize::MAX),
                _kind: PhantomData,
            }
        }
    }
}

impl Default for Semaphore<ThreadScope, Unbounded> {
    /// `threading.Semaphore()`: one permit.
    fn default() -> Self {
        Self::new(1)
    }
}

impl Semaphore<ThreadScope, Bounded> {
    crate::loom::const_fn! {
        /// Creates a bounded semaphore with `value` permits, which is also its
        /// bound (`threading.BoundedSemaphore(value)`); usable in a `static`.
        pub fn new(value: usize) -> Self {
            Semaphore {
                state: sem_state(value, value),
                _kind: PhantomData,
            }
        }
    }
}

impl Barrier<ThreadScope> {
    /// Creates a barrier for `parties` threads (`threading.Barrier(parties)`).
    ///
    /// # Errors
    ///
    /// [`CreateError::ZeroParties`] if `parties` is 0 (Python: `ValueError`).
    pub fn new(parties: usize) -> Result<Self, CreateError> {
        check_parties::<ThreadScope>(parties)?;
        Ok(Barrier {
            state: Inline(BarrierState {
                mutex: ThreadMutex::new(),
                parties: AtomicUsize::new(parties),
                count: AtomicUsize::new(0),
                round: AtomicUsize::new(0),
                breaks: AtomicUsize::new(0),
                broken: AtomicUsize::new(0),
                acting: AtomicUsize::new(0),
                epoch: AtomicUsize::new(0),
            }),
            action: None,
            default_timeout: None,
        })
    }

    /// Creates a barrier whose last arriving thread runs `action` before the
    /// others are released (`threading.Barrier(parties, action)`). If the
    /// action panics the barrier breaks and the panic goes on in that thread.
    ///
    /// # Errors
    ///
    /// [`CreateError::ZeroParties`] if `parties` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use spindle::sync::Barrier;
    /// use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    ///
    /// static ROUNDS: AtomicUsize = AtomicUsize::new(0);
    /// let barrier = Barrier::with_action(1, || { ROUNDS.fetch_add(1, Relaxed); })?;
    /// barrier.wait().unwrap();
    /// barrier.wait().unwrap();
    /// assert_eq!(ROUNDS.load(Relaxed), 2);
    /// # Ok::<(), spindle::sync::CreateError>(())
    /// ```
    pub fn with_action(
        parties: usize,
        action: impl Fn() + Send + Sync + 'static,
    ) -> Result<Self, CreateError> {
        let mut b = Self::new(parties)?;
        b.action = Some(Box::new(action) as generic::Action);
        Ok(b)
    }
}
