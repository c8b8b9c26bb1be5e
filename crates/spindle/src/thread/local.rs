//! `Local<T>`: one value per thread per instance (Python's `threading.local`).
//!
//! Design: each thread owns a map `instance id -> value` (`Slots`), reachable
//! from its thread-local and, weakly, from every `Local` that stored a value
//! in it. The thread drops its values when it ends (a spindle thread before
//! `join` returns); a `Local` drops its values in every live thread when it is
//! dropped. std's `thread_local!` is one static per declaration, and the
//! `thread_local` crate keeps values until the container is dropped, so
//! neither gives Python's "dropped when the thread exits" per instance.
#![forbid(unsafe_code)]

use std::any::Any;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

type Value = Box<dyn Any + Send>;

/// One thread's values.
#[derive(Default)]
struct Slots {
    map: Mutex<SlotMap>,
}

#[derive(Default)]
struct SlotMap {
    /// Values by `Local` id; `None` while lent to `with`.
    values: HashMap<u64, Option<Value>, Ids>,
    /// Ids of the `Local`s that know about this thread (hold a `Weak` to it).
    known_by: HashSet<u64, Ids>,
}

thread_local! {
    static SLOTS: RefCell<Option<Arc<Slots>>> = const { RefCell::new(None) };
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Runs `f` with the calling thread's `Slots`, creating them on first use.
/// Holds only a shared borrow of the thread-local while `f` runs, so `f` may
/// use other `Local`s.
fn with_slots<R>(f: impl FnOnce(&Arc<Slots>) -> R) -> R {
    SLOTS
        .try_with(|cell| {
            if cell.borrow().is_none() {
                *cell.borrow_mut() = Some(Arc::default());
            }
            let slots = cell.borrow();
            f(slots.as_ref().expect("the slots were just created"))
        })
        .expect("spindle::thread::Local used while thread-locals are being destroyed")
}

/// Hashes `Local` ids (small sequential integers) with one multiplication.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type Ids = BuildHasherDefault<IdHasher>;

/// Drops the calling thread's values of every `Local` (called when a spindle
/// thread's closure has returned).
pub(super) fn clear_current_thread() {
    let Ok(Some(slots)) = SLOTS.try_with(|s| s.borrow_mut().take()) else {
        return;
    };
    let values: Vec<_> = slots.map.lock().values.drain().collect();
    drop(values); // outside the lock: a value's Drop may use another Local
}

enum Init<T> {
    Fn(fn() -> T),
    Closure(Box<dyn Fn() -> T + Send + Sync>),
}

/// A value of which each thread sees its own copy, created on first use by
/// an initialiser. Mirrors Python's `threading.local`.
///
/// Unlike `thread_local!`, every `Local` is an independent instance (two
/// `Local<u32>` never share values), and it can live in a `static`, an `Arc`
/// or a struct field. A thread's value is dropped when the thread ends (for
/// spindle threads, before `join` returns) or when the `Local` is dropped,
/// whichever comes first.
///
/// # Examples
///
/// ```
/// use spindle::thread::{self, Local};
///
/// static STUDENT: Local<String> = Local::new(String::new);
///
/// let h = thread::spawn(|| {
///     STUDENT.set("Alice".to_owned());
///     STUDENT.get()
/// })?;
/// assert_eq!(h.join()?, "Alice");
/// assert_eq!(STUDENT.get(), ""); // this thread's own, fresh value
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Local<T: Send + 'static> {
    id: AtomicU64,
    init: Init<T>,
    holders: Mutex<Vec<Weak<Slots>>>,
    _values: PhantomData<fn() -> T>,
}

