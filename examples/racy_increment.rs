//! "The GIL does not make code thread-safe": in Python, `n += 1` from 100
//! threads sometimes prints 99 or 98, because the read-modify-write is not
//! atomic.
//!
//! Safe Rust will not compile a plain shared `n += 1`; the same bug written
//! in safe Rust is a separate load and store on an atomic. Each thread here
//! does it many times (one increment per thread rarely collides), then the
//! fixes: `fetch_add` (one atomic read-modify-write) and a `Mutex`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};

use spindle::thread;

const THREADS: u64 = 100;
const PER_THREAD: u64 = 5_000;

/// Runs `body` in 100 threads released together; returns when all are done.
fn in_100_threads(
    body: impl Fn() + Send + Sync + 'static,
) -> Result<(), Box<dyn std::error::Error>> {
    let body = Arc::new(body);
    let gate = Arc::new(Barrier::new(THREADS as usize));
    let mut threads = Vec::new();
    for _ in 0..THREADS {
        let (body, gate) = (Arc::clone(&body), Arc::clone(&gate));
        threads.push(thread::spawn(move || {
            gate.wait();
            body();
        })?);
    }
    for t in threads {
        t.join()?;
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let expected = THREADS * PER_THREAD;

    // The bug: read, add, write back. Another thread's write in between is lost.
    let n = Arc::new(AtomicU64::new(0));
    let m = Arc::clone(&n);
    in_100_threads(move || {
        for _ in 0..PER_THREAD {
            let v = m.load(Ordering::Relaxed);
            // Widen the gap between read and write a little, as the Python
            // program's `sleep(0.0001)` does, so the race shows even on a
            // busy machine.
            for _ in 0..5 {
                std::hint::spin_loop();
            }
            m.store(v + 1, Ordering::Relaxed); // n += 1, not atomic
        }
    })?;
    let racy = n.load(Ordering::Relaxed);
    println!(
        "load + store : {racy} (expected {expected}, lost {} updates)",
        expected - racy
    );
    if racy == expected {
        println!("  (no update was lost this run; the race is still there)");
    }

    // Fix 1: one atomic read-modify-write.
    let n = Arc::new(AtomicU64::new(0));
    let m = Arc::clone(&n);
    in_100_threads(move || {
        for _ in 0..PER_THREAD {
            m.fetch_add(1, Ordering::Relaxed);
        }
    })?;
    let atomic = n.load(Ordering::Relaxed);
    println!("fetch_add    : {atomic}");

    // Fix 2: a lock around n += 1 (Python's fix).
    let n = Arc::new(Mutex::new(0u64));
    let m = Arc::clone(&n);
    in_100_threads(move || {
        for _ in 0..PER_THREAD {
            *m.lock().unwrap() += 1;
        }
    })?;
    let locked = *n.lock().unwrap();
    println!("Mutex        : {locked}");
    assert_eq!(atomic, expected);
    assert_eq!(locked, expected);
    Ok(())
}
