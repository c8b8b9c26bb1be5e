//! Plain data in shared memory: Python's `multiprocessing.Value`, `Array`,
//! `RawValue`, `RawArray` (`multiprocessing.sharedctypes`).
//!
//! The elements live in a `memfd` mapped `MAP_SHARED`, after a small header
//! that records the element size, alignment, count and a hash of the type's
//! name, so a child that maps a descriptor of another type gets a decode
//! error instead of garbage. `Value`/`Array` pair it with an
//! [`RLock`](crate::ipc::sync::RLock).
//!
//! Why `bytemuck::Pod` for the element type: another process can write any
//! bytes into the region, so `T` must be valid for every bit pattern and hold
//! no pointers (which would be meaningless in another address space) and no
//! interior mutability. That is exactly `Pod`, a well-kept, dependency-free
//! marker with a derive for `#[repr(C)]` structs — the counterpart of
//! Python's ctypes types and `Structure`s — where a home-made sealed trait
//! would only cover the primitive numbers.

use std::error::Error;
use std::fmt;

use bytemuck::Pod;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod array;
mod data;
mod locked;
mod value;

pub use array::{Array, ArrayGuard, RawArray};
pub use value::{RawValue, Value, ValueGuard};

use data::Data;
use locked::Locked;

use crate::ipc::sync::RLock;

/// An index or slice outside a shared [`Array`] (Python's `IndexError`).
///
/// # Examples
///
/// ```
/// let a = spindle::ipc::Array::<u8>::zeroed(2)?;
/// let err = a.set(2, 1).unwrap_err();
/// assert_eq!((err.index(), err.len()), (2, 2));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IndexError {
    index: usize,
    len: usize,
}

impl IndexError {
    /// The offending index (the end of an offending range).
    pub fn index(&self) -> usize {
        self.index
    }

    /// The array's length.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.len
    }
}

impl fmt::Display for IndexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "array index out of range ({} for length {})",
            self.index, self.len
        )
    }
}

impl Error for IndexError {}

struct DataRef<'a, T>(&'a Data<T>);

impl<T: Pod> Serialize for DataRef<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

struct DataOwned<T>(Data<T>);

impl<'de, T: Pod> Deserialize<'de> for DataOwned<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Data::deserialize(d).map(DataOwned)
    }
}

fn serialize_locked<T: Pod, S: Serializer>(l: &Locked<T>, s: S) -> Result<S::Ok, S::Error> {
    (&l.lock, DataRef(&l.data)).serialize(s)
}

fn deserialize_locked<'de, T: Pod, D: Deserializer<'de>>(d: D) -> Result<Locked<T>, D::Error> {
    let (lock, DataOwned(data)) = <(RLock, DataOwned<T>)>::deserialize(d)?;
    Ok(Locked { data, lock })
}

// Handles travel as descriptors: none under miri.
#[cfg(all(test, not(miri)))]
mod tests {
    use super::*;
    use crate::ipc::fdpass;
    use crate::ipc::sync::{Event, Lock};

    fn roundtrip<A: Serialize, B: for<'de> Deserialize<'de>>(a: &A) -> Result<B, postcard::Error> {
        let (bytes, fds) = fdpass::collect(|| postcard::to_allocvec(a).unwrap());
        fdpass::provide(fds, || postcard::from_bytes(&bytes))
    }

    #[test]
    fn a_received_handle_is_checked() {
        let v = Value::new(5u64).unwrap();
        let same: Value<u64> = roundtrip(&v).unwrap();
        same.store(7);
        assert_eq!(v.load(), 7);
        assert!(roundtrip::<_, Value<u32>>(&v).is_err(), "other size");
        assert!(roundtrip::<_, Value<i64>>(&v).is_err(), "other type");
        let a = Array::from_slice(&[1u64, 2]).unwrap();
        assert!(roundtrip::<_, Value<u64>>(&a).is_err(), "array as value");
        let raw: RawArray<u64> = roundtrip(&RawArray::from_slice(&[3u64]).unwrap()).unwrap();
        assert_eq!(raw.to_vec(), [3]);
        assert!(
            roundtrip::<_, Event>(&Lock::new().unwrap()).is_err(),
            "other kind"
        );
        // Outside a task call a handle cannot be encoded at all.
        assert!(postcard::to_allocvec(&v).is_err());
    }
}
