//! Synchronisation objects shared between processes (Python's
//! `multiprocessing.Lock`, `RLock`, `Semaphore`, `BoundedSemaphore`,
//! `Event`, `Condition`, `Barrier`).
//!
//! Each object is a few words of shared memory (a `memfd` mapped
//! `MAP_SHARED`) and sleeps on futexes, which work across processes. The API
//! is the one of [`spindle::sync`](crate::sync) — they are the same
//! generic types ([`crate::sync::generic`]) over the process scope's raw
//! layer ([`ProcessScope`]), so: same names, same
//! `verb`/`try_verb`/`verb_timeout`/`verb_deadline` family, same errors, the
//! same contracts ([`crate::sync::contract`]) — except that constructors
//! return `io::Result` (the shared memory may fail to be made) or, where
//! they take a count, a [`CreateError`]. A handle crosses into a child as a
//! `#[spindle::task]` argument (its descriptor travels with the call, under every start method) or by
//! being captured by a `Fork` closure; `clone` gives another handle to the
//! same object.
//!
//! # Which one should I use?
//!
//! To share *data*, use [`Value`](crate::ipc::Value) / [`Array`](crate::ipc::Array),
//! which carry their own lock. The objects here are for the other patterns,
//! as in [`spindle::sync`](crate::sync); between threads of one process,
//! prefer `spindle::sync`, which is faster.
//!
//! # When a process dies
//!
//! * A [`Lock`] or [`RLock`] records its holder (process id, resp. thread
//!   id). A waiter that sleeps a while (2 ms, doubling up to 200 ms) without
//!   the lock changing checks whether the holder still runs
//!   (`/proc/<id>/stat`, zombies count as dead) and, if not, takes the lock
//!   over: the acquisition **succeeds** and `owner_deaths()` counts it. What
//!   the dead holder protected may be half-updated, as with a robust mutex.
//!   (Python's locks stay locked forever.)
//! * [`Semaphore`], [`BoundedSemaphore`] and [`Event`] hold no lock at all; a
//!   permit taken by a process that dies is lost, as in Python.
//! * [`Condition`] and [`Barrier`] use such a lock internally; a process
//!   that dies *waiting* still counts as a waiter (its notification goes to
//!   the next waiter; a barrier may trip one party short).
//!
//! # Examples
//!
//! ```
//! use spindle::ipc::sync::Lock;
//! use spindle::process::{Process, StartMethod};
//!
//! let lock = Lock::new()?;
//! let held = lock.clone();
//! let mut p = Process::builder()
//!     .closure(move || {
//!         held.acquire();
//!         // ...and die without releasing it.
//!         std::process::exit(3);
//!     })
//!     .start_method(StartMethod::Fork)
//!     .start()?;
//! let _ = p.join();
//! lock.acquire(); // taken over from the dead child, not a hang
//! assert_eq!(lock.owner_deaths(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub(crate) mod core;
mod raw;

pub use raw::{ProcOwner, ProcWatch, ProcessScope, SEM_VALUE_MAX, Shared, ShmMutex, ShmQueue};

use std::io;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::sync::CreateError;
use crate::sync::generic::{
    self, BarrierState, Bounded, ConditionLock, EventState, RState, SemState, Unbounded,
    check_parties,
};

crate::sync::scope_aliases!(ProcessScope, "multiprocessing");

impl Lock {
    /// Creates an unlocked lock in fresh shared memory
    /// (`multiprocessing.Lock()`).
    ///
    /// # Errors
    /// The OS error if the shared memory cannot be made.
    pub fn new() -> io::Result<Lock> {
        Ok(generic::Lock {
            state: Shared::new(|_| {})?,
        })
    }

    /// How many times this lock was taken over from a holder process that
    /// had died (spindle addition).
    pub fn owner_deaths(&self) -> u32 {
        self.state.deaths.load(SeqCst)
    }
}

impl RLock {
    /// Creates an unlocked re-entrant lock in fresh shared memory
    /// (`multiprocessing.RLock()`).
    ///
    /// # Errors
    /// The OS error if the shared memory cannot be made.
    pub fn new() -> io::Result<RLock> {
        Ok(generic::RLock {
            state: Shared::new(|_: &RState<ProcessScope>| {})?,
        })
    }

    /// How many times this lock was taken over from a holder thread that had
    /// died (spindle addition).
    pub fn owner_deaths(&self) -> u32 {
        self.state.mutex.deaths.load(SeqCst)
    }
}

impl Event {
    /// Creates a clear event in fresh shared memory
    /// (`multiprocessing.Event()`).
    ///
    /// # Errors
    /// The OS error if the shared memory cannot be made.
    pub fn new() -> io::Result<Event> {
        Ok(generic::Event {
            state: Shared::new(|_: &EventState<ProcessScope>| {})?,
        })
    }
}

/// A semaphore state holding `value` permits of at most `bound`.
fn sem_state(value: usize, bound: usize) -> Result<Shared<SemState<ProcessScope>>, CreateError> {
    if value > SEM_VALUE_MAX {
        return Err(CreateError::TooLarge {
            value,
            max: SEM_VALUE_MAX,
        });
    }
    Ok(Shared::new(|st: &SemState<ProcessScope>| {
        st.value.store(value as u32, SeqCst);
        st.bound.store(bound as u32, SeqCst);
    })?)
}

