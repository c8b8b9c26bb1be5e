//! Python's three start methods, chosen with `get_context` (or
//! `set_start_method`), and what each costs to start and join a child.

use std::time::Instant;

use spindle::process::{ProcessError, StartMethod, get_context, set_start_method};

#[spindle::task]
fn action(name: String, add: Vec<String>) {
    println!("{name}");
    for arc in add {
        println!("{arc} --current process {}", std::process::id());
    }
}

fn main() -> Result<(), ProcessError> {
    println!("current process id: {}", std::process::id());
    let my_tuple: Vec<String> = ["python", "shell"]
        .iter()
        .map(|s| format!("http://forwardpeng.club/{s}/"))
        .collect();
    for method in [
        StartMethod::Spawn,
        StartMethod::Fork,
        StartMethod::ForkServer,
    ] {
        let ctx = get_context(method);
        let t = Instant::now();
        let mut p = ctx
            .process()
            .task(action::call(
                format!("my_process ({})", method.name()),
                my_tuple.clone(),
            ))
            .start()?;
        p.join()?;
        println!("{:>10}: start + join took {:?}", method.name(), t.elapsed());
    }
    // The program-wide default (Python's set_start_method).
    set_start_method(StartMethod::Spawn);
    let mut p = spindle::process::Process::new(action::call("default spawn".into(), vec![]));
    p.start()?;
    p.join()?;
    println!("default method now: {:?}", p.start_method());
    Ok(())
}
