//! [`Array`] and [`RawArray`]: Python's `multiprocessing.Array` and
//! `multiprocessing.RawArray`.
#![forbid(unsafe_code)]

use std::fmt;
use std::io;
use std::ops::{Bound, Deref, DerefMut, RangeBounds};
use std::time::{Duration, Instant};

use bytemuck::Pod;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::IndexError;
use super::data::Data;
use super::locked::{Borrow, Locked};
use crate::ipc::sync::RLock;
use crate::sync::Wait;

fn bounds(r: impl RangeBounds<usize>, len: usize) -> Result<(usize, usize), IndexError> {
    let start = match r.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match r.end_bound() {
        Bound::Included(&e) => e.saturating_add(1),
        Bound::Excluded(&e) => e,
        Bound::Unbounded => len,
    };
    if start > end || end > len {
        return Err(IndexError {
            index: end.max(start),
            len,
        });
    }
    Ok((start, end))
}

/// A fixed-length array of plain data in shared memory with its lock,
/// Python's `multiprocessing.Array(typecode, size_or_initializer)`.
///
/// Element types are [`bytemuck::Pod`], as for [`Value`](super::Value).
/// [`lock`](Array::lock) gives the whole array as `&mut [T]` under the lock;
/// [`get`](Array::get), [`set`](Array::set), [`get_slice`](Array::get_slice),
/// [`set_slice`](Array::set_slice) and [`to_vec`](Array::to_vec) take the
/// lock for one operation each (Python's `a[i]`, `a[i] = x`, `a[i:j]`,
/// `a[i:j] = ...`, `a[:]`). An index out of range is an [`IndexError`],
/// never a panic.
///
/// # Examples
///
/// ```
/// use spindle::ipc::Array;
/// use spindle::process::Process;
///
/// #[spindle::task]
/// fn negate(a: Array<i32>) {
///     for x in a.lock().iter_mut() {
///         *x = -*x;
///     }
/// }
///
/// let a = Array::from_slice(&[1, 2, 3])?;
/// let mut p = Process::new(negate::call(a.clone()));
/// p.start()?;
/// p.join()?;
/// assert_eq!(a.to_vec(), [-1, -2, -3]);
/// assert_eq!(a.get(5), None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Array<T> {
    inner: Locked<T>,
}

impl<T> Clone for Array<T> {
    fn clone(&self) -> Self {
        Array {
            inner: self.inner.clone(),
        }
    }
}

impl<T: Pod> Array<T> {
    /// `len` zeroed elements (`Array(typecode, size)`).
    ///
    /// # Errors
    /// `InvalidInput` if too large; the OS error if the shared memory cannot
    /// be made.
    pub fn zeroed(len: usize) -> io::Result<Array<T>> {
        Ok(Array {
            inner: Locked::new(Data::zeroed(len), None)?,
        })
    }

    /// A copy of `init` (`Array(typecode, initializer)`).
    ///
    /// # Errors
    /// As [`zeroed`](Self::zeroed).
    pub fn from_slice(init: &[T]) -> io::Result<Array<T>> {
        Ok(Array {
            inner: Locked::new(Data::from_slice(init), None)?,
        })
    }

    /// The elements of `init`.
    ///
    /// # Errors
    /// As [`zeroed`](Self::zeroed).
    pub fn from_vec(init: Vec<T>) -> io::Result<Array<T>> {
        Array::from_slice(&init)
    }

    /// A copy of `init` guarded by an existing lock (`lock=rlock`).
    ///
    /// # Errors
    /// As [`zeroed`](Self::zeroed).
    pub fn with_lock(init: &[T], lock: RLock) -> io::Result<Array<T>> {
        Ok(Array {
            inner: Locked::new(Data::from_slice(init), Some(lock))?,
        })
    }

    /// The number of elements (`len(a)`).
    pub fn len(&self) -> usize {
        self.inner.data.len()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The lock (`get_lock()`).
    pub fn get_lock(&self) -> &RLock {
        &self.inner.lock
    }

    /// Locks the array and gives it as `&mut [T]` until the guard drops
    /// (Python's `with a.get_lock():`).
    ///
    /// # Panics
    /// If this thread already holds a guard of this array (that would be two
    /// `&mut` to it), like `RefCell::borrow_mut`.
    pub fn lock(&self) -> ArrayGuard<'_, T> {
        ArrayGuard {
            b: self.inner.lock(),
        }
    }

