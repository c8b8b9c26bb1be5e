//! A Python `multiprocessing.Pipe` example: `proc_send` and `proc_recv`
//! processes at the two ends of a Pipe.
//!
//! The receiver stops at end of file, when the sender has exited (the
//! Python program's `while True` would wait forever).

use std::time::Duration;

use spindle::ipc::{Connection, Pipe};
use spindle::process::Process;

#[spindle::task]
fn proc_send(pipe: Connection, args: Vec<String>) {
    for (i, arg) in args.into_iter().enumerate() {
        println!("process({}) send: {arg}", std::process::id());
        pipe.send(&arg).unwrap();
        std::thread::sleep(Duration::from_millis(20 + (i as u64 * 37) % 50));
    }
}

#[spindle::task]
fn proc_recv(pipe: Connection) {
    while let Ok(msg) = pipe.recv::<String>() {
        println!("process({}) rev:{msg}", std::process::id());
        std::thread::sleep(Duration::from_millis(30));
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (a, b) = Pipe(true)?;
    let args = (0..10).map(|i| format!("aa{i}")).collect();
    // The ends move into the calls: the parent keeps no copy, so the
    // receiver sees end of file once the sender is done.
    let mut p1 = Process::new(proc_send::call(a, args));
    let mut p2 = Process::new(proc_recv::call(b));
    p1.start()?;
    p2.start()?;
    p1.join()?;
    p2.join()?;
    Ok(())
}
