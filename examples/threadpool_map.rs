//! Python's `Executor.map`: `pool.map(action, (50, 100, 150))` on a 4-thread
//! pool. The tasks run concurrently, yet the results come back in input order.

use spindle::futures::{Executor, ThreadPoolExecutor};
use spindle_examples::tprintln;

fn action(max: u64) -> u64 {
    let mut my_sum = 0;
    for i in 0..max {
        tprintln!("{i}");
        my_sum += i;
    }
    my_sum
}

fn main() {
    let pool = ThreadPoolExecutor::builder()
        .max_workers(4)
        .build()
        .unwrap();
    // Three items: three tasks start at once.
    let results = pool.map(action, [50, 100, 150]).expect("the pool is open");
    println!("--------------");
    for r in results {
        // action(50) first, then action(100), then action(150), whatever
        // order they finished in.
        println!("{}", r.expect("action does not fail"));
    }
}
