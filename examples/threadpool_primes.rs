//! The `ProcessPoolExecutor` example of Python's `concurrent.futures`
//! documentation, with threads: the PRIMES check, serial and with
//! `ThreadPoolExecutor().map(is_prime, PRIMES)`.
//!
//! In Python the thread-pool version is no faster than the serial one (the
//! GIL runs one thread at a time); in Rust the threads run in parallel, so the
//! speedup grows with the cores. This program prints it.

use std::time::Instant;

use spindle::futures::{Executor, ThreadPoolExecutor};

const PRIMES: [u64; 6] = [
    112_272_535_095_293,
    112_582_705_942_171,
    112_272_535_095_293,
    115_280_095_190_773,
    115_797_848_077_099,
    1_099_726_899_285_419,
];

/// The documentation's `is_prime`: trial division by the odd numbers up to
/// √n.
fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    if n == 2 {
        return true;
    }
    if n.is_multiple_of(2) {
        return false;
    }
    let sqrt_n = n.isqrt();
    let mut i = 3;
    while i <= sqrt_n {
        if n.is_multiple_of(i) {
            return false;
        }
        i += 2;
    }
    true
}

fn main() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    println!("== serial");
    let start = Instant::now();
    for n in PRIMES {
        println!("{n} is prime? {}", is_prime(n));
    }
    let serial = start.elapsed().as_secs_f64();
    println!("{:.4} s per number", serial / PRIMES.len() as f64);

    println!("== ThreadPoolExecutor, {cores} workers");
    let start = Instant::now();
    {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(cores)
            .build()
            .unwrap();
        let verdicts = pool.map(is_prime, PRIMES).expect("the pool is open");
        for (number, prime) in PRIMES.iter().zip(verdicts) {
            println!(
                "{number} is prime? {}",
                prime.expect("is_prime does not fail")
            );
        }
    }
    let threads = start.elapsed().as_secs_f64();
    println!("{:.4} s per number", threads / PRIMES.len() as f64);

    // Six numbers of about the same cost: with `cores` workers the best
    // possible speedup is 6 / ceil(6 / cores) (Python's threads: ~1x, the GIL).
    let ideal = 6.0 / (6.0 / cores.min(6) as f64).ceil();
    println!(
        "speedup over serial: {:.2}x with {cores} worker threads (at best {ideal:.2}x for six numbers; Python threads: ~1x)",
        serial / threads
    );
}
