//! [`Value`] and [`RawValue`]: Python's `multiprocessing.Value` and
//! `multiprocessing.RawValue`.
#![forbid(unsafe_code)]

use std::fmt;
use std::io;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use bytemuck::Pod;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::data::Data;
use super::locked::{Borrow, Locked};
use crate::ipc::sync::RLock;
use crate::sync::Wait;

/// One plain-data value in shared memory with its lock, Python's
/// `multiprocessing.Value(typecode, value)` (a `synchronized` wrapper).
///
/// `T` is any [`bytemuck::Pod`] type — the primitive numbers, arrays of them,
/// and `#[repr(C)]` structs deriving `Pod` (Python's ctypes types and
/// `Structure`s): types with no pointers and valid for any bits, so bytes
/// written by another process can never make an invalid `T`.
///
/// * [`lock`](Value::lock) is `with v.get_lock():` and gives `&mut T` for a
///   read-modify-write that no other process can interleave;
/// * [`load`](Value::load) / [`store`](Value::store) are Python's
///   `v.value` / `v.value = x`: each takes the lock for one copy;
/// * [`get_lock`](Value::get_lock) is the [`RLock`] itself (re-entrant, as
///   Python's default), so `load`/`store` also work inside a section that
///   already holds it.
///
/// A handle crosses into a child as a `#[spindle::task]` argument (the shared
/// memory and the lock travel as descriptors, under every start method) or
/// by being captured by a `Fork` closure. If a process dies holding the
/// lock, the next locker takes it over (see
/// [`ipc::sync`](crate::ipc::sync#when-a-process-dies)); the value may then
/// be half-updated.
///
/// # Examples
///
/// ```
/// use spindle::ipc::Value;
/// use spindle::process::Process;
///
/// #[spindle::task]
/// fn add(counter: Value<u64>, times: u64) {
///     for _ in 0..times {
///         *counter.lock() += 1; // with counter.get_lock(): counter.value += 1
///     }
/// }
///
/// let counter = Value::new(0u64)?;
/// let mut ps: Vec<Process> = (0..3).map(|_| Process::new(add::call(counter.clone(), 1000))).collect();
/// for p in &mut ps { p.start()?; }
/// for p in &mut ps { p.join()?; }
/// assert_eq!(counter.load(), 3000);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Value<T> {
    inner: Locked<T>,
}

impl<T> Clone for Value<T> {
    fn clone(&self) -> Self {
        Value {
            inner: self.inner.clone(),
        }
    }
}

impl<T: Pod> Value<T> {
    /// Creates a shared value with its own [`RLock`]
    /// (`multiprocessing.Value(typecode, value)`).
    ///
    /// # Errors
    /// The OS error if the shared memory cannot be made.
    pub fn new(value: T) -> io::Result<Value<T>> {
        Ok(Value {
            inner: Locked::new(Data::from_slice(&[value]), None)?,
        })
    }

