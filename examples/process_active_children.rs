//! Python's `multiprocessing.active_children()`: start 8 children, list them
//! with `active_children()`, wait for them all.

use std::time::Duration;

use spindle::process::{Process, ProcessError, active_children};

#[spindle::task]
fn fun(num: u32) {
    println!("process {num}");
    // Stay alive a moment so the parent can list us.
    std::thread::sleep(Duration::from_millis(300));
}

fn main() -> Result<(), ProcessError> {
    println!("Parent process {}.", std::process::id());
    let mut procs = Vec::new();
    for i in 0..8 {
        procs.push(Process::builder().task(fun::call(i + 1)).start()?);
    }
    let active = active_children();
    for p in &active {
        println!(
            "child process name is: {} child process id: {}",
            p.name, p.pid
        );
    }
    println!(
        "{} children running. Waiting for all child processes to finish.",
        active.len()
    );
    for p in &mut procs {
        p.join()?;
    }
    assert!(active_children().is_empty());
    println!("Parent process finished.");
    Ok(())
}
