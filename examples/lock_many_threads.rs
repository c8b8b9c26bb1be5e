//! A Python mutex example: 20000 threads each do `num += 1` between
//! `lock.acquire()` and `lock.release()`; the result is exactly 20000.
//!
//! All 20000 threads are started; to spare the machine they are started in
//! waves of 1000 (each wave joined before the next), as Python's would be
//! limited by memory anyway. (Python: `threading.Lock`.)

use spindle::sync::Lock;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::thread;
use std::time::Instant;

const THREADS: usize = 20_000;
const WAVE: usize = 1_000;

fn run(lock: &Lock, num: &AtomicU64) {
    lock.acquire(); // get the lock
    num.store(num.load(Relaxed) + 1, Relaxed); // global num; num += 1
    lock.release().expect("we hold the lock"); // release the lock
}

fn main() {
    let start = Instant::now();
    let lock = Arc::new(Lock::new());
    let num = Arc::new(AtomicU64::new(0));
    let mut started = 0;
    while started < THREADS {
        let t_obj: Vec<_> = (started..(started + WAVE).min(THREADS))
            .map(|i| {
                let (lock, num) = (Arc::clone(&lock), Arc::clone(&num));
                thread::Builder::new()
                    .name(format!("t-{i}"))
                    .spawn(move || run(&lock, &num))
                    .expect("spawn a thread")
            })
            .collect();
        started += t_obj.len();
        for t in t_obj {
            t.join().expect("thread panicked");
        }
    }
    let num = num.load(Relaxed);
    println!(
        "num: {num}  ({started} threads in {:.2} s)",
        start.elapsed().as_secs_f64()
    );
    assert_eq!(num, THREADS as u64);
}
