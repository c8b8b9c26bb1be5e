//! The dining philosophers of the Python Cookbook (recipe 12.5): five
//! philosophers, five chopsticks (locks); each takes the left chopstick, then
//! the right one.
//!
//! Phase 1, the naive version: every philosopher picks up the left chopstick,
//! and (waiting for each other at the table, to make it certain) reaches for
//! the right one — the classic ring deadlock that in Python hangs forever.
//! Here a deadlock `Watchdog` finds the cycle, prints which philosopher waits
//! for which chopstick and where each was picked up, and recovers: every
//! blocked wait gets a `DeadlockError`, the philosophers put their chopsticks
//! down and leave.
//!
//! Phase 2, the recipe's fix: `acquire((left, right))` takes the chopsticks in
//! one global order, so every philosopher eats `MEALS` meals and nobody
//! deadlocks.

use spindle::lockorder::{self, Recovery, Watchdog, acquire};
use spindle::sync::{Barrier, Lock};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::thread;
use std::time::Duration;

const NSTICKS: usize = 5;
const MEALS: u64 = 2_000;

fn main() {
    // Track the locks from the start, then watch for deadlocks.
    let watchdog = Watchdog::builder()
        .interval(Duration::from_millis(50))
        .recovery(Recovery::AbortAll)
        .on_deadlock(|d| println!("watchdog: {d}"))
        .start();
    let chopsticks: Vec<Lock> = (0..NSTICKS).map(|_| Lock::new()).collect();
    for (n, c) in chopsticks.iter().enumerate() {
        lockorder::set_name(c, &format!("chopstick {n}"));
    }

    println!("--- phase 1: naive (left, then right) ---");
    let table = Barrier::new(NSTICKS).expect("one party per philosopher");
    thread::scope(|s| {
        for n in 0..NSTICKS {
            let (left, right) = (&chopsticks[n], &chopsticks[(n + 1) % NSTICKS]);
            let table = &table;
            thread::Builder::new()
                .name(format!("philosopher-{n}"))
                .spawn_scoped(s, move || {
                    let meal = lockorder::recoverable(|| {
                        let _left = left.lock();
                        table.wait().expect("barrier");
                        let _right = right.lock(); // everyone blocks here
                        println!("philosopher-{n} eating");
                    });
                    if let Err(e) = meal {
                        println!("philosopher-{n}: {} -> puts the chopsticks down", short(&e));
                    }
                })
                .expect("spawn");
        }
    });
    let found = watchdog.found();
    assert_eq!(found.len(), 1, "the ring was reported once");
    assert_eq!(found[0].links().len(), NSTICKS);
    watchdog.stop();

    println!("--- phase 2: ordered, with acquire((left, right)) ---");
    let meals: Vec<AtomicU64> = (0..NSTICKS).map(|_| AtomicU64::new(0)).collect();
    thread::scope(|s| {
        for n in 0..NSTICKS {
            let (left, right) = (&chopsticks[n], &chopsticks[(n + 1) % NSTICKS]);
            let meals = &meals;
            thread::Builder::new()
                .name(format!("philosopher-{n}"))
                .spawn_scoped(s, move || {
                    for i in 0..MEALS {
                        let _both = acquire((left, right)).expect("nothing else held");
                        if i == 0 {
                            println!("philosopher-{n} eating");
                        }
                        meals[n].fetch_add(1, Relaxed);
                    }
                })
                .expect("spawn");
        }
    });
    let eaten: Vec<u64> = meals.iter().map(|m| m.load(Relaxed)).collect();
    println!("every philosopher ate {MEALS} meals: {eaten:?}, no deadlock");
    assert!(eaten.iter().all(|&m| m == MEALS));
}

/// The first line of a deadlock error.
fn short(e: &lockorder::DeadlockError) -> String {
    e.to_string().lines().next().unwrap_or_default().to_owned()
}
