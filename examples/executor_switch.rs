//! The `Executor` contract across scopes: the same code runs on threads, on
//! processes, on coroutines (a tokio runtime, `spindle_aio::AioExecutor`) or
//! on a cluster (`spindle_cluster::ClusterExecutor`, workers behind a
//! broker); switching is the one `let pool = ...` line in `main`.
//! The numbers are the PRIMES list of the `ProcessPoolExecutor` example in
//! Python's `concurrent.futures` documentation.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use spindle::futures::{Executor, MapFn, as_completed};
use spindle::manager::{BaseManager, Typeid};
use spindle::process::{self, Call, Calls, ProcessPoolExecutor};
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
    let sqrt = n.isqrt();
    (3..=sqrt).step_by(2).all(|d| !n.is_multiple_of(d))
}

/// Written once against the trait: any executor that runs `Call`s.
fn check_all<X>(pool: &X) -> Vec<(u64, bool)>
where
    X: Executor,
    spindle::process::Call<is_prime>:
        spindle::futures::Task<X, Output = bool, Error = std::convert::Infallible>,
{
    let futures: Vec<_> = PRIMES
        .iter()
        .map(|&n| pool.submit(is_prime::call(n)).expect("pool running"))
        .collect();
    for f in as_completed(&futures) {
        println!("  a result came in: {:?}", f.result());
    }
    PRIMES
        .iter()
        .zip(&futures)
        .map(|(&n, f)| (n, f.result().unwrap()))
        .collect()
}

/// The call constructor, as a plain function pointer (one type for the bound).
type IsPrimeCall = fn(u64) -> Call<is_prime>;

/// `map` written once: `process::calls` makes every executor *run* the
/// calls (on threads, a bare `is_prime::call` would only build them).
fn map_all<X>(pool: &X) -> Vec<bool>
where
    X: Executor,
    Calls<IsPrimeCall>: MapFn<u64, X, Output = bool, Error = std::convert::Infallible>,
{
    pool.map(process::calls(is_prime::call as IsPrimeCall), PRIMES)
        .expect("pool running")
        .map(Result::unwrap)
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Threads:
    let pool = spindle::futures::ThreadPoolExecutor::builder()
        .max_workers(4)
        .build()
        .unwrap();
    println!("on threads:");
    let on_threads = check_all(&pool);
    let mapped_on_threads = map_all(&pool);

    // Processes — the one line that changes:
    let pool = ProcessPoolExecutor::builder().max_workers(4).build()?;
    println!("on processes:");
    let on_processes = check_all(&pool);
    let mapped_on_processes = map_all(&pool);

    // Coroutines — the same line again: a tokio runtime runs the calls (on
    // its blocking threads) and any `async` block.
    let pool = spindle_aio::AioExecutor::new(4)?;
    println!("on coroutines:");
    let on_coroutines = check_all(&pool);
    let mapped_on_coroutines = map_all(&pool);
    let hello = pool.submit(async { "an async block, too" })?;
    println!("  {}", hello.result()?);

    // A cluster — the same line once more. Its broker is a manager server
    // (here in this process; `spindle serve --broker tasks` on another
    // host), its workers two threads here (`Worker::run` on other hosts).
    let key = b"executor_switch example key, 32b";
    let server = BaseManager::builder()
        .register("tasks", Typeid::broker())
        .bind("127.0.0.1:0".parse::<SocketAddr>()?)
        .authkey(key)
        .spawn()?;
    let broker = EmbeddedBroker::connect(server.address().clone(), key, "tasks")?;
    let stop = AtomicBool::new(false);
    let (on_cluster, mapped_on_cluster) = std::thread::scope(|s| {
        s.spawn(|| Worker::new(&broker).concurrency(2).run(&stop));
        let pool = ClusterExecutor::builder(Arc::new(broker.clone()))
            .max_workers(2)
            .build();
        println!("on a cluster:");
        let out = (check_all(&pool), map_all(&pool));
        stop.store(true, Ordering::SeqCst);
        out
    });

    assert_eq!(on_threads, on_processes);
    assert_eq!(on_threads, on_coroutines);
    assert_eq!(on_threads, on_cluster);
    let expected: Vec<bool> = on_threads.iter().map(|&(_, p)| p).collect();
    assert_eq!(mapped_on_threads, expected);
    assert_eq!(mapped_on_processes, expected);
    assert_eq!(mapped_on_coroutines, expected);
    assert_eq!(mapped_on_cluster, expected);
    println!("map(process::calls(is_prime::call), PRIMES) agrees on all four");
    for (n, p) in on_processes {
        println!("{n} is prime: {p}");
    }
    Ok(())
}
