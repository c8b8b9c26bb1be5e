//! Python Cookbook recipe 12.2: `Semaphore(0)` wakes exactly one waiting worker
//! per release.
//!
//! Ten workers block in `sema.acquire()`; the main thread releases the
//! semaphore ten times, and each release lets exactly one worker through.
//! (Python: `threading.Semaphore`.)

use spindle::sync::Semaphore;
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

fn main() {
    let sema = Arc::new(Semaphore::new(0));
    let (done_tx, done_rx) = mpsc::channel();
    let nworkers = 10;
    let workers: Vec<_> = (0..nworkers)
        .map(|n| {
            let (sema, done) = (Arc::clone(&sema), done_tx.clone());
            thread::spawn(move || {
                sema.acquire(); // wait to be signalled
                println!("Working {n}");
                done.send(n).expect("main is listening");
            })
        })
        .collect();
    for i in 1..=nworkers {
        sema.release();
        let n = done_rx.recv().expect("a worker ran");
        // Nobody else may have got through on this single release.
        let extra = done_rx.recv_timeout(Duration::from_millis(20)).is_ok();
        println!(
            "release #{i} woke exactly one worker (worker {n}){}",
            if extra { " — and another!?" } else { "" }
        );
        assert!(!extra, "one release woke two workers");
    }
    for w in workers {
        w.join().expect("worker panicked");
    }
}
