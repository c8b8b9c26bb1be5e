//! Shared data with its lock: the part `Value` and `Array` have in common.

use std::io;
use std::marker::PhantomData;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bytemuck::Pod;

use super::data::{Data, W_BORROW};
use crate::ipc::sync::RLock;
use crate::sync::Wait;

/// Elements in shared memory and the [`RLock`] that guards them.
pub(super) struct Locked<T> {
    pub(super) data: Data<T>,
    pub(super) lock: RLock,
}

impl<T> Clone for Locked<T> {
    fn clone(&self) -> Self {
        Locked {
            data: self.data.clone(),
            lock: self.lock.clone(),
        }
    }
}

impl<T: Pod> Locked<T> {
    pub(super) fn new(data: io::Result<Data<T>>, lock: Option<RLock>) -> io::Result<Self> {
        let lock = match lock {
            Some(l) => l,
            None => RLock::new()?,
        };
        Ok(Locked { data: data?, lock })
    }

    /// Acquires the lock and borrows the elements exclusively; `Err(())` if
    /// this thread already borrows them (a guard of it is alive).
    pub(super) fn try_borrow(&self, wait: Wait) -> Result<Option<Borrow<'_, T>>, ()> {
        if !self.lock.acquire_with(wait) {
            return Ok(None);
        }
        // 32 bits, like the RLock's own generation word.
        let gen_ = self.lock.generation() as u32;
        let b = self.data.word(W_BORROW);
        if b.load(Relaxed) == gen_ {
            let _ = self.lock.release();
            return Err(());
        }
        b.store(gen_, Relaxed);
        Ok(Some(Borrow {
            owner: self,
            _not_send: PhantomData,
        }))
    }

    /// Locks and borrows, waiting as long as it takes: the `lock()` of
    /// `Value` and `Array`.
    ///
    /// # Panics
    /// If this thread already borrows the elements: two `&mut` to them.
    pub(super) fn lock(&self) -> Borrow<'_, T> {
        self.borrow(Wait::Forever).expect("waits forever")
    }

    /// Locks and borrows if that can be done now: the `try_lock()` of
    /// `Value` and `Array`. `None` if another thread or process holds the
    /// lock, or if this thread already borrows the elements (as
    /// `RefCell::try_borrow_mut`).
    pub(super) fn try_lock(&self) -> Option<Borrow<'_, T>> {
        self.try_borrow(Wait::Never).ok().flatten()
    }

    /// Locks and borrows, waiting at most `timeout` (forever if it cannot
    /// be represented): the `lock_timeout()` of `Value` and `Array`.
    ///
    /// # Panics
    /// As [`lock`](Self::lock).
    pub(super) fn lock_timeout(&self, timeout: Duration) -> Option<Borrow<'_, T>> {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.lock_deadline(deadline),
            None => Some(self.lock()),
        }
    }

    /// Locks and borrows, waiting until `deadline` at the latest: the
    /// `lock_deadline()` of `Value` and `Array`.
    ///
    /// # Panics
    /// As [`lock`](Self::lock).
    pub(super) fn lock_deadline(&self, deadline: Instant) -> Option<Borrow<'_, T>> {
        self.borrow(Wait::Until(deadline))
    }

    /// [`try_borrow`](Self::try_borrow).
    ///
    /// # Panics
    /// If this thread already borrows the elements: two `&mut` to them.
    fn borrow(&self, wait: Wait) -> Option<Borrow<'_, T>> {
        self.try_borrow(wait)
            .expect("shared value already locked by a guard of this thread")
    }
}

/// An exclusive borrow of the elements, holding the lock.
pub(super) struct Borrow<'a, T> {
    owner: &'a Locked<T>,
    _not_send: PhantomData<*const ()>,
}

impl<T: Pod> Borrow<'_, T> {
    pub(super) fn slice(&self) -> &[T] {
        // SAFETY: we hold the lock and the only borrow (checked in `borrow`);
        // `len` elements are mapped, aligned, and valid for any bits (Pod).
        unsafe { std::slice::from_raw_parts(self.owner.data.ptr(), self.owner.data.len()) }
    }

    pub(super) fn slice_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `slice`, and `&mut self` makes this the only view.
        unsafe { std::slice::from_raw_parts_mut(self.owner.data.ptr(), self.owner.data.len()) }
    }
}

impl<T> Drop for Borrow<'_, T> {
    fn drop(&mut self) {
        self.owner.data.word(W_BORROW).store(0, Relaxed);
        let _ = self.owner.lock.release();
    }
}
