//! A Python `multiprocessing` exercise: the sum of 1..=100,000,000, serially
//! and split over 8 processes that send their partial sums through a Queue.
//!
//! Unlike the Python program, each child computes its own range instead of
//! receiving a slice of a 100-million-element list (which would be copied to
//! each child).

use std::hint::black_box;
use std::time::Instant;

use spindle::ipc::Queue;
use spindle::process::Process;

const N: u64 = 100_000_000;
const PROCS: u64 = 8;

fn sum_range(from: u64, to: u64) -> u64 {
    let mut total = 0u64;
    for x in from..=to {
        total = black_box(total + x);
    }
    total
}

#[spindle::task]
fn task_handler(from: u64, to: u64, result_queue: Queue<u64>) {
    result_queue.put(sum_range(from, to)).unwrap();
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let total = sum_range(1, N);
    println!("serial:   {total} in {:?}", start.elapsed());

    let start = Instant::now();
    let result_queue = Queue::new()?;
    let chunk = N / PROCS;
    let mut processes = Vec::new();
    for i in 0..PROCS {
        let call = task_handler::call(i * chunk + 1, (i + 1) * chunk, result_queue.clone());
        let mut p = Process::new(call);
        p.start()?;
        processes.push(p);
    }
    for p in &mut processes {
        p.join()?;
    }
    let mut total = 0;
    while !result_queue.is_empty() {
        total += result_queue.get()?;
    }
    println!(
        "{PROCS} procs: {total} in {:?} ({} CPUs)",
        start.elapsed(),
        spindle::process::cpu_count()
    );
    assert_eq!(total, N * (N + 1) / 2);
    Ok(())
}
