//! Python's `ThreadPoolExecutor`: `fun(n)` accumulates into a
//! thread-local `local_data.num` and prints it; three ways to run it on a
//! 2-thread pool — submit + `done()` + `shutdown()`, the `with` block, and
//! `pool.map(fun, (5, 10))`.

use std::cell::Cell;
use std::thread;
use std::time::Duration;

use spindle::futures::{Executor, ThreadPoolExecutor};
use spindle_examples::tprintln;

thread_local! {
    // Python's `local_data = local()`: each worker has its own `num`.
    static NUM: Cell<Option<u64>> = const { Cell::new(None) };
}

fn fun(n: u64) -> u64 {
    for i in 0..n {
        let num = NUM.get().map_or(i, |num| num + i);
        NUM.set(Some(num));
        tprintln!("local_data is : {num}");
    }
    NUM.get().unwrap_or(0)
}

fn main() {
    println!("== submit, done(), shutdown()");
    let pool = ThreadPoolExecutor::builder()
        .max_workers(2)
        .build()
        .unwrap();
    let task1 = pool.submit(|| fun(5)).expect("the pool is open");
    let task2 = pool.submit(|| fun(10)).expect("the pool is open");
    thread::sleep(Duration::from_millis(200)); // Python sleeps 1 s
    println!("task1: {}", task1.done());
    println!("task2: {}", task2.done());
    pool.shutdown(true, false);

    println!("== with ThreadPoolExecutor(max_workers=2) as pool");
    let (task1, task2) = {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(2)
            .build()
            .unwrap();
        (
            pool.submit(|| fun(5)).expect("the pool is open"),
            pool.submit(|| fun(10)).expect("the pool is open"),
        )
    }; // leaving the block waits for both
    println!("task1: {}", task1.done());
    println!("task2: {}", task2.done());

    println!("== pool.map(fun, (5, 10))");
    let pool = ThreadPoolExecutor::builder()
        .max_workers(2)
        .build()
        .unwrap();
    for i in pool.map(fun, [5, 10]).expect("the pool is open") {
        println!("{}", i.expect("fun does not fail"));
    }
}
