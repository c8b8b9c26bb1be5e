//! Python's `multiprocessing.Pool` with a callback: `Pool(5)`, ten
//! `apply_async(func=Foo, args=(i,), callback=Bar)`, `close()`, `join()`. `Foo`
//! runs in a worker process; `Bar` runs in the parent with Foo's result, as in
//! Python.
//!
//! Python's `time.sleep(2)` is 200 ms here.

use std::time::Duration;

use spindle::process::{Callbacks, Pool};

#[spindle::task]
#[allow(non_snake_case)]
fn Foo(i: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(200));
    i + 100
}

#[allow(non_snake_case)]
fn Bar(arg: &u64) {
    // Runs in the parent process.
    println!(
        "-->exec done: {arg} (callback in pid {})",
        std::process::id()
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("parent pid {}", std::process::id());
    let pool = Pool::new(5)?; // at most five tasks run at once
    for i in 0..10 {
        pool.apply_async_with(Foo::call(i), Callbacks::new().callback(Bar))?;
        // pool.apply(Foo::call(i)) would block until each result is back.
    }
    println!("end");
    pool.close();
    pool.join()?; // waits for every task (and callback); only after close()
    Ok(())
}
