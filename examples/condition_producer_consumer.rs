//! A Python `threading.Condition` producer/consumer: two `Putter` threads
//! produce 50 while the count is at most 100, three `Taker` threads consume 20
//! while it is at least 100; each waits on the `Condition` otherwise and
//! notifies one waiter after acting.
//!
//! The Python program shows two styles, both here: Putters use explicit
//! `con.acquire()`/`con.release()`, Takers the guard (`with con:`). Bounded:
//! 30 actions in all instead of `while True`, and each wait has a 50 ms
//! timeout so the bounded run can always finish. (Python:
//! `threading.Condition`, over its default `RLock`.)

use spindle::sync::Condition;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::Relaxed};
use std::thread;
use std::time::Duration;

const ACTIONS: usize = 30;
const PATIENCE: Duration = Duration::from_millis(50);

struct Shared {
    con: Condition,
    count: AtomicU32,
    actions: AtomicUsize,
}

impl Shared {
    fn done(&self) -> bool {
        self.actions.load(Relaxed) >= ACTIONS
    }
}

fn name() -> String {
    thread::current().name().unwrap_or("?").to_owned()
}

fn putter(sh: &Shared) {
    while !sh.done() {
        sh.con.acquire();
        let count = sh.count.load(Relaxed);
        if count > 100 {
            let _ = sh.con.wait_timeout(PATIENCE); // produce only when count <= 100
        } else {
            sh.count.store(count + 50, Relaxed);
            sh.actions.fetch_add(1, Relaxed);
            println!("{} produce 50, count={}", name(), count + 50);
            let _ = sh.con.notify_one(); // wake one waiting thread
        }
        sh.con.release().expect("we hold the lock");
    }
}

fn taker(sh: &Shared) {
    while !sh.done() {
        {
            let _with = sh.con.lock();
            let count = sh.count.load(Relaxed);
            if count < 100 {
                let _ = sh.con.wait_timeout(PATIENCE); // consume only when count >= 100
            } else {
                sh.count.store(count - 20, Relaxed);
                sh.actions.fetch_add(1, Relaxed);
                println!("{} consume 20, count={}", name(), count - 20);
                let _ = sh.con.notify_one();
            }
        }
        thread::sleep(Duration::from_millis(10)); // Python's sleep(1), scaled
    }
}

fn main() {
    let sh = Shared {
        con: Condition::new(),
        count: AtomicU32::new(200),
        actions: AtomicUsize::new(0),
    };
    thread::scope(|s| {
        for _ in 0..2 {
            thread::Builder::new()
                .name("Putter".into())
                .spawn_scoped(s, || putter(&sh))
                .expect("spawn");
        }
        for _ in 0..3 {
            thread::Builder::new()
                .name("Taker".into())
                .spawn_scoped(s, || taker(&sh))
                .expect("spawn");
        }
    });
    println!(
        "{} actions, final count={}",
        sh.actions.load(Relaxed),
        sh.count.load(Relaxed)
    );
}
