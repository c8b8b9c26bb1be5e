//! The shared data region behind `Value`/`Array`: a header of words, then
//! `len` elements of `T` at a fixed, aligned offset.

use std::io;
use std::marker::PhantomData;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::atomic::{AtomicU8, AtomicU32};

use bytemuck::Pod;
use serde::Deserializer;

use crate::ipc::sync::core::{Kind, Region};

const W_SIZE: usize = 1; // size_of::<T>()
const W_ALIGN: usize = 2; // align_of::<T>()
const W_LEN: usize = 3; // elements
const W_TYPE: usize = 4; // hash of type_name::<T>()
/// The RLock generation of the holding that has a guard out (0: none).
pub(super) const W_BORROW: usize = 5;
const HEADER_WORDS: usize = 6;
/// The largest alignment served (the mapping is page-aligned).
const MAX_ALIGN: usize = 4096;

/// `len` shared elements of `T`.
pub(super) struct Data<T> {
    region: Region,
    len: usize,
    _t: PhantomData<T>,
}

impl<T> Clone for Data<T> {
    fn clone(&self) -> Self {
        Data {
            region: self.region.clone(),
            len: self.len,
            _t: PhantomData,
        }
    }
}

// SAFETY: the elements are `Pod` (no pointers, no interior mutability), only
// reached through atomics, exclusively under the lock, or through atomic
// per-word copies; the mapping lives as long as the region.
unsafe impl<T: Pod> Send for Data<T> {}
// SAFETY: as above.
unsafe impl<T: Pod> Sync for Data<T> {}

fn offset<T>() -> usize {
    (HEADER_WORDS * 4).next_multiple_of(std::mem::align_of::<T>())
}

fn type_hash<T>() -> u32 {
    // FNV-1a of the type's name: catches a region of another element type.
    std::any::type_name::<T>()
        .bytes()
        .fold(0x811c_9dc5u32, |h, b| {
            (h ^ b as u32).wrapping_mul(0x0100_0193)
        })
}

fn words_for<T>(len: usize) -> io::Result<usize> {
    let bytes = std::mem::size_of::<T>()
        .checked_mul(len)
        .and_then(|b| b.checked_add(offset::<T>()))
        .filter(|&b| b <= isize::MAX as usize / 2)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "shared array too large"))?;
    Ok(bytes.div_ceil(4))
}

impl<T> Data<T> {
    pub(super) fn word(&self, i: usize) -> &crate::ipc::shm::Word {
        self.region.word(i)
    }
}

impl<T: Pod> Data<T> {
    /// `len` zeroed elements in fresh shared memory.
    pub(super) fn zeroed(len: usize) -> io::Result<Data<T>> {
        if std::mem::align_of::<T>() > MAX_ALIGN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "element alignment above 4096",
            ));
        }
        let region = Region::new(Kind::Data, words_for::<T>(len)?)?;
        let w = |i: usize, v: usize| region.word(i).store(v as u32, SeqCst);
        w(W_SIZE, std::mem::size_of::<T>());
        w(W_ALIGN, std::mem::align_of::<T>());
        w(W_LEN, len);
        region.word(W_TYPE).store(type_hash::<T>(), SeqCst);
        Ok(Data {
            region,
            len,
            _t: PhantomData,
        })
    }

    /// The elements of `init` in fresh shared memory.
    pub(super) fn from_slice(init: &[T]) -> io::Result<Data<T>> {
        let d = Data::zeroed(init.len())?;
        // SAFETY: fresh region nobody else can see yet; `len` elements fit.
        unsafe { std::ptr::copy_nonoverlapping(init.as_ptr(), d.ptr(), init.len()) };
        Ok(d)
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The first element (aligned for `T`, `len` elements mapped).
    pub(super) fn ptr(&self) -> *mut T {
        // SAFETY: `offset` is inside the mapping (words_for reserved it).
        unsafe { self.region.shm().base().as_ptr().add(offset::<T>()).cast() }
    }

    /// Reads element `i` with relaxed atomic copies (no lock: may tear
    /// between words, never undefined).
    pub(super) fn racy_read(&self, i: usize) -> T {
        assert!(i < self.len);
        let mut out = T::zeroed();
        let dst = bytemuck::bytes_of_mut(&mut out);
        // SAFETY: element `i` is inside the mapping.
        let src = unsafe { self.ptr().add(i).cast::<u8>() };
        if dst.len().is_multiple_of(4) && (src as usize).is_multiple_of(4) {
            for (k, chunk) in dst.chunks_exact_mut(4).enumerate() {
                // SAFETY: 4-aligned word inside the element, accessed only
                // atomically by unlocked readers/writers.
                let a = unsafe { &*src.add(k * 4).cast::<AtomicU32>() };
                chunk.copy_from_slice(&a.load(Relaxed).to_ne_bytes());
            }
        } else {
            for (k, b) in dst.iter_mut().enumerate() {
                // SAFETY: a byte inside the element.
                *b = unsafe { &*src.add(k).cast::<AtomicU8>() }.load(Relaxed);
            }
        }
        out
    }

    /// Writes element `i` with relaxed atomic copies.
    pub(super) fn racy_write(&self, i: usize, v: T) {
        assert!(i < self.len);
        let srcb = bytemuck::bytes_of(&v);
        // SAFETY: element `i` is inside the mapping.
        let dst = unsafe { self.ptr().add(i).cast::<u8>() };
        if srcb.len().is_multiple_of(4) && (dst as usize).is_multiple_of(4) {
            for (k, chunk) in srcb.chunks_exact(4).enumerate() {
                // SAFETY: as in `racy_read`.
                let a = unsafe { &*dst.add(k * 4).cast::<AtomicU32>() };
                a.store(
                    u32::from_ne_bytes(chunk.try_into().expect("4 bytes")),
                    Relaxed,
                );
            }
        } else {
            for (k, b) in srcb.iter().enumerate() {
                // SAFETY: a byte inside the element.
                unsafe { &*dst.add(k).cast::<AtomicU8>() }.store(*b, Relaxed);
            }
        }
    }

    pub(super) fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.region.serialize(s)
    }

    /// Maps a received region, checking that it holds `T`s.
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Data<T>, D::Error> {
        let region = Region::deserialize(d, Kind::Data, HEADER_WORDS)?;
        let r = |i: usize| region.word(i).load(SeqCst) as usize;
        let len = r(W_LEN);
        let fits = words_for::<T>(len)
            .map(|w| w <= region.shm().words())
            .unwrap_or(false);
        if r(W_SIZE) != std::mem::size_of::<T>()
            || r(W_ALIGN) != std::mem::align_of::<T>()
            || region.word(W_TYPE).load(SeqCst) != type_hash::<T>()
            || !fits
        {
            return Err(serde::de::Error::custom(format!(
                "shared data is not {} x {len}",
                std::any::type_name::<T>()
            )));
        }
        Ok(Data {
            region,
            len,
            _t: PhantomData,
        })
    }
}
