//! A Python `multiprocessing.Queue` example: two writer processes and one
//! reader process share a Queue; the reader is terminated once everything was
//! read.

use std::time::Duration;

use spindle::ipc::{JoinableQueue, Queue};
use spindle::process::Process;

#[spindle::task]
fn proc_write(q: JoinableQueue<String>, args: Vec<String>) {
    println!("process({}) is writing...", std::process::id());
    for a in args {
        println!("put {a} to queue...");
        q.put(a).unwrap();
        std::thread::sleep(Duration::from_millis(60));
    }
}

#[spindle::task]
fn proc_read(q: JoinableQueue<String>) {
    println!("process({}) is reading...", std::process::id());
    loop {
        let a = q.get().unwrap();
        println!("get {a} from queue.");
        q.task_done().unwrap();
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let q = Queue::new()?;
    let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mut writer1 = Process::new(proc_write::call(q.clone(), words(&["a", "b", "c"])));
    let mut writer2 = Process::new(proc_write::call(q.clone(), words(&["aa", "bb", "cc"])));
    let mut reader = Process::new(proc_read::call(q.clone()));
    writer1.start()?;
    writer2.start()?;
    reader.start()?;
    writer1.join()?;
    writer2.join()?;
    q.join(); // all six read
    reader.terminate()?;
    let _ = reader.join();
    Ok(())
}