    /// A guard if the lock can be had now (Python's
    /// `a.get_lock().acquire(False)`); `None` if another thread or process
    /// holds it, or if this thread already holds a guard of this array (like
    /// `RefCell::try_borrow_mut`). Never blocks.
    ///
    /// # Examples
    /// ```
    /// use spindle::ipc::Array;
    ///
    /// let a = Array::from_slice(&[1u8, 2, 3])?;
    /// let mut g = a.try_lock().expect("nobody holds it");
    /// g[0] = 9;
    /// assert!(a.try_lock().is_none(), "this thread holds a guard");
    /// drop(g);
    /// assert_eq!(a.to_vec(), [9, 2, 3]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_lock(&self) -> Option<ArrayGuard<'_, T>> {
        self.inner.try_lock().map(|b| ArrayGuard { b })
    }

    /// A guard, waiting at most `timeout` for the lock (Python's
    /// `a.get_lock().acquire(timeout=t)`); `None` if the time ran out. A
    /// timeout too long to represent waits forever.
    ///
    /// # Panics
    /// As [`lock`](Self::lock).
    pub fn lock_timeout(&self, timeout: Duration) -> Option<ArrayGuard<'_, T>> {
        self.inner.lock_timeout(timeout).map(|b| ArrayGuard { b })
    }

    /// A guard, waiting at most until `deadline` for the lock (Python's
    /// `a.get_lock().acquire(timeout=t)`, with the timeout as an instant);
    /// `None` if the time ran out.
    ///
    /// # Panics
    /// As [`lock`](Self::lock).
    pub fn lock_deadline(&self, deadline: Instant) -> Option<ArrayGuard<'_, T>> {
        self.inner.lock_deadline(deadline).map(|b| ArrayGuard { b })
    }

    /// Element `i` (`a[i]`), or `None` past the end.
    ///
    /// # Panics
    /// If this thread holds a guard of this array (use the guard). The same
    /// holds for every method below that takes the lock.
    pub fn get(&self, i: usize) -> Option<T> {
        self.lock().get(i).copied()
    }

    /// Sets element `i` (`a[i] = x`).
    ///
    /// # Errors
    /// [`IndexError`] past the end.
    pub fn set(&self, i: usize, value: T) -> Result<(), IndexError> {
        let mut g = self.lock();
        let len = g.len();
        *g.get_mut(i).ok_or(IndexError { index: i, len })? = value;
        Ok(())
    }

    /// A copy of the elements in `range` (`a[i:j]`).
    ///
    /// # Errors
    /// [`IndexError`] if the range does not fit.
    pub fn get_slice(&self, range: impl RangeBounds<usize>) -> Result<Vec<T>, IndexError> {
        let g = self.lock();
        let (s, e) = bounds(range, g.len())?;
        Ok(g[s..e].to_vec())
    }

    /// Copies `values` into the array from index `start` (`a[start:start+n] = values`).
    ///
    /// # Errors
    /// [`IndexError`] if they do not fit.
    pub fn set_slice(&self, start: usize, values: &[T]) -> Result<(), IndexError> {
        let mut g = self.lock();
        let (s, e) = bounds(start..start.saturating_add(values.len()), g.len())?;
        g[s..e].copy_from_slice(values);
        Ok(())
    }

    /// A copy of every element (`a[:]`).
    pub fn to_vec(&self) -> Vec<T> {
        self.lock().to_vec()
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.inner.try_borrow(Wait::Never) {
            Ok(Some(b)) => f.debug_tuple("Array").field(&b.slice()).finish(),
            _ => write!(f, "Array(<locked>, len {})", self.len()),
        }
    }
}

impl<T: Pod> Serialize for Array<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        super::serialize_locked(&self.inner, s)
    }
}

impl<'de, T: Pod> Deserialize<'de> for Array<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Array {
            inner: super::deserialize_locked::<T, D>(d)?,
        })
    }
}

/// The elements of a locked [`Array`]; derefs to `[T]`. Not `Send`.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ArrayGuard<'a, T: Pod> {
    b: Borrow<'a, T>,
}

impl<T: Pod> Deref for ArrayGuard<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.b.slice()
    }
}

impl<T: Pod> DerefMut for ArrayGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        self.b.slice_mut()
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for ArrayGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ArrayGuard").field(&&**self).finish()
    }
}

/// A fixed-length array of plain data in shared memory without a lock,
/// Python's `multiprocessing.RawArray` (or `Array(..., lock=False)`).
///
/// Element accesses are relaxed atomic copies, as for
/// [`RawValue`](super::RawValue): defined, but unsynchronised.
///
/// # Examples
///
/// ```
/// use spindle::ipc::RawArray;
///
/// let a = RawArray::<u8>::zeroed(4)?;
/// a.set(1, 7).unwrap();
/// assert_eq!(a.to_vec(), [0, 7, 0, 0]);
/// assert!(a.set(4, 1).is_err());
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct RawArray<T> {
    data: Data<T>,
}

impl<T> Clone for RawArray<T> {
    fn clone(&self) -> Self {
        RawArray {
            data: self.data.clone(),
        }
    }
}

impl<T: Pod> RawArray<T> {
    /// `len` zeroed elements (`RawArray(typecode, size)`).
    ///
    /// # Errors
    /// As [`Array::zeroed`].
    pub fn zeroed(len: usize) -> io::Result<RawArray<T>> {
        Ok(RawArray {
            data: Data::zeroed(len)?,
        })
    }

    /// A copy of `init` (`RawArray(typecode, initializer)`).
    ///
    /// # Errors
    /// As [`Array::zeroed`].
    pub fn from_slice(init: &[T]) -> io::Result<RawArray<T>> {
        Ok(RawArray {
            data: Data::from_slice(init)?,
        })
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element `i`, or `None` past the end.
    pub fn get(&self, i: usize) -> Option<T> {
        (i < self.len()).then(|| self.data.racy_read(i))
    }

    /// Sets element `i`.
    ///
    /// # Errors
    /// [`IndexError`] past the end.
    pub fn set(&self, i: usize, value: T) -> Result<(), IndexError> {
        if i >= self.len() {
            return Err(IndexError {
                index: i,
                len: self.len(),
            });
        }
        self.data.racy_write(i, value);
        Ok(())
    }

    /// A copy of every element.
    pub fn to_vec(&self) -> Vec<T> {
        (0..self.len()).map(|i| self.data.racy_read(i)).collect()
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for RawArray<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RawArray").field(&self.to_vec()).finish()
    }
}

impl<T: Pod> Serialize for RawArray<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.data.serialize(s)
    }
}

impl<'de, T: Pod> Deserialize<'de> for RawArray<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(RawArray {
            data: Data::deserialize(d)?,
        })
    }
}
