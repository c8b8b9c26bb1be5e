//! Python's ping-pong processes: each process has its own `counter`, so
//! "Ping" and "Pong" are each printed 5 times, not 5 in total.

use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use spindle::process::{Process, ProcessError};

static COUNTER: AtomicU32 = AtomicU32::new(0);

#[spindle::task]
fn sub_task(string: String) {
    while COUNTER.load(Ordering::SeqCst) < 5 {
        print!("{string}");
        std::io::stdout().flush().unwrap();
        COUNTER.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn main() -> Result<(), ProcessError> {
    // Both at once (output interleaves).
    let mut p1 = Process::new(sub_task::call("Ping".into()));
    let mut p2 = Process::new(sub_task::call("Pong".into()));
    p1.start()?;
    p2.start()?;
    p1.join()?;
    p2.join()?;
    println!();
    // One after the other.
    for s in ["Ping", "Pong"] {
        let mut p = Process::new(sub_task::call(s.into()));
        p.start()?;
        p.join()?;
    }
    println!();
    println!("main's counter is still {}", COUNTER.load(Ordering::SeqCst));
    Ok(())
}
