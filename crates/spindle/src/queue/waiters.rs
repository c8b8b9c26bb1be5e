//! A list of parked async tasks (their wakers), kept under the queue's mutex.
//!
//! Protocol (see `future.rs`): a pending future registers under a key; a
//! notifier removes the first entry and wakes it, so "not in the list any
//! more" means "was notified". A future dropped after being notified but
//! before it used the notification passes it on, so no wakeup is lost.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::task::Waker;

#[derive(Debug, Default)]
pub(crate) struct WaitList {
    entries: VecDeque<(u64, Waker)>,
    next_key: u64,
}

impl WaitList {
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many tasks are listed.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Registers (or refreshes) `waker` under `key`, returning the key to keep.
    pub(crate) fn register(&mut self, key: Option<u64>, waker: &Waker) -> u64 {
        if let Some(key) = key
            && let Some((_, w)) = self.entries.iter_mut().find(|(k, _)| *k == key)
        {
            if !w.will_wake(waker) {
                w.clone_from(waker);
            }
            return key;
        }
        let key = key.unwrap_or_else(|| {
            let k = self.next_key;
            self.next_key = self.next_key.wrapping_add(1);
            k
        });
        self.entries.push_back((key, waker.clone()));
        key
    }

    /// Removes `key`; returns false when it was no longer listed (it was notified).
    pub(crate) fn remove(&mut self, key: u64) -> bool {
        match self.entries.iter().position(|(k, _)| *k == key) {
            Some(i) => {
                self.entries.remove(i);
                true
            }
            None => false,
        }
    }

    /// Takes the longest-waiting task's waker, to wake after unlocking.
    #[inline]
    pub(crate) fn take_one(&mut self) -> Option<Waker> {
        self.entries.pop_front().map(|(_, w)| w)
    }

    /// Takes every waker, to wake after unlocking.
    pub(crate) fn take_all(&mut self) -> Vec<Waker> {
        self.entries.drain(..).map(|(_, w)| w).collect()
    }
}