    /// Creates a shared value guarded by an existing lock
    /// (`Value(typecode, value, lock=rlock)`), so several values can share
    /// one lock.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_lock(value: T, lock: RLock) -> io::Result<Value<T>> {
        Ok(Value {
            inner: Locked::new(Data::from_slice(&[value]), Some(lock))?,
        })
    }

    /// The lock (`get_lock()`).
    pub fn get_lock(&self) -> &RLock {
        &self.inner.lock
    }

    /// Locks the value and gives it as `&mut T` until the guard drops
    /// (Python's `with v.get_lock():`).
    ///
    /// # Panics
    /// If this thread already holds a guard of this value (that would be two
    /// `&mut` to one value), like `RefCell::borrow_mut`.
    pub fn lock(&self) -> ValueGuard<'_, T> {
        ValueGuard {
            b: self.inner.lock(),
        }
    }

    /// A guard if the lock can be had now (Python's
    /// `v.get_lock().acquire(False)`); `None` if another thread or process
    /// holds it, or if this thread already holds a guard of this value (like
    /// `RefCell::try_borrow_mut`). Never blocks.
    pub fn try_lock(&self) -> Option<ValueGuard<'_, T>> {
        self.inner.try_lock().map(|b| ValueGuard { b })
    }

    /// A guard, waiting at most `timeout` for the lock (Python's
    /// `v.get_lock().acquire(timeout=t)`); `None` if the time ran out. A
    /// timeout too long to represent waits forever.
    ///
    /// # Panics
    /// As [`lock`](Self::lock).
    pub fn lock_timeout(&self, timeout: Duration) -> Option<ValueGuard<'_, T>> {
        self.inner.lock_timeout(timeout).map(|b| ValueGuard { b })
    }

    /// A guard, waiting at most until `deadline` for the lock (Python's
    /// `v.get_lock().acquire(timeout=t)`, with the timeout as an instant);
    /// `None` if the time ran out.
    ///
    /// # Panics
    /// As [`lock`](Self::lock).
    pub fn lock_deadline(&self, deadline: Instant) -> Option<ValueGuard<'_, T>> {
        self.inner.lock_deadline(deadline).map(|b| ValueGuard { b })
    }

    /// A copy of the value, taken under the lock (`v.value`).
    ///
    /// # Panics
    /// If this thread holds a guard of this value (read it through the guard).
    pub fn load(&self) -> T {
        *self.lock()
    }

    /// Replaces the value under the lock (`v.value = x`).
    ///
    /// # Panics
    /// As [`load`](Self::load).
    pub fn store(&self, value: T) {
        *self.lock() = value;
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.inner.try_borrow(Wait::Never) {
            Ok(Some(b)) => f.debug_tuple("Value").field(&b.slice()[0]).finish(),
            _ => f.write_str("Value(<locked>)"),
        }
    }
}

impl<T: Pod> Serialize for Value<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        super::serialize_locked(&self.inner, s)
    }
}

impl<'de, T: Pod> Deserialize<'de> for Value<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let inner = super::deserialize_locked::<T, D>(d)?;
        if inner.data.len() != 1 {
            return Err(serde::de::Error::custom("shared data is not one value"));
        }
        Ok(Value { inner })
    }
}

/// The value of a locked [`Value`]; derefs to `T`. Not `Send` (the lock is
/// the thread's).
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ValueGuard<'a, T: Pod> {
    b: Borrow<'a, T>,
}

impl<T: Pod> Deref for ValueGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.b.slice()[0]
    }
}

impl<T: Pod> DerefMut for ValueGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.b.slice_mut()[0]
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for ValueGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ValueGuard").field(&**self).finish()
    }
}

/// One plain-data value in shared memory without a lock, Python's
/// `multiprocessing.RawValue` (or `Value(..., lock=False)`).
///
/// [`load`](RawValue::load) and [`store`](RawValue::store) copy the value
/// with relaxed atomic word copies: never undefined behaviour, but a
/// read-modify-write of several processes loses updates (the race Python's
/// docs warn about), and a value wider than a word may tear. Use [`Value`]
/// to update it safely.
///
/// # Examples
///
/// ```
/// use spindle::ipc::RawValue;
///
/// let v = RawValue::new(1.5f64)?;
/// v.store(2.5);
/// assert_eq!(v.load(), 2.5);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct RawValue<T> {
    data: Data<T>,
}

impl<T> Clone for RawValue<T> {
    fn clone(&self) -> Self {
        RawValue {
            data: self.data.clone(),
        }
    }
}

impl<T: Pod> RawValue<T> {
    /// Creates an unlocked shared value (`multiprocessing.RawValue`).
    ///
    /// # Errors
    /// The OS error if the shared memory cannot be made.
    pub fn new(value: T) -> io::Result<RawValue<T>> {
        Ok(RawValue {
            data: Data::from_slice(&[value])?,
        })
    }

    /// A copy of the value (`v.value`), without a lock.
    pub fn load(&self) -> T {
        self.data.racy_read(0)
    }

    /// Writes the value (`v.value = x`), without a lock.
    pub fn store(&self, value: T) {
        self.data.racy_write(0, value);
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for RawValue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RawValue").field(&self.load()).finish()
    }
}

impl<T: Pod> Serialize for RawValue<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.data.serialize(s)
    }
}

impl<'de, T: Pod> Deserialize<'de> for RawValue<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let data = Data::deserialize(d)?;
        if data.len() != 1 {
            return Err(serde::de::Error::custom("shared data is not one value"));
        }
        Ok(RawValue { data })
    }
}
