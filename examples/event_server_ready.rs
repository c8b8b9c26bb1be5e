//! A Python `threading.Event` example: worker threads wait for the "server
//! ready" event the main thread sets once it has connected; then the Redis
//! variant, where each worker waits with a timeout (`event.wait(1)`) and logs
//! while it waits.
//!
//! Times are scaled from seconds to 100 ms. (Python: `threading.Event`.)

use spindle::sync::Event;
use std::thread;
use std::time::{Duration, Instant};

const SECOND: Duration = Duration::from_millis(100);

fn name() -> String {
    thread::current().name().unwrap_or("?").to_owned()
}

fn main() {
    // Variant 1: wait() without timeout.
    let server_ready = Event::new();
    thread::scope(|s| {
        for i in 1..=3 {
            thread::Builder::new()
                .name(format!("Thread-{i}"))
                .spawn_scoped(s, || {
                    println!("{} waiting for server", name());
                    server_ready.wait();
                    println!("{} server is ready", name());
                    thread::sleep(SECOND);
                })
                .expect("spawn");
        }
        println!("MainThread connecting server");
        thread::sleep(3 * SECOND);
        server_ready.set();
    });

    // Variant 2: wait(timeout) in a loop, logging while the server is not up.
    let start = Instant::now();
    let redis_ready = Event::new();
    thread::scope(|s| {
        for i in 1..=3 {
            thread::Builder::new()
                .name(format!("Thread-{i}"))
                .spawn_scoped(s, || {
                    while !redis_ready.is_set() {
                        println!("({:<10}) Waiting for redis ready...", name());
                        let ready = redis_ready.wait_timeout(SECOND);
                        println!(
                            "({:<10}) wait returned {ready} at +{:.1}s",
                            name(),
                            start.elapsed().as_secs_f64()
                        );
                    }
                    println!("({:<10}) Redis ready", name());
                })
                .expect("spawn");
        }
        println!(
            "(MainThread) first of all, check redis server, make sure it is OK, then trigger the event"
        );
        thread::sleep(3 * SECOND);
        redis_ready.set();
    });
}
