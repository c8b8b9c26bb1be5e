//! A Python `threading.Condition` example, an `Account`: a taker takes a random
//! amount when the balance covers it and otherwise waits; a putter puts a
//! random amount and notifies. The Python program calls both from one thread
//! (where `wait()` could hang forever); this port gives each its own thread:
//! the taker takes 10 times, the putter keeps putting until the taker is done.
//! (Python: `threading.Condition`.)

use spindle::sync::Condition;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::thread;
use std::time::Duration;

/// `randint(1, 100)` from a small deterministic generator (xorshift).
fn randint(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    1 + *state % 100
}

fn main() {
    let con = Condition::new();
    let balance = AtomicU64::new(100);
    let taker_done = AtomicBool::new(false);
    thread::scope(|s| {
        thread::Builder::new()
            .name("taker".into())
            .spawn_scoped(s, || {
                let mut rng = 0x9e37_79b9_7f4a_7c15;
                for _ in 0..10 {
                    let count = randint(&mut rng);
                    let _with = con.lock();
                    // `if balance < count: con.wait()`, as a loop: take once it covers it.
                    con.wait_for(|| balance.load(Relaxed) >= count)
                        .expect("we hold the lock");
                    let now = balance.load(Relaxed) - count;
                    balance.store(now, Relaxed);
                    println!("taker take {count} balance: {now}");
                    con.notify_one().expect("we hold the lock");
                }
                taker_done.store(true, Relaxed);
            })
            .expect("spawn");
        thread::Builder::new()
            .name("putter".into())
            .spawn_scoped(s, || {
                let mut rng = 0x2545_f491_4f6c_dd1d;
                while !taker_done.load(Relaxed) {
                    let count = randint(&mut rng);
                    {
                        let _with = con.lock();
                        let now = balance.load(Relaxed) + count;
                        balance.store(now, Relaxed);
                        println!("putter put {count} balance: {now}");
                        con.notify_one().expect("we hold the lock");
                    }
                    thread::sleep(Duration::from_millis(5));
                }
            })
            .expect("spawn");
    });
    println!("final balance: {}", balance.load(Relaxed));
}
