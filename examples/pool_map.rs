//! Python's `Pool.map`: `with multiprocessing.Pool(4) as pool:
//! results = pool.map(fun, (3, 6, 9))`. Leaving the block drops the pool,
//! which terminates it — as Python's `with Pool()` does.

use spindle::process::Pool;

#[spindle::task]
fn fun(num: u64) -> u64 {
    let mut mysum = 0;
    for i in 0..num {
        println!("({})process is running: {i}", std::process::id());
        mysum += i;
    }
    mysum
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let results = {
        let pool = Pool::new(4)?;
        // Three items: three tasks, results in input order.
        pool.map(fun::call, [3, 6, 9])?
    }; // <- the pool is dropped (terminated) here
    for item in results {
        println!("{item}");
    }
    Ok(())
}
