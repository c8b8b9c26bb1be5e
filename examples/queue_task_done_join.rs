//! Python's `Queue.task_done()` and `Queue.join()`: five worker threads take
//! items 'A'..'F' from a queue, call `task_done()` for each, and the main
//! thread waits with `q.join()` until every item was processed.
//!
//! In the Python program the `None` sentinels are commented out, so the Python
//! program hangs forever in `t.join()` (the workers stay blocked in `q.get()`).
//! With spindle, `q.shutdown(false)` after `q.join()` releases the workers:
//! their `get()` returns `Err(ShutDown)` and they end.

use std::thread;
use std::time::Duration;

use spindle::queue::Queue;
use spindle_examples::tprintln;

fn main() {
    let q = Queue::new();
    for item in ["A", "B", "C", "D", "E", "F"] {
        q.put(item).unwrap();
    }
    let threads: Vec<_> = (1..=5)
        .map(|n| {
            let q = q.clone();
            thread::Builder::new()
                .name(format!("Thread-{n}"))
                .spawn(move || {
                    let mut done = 0;
                    while let Ok(item) = q.get() {
                        tprintln!("worker get :{item}");
                        thread::sleep(Duration::from_millis(100));
                        q.task_done().unwrap(); // note this call
                        done += 1;
                    }
                    done
                })
                .unwrap()
        })
        .collect();

    q.join(); // blocks until every item was processed
    println!(
        "all {} items processed (unfinished_tasks = {})",
        6,
        q.unfinished_tasks()
    );
    q.shutdown(false); // instead of putting None five times
    let done: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(done, 6);
    println!("thread main ended.");
}
