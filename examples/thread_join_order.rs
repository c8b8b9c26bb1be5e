//! Python's `Thread.join()`: what it does to the order of output.
//!
//! 1. `func(x, y)` in thread1, joined before thread2 starts: output in order.
//! 2. music and movie, each started and joined in turn: one after the other.
//! 3. music and movie both started, then both joined: interleaved, and
//!    `isAlive()` is false for both afterwards.

use std::io::Write;
use std::time::Duration;

use spindle::thread::Thread;

fn func(x: u32, y: u32) {
    let line: Vec<String> = (x..y).map(|i| i.to_string()).collect();
    print!("{} ", line.join(" "));
    std::io::stdout().flush().ok();
}

fn music(par: &str, pause: Duration) {
    for _ in 0..3 {
        println!("listening {par}");
        std::thread::sleep(pause);
    }
}

fn movie(par: &str, pause: Duration) {
    for _ in 0..3 {
        println!("watching {par}");
        std::thread::sleep(pause);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("-- 1. join right after start: thread1 finishes before thread2 starts");
    let t1 = Thread::builder().name("thread1").build(|| func(1, 10));
    t1.start()?;
    t1.join()?; // comment this out and the two lines may mix
    let t2 = Thread::builder().name("thread2").build(|| func(10, 15));
    t2.start()?;
    t2.join()?;
    println!();

    println!("-- 2. start and join each in turn: sequential");
    let threads = [
        Thread::new(|| music("学猫叫", Duration::ZERO)),
        Thread::new(|| movie("流浪地球", Duration::ZERO)),
    ];
    for t in &threads {
        t.start()?;
        t.join()?;
    }

    println!("-- 3. start all, then join all: concurrent");
    let t1 = Thread::new(|| music("学猫叫", Duration::from_millis(10)));
    let t2 = Thread::new(|| movie("流浪地球", Duration::from_millis(100)));
    let threads = [t1.clone(), t2.clone()];
    for t in &threads {
        t.start()?;
    }
    for t in &threads {
        t.join()?;
    }
    println!("{}", t1.is_alive());
    println!("{}", t2.is_alive()); // is the thread still running?
    Ok(())
}
