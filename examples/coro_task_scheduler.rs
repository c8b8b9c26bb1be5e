//! Python Cookbook recipe 12.12, "Using Generators As an Alternative to
//! Threads": a `TaskScheduler` round-robins generators, each running until
//! its next bare `yield`; an `ActorScheduler` delivers messages to named
//! generator actors (`msg = yield`), so a counter can send itself 10,000
//! messages without recursion.
//!
//! Python: `sched.new_task(countdown(10)); sched.new_task(countup(5));
//! sched.run()`; `sched.new_actor('printer', printer());
//! sched.send('counter', 10000)`.
//!
//! spindle: `spindle_aio::sched`: `async` blocks for generators,
//! `yield_now().await` for `yield`, `inbox.recv().await` for `msg = yield`.
//! The printer prints every 1000th message and the last five (the recipe
//! prints all 10,000).

use std::cell::Cell;

use spindle_aio::sched::{ActorScheduler, TaskScheduler, yield_now};

async fn countdown(mut n: u32) {
    while n > 0 {
        println!("T-minus {n}");
        yield_now().await;
        n -= 1;
    }
    println!("Blastoff!");
}

async fn countup(n: u32) {
    let mut x = 0;
    while x < n {
        println!("Counting up {x}");
        yield_now().await;
        x += 1;
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut sched = TaskScheduler::new();
    sched.new_task(countdown(10));
    sched.new_task(countup(5));
    sched.run()?;

    let printed = Cell::new(0u32);
    let mut actors = ActorScheduler::new();
    actors.new_actor("printer", |inbox, _| {
        let printed = &printed;
        async move {
            loop {
                let n: u32 = inbox.recv().await;
                printed.set(printed.get() + 1);
                if n.is_multiple_of(1000) || n <= 5 {
                    println!("Got: {n}");
                }
            }
        }
    });
    actors.new_actor("counter", |inbox, to| async move {
        loop {
            let n = inbox.recv().await;
            if n == 0 {
                break;
            }
            to.send("printer", n).expect("printer is alive");
            to.send("counter", n - 1).expect("counter is alive");
        }
    });
    actors.send("counter", 10_000)?;
    actors.run()?;
    drop(actors);
    println!("printer got {} messages", printed.get());
    assert_eq!(printed.get(), 10_000);
    Ok(())
}
