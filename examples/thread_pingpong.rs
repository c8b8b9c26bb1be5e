//! Python's ping-pong threads: two threads print "Ping" and "Pong" while a
//! shared counter is below 5. Unguarded, the check and the increment race and
//! more than 5 words can appear; with a `Lock` around check-and-increment
//! exactly 5 are printed.
//!
//! A second round hands the lock back and forth so the words alternate
//! strictly: each thread releases a `Lock` the *other* thread acquired, which
//! Python's `Lock` (and spindle's) allows. (Python: `threading.Lock`.)

use spindle::sync::Lock;
use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::thread;
use std::time::Duration;

fn main() {
    // Round 1: the Python program with the check-and-increment under a Lock.
    let counter = AtomicU32::new(0);
    let lock = Lock::new();
    let words = AtomicU32::new(0);
    let sub_task = |word: &str| {
        loop {
            let held = lock.lock();
            if counter.load(Relaxed) >= 5 {
                break;
            }
            print!("{word}");
            std::io::stdout().flush().ok();
            words.fetch_add(1, Relaxed);
            counter.store(counter.load(Relaxed) + 1, Relaxed);
            drop(held);
            thread::sleep(Duration::from_millis(1));
        }
    };
    thread::scope(|s| {
        s.spawn(|| sub_task("Ping"));
        s.spawn(|| sub_task("Pong"));
    });
    println!("\n{} words (exactly 5 with the lock)", words.load(Relaxed));
    assert_eq!(words.load(Relaxed), 5);

    // Round 2: strict alternation by handing two locks back and forth.
    let (ping_turn, pong_turn) = (Lock::new(), Lock::new());
    pong_turn.acquire(); // Ping goes first
    thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..5 {
                ping_turn.acquire();
                print!("Ping");
                std::io::stdout().flush().ok();
                pong_turn.release().expect("held by the other side"); // released by a non-acquirer
            }
        });
        s.spawn(|| {
            for _ in 0..5 {
                pong_turn.acquire();
                print!("Pong");
                std::io::stdout().flush().ok();
                ping_turn.release().expect("held by the other side");
            }
        });
    });
    println!();
}
