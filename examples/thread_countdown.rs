//! Python Cookbook recipe 12.1, "Starting and Stopping Threads": run
//! `countdown(n)` in a `Thread`, look at `is_alive()`, `join()` it, then start
//! a daemon countdown that the process does not wait for when `main` returns.
//!
//! Python: `t = Thread(target=countdown, args=(10,)); t.start()`;
//! `Thread(target=countdown, args=(10,), daemon=True)`.

use std::time::Duration;

use spindle::thread::{self, Thread};

/// The recipe sleeps 5 s between ticks; 30 ms keeps the example short.
const TICK: Duration = Duration::from_millis(30);

fn countdown(n: u32) {
    for i in (1..=n).rev() {
        println!("[{}] T-minus {i}", thread::current_thread().name());
        std::thread::sleep(TICK);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Create the thread object: it does not run until start() (as in Python).
    let t = Thread::new(|| countdown(5));
    println!("created {t:?}, alive: {}", t.is_alive());
    t.start()?;

    std::thread::sleep(TICK * 2);
    if t.is_alive() {
        println!("Still running");
    } else {
        println!("Completed");
    }
    t.join()?;
    println!("after join: alive: {} -> Completed", t.is_alive());

    // A daemon thread: the process does not wait for it when main returns.
    let d = Thread::builder()
        .name("daemon-countdown")
        .daemon(true)
        .build(|| countdown(1_000));
    d.start()?;
    std::thread::sleep(TICK * 3);
    println!(
        "main returns while {:?} is still counting: it ends with the process",
        d
    );
    Ok(())
}
