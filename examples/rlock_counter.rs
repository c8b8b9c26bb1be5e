//! Python's `threading.RLock`: two named threads count a shared number to 5
//! under an `RLock` with explicit `acquire()`/`release()`.
//!
//! The port also re-enters the lock (a helper that locks again while the caller
//! holds it), which is what makes it an RLock. (Python: `threading.RLock`.)

use spindle::sync::RLock;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::thread;

static MYLOCK: RLock = RLock::new();
static NUM: AtomicU32 = AtomicU32::new(0);

fn name() -> String {
    thread::current().name().unwrap_or("?").to_owned()
}

/// Increments under the lock; called with the lock already held (re-entry).
fn increment() {
    MYLOCK.acquire();
    NUM.store(NUM.load(Relaxed) + 1, Relaxed);
    MYLOCK.release().expect("owner releases");
}

fn run() {
    loop {
        MYLOCK.acquire();
        let num = NUM.load(Relaxed);
        println!("{} locked, Number: {num}", name());
        if num >= 5 {
            MYLOCK.release().expect("owner releases");
            println!("{} released, Number: {num}", name());
            break;
        }
        increment(); // re-enters the RLock: depth 2
        println!("{} released, Number: {}", name(), NUM.load(Relaxed));
        MYLOCK.release().expect("owner releases");
    }
}

fn main() {
    let threads: Vec<_> = ["Thread_1", "Thread_2"]
        .into_iter()
        .map(|n| {
            thread::Builder::new()
                .name(n.into())
                .spawn(run)
                .expect("spawn")
        })
        .collect();
    for t in threads {
        t.join().expect("thread panicked");
    }
    assert_eq!(NUM.load(Relaxed), 5);
}
