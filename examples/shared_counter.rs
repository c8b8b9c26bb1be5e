//! Python Cookbook recipe 12.4: `SharedCounter`, a counter shared by many
//! threads, each update inside `with self._value_lock:`.
//!
//! The value is read and then written (two steps, like Python's `+=`), which
//! loses updates unless the `Lock` serialises it. (Python: `threading.Lock`;
//! in Rust the usual tool for guarding data is `Mutex<T>`; this port keeps the
//! recipe's lock-beside-the-value shape.)

use spindle::sync::Lock;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::thread;

/// A counter object that can be shared by multiple threads.
struct SharedCounter {
    value: AtomicI64,
    value_lock: Lock,
}

impl SharedCounter {
    fn new(initial_value: i64) -> Self {
        SharedCounter {
            value: AtomicI64::new(initial_value),
            value_lock: Lock::new(),
        }
    }

    /// Increment the counter with locking.
    fn incr(&self, delta: i64) {
        let _held = self.value_lock.lock();
        self.value.store(self.value.load(Relaxed) + delta, Relaxed);
    }

    /// Decrement the counter with locking.
    fn decr(&self, delta: i64) {
        let _held = self.value_lock.lock();
        self.value.store(self.value.load(Relaxed) - delta, Relaxed);
    }
}

fn main() {
    let counter = SharedCounter::new(0);
    thread::scope(|s| {
        for _ in 0..10 {
            s.spawn(|| (0..10_000).for_each(|_| counter.incr(1)));
        }
        for _ in 0..5 {
            s.spawn(|| (0..10_000).for_each(|_| counter.decr(1)));
        }
    });
    let value = counter.value.load(Relaxed);
    println!("10 threads x 10000 incr, 5 threads x 10000 decr -> value = {value} (expected 50000)");
    assert_eq!(value, 50_000);
}
