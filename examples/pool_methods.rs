//! The methods of `multiprocessing.Pool`, each one used:
//! apply, apply_async (with callback and error_callback), map, map_async,
//! imap, imap_unordered, starmap, close, terminate, join.

use std::time::Duration;

use spindle::process::{Callbacks, Pool};

#[spindle::task]
fn square(x: u64) -> u64 {
    x * x
}

#[spindle::task]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

#[spindle::task]
fn checked_div(a: u64, b: u64) -> u64 {
    assert!(b != 0, "division by zero");
    a / b
}

#[spindle::task]
fn slow(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = Pool::new(4)?;

    // apply(func, args): blocks until the result is back.
    println!("apply: square(7) = {}", pool.apply(square::call(7))?);

    // apply_async(func, args, callback, error_callback): returns at once.
    let ok = pool.apply_async_with(
        add::call(2, 3),
        Callbacks::new().callback(|v: &u64| println!("callback: add(2, 3) = {v}")),
    )?;
    let bad = pool.apply_async_with(
        checked_div::call(1, 0),
        Callbacks::new().error_callback(|e| println!("error_callback: {e}")),
    )?;
    println!("apply_async: {:?}, ready={}", ok.get(), ok.ready());
    println!("apply_async failed: successful={:?}", {
        bad.wait();
        bad.successful()
    });

    // map(func, iterable, chunksize): like the built-in map, in order.
    println!("map: {:?}", pool.map(square::call, 1..=10)?);

    // map_async: non-blocking; the callback gets the whole list.
    let r = pool.map_async(
        square::call,
        1..=5,
        0,
        Callbacks::new().callback(|all: &Vec<u64>| println!("map_async callback: {all:?}")),
    )?;
    println!("map_async: {:?}", r.get()?);

    // imap: the lazy map; results in input order as they come.
    let lazy: Vec<u64> = pool
        .imap(square::call, 1..=5)?
        .map(Result::unwrap)
        .collect();
    println!("imap: {lazy:?}");

    // imap_unordered: results in completion order (the slow one comes last).
    let order: Vec<u64> = pool
        .imap_unordered(slow::call, [300, 10, 20, 30])
        .map(Result::unwrap)
        .collect();
    println!("imap_unordered: {order:?}");

    // starmap: each item is a tuple of arguments, unpacked.
    println!(
        "starmap: {:?}",
        pool.starmap(add::call, [(1, 2), (3, 4), (5, 6)])?
    );

    // close + join: finish the queued work, then wait for the workers.
    pool.close();
    pool.join()?;
    println!("close + join: done");

    // terminate: stop at once; unfinished work is cancelled.
    let pool = Pool::new(2)?;
    let long = pool.apply_async(slow::call(60_000))?;
    pool.terminate();
    pool.join()?;
    println!("terminate: the 60 s task ended with {:?}", long.get());
    Ok(())
}
