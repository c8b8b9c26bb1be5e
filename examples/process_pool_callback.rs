//! Python Cookbook recipe 12.8: `with ProcessPoolExecutor() as pool:` —
//! `pool.submit(work, arg)` then `result()` (blocks), and
//! `add_done_callback(when_done)` (does not block; the callback receives the
//! Future and runs in this process).

use spindle::futures::{Executor, Future};
use spindle::process::ProcessPoolExecutor;

#[spindle::task]
fn work(x: u64) -> u64 {
    // Some CPU-bound work: the sum of the digits of x^2..x^2+10^6.
    (x * x..x * x + 1_000_000).map(|n| n % 10).sum()
}

fn when_done(r: &Future<u64>) {
    println!(
        "Got: {:?} (callback in pid {})",
        r.result(),
        std::process::id()
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("parent pid {}", std::process::id());
    {
        let pool = ProcessPoolExecutor::new()?;
        // Example of submitting work to the pool
        let future_result = pool.submit(work::call(7))?;
        // Obtaining the result (blocks until done)
        let r = future_result.result()?;
        println!("result: {r}");
    }
    {
        let pool = ProcessPoolExecutor::new()?;
        let future_result = pool.submit(work::call(8))?;
        future_result.add_done_callback(when_done);
    } // leaving the block is shutdown(wait=True): the callback has run
    Ok(())
}
