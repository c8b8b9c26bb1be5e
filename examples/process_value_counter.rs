//! Several processes increment one shared counter: without a lock
//! (`RawValue`, Python's `Value(..., lock=False)`) read-modify-writes
//! interleave and updates are lost; under the value's lock (`with
//! counter.get_lock(): counter.value += 1`) the total is exact.

use std::time::Instant;

use spindle::ipc::{RawValue, Value};
use spindle::process::Process;

const PROCS: u64 = 4;
const TIMES: u64 = 200_000;

#[spindle::task]
fn racy(counter: RawValue<u64>) {
    for _ in 0..TIMES {
        // counter.value += 1 with nothing held: load, add, store.
        counter.store(counter.load() + 1);
    }
}

#[spindle::task]
fn locked(counter: Value<u64>) {
    for _ in 0..TIMES {
        *counter.lock() += 1;
    }
}

fn run_all<C: Into<spindle::process::TaskCall>>(
    calls: Vec<C>,
) -> Result<f64, Box<dyn std::error::Error>> {
    let t = Instant::now();
    let mut ps: Vec<Process> = calls.into_iter().map(Process::new).collect();
    for p in &mut ps {
        p.start()?;
    }
    for p in &mut ps {
        p.join()?;
    }
    Ok(t.elapsed().as_secs_f64())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let expected = PROCS * TIMES;

    let raw = RawValue::new(0u64)?;
    let secs = run_all((0..PROCS).map(|_| racy::call(raw.clone())).collect())?;
    let got = raw.load();
    println!(
        "without a lock: {got} of {expected} ({} increments lost) in {secs:.3} s",
        expected - got
    );

    let counter = Value::new(0u64)?;
    let secs = run_all((0..PROCS).map(|_| locked::call(counter.clone())).collect())?;
    let got = counter.load();
    println!("under the lock: {got} of {expected} in {secs:.3} s");
    assert_eq!(got, expected);
    Ok(())
}
