//! A 1 GiB argument and a 1 GiB result through a pool, with the peak memory
//! (VmHWM) of each side under 3 GiB: each payload is copied once into a
//! sealed memfd and decoded straight from the receiver's read-only mapping.
//! Its own test binary, so no other memory-heavy test runs beside it.

use std::time::{Duration, Instant};

use serde_bytes::ByteBuf;
use spindle::process::Pool;

const GIB: usize = 1 << 30;
const STRIDE: usize = 4096;

/// `n` bytes of 0xA5, with a marker at every `STRIDE`th byte (cheap to
/// make and to check, even unoptimised).
fn payload(n: usize) -> ByteBuf {
    let mut v = vec![0xA5u8; n];
    for (k, i) in (0..n).step_by(STRIDE).enumerate() {
        v[i] = (k % 251) as u8;
    }
    ByteBuf::from(v)
}

fn is_payload(b: &[u8]) -> bool {
    (0..b.len()).step_by(STRIDE).enumerate().all(|(k, i)| {
        let filler = &b[i + 1..(i + 9).min(b.len())];
        b[i] == (k % 251) as u8 && filler.iter().all(|&x| x == 0xA5)
    })
}

/// This process's peak resident memory (VmHWM) in bytes.
fn vm_hwm() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM line");
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmHWM value");
    kb * 1024
}

#[spindle::task]
fn take(b: ByteBuf) -> u64 {
    assert!(is_payload(&b), "argument bytes arrived changed");
    b.len() as u64
}

#[spindle::task]
fn give(n: u64) -> ByteBuf {
    payload(n as usize)
}

#[spindle::task]
fn worker_hwm() -> u64 {
    vm_hwm()
}

#[test]
fn a_1gib_argument_and_a_1gib_result_travel_with_peak_memory_under_3gib_per_side() {
    let started = Instant::now();
    let pool = Pool::new(1).unwrap();
    let before = pool.apply(worker_hwm::call()).unwrap();
    assert!(before < 256 << 20, "worker starts small: {before}");

    assert_eq!(pool.apply(take::call(payload(GIB))), Ok(GIB as u64));
    let got = pool.apply(give::call(GIB as u64)).unwrap();
    assert_eq!(got.len(), GIB);
    assert!(is_payload(&got), "result bytes arrived changed");
    drop(got);

    let worker = pool.apply(worker_hwm::call()).unwrap();
    let parent = vm_hwm();
    eprintln!(
        "peak RSS: parent {} MiB, worker {} MiB, in {:?}",
        parent >> 20,
        worker >> 20,
        started.elapsed()
    );
    // Each side holds at most the value and one copy of its encoding.
    assert!(worker < 3 * GIB as u64, "worker peak {worker}");
    assert!(parent < 3 * GIB as u64, "parent peak {parent}");
    // And it really held a 1 GiB payload (the measure is not vacuous).
    assert!(worker > GIB as u64 && parent > GIB as u64);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(pool.executor().workers_lost(), 0);
}
