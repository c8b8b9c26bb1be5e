//! Python's `Process(target=fun, args=...)`: run a function in a child
//! process, then join it.
//!
//! The function is a task (`#[spindle::task]`): Python's "target must be
//! picklable" becomes "arguments and result are serde types".

use spindle::process::{Process, ProcessError};

#[spindle::task]
fn fun(name: String) {
    println!("Run child process {name} ({})...", std::process::id());
    println!("hello {name}");
}

#[spindle::task]
fn action(name: String, add: Vec<String>) {
    println!("{name}");
    for arc in add {
        println!("{arc} --current process {}", std::process::id());
    }
}

fn main() -> Result<(), ProcessError> {
    // A child runs `fun`.
    println!("Parent process {}.", std::process::id());
    let mut p = Process::new(fun::call("zhang".into()));
    p.start()?;
    println!("Child process will start. {}", p.name());
    p.join()?;
    println!("Parent process finished.");

    // The child and the parent run the same function.
    let my_tuple: Vec<String> = ["python", "shell", "java"]
        .iter()
        .map(|s| format!("http://forwardpeng.club/{s}/"))
        .collect();
    let mut my_process = Process::new(action::call("my_process process".into(), my_tuple.clone()));
    my_process.start()?;
    my_process.join()?; // joined first so the output does not interleave
    action("main process".into(), my_tuple);
    Ok(())
}
