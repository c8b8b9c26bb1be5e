//! [`RawWord`]: an atomic word seen as a `usize`, whatever its width.
#![forbid(unsafe_code)]

use std::sync::atomic::Ordering;

use crate::loom::sync::atomic::{AtomicU32, AtomicUsize};

/// An atomic word of a scope's memory, read and written as `usize` (a
/// process scope's words are 32 bits wide, as futexes need).
pub trait RawWord: Send + Sync + 'static {
    /// The largest value the word holds.
    const MAX: usize;
    /// Loads the value.
    fn load(&self, order: Ordering) -> usize;
    /// Stores `v` (at most [`MAX`](RawWord::MAX)).
    fn store(&self, v: usize, order: Ordering);
    /// Compare-and-swap.
    fn compare_exchange(
        &self,
        current: usize,
        new: usize,
        success: Ordering,
        failure: Ordering,
    ) -> Result<usize, usize>;
    /// Compare-and-swap that may fail spuriously.
    fn compare_exchange_weak(
        &self,
        current: usize,
        new: usize,
        success: Ordering,
        failure: Ordering,
    ) -> Result<usize, usize>;
    /// Adds `v`, wrapping; the old value.
    fn fetch_add(&self, v: usize, order: Ordering) -> usize;
    /// Subtracts `v`, wrapping; the old value.
    fn fetch_sub(&self, v: usize, order: Ordering) -> usize;
}

impl RawWord for AtomicUsize {
    const MAX: usize = usize::MAX;
    #[inline(always)]
    fn load(&self, order: Ordering) -> usize {
        AtomicUsize::load(self, order)
    }
    #[inline(always)]
    fn store(&self, v: usize, order: Ordering) {
        AtomicUsize::store(self, v, order)
    }
    #[inline(always)]
    fn compare_exchange(
        &self,
        current: usize,
        new: usize,
        success: Ordering,
        failure: Ordering,
    ) -> Result<usize, usize> {
        AtomicUsize::compare_exchange(self, current, new, success, failure)
    }
    #[inline(always)]
    fn compare_exchange_weak(
        &self,
        current: usize,
        new: usize,
        success: Ordering,
        failure: Ordering,
    ) -> Result<usize, usize> {
        AtomicUsize::compare_exchange_weak(self, current, new, success, failure)
    }
    #[inline(always)]
    fn fetch_add(&self, v: usize, order: Ordering) -> usize {
        AtomicUsize::fetch_add(self, v, order)
    }
    #[inline(always)]
    fn fetch_sub(&self, v: usize, order: Ordering) -> usize {
        AtomicUsize::fetch_sub(self, v, order)
    }
}

/// Takes one from `word` if it is positive, reading it first with `load`
/// and taking with `success`; whether it took one (a permit, a notification).
#[inline]
pub(crate) fn take_one<W: RawWord>(word: &W, load: Ordering, success: Ordering) -> bool {
    let mut v = word.load(load);
    while v > 0 {
        match word.compare_exchange_weak(v, v - 1, success, Ordering::Relaxed) {
            Ok(_) => return true,
            Err(now) => v = now,
        }
    }
    false
}

/// Narrows a value for a 32-bit word; callers keep values within
/// [`RawWord::MAX`], so the cast never truncates a value in use.
#[inline(always)]
fn narrow(v: usize) -> u32 {
    debug_assert!(
        v <= u32::MAX as usize,
        "value {v} does not fit a 32-bit word"
    );
    v as u32
}

impl RawWord for AtomicU32 {
    const MAX: usize = u32::MAX as usize;
    #[inline(always)]
    fn load(&self, order: Ordering) -> usize {
        AtomicU32::load(self, order) as usize
    }
    #[inline(always)]
    fn store(&self, v: usize, order: Ordering) {
        AtomicU32::store(self, narrow(v), order)
    }
    #[inline(always)]
    fn compare_exchange(
        &self,
        current: usize,
        new: usize,
        success: Ordering,
        failure: Ordering,
    ) -> Result<usize, usize> {
        AtomicU32::compare_exchange(self, narrow(current), narrow(new), success, failure)
            .map(|v| v as usize)
            .map_err(|v| v as usize)
    }
    #[inline(always)]
    fn compare_exchange_weak(
        &self,
        current: usize,
        new: usize,
        success: Ordering,
        failure: Ordering,
    ) -> Result<usize, usize> {
        AtomicU32::compare_exchange_weak(self, narrow(current), narrow(new), success, failure)
            .map(|v| v as usize)
            .map_err(|v| v as usize)
    }
    #[inline(always)]
    fn fetch_add(&self, v: usize, order: Ordering) -> usize {
        AtomicU32::fetch_add(self, v as u32, order) as usize
    }
    #[inline(always)]
    fn fetch_sub(&self, v: usize, order: Ordering) -> usize {
        AtomicU32::fetch_sub(self, v as u32, order) as usize
    }
}
