//! A Python `multiprocessing` lesson: a global changed in a child stays
//! unchanged in the parent — every process has its own memory.

use std::sync::atomic::{AtomicU64, Ordering};

use spindle::process::{Process, ProcessError, StartMethod};

static N: AtomicU64 = AtomicU64::new(100);

#[spindle::task]
fn work() {
    N.store(0, Ordering::SeqCst);
    println!(
        "child ({}) sets n = {}",
        std::process::id(),
        N.load(Ordering::SeqCst)
    );
}

fn main() -> Result<(), ProcessError> {
    for method in StartMethod::all() {
        let mut p = Process::builder()
            .task(work::call())
            .start_method(method)
            .start()?;
        p.join()?;
        println!("[{}] main: n = {}", method.name(), N.load(Ordering::SeqCst));
        assert_eq!(N.load(Ordering::SeqCst), 100);
    }
    // A forked closure sees the parent's value, then changes only its copy.
    let mut p = Process::builder()
        .closure(|| {
            println!("forked child sees n = {}", N.load(Ordering::SeqCst));
            N.store(0, Ordering::SeqCst);
        })
        .start()?;
    p.join()?;
    println!("[fork closure] main: n = {}", N.load(Ordering::SeqCst));
    Ok(())
}
