//! Python's `multiprocessing.Queue`: a writer and a reader process; the reader
//! loops forever and is terminated at the end.
//!
//! The Python program terminates the reader as soon as the writer is done,
//! which may cut off its last lines; here the reader marks each item
//! `task_done` and the parent `join`s the queue first, so every item is
//! printed.

use std::time::Duration;

use spindle::ipc::{JoinableQueue, Queue};
use spindle::process::Process;

#[spindle::task]
fn write(q: JoinableQueue<String>) {
    for i in ["A", "B", "C", "D", "E"] {
        println!("Put {i} to queue");
        q.put(i.to_string()).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[spindle::task]
fn read(q: JoinableQueue<String>) {
    loop {
        let v = q.get().unwrap();
        println!("get {v} from queue");
        q.task_done().unwrap();
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let q = Queue::new()?;
    let mut pw = Process::new(write::call(q.clone()));
    let mut pr = Process::new(read::call(q.clone()));
    println!("write process = {pw:?}");
    println!("read process = {pr:?}");
    pw.start()?;
    pr.start()?;
    pw.join()?;
    q.join(); // every item read
    pr.terminate()?;
    let e = pr.join().unwrap_err();
    println!("reader terminated: exitcode {:?} ({e})", pr.exitcode());
    Ok(())
}
