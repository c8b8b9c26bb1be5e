//! Python's `Future.add_done_callback(get_result)` instead of blocking on
//! `result()`; the main thread prints its line at once, each callback prints a
//! task's sum when it is done. The `with` block is the pool's scope: dropping
//! the pool waits for the tasks.

use spindle::futures::{Executor, Future, ThreadPoolExecutor};
use spindle_examples::tprintln;

fn action(max: u64) -> u64 {
    let mut my_sum = 0;
    for i in 0..max {
        tprintln!("{i}");
        my_sum += i;
    }
    my_sum
}

/// Python's `get_result(future)`: runs on the worker that finished the task.
fn get_result(future: &Future<u64>) {
    tprintln!(
        "callback: {}",
        future.result().expect("action does not fail")
    );
}

fn main() {
    // `with ThreadPoolExecutor(max_workers=2) as pool:`
    {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(2)
            .build()
            .unwrap();
        let future1 = pool.submit(|| action(50)).expect("the pool is open");
        let future2 = pool.submit(|| action(100)).expect("the pool is open");
        // Add the callbacks; the main thread is not blocked.
        future1.add_done_callback(get_result);
        future2.add_done_callback(get_result);
        println!("-----------");
    } // the pool is dropped here: shutdown(wait=True)
    println!("both callbacks ran; the pool is shut down");
}
