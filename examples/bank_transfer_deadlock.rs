//! The bank-transfer deadlock of a Python threading tutorial:
//! `transfer(a, b, 100)` and `transfer(b, a, 200)` run at once; each locks its
//! source account, sleeps (so the two overlap), then waits for the
//! destination's lock — held by the other. Python prints "wait for lock..."
//! twice and hangs forever.
//!
//! 1. The Python program, with spindle's deadlock detector watching: the
//!    deadlock is reported (threads, accounts, lines) and broken by aborting
//!    the newest wait; that transfer is rolled back, the other completes.
//! 2. The tutorial's remedy "take the locks in the same order":
//!    `acquire((&src, &dst))` sorts them, both transfers complete.
//! 3. The tutorial's remedy "acquire with a timeout": a transfer that cannot
//!    get the second lock in time gives back the first and retries.
//!
//! Python's `sleep(1)` is `OVERLAP` = 100 ms here so the example is quick.

use spindle::lockorder::{self, Recovery, Watchdog, acquire};
use spindle::sync::Lock;
use std::sync::atomic::{AtomicI64, Ordering::SeqCst};
use std::thread;
use std::time::Duration;

const OVERLAP: Duration = Duration::from_millis(100);

struct Account {
    id: &'static str,
    balance: AtomicI64,
    lock: Lock,
}

impl Account {
    fn new(id: &'static str, balance: i64) -> Account {
        let a = Account {
            id,
            balance: AtomicI64::new(balance),
            lock: Lock::new(),
        };
        lockorder::set_name(&a.lock, &format!("account {id}"));
        a
    }
    fn withdraw(&self, amount: i64) {
        self.balance.fetch_sub(amount, SeqCst);
    }
    fn deposit(&self, amount: i64) {
        self.balance.fetch_add(amount, SeqCst);
    }
}

/// The Python program's transfer: lock src, withdraw, sleep, lock dst, deposit.
fn transfer(src: &Account, dst: &Account, amount: i64) {
    let done = lockorder::recoverable(|| {
        let _src = src.lock.lock(); // lock my own account
        src.withdraw(amount);
        thread::sleep(OVERLAP); // make the two transfers overlap
        println!("{}: wait for lock...", name());
        let _dst = dst.lock.lock(); // lock the other account
        dst.deposit(amount);
    });
    match done {
        Ok(()) => println!("{}: finish...", name()),
        Err(e) => {
            src.deposit(amount); // roll back: the money goes home
            println!("{}: {} -> rolled back", name(), first_line(&e));
        }
    }
}

/// Remedy 1: the same global order for everyone.
fn transfer_ordered(src: &Account, dst: &Account, amount: i64) {
    let _both = acquire((&src.lock, &dst.lock)).expect("nothing else held");
    src.withdraw(amount);
    thread::sleep(OVERLAP);
    dst.deposit(amount);
    println!("{}: finish...", name());
}

/// Remedy 2: bounded waits; on timeout, give everything back, back off (a
/// different time per account, so the two do not collide forever), retry.
fn transfer_timeout(src: &Account, dst: &Account, amount: i64) {
    let backoff = if src.id == "a" { OVERLAP / 10 } else { OVERLAP };
    for attempt in 1.. {
        let held = src.lock.lock();
        thread::sleep(OVERLAP);
        if let Some(_dst) = dst.lock.lock_timeout(OVERLAP / 2) {
            src.withdraw(amount);
            dst.deposit(amount);
            println!("{}: finish... (attempt {attempt})", name());
            return;
        }
        println!(
            "{}: timed out waiting for account {}, backing off",
            name(),
            dst.id
        );
        drop(held);
        thread::sleep(backoff);
    }
}

fn run(title: &str, a: &Account, b: &Account, f: fn(&Account, &Account, i64)) {
    println!("--- {title} ---");
    thread::scope(|s| {
        let spawn = |name: &str, src: &'static str| {
            let (from, to) = if src == "a" { (a, b) } else { (b, a) };
            let amount = if src == "a" { 100 } else { 200 };
            thread::Builder::new()
                .name(name.into())
                .spawn_scoped(s, move || f(from, to, amount))
                .expect("spawn")
        };
        spawn("transfer a->b 100", "a");
        spawn("transfer b->a 200", "b");
    });
    let (x, y) = (a.balance.load(SeqCst), b.balance.load(SeqCst));
    println!("balances: a = {x}, b = {y} (total {})", x + y);
    assert_eq!(x + y, 2000, "no money lost");
}

fn name() -> String {
    thread::current().name().unwrap_or("?").to_owned()
}

fn first_line(e: &lockorder::DeadlockError) -> String {
    e.to_string().lines().next().unwrap_or_default().to_owned()
}

fn main() {
    let watchdog = Watchdog::builder()
        .interval(Duration::from_millis(20))
        .recovery(Recovery::AbortNewest)
        .on_deadlock(|d| print!("watchdog: {d}"))
        .start();
    let a = Account::new("a", 1000);
    let b = Account::new("b", 1000);
    run("the Python transfer (deadlocks)", &a, &b, transfer);
    assert_eq!(watchdog.found().len(), 1, "the deadlock was detected");
    run("fixed by ordering the locks", &a, &b, transfer_ordered);
    run("fixed by timeouts", &a, &b, transfer_timeout);
    assert_eq!(
        watchdog.found().len(),
        1,
        "no deadlock in the fixed versions"
    );
    watchdog.stop();
}
