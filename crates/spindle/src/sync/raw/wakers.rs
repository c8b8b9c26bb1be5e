//! The async hook of the thread scope: wakers registered under a word's
//! address, woken by the same `wake` that unparks threads.
//!
//! Written against the crate's `loom` shim (its atomics and mutex are
//! loom's under `--cfg loom`), so the async wake paths of the lock word and
//! the condition's tickets are model-checked with the objects
//! (`generic/loom_model.rs`).
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::sync::atomic::Ordering::SeqCst;
use std::task::Waker;

use crate::loom::sync::Mutex;
use crate::loom::sync::atomic::{AtomicU64, AtomicUsize};

/// The wakers registered under one key, oldest first, with their ids.
type Waiting = Vec<(u64, Waker)>;

/// Wakers waiting on words, by address. Empty costs `wake` one load.
#[derive(Debug)]
pub(crate) struct WakerTable {
    /// Registrations alive; `wake` skips the table while it is 0.
    live: AtomicUsize,
    next: AtomicU64,
    map: Mutex<Option<HashMap<usize, Waiting>>>,
}

/// A registration in a [`WakerTable`]; dropping it withdraws it.
#[derive(Debug)]
pub struct Watch {
    table: &'static WakerTable,
    key: usize,
    id: u64,
    done: bool,
}

impl WakerTable {
    crate::loom::const_fn! {
        pub(crate) fn new() -> WakerTable {
            WakerTable {
                live: AtomicUsize::new(0),
                next: AtomicU64::new(1),
                map: Mutex::new(None),
            }
        }
    }

    /// Registers `waker` under `key` unless `still()` (checked after the
    /// registration is visible to `wake`) says the word already changed.
    pub(crate) fn watch(
        &self,
        this: &'static WakerTable,
        key: usize,
        still: impl FnOnce() -> bool,
        waker: &Waker,
    ) -> Option<Watch> {
        // Announce first (SeqCst), then check the word: a waker that changed
        // the word before our check is seen by the check; one that changes
        // it after sees `live > 0` and takes the table's lock, which orders
        // it after our insertion.
        self.live.fetch_add(1, SeqCst);
        // A lock word's unlock clears `LOCKED` with a `Release` CAS (and
        // `PARKED` relaxed), then fences (`SeqCst`) and reads `live`
        // (`RawLock::unlock_slow`). C++20's fence rules already order that
        // against the `SeqCst` increment above and the `SeqCst` check below;
        // this fence makes the pair fence-to-fence, the form loom models
        // (its `SeqCst` fences synchronise only with each other:
        // `loom_model_lock_async_cancelled_waiter_loses_no_wake` reports a
        // false deadlock without it). One fence per async registration.
        crate::loom::sync::atomic::fence(SeqCst);
        let id = self.next.fetch_add(1, SeqCst);
        let mut map = self.map.lock();
        if !still() {
            drop(map);
            self.live.fetch_sub(1, SeqCst);
            return None;
        }
        map.get_or_insert_with(HashMap::new)
            .entry(key)
            .or_default()
            .push((id, waker.clone()));
        Some(Watch {
            table: this,
            key,
            id,
            done: false,
        })
    }

    /// Wakes up to `n` wakers registered under `key` (`usize::MAX`: all),
    /// oldest first.
    #[inline]
    pub(crate) fn wake(&self, key: usize, n: usize) {
        if self.live.load(SeqCst) != 0 {
            self.wake_slow(key, n);
        }
    }

    #[cold]
    fn wake_slow(&self, key: usize, n: usize) {
        let woken: Vec<Waker> = {
            let mut map = self.map.lock();
            let Some(list) = map.as_mut().and_then(|m| m.get_mut(&key)) else {
                return;
            };
            let k = n.min(list.len());
            let woken = list.drain(..k).map(|(_, w)| w).collect();
            if list.is_empty() {
                map.as_mut().map(|m| m.remove(&key));
            }
            woken
        };
        self.live.fetch_sub(woken.len(), SeqCst);
        // Outside the lock: a waker may run code (an executor's schedule).
        woken.into_iter().for_each(Waker::wake);
    }

    /// Removes registration `id` under `key`; whether it was still there.
    fn remove(&self, key: usize, id: u64) -> bool {
        let mut map = self.map.lock();
        let Some(list) = map.as_mut().and_then(|m| m.get_mut(&key)) else {
            return false;
        };
        let Some(i) = list.iter().position(|(i, _)| *i == id) else {
            return false;
        };
        list.remove(i);
        if list.is_empty() {
            map.as_mut().map(|m| m.remove(&key));
        }
        drop(map);
        self.live.fetch_sub(1, SeqCst);
        true
    }
}

impl Watch {
    /// Withdraws the registration; whether it was still pending.
    pub(crate) fn cancel(mut self) -> bool {
        self.done = true;
        self.table.remove(self.key, self.id)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if !self.done {
            self.table.remove(self.key, self.id);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::util::testing::flag_waker as waker;

    static TABLE: WakerTable = WakerTable::new();

    #[test]
    fn a_wake_reaches_a_watcher_once() {
        let (flag, w) = waker();
        let watch = TABLE.watch(&TABLE, 1, || true, &w).unwrap();
        TABLE.wake(2, usize::MAX); // another word
        assert!(!flag.woken());
        TABLE.wake(1, 1);
        assert!(flag.woken());
        // One-shot: it is gone.
        assert!(!watch.cancel());
    }

    #[test]
    fn a_changed_word_registers_nothing_and_cancel_withdraws() {
        let (flag, w) = waker();
        assert!(TABLE.watch(&TABLE, 3, || false, &w).is_none());
        let watch = TABLE.watch(&TABLE, 3, || true, &w).unwrap();
        assert!(watch.cancel());
        TABLE.wake(3, usize::MAX);
        assert!(!flag.woken());
        // Dropping withdraws too.
        drop(TABLE.watch(&TABLE, 3, || true, &w).unwrap());
        TABLE.wake(3, usize::MAX);
        assert!(!flag.woken());
    }
}
