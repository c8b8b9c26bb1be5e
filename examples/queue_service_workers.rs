//! A Python worker pool on a queue: a `Service` fills a queue with account
//! tokens and starts 30 `Working` threads; each drains the queue with
//! `get(False)` until `queue.Empty`, handling one token at a time (with a 0.3 s
//! pause).
//!
//! spindle: `try_get()` is `get(False)`; `Err(TryGetError::Empty)` is
//! `queue.Empty`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use spindle::queue::{Queue, TryGetError};
use spindle_examples::tprintln;

struct Service {
    task_queue: Queue<String>,
}

impl Service {
    fn run(&self, account_tokens: &[String], handled: &AtomicUsize) {
        for token in account_tokens {
            self.task_queue.put(token.clone()).unwrap();
        }
        thread::scope(|s| {
            for n in 0..30 {
                let task_queue = &self.task_queue;
                thread::Builder::new()
                    .name(format!("Working-{n:02}"))
                    .spawn_scoped(s, move || Working { task_queue }.run(handled))
                    .unwrap();
            }
        }); // joins every worker
    }
}

struct Working<'a> {
    task_queue: &'a Queue<String>,
}

impl Working<'_> {
    fn handle(&self, access_token: &str) {
        tprintln!("handling {access_token}");
    }

    fn run(&self, handled: &AtomicUsize) {
        loop {
            match self.task_queue.try_get() {
                Ok(account_token) => {
                    self.handle(&account_token);
                    handled.fetch_add(1, Ordering::Relaxed);
                }
                Err(TryGetError::Empty | TryGetError::ShutDown) => return,
            }
            thread::sleep(Duration::from_millis(300));
        }
    }
}

fn main() {
    let account_tokens: Vec<String> = (1..=75).map(|n| format!("token-{n:03}")).collect();
    let handled = AtomicUsize::new(0);
    let start = Instant::now();
    let service = Service {
        task_queue: Queue::new(),
    };
    service.run(&account_tokens, &handled);
    println!(
        "30 workers handled {} of {} tokens in {:.1} s (serially: {:.1} s)",
        handled.load(Ordering::Relaxed),
        account_tokens.len(),
        start.elapsed().as_secs_f64(),
        account_tokens.len() as f64 * 0.3
    );
    assert_eq!(handled.load(Ordering::Relaxed), account_tokens.len());
}
