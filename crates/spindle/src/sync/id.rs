//! [`LockId`]: the identity lock-order checking orders locks by.
#![forbid(unsafe_code)]

use std::fmt;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A stable, process-unique identity of a [`Lock`](super::Lock) or [`RLock`](super::RLock),
/// assigned on first use and never reused (Python code orders locks by
/// `id(lock)`; this is the Rust twin, and the key lock-order checking uses).
///
/// # Examples
///
/// ```
/// use spindle::sync::Lock;
///
/// let (a, b) = (Lock::new(), Lock::new());
/// assert_ne!(a.id(), b.id());
/// assert_eq!(a.id(), a.id());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LockId(NonZeroU64);

impl LockId {
    /// The id as a number.
    pub fn get(self) -> u64 {
        self.0.get()
    }

    /// Reads the id stored in `slot`, assigning the next free one on first use.
    pub(crate) fn of(slot: &AtomicU64) -> LockId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let mut id = slot.load(Relaxed);
        if id == 0 {
            let fresh = NEXT.fetch_add(1, Relaxed);
            id = match slot.compare_exchange(0, fresh, Relaxed, Relaxed) {
                Ok(_) => fresh,
                Err(won) => won,
            };
        }
        LockId(NonZeroU64::new(id).unwrap_or(NonZeroU64::MIN))
    }
}

impl fmt::Display for LockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lock#{}", self.0)
    }
}
