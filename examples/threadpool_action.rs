//! Python's `ThreadPoolExecutor`: `action(max)` sums `0..max`, printing the
//! thread name for each step; two tasks on a 2-thread pool; `done()`,
//! `result()`, `shutdown()`.

use std::thread;
use std::time::Duration;

use spindle::futures::{Executor, ThreadPoolExecutor};
use spindle_examples::tprintln;

/// The task: sum `0..max`, printing each step with the worker's name.
fn action(max: u64) -> u64 {
    let mut my_sum = 0;
    for i in 0..max {
        tprintln!("{i}");
        my_sum += i;
    }
    my_sum
}

fn main() {
    // A pool of 2 threads.
    let pool = ThreadPoolExecutor::builder()
        .max_workers(2)
        .build()
        .unwrap();
    let future1 = pool.submit(|| action(50)).expect("the pool is open");
    let future2 = pool.submit(|| action(100)).expect("the pool is open");
    // Most likely still running: done() never blocks.
    println!("{}", future1.done());
    // Python sleeps 3 s; both tasks are long done after a fraction of that.
    thread::sleep(Duration::from_millis(300));
    println!("{}", future2.done());
    // The results: result() blocks until the task is done.
    println!(
        "{} {}",
        future1.result().expect("action does not fail"),
        future2.result().expect("action does not fail")
    );
    // Close the pool: no new tasks, wait for the running ones.
    pool.shutdown(true, false);
}
