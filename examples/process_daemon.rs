//! Python's daemon processes: a daemon process ends with the main program.
//!
//! `p1` is a daemon: when `main` returns, spindle's exit hook terminates it
//! (so "end123" is never printed) and waits for the non-daemon `p2` (so
//! "end456" is), as Python's `multiprocessing` does at exit. A daemon is also
//! killed if its parent is killed (parent-death signal), and may not start
//! children of its own.

use std::time::Duration;

use spindle::process::{Process, ProcessError};

#[spindle::task]
fn foo() {
    println!("123");
    std::thread::sleep(Duration::from_millis(1000));
    println!("end123");
}

#[spindle::task]
fn bar() {
    println!("456");
    std::thread::sleep(Duration::from_millis(1500));
    println!("end456");
}

fn main() -> Result<(), ProcessError> {
    let mut p1 = Process::builder().task(foo::call()).daemon(true).build();
    let mut p2 = Process::new(bar::call());
    p1.start()?;
    p2.start()?;
    // Let both children print their first line before main ends.
    std::thread::sleep(Duration::from_millis(200));
    println!("main-------");
    // Main ends here: p1 (daemon) is terminated, p2 is waited for.
    Ok(())
}
