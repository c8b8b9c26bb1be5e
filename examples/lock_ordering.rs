//! "Locking with deadlock avoidance" (Python Cookbook, recipe 12.5): every lock
//! gets a unique id and several locks are only ever taken in ascending id
//! order, through `acquire(*locks)`.
//!
//! `thread_1` asks for `acquire(x_lock, y_lock)` and `thread_2` for
//! `acquire(y_lock, x_lock)`: taken as written, the two would deadlock; sorted,
//! they cannot. The recipe's threads loop forever (daemons); here each does
//! `ROUNDS` rounds and prints the first few. Then the recipe's check: a thread
//! holding `y_lock` that asks for `x_lock` gets the "Lock Order Violation"
//! (Python: `RuntimeError`; spindle: `AcquireError::Violation`).

use spindle::lockorder::{self, AcquireError, acquire};
use spindle::sync::Lock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::thread;

const ROUNDS: u64 = 20_000;
const SHOWN: u64 = 3;

/// The recipe's thread_1/thread_2 body:
/// `with acquire(first, second): print(...)`.
fn worker(first: &str, locks: (&Lock, &Lock), count: &AtomicU64) {
    let name = thread::current().name().unwrap_or("?").to_owned();
    for i in 0..ROUNDS {
        let _both = acquire(locks).expect("nothing else is held");
        if i < SHOWN {
            println!("{name} (asked for {first} first)");
        }
        count.fetch_add(1, Relaxed);
    }
}

fn main() {
    // Ids are handed out on first use: x_lock gets the smaller one.
    let x_lock = Lock::new();
    let y_lock = Lock::new();
    lockorder::set_name(&x_lock, "x_lock");
    lockorder::set_name(&y_lock, "y_lock");
    println!("x_lock is {}, y_lock is {}", x_lock.id(), y_lock.id());

    let counts = [AtomicU64::new(0), AtomicU64::new(0)];
    thread::scope(|s| {
        let (x, y, counts) = (&x_lock, &y_lock, &counts);
        thread::Builder::new()
            .name("Thread-1".into())
            .spawn_scoped(s, move || worker("x_lock", (x, y), &counts[0]))
            .expect("spawn");
        thread::Builder::new()
            .name("Thread-2".into())
            .spawn_scoped(s, move || worker("y_lock", (y, x), &counts[1]))
            .expect("spawn");
    });
    println!(
        "no deadlock: Thread-1 ran {} rounds, Thread-2 ran {} rounds, \
         each taking the locks in opposite orders",
        counts[0].load(Relaxed),
        counts[1].load(Relaxed)
    );

    // The violation: holding y_lock (via acquire), ask for x_lock.
    let _y = acquire(&y_lock).expect("free");
    match acquire(&x_lock) {
        Err(AcquireError::Violation(v)) => println!("RuntimeError: {v}"),
        other => panic!("expected a Lock Order Violation, got {other:?}"),
    }
    assert!(!x_lock.is_locked(), "nothing was taken");
}
