//! Python's `multiprocessing.Pool` as two tutorials show it: `Pool(5)` running
//! 8 tasks with `apply_async` (non-blocking; five run at once, the other three
//! wait for a free worker), then the same with the blocking `apply`.
//!
//! The Python programs sleep up to 3 s (one of them 50 s) per task; here up
//! to 300 ms.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use spindle::process::Pool;

#[spindle::task]
fn fun(num: u64) {
    println!("child process {num} Running ({})", std::process::id());
    let start = Instant::now();
    // Python's random.random() * 3 s, from the clock (no rand dependency).
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    std::thread::sleep(Duration::from_millis(u64::from(nanos % 300)));
    println!(
        "child process {num} runs {:.2} seconds.",
        start.elapsed().as_secs_f64()
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("Parent process {}.", std::process::id());
    let p = Pool::new(5)?;
    for i in 0..8 {
        p.apply_async(fun::call(i))?; // non-blocking
    }
    println!("Waiting for All child process finished...");
    p.close(); // no more tasks; the queued ones still run
    p.join()?; // only after close() (or terminate())
    println!("All child process finished.");

    println!("-- the same with the blocking apply --");
    let p = Pool::new(5)?;
    for i in 0..8 {
        p.apply(fun::call(i))?; // blocks: one task at a time
    }
    p.close();
    p.join()?;
    println!("All child process finished.");
    Ok(())
}
