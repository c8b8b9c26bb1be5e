//! Python's `multiprocessing.Queue` between processes: a child writes to a
//! Queue the parent reads; then a writer child and a reader child, the reader
//! terminated at the end.

use std::time::Duration;

use spindle::ipc::Queue;
use spindle::process::{Process, current_process};

#[spindle::task]
fn fun(q: Queue<String>) {
    println!("({}) child writes to the queue...", std::process::id());
    q.put("hello".into()).unwrap();
}

#[spindle::task]
fn write(q: Queue<String>) {
    println!("Process to write: {}", current_process().pid());
    for (i, value) in ["A", "B", "C"].into_iter().enumerate() {
        println!("Put {value} to queue...");
        q.put(value.into()).unwrap();
        std::thread::sleep(Duration::from_millis(50 + 70 * i as u64));
    }
}

#[spindle::task]
fn read(q: Queue<String>, done: Queue<()>) {
    println!("Process to read: {}", current_process().pid());
    loop {
        let value = q.get().unwrap();
        println!("Get {value} from queue.");
        done.put(()).unwrap();
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A child writes, the parent reads.
    let q = Queue::new()?;
    let mut p = Process::new(fun::call(q.clone()));
    p.start()?;
    println!("({}) parent reads from the queue...", std::process::id());
    println!("{}", q.get()?);
    p.join()?;

    // A writer child, a reader child.
    let q = Queue::new()?;
    let done = Queue::new()?;
    let mut pwrite = Process::new(write::call(q.clone()));
    let mut pread = Process::new(read::call(q.clone(), done.clone()));
    pwrite.start()?;
    pread.start()?;
    pwrite.join()?;
    for _ in 0..3 {
        done.get()?; // the reader printed all three
    }
    // The reader loops forever: terminate it, as the Python program does.
    pread.terminate()?;
    let _ = pread.join();
    println!("reader exitcode: {:?}", pread.exitcode());
    Ok(())
}
