//! The PRIMES program of Python's `concurrent.futures` documentation, on a
//! cluster: an embedded broker (a manager server, here in this process) and
//! two worker processes (on other hosts in real life: `spindle worker`, or
//! `spindle_cluster::worker_main()` in your own binary). Prints
//! `<n> is prime? <bool>` per number, as `spindle primes` does.
//!
//! ```python
//! with concurrent.futures.ProcessPoolExecutor() as executor:
//!     for number, prime in zip(PRIMES, executor.map(is_prime, PRIMES)):
//!         print('%d is prime: %s' % (number, prime))
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use spindle::futures::Executor;
use spindle::manager::{BaseManager, Typeid};
use spindle::process::{self, Process, StartMethod};
use spindle_cluster::{ClusterExecutor, EmbeddedBroker, Worker};

const PRIMES: [u64; 6] = [
    112_272_535_095_293,
    112_582_705_942_171,
    112_272_535_095_293,
    115_280_095_190_773,
    115_797_848_077_099,
    1_099_726_899_285_419,
];

#[spindle::task]
fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    if n.is_multiple_of(2) {
        return n == 2;
    }
    (3..=n.isqrt()).step_by(2).all(|d| !n.is_multiple_of(d))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The broker: `spindle serve --broker tasks` on a host of its own.
    let key = b"cluster_primes example key, 32 b";
    let server = BaseManager::builder()
        .register("tasks", Typeid::broker())
        .bind("127.0.0.1:0".parse::<SocketAddr>()?)
        .authkey(key)
        .spawn()?;
    let broker = EmbeddedBroker::connect(server.address().clone(), key, "tasks")?;

    // Two workers, each a process of this program (so it has `is_prime`).
    let mut workers = Vec::new();
    for _ in 0..2 {
        let b = broker.clone();
        let w = Process::builder()
            .closure(move || {
                let never = AtomicBool::new(false);
                let _ = Worker::new(&b).run(&never);
            })
            .start_method(StartMethod::Fork)
            .start()?;
        workers.push(w);
    }

    let executor = ClusterExecutor::builder(Arc::new(broker))
        .max_workers(2)
        .build();
    let results = executor.map(process::calls(is_prime::call), PRIMES)?;
    for (n, prime) in PRIMES.iter().zip(results) {
        println!("{n} is prime? {}", prime?);
    }
    executor.shutdown(true, false);
    for mut w in workers {
        w.terminate()?;
        let _ = w.join();
    }
    Ok(())
}