impl Semaphore {
    /// Creates a semaphore with `value` permits in fresh shared memory
    /// (`multiprocessing.Semaphore(value)`).
    ///
    /// # Errors
    /// [`CreateError::TooLarge`] if `value` exceeds [`SEM_VALUE_MAX`]
    /// (Python: `ValueError`), [`CreateError::Os`] if the shared memory
    /// cannot be made.
    pub fn new(value: usize) -> Result<Semaphore, CreateError> {
        Ok(generic::Semaphore {
            state: sem_state(value, SEM_VALUE_MAX)?,
            _kind: PhantomData::<Unbounded>,
        })
    }
}

impl BoundedSemaphore {
    /// Creates a bounded semaphore with `value` permits, which is also its
    /// bound (`multiprocessing.BoundedSemaphore(value)`).
    ///
    /// # Errors
    /// As [`Semaphore::new`].
    pub fn new(value: usize) -> Result<BoundedSemaphore, CreateError> {
        Ok(generic::Semaphore {
            state: sem_state(value, value)?,
            _kind: PhantomData::<Bounded>,
        })
    }
}

impl Condition<RLock> {
    /// Creates a condition over a fresh [`RLock`]
    /// (`multiprocessing.Condition()`).
    ///
    /// # Errors
    /// The OS error if the shared memory cannot be made.
    pub fn new() -> io::Result<Self> {
        Condition::with_lock(RLock::new()?)
    }
}

impl<L: ConditionLock<Scope = ProcessScope>> generic::Condition<ProcessScope, L> {
    /// Creates a condition over `lock` (`multiprocessing.Condition(lock)`);
    /// several conditions may share one lock (pass clones of it).
    ///
    /// # Errors
    /// The OS error if the shared memory cannot be made.
    pub fn with_lock(lock: L) -> io::Result<Self> {
        Ok(generic::Condition {
            lock: Arc::new(lock),
            queue: Shared::new(|_| {})?,
        })
    }
}

impl Barrier {
    /// Creates a barrier for `parties` processes (or threads) in fresh shared
    /// memory (`multiprocessing.Barrier(parties)`).
    ///
    /// # Errors
    /// [`CreateError::ZeroParties`] if `parties` is 0 (Python: `ValueError`),
    /// [`CreateError::TooLarge`] past `u32::MAX - 1`, [`CreateError::Os`] if
    /// the shared memory cannot be made.
    pub fn new(parties: usize) -> Result<Barrier, CreateError> {
        check_parties::<ProcessScope>(parties)?;
        Ok(generic::Barrier {
            state: Shared::new(|st: &BarrierState<ProcessScope>| {
                st.parties.store(parties as u32, SeqCst);
            })?,
            action: None,
            default_timeout: None,
        })
    }
}

/// `Serialize`/`Deserialize` of a process object: the descriptor of its
/// region (see `ipc/fdpass.rs`).
macro_rules! shared_serde {
    ($t:ty, $make:expr) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.state.serialize(s)
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let state = Shared::deserialize(d)?;
                Ok($make(state))
            }
        }

        impl Clone for $t {
            /// Another handle on the same shared object.
            fn clone(&self) -> Self {
                $make(self.state.clone())
            }
        }
    };
}

shared_serde!(Lock, |state| generic::Lock { state });
shared_serde!(RLock, |state| generic::RLock { state });
shared_serde!(Event, |state| generic::Event { state });
shared_serde!(Semaphore, |state| generic::Semaphore {
    state,
    _kind: PhantomData
});
shared_serde!(BoundedSemaphore, |state| generic::Semaphore {
    state,
    _kind: PhantomData
});
// A barrier handle carries its default timeout (`with_timeout`) along.
/// The barrier's shared region, as serde sees it (its own methods are
/// inherent).
struct BarrierRegion(Shared<BarrierState<ProcessScope>>);

impl Serialize for BarrierRegion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for BarrierRegion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Shared::deserialize(d).map(BarrierRegion)
    }
}

impl Serialize for Barrier {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (BarrierRegion(self.state.clone()), self.default_timeout).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Barrier {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (BarrierRegion(state), default_timeout) = Deserialize::deserialize(d)?;
        Ok(generic::Barrier {
            state,
            action: None,
            default_timeout,
        })
    }
}

impl Clone for Barrier {
    /// Another handle on the same shared barrier, with the same default
    /// timeout.
    fn clone(&self) -> Self {
        generic::Barrier {
            state: self.state.clone(),
            action: None,
            default_timeout: self.default_timeout,
        }
    }
}

impl<L: ConditionLock<Scope = ProcessScope> + Clone> Clone for generic::Condition<ProcessScope, L> {
    /// Another handle on the same condition (and lock).
    fn clone(&self) -> Self {
        generic::Condition {
            lock: Arc::new((*self.lock).clone()),
            queue: self.queue.clone(),
        }
    }
}

impl<L: ConditionLock<Scope = ProcessScope> + Serialize> Serialize
    for generic::Condition<ProcessScope, L>
{
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut t = s.serialize_tuple(2)?;
        t.serialize_element(&*self.lock)?;
        t.serialize_element(&QueueRef(&self.queue))?;
        t.end()
    }
}

impl<'de, L: ConditionLock<Scope = ProcessScope> + Deserialize<'de>> Deserialize<'de>
    for generic::Condition<ProcessScope, L>
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (lock, QueueOwned(queue)) = <(L, QueueOwned)>::deserialize(d)?;
        Ok(generic::Condition {
            lock: Arc::new(lock),
            queue,
        })
    }
}

struct QueueRef<'a>(&'a Shared<ShmQueue>);

impl Serialize for QueueRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

struct QueueOwned(Shared<ShmQueue>);

impl<'de> Deserialize<'de> for QueueOwned {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Shared::deserialize(d).map(QueueOwned)
    }
}