impl<T: Send + 'static> Local<T> {
    /// A `Local` whose per-thread values start as `init()`. `const`, so it
    /// can initialise a `static`.
    pub const fn new(init: fn() -> T) -> Local<T> {
        Local::from_init(Init::Fn(init))
    }

    /// A `Local` whose per-thread values start as `init()`, where `init` may
    /// capture state (Python: a `local` subclass with an `__init__`).
    ///
    /// # Examples
    ///
    /// ```
    /// let base = 40;
    /// let l = spindle::thread::Local::with_init(move || base + 2);
    /// assert_eq!(l.get(), 42);
    /// ```
    pub fn with_init(init: impl Fn() -> T + Send + Sync + 'static) -> Local<T> {
        Local::from_init(Init::Closure(Box::new(init)))
    }

    const fn from_init(init: Init<T>) -> Local<T> {
        Local {
            id: AtomicU64::new(0),
            init,
            holders: Mutex::new(Vec::new()),
            _values: PhantomData,
        }
    }

    fn id(&self) -> u64 {
        let id = self.id.load(Ordering::Acquire);
        if id != 0 {
            return id;
        }
        let fresh = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        match self
            .id
            .compare_exchange(0, fresh, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => fresh,
            Err(won) => won,
        }
    }

    fn init_value(&self) -> T {
        match &self.init {
            Init::Fn(f) => f(),
            Init::Closure(f) => f(),
        }
    }

    /// Remembers that `slots` may hold a value of ours, so `drop` can find it.
    fn add_holder(&self, slots: &Arc<Slots>) {
        let mut holders = self.holders.lock();
        if holders.len() >= 8 && holders.len().is_power_of_two() {
            holders.retain(|w| w.strong_count() > 0); // threads that ended
        }
        holders.push(Arc::downgrade(slots));
    }

    /// Calls `f` with this thread's value, creating it first if needed.
    /// Python: reading or assigning `local.attr`.
    ///
    /// # Panics
    ///
    /// If called again for the same `Local` from inside `f` (like a double
    /// `RefCell` borrow), or from a thread-local destructor after this
    /// thread's `Local` storage was destroyed. A panic in `f` or in the
    /// initialiser propagates; the value stays stored.
    ///
    /// # Examples
    ///
    /// ```
    /// let counter = spindle::thread::Local::new(|| 0u32);
    /// counter.with(|n| *n += 5);
    /// assert_eq!(counter.with(|n| *n), 5);
    /// ```
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        with_slots(|slots| {
            let mut lent = self.lend(slots, true);
            let value = lent
                .value
                .as_mut()
                .expect("lend(true) always yields a value");
            f(value
                .downcast_mut::<T>()
                .expect("a Local's value has the Local's type"))
        })
    }

    /// Takes this thread's value out of the map, leaving a "lent" marker;
    /// with `init`, creates it when absent.
    fn lend<'a>(&self, slots: &'a Arc<Slots>, init: bool) -> Lent<'a> {
        let id = self.id();
        let (existing, first_use) = {
            let mut map = slots.map.lock();
            let first_use = map.known_by.insert(id);
            match map.values.get_mut(&id) {
                Some(entry) => {
                    let value = entry.take().expect("Local already borrowed on this thread");
                    (Some(value), first_use)
                }
                None => {
                    map.values.insert(id, None);
                    (None, first_use)
                }
            }
        };
        if first_use {
            self.add_holder(slots);
        }
        let mut lent = Lent {
            slots,
            id,
            value: existing,
        };
        if lent.value.is_none() && init {
            lent.value = Some(Box::new(self.init_value()));
        }
        lent
    }

    /// A clone of this thread's value, created first if needed.
    ///
    /// # Panics
    ///
    /// As for [`with`](Local::with).
    pub fn get(&self) -> T
    where
        T: Clone,
    {
        self.with(|v| v.clone())
    }

    /// Sets this thread's value (without running the initialiser). Python:
    /// `local.attr = value`.
    ///
    /// # Panics
    ///
    /// As for [`with`](Local::with).
    pub fn set(&self, value: T) {
        drop(self.replace(value));
    }

    /// Sets this thread's value and returns the previous one, if any.
    ///
    /// # Panics
    ///
    /// As for [`with`](Local::with).
    pub fn replace(&self, value: T) -> Option<T> {
        let old = with_slots(|slots| {
            let mut lent = self.lend(slots, false);
            let old = lent.value.take();
            lent.value = Some(Box::new(value));
            old
        });
        old.map(|b| {
            *b.downcast::<T>()
                .expect("a Local's value has the Local's type")
        })
    }

    /// Removes and returns this thread's value; the next access runs the
    /// initialiser again. Python: `del local.attr`.
    ///
    /// # Panics
    ///
    /// As for [`with`](Local::with).
    ///
    /// # Examples
    ///
    /// ```
    /// let l = spindle::thread::Local::new(|| 1);
    /// assert_eq!(l.take(), None);
    /// l.set(7);
    /// assert!(l.is_set());
    /// assert_eq!(l.take(), Some(7));
    /// assert!(!l.is_set());
    /// ```
    pub fn take(&self) -> Option<T> {
        let old = with_slots(|slots| self.lend(slots, false).value.take());
        old.map(|b| {
            *b.downcast::<T>()
                .expect("a Local's value has the Local's type")
        })
    }

    /// `true` if this thread has a value (set or initialised). Python:
    /// `hasattr(local, "attr")`.
    pub fn is_set(&self) -> bool {
        let id = self.id();
        SLOTS
            .try_with(|s| {
                s.borrow()
                    .as_ref()
                    .is_some_and(|slots| slots.map.lock().values.contains_key(&id))
            })
            .unwrap_or(false)
    }
}

/// A value lent out of a thread's map; puts it back (or removes the entry)
/// when dropped, also on unwind.
struct Lent<'a> {
    slots: &'a Slots,
    id: u64,
    value: Option<Value>,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        let mut map = self.slots.map.lock();
        match self.value.take() {
            Some(v) => {
                map.values.insert(self.id, Some(v));
            }
            None => {
                map.values.remove(&self.id);
            }
        }
    }
}

impl<T: Send + 'static> Drop for Local<T> {
    fn drop(&mut self) {
        let id = *self.id.get_mut();
        if id == 0 {
            return;
        }
        for holder in std::mem::take(self.holders.get_mut()) {
            if let Some(slots) = holder.upgrade() {
                let value = slots.map.lock().values.remove(&id);
                drop(value); // outside the lock
            }
        }
    }
}

impl<T: Send + Default + 'static> Default for Local<T> {
    /// A `Local` whose values start as `T::default()`.
    fn default() -> Self {
        Local::new(T::default)
    }
}

impl<T: Send + 'static> fmt::Debug for Local<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Local")
            .field("id", &self.id.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}
