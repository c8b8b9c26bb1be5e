//! The `asyncio.gather` example of Python's asyncio documentation
//! ("Running Tasks Concurrently"): three `factorial` coroutines scheduled
//! with `ensure_future`, their results gathered in input order.
//!
//! Python: `async def factorial(name, number)` prints each step and
//! `await asyncio.sleep(1)`; `L = await asyncio.gather(factorial("A", 2),
//! factorial("B", 3), factorial("C", 4))`; `print(L)` → `[2, 6, 24]`.
//!
//! spindle: `spindle_aio::run` is `asyncio.run`, `spawn` is
//! `ensure_future`, `gather` returns one `Result` per task (Python's
//! `return_exceptions=True`) in input order. The sleep is 20 ms, not 1 s.

use std::time::Duration;

use spindle_aio::{gather, run, spawn};

async fn factorial(name: &'static str, number: u64) -> u64 {
    let mut f = 1;
    for i in 2..=number {
        println!("Task {name}: Compute factorial({number}), currently i={i}...");
        tokio::time::sleep(Duration::from_millis(20)).await;
        f *= i;
    }
    println!("Task {name}: factorial({number}) = {f}");
    f
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let results = run(async {
        let tasks = vec![
            spawn(factorial("A", 2)),
            spawn(factorial("B", 3)),
            spawn(factorial("C", 4)),
        ];
        gather(tasks).await
    })?;
    let values = results.into_iter().collect::<Result<Vec<u64>, _>>()?;
    println!("{values:?}");
    assert_eq!(values, [2, 6, 24]);
    Ok(())
}
