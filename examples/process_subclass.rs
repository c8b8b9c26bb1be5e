//! Python's "subclass `Process` and override `run()`".
//!
//! Rust has no subclassing: the state is a serde struct with a `run` method,
//! and a one-line task runs it in the child (any start method). With the Fork
//! method a closure can call `run` directly.

use serde::{Deserialize, Serialize};
use spindle::process::{Process, ProcessError};

#[derive(Debug, Serialize, Deserialize)]
struct MySubProcess {
    name: String,
}

impl MySubProcess {
    fn run(&self) {
        println!(
            "Run child process {} ({})...",
            self.name,
            std::process::id()
        );
        println!("hello {}", self.name);
    }
}

#[spindle::task]
fn run_my_sub_process(p: MySubProcess) {
    p.run();
}

fn main() -> Result<(), ProcessError> {
    println!("Parent process {}.", std::process::id());
    let mut p = Process::builder()
        .task(run_my_sub_process::call(MySubProcess {
            name: "zhang".into(),
        }))
        .name("zhang")
        .build();
    println!("Child process will start.");
    p.start()?;
    p.join()?;

    // The same with a closure, under the Fork start method.
    let me = MySubProcess {
        name: "li (forked)".into(),
    };
    Process::builder()
        .closure(move || me.run())
        .start()?
        .join()?;
    println!("Parent process finished.");
    Ok(())
}
