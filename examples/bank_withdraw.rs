//! A Python `threading.Lock` lesson: two users withdraw from one bank balance.
//! Without a lock both pass the `balance >= amount` check before either
//! subtracts, and the balance goes negative; with a `Lock` around
//! check-and-subtract it cannot.
//!
//! The race is shown safely: the balance is an atomic read and then written
//! (a lost update, not undefined behaviour), and a barrier between check and
//! write makes the unlucky interleaving happen every run instead of sometimes.
//! (Python: `threading.Lock`.)

use spindle::sync::Lock;
use std::sync::Barrier;
use std::sync::atomic::{AtomicI64, Ordering::SeqCst};
use std::thread;

fn user(name: &str) -> thread::Builder {
    thread::Builder::new().name(name.to_owned())
}

fn me() -> String {
    thread::current().name().unwrap_or("?").to_owned()
}

fn without_lock() -> i64 {
    let balance = AtomicI64::new(1000);
    let both_checked = Barrier::new(2);
    let draw = |amount: i64| {
        if balance.load(SeqCst) >= amount {
            println!("{} withdrew {amount}", me());
            both_checked.wait(); // "sleep(0.0001): the thread is paused here"
            balance.store(balance.load(SeqCst) - amount, SeqCst);
            println!("balance is now {}", balance.load(SeqCst));
        } else {
            both_checked.wait();
            println!("{}: insufficient balance", me());
        }
    };
    thread::scope(|s| {
        user("A").spawn_scoped(s, || draw(600)).expect("spawn");
        user("B").spawn_scoped(s, || draw(600)).expect("spawn");
    });
    balance.load(SeqCst)
}

fn with_lock(a: i64, b: i64) -> i64 {
    let balance = AtomicI64::new(1000);
    let lock = Lock::new();
    let draw = |amount: i64| {
        lock.acquire(); // get the lock
        if balance.load(SeqCst) >= amount {
            println!("{} withdrew {amount}", me());
            thread::sleep(std::time::Duration::from_millis(1));
            balance.store(balance.load(SeqCst) - amount, SeqCst);
            println!("balance is now {}", balance.load(SeqCst));
        } else {
            println!("{}: insufficient balance", me());
        }
        lock.release().expect("we hold the lock"); // `finally: lock.release()`
    };
    thread::scope(|s| {
        user("A").spawn_scoped(s, || draw(a)).expect("spawn");
        user("B").spawn_scoped(s, || draw(b)).expect("spawn");
    });
    balance.load(SeqCst)
}

fn main() {
    println!("-- without a lock: both withdraw 600 from 1000");
    let racy = without_lock();
    println!("final balance {racy} (negative: the check and the update raced)\n");
    assert!(racy < 0);

    println!("-- with a Lock: both withdraw 600 from 1000");
    let safe = with_lock(600, 600);
    println!("final balance {safe}\n");
    assert_eq!(safe, 400);

    println!("-- with a Lock: A withdraws 300, B 800");
    let safe = with_lock(300, 800);
    println!("final balance {safe}");
    assert!(safe == 700 || safe == 200);
}
