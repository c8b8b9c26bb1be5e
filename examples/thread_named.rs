//! Python's `threading` module: two named threads printing their args,
//! each line prefixed with `threading.current_thread().name`.

use std::time::Duration;

use spindle::thread::{self, Thread};

/// The Python program sleeps `random.random()` seconds; a small
/// pseudo-random pause keeps the interleaving without a dependency.
fn pause(seed: &str) -> Duration {
    let h = seed
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    Duration::from_millis(10 + h % 40)
}

fn thread_run(args: &[&str]) {
    let name = thread::current_thread().name().to_owned();
    println!("{name} is running...");
    for i in args {
        println!("{name} args: {i}");
        std::thread::sleep(pause(i));
    }
    println!("{name} ended.");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("{} is running...", thread::current_thread().name());
    let t1 = Thread::builder()
        .name("Thread_1")
        .build(|| thread_run(&["a", "b", "c"]));
    let t2 = Thread::builder()
        .name("Thread_2")
        .build(|| thread_run(&["aa", "bb", "cc"]));
    t1.start()?;
    t2.start()?;
    println!(
        "active threads: {:?}",
        thread::enumerate()
            .iter()
            .map(Thread::name)
            .collect::<Vec<_>>()
    );
    t1.join()?;
    t2.join()?;
    println!("{} ended.", thread::current_thread().name());
    Ok(())
}
