//! Python's `threading.local()`: `local_data.num` accumulated separately by
//! Thread1 and Thread2 (`try: local_data.num += i except: local_data.num = i`),
//! then the ping/pong threads that each keep their own counter.

use std::io::Write;
use std::time::Duration;

use spindle::thread::{self, Local, Thread};

/// `None` plays the part of "attribute not set yet" (the Python program's
/// `except`).
static LOCAL_DATA: Local<Option<u64>> = Local::new(|| None);

fn fun(n: u64) {
    for i in 0..n {
        LOCAL_DATA.with(|num| {
            *num = Some(match *num {
                Some(num) => num + i, // local_data.num += i
                None => i,            // except: local_data.num = i
            })
        });
        std::thread::sleep(Duration::from_millis(20));
        println!(
            "{} local_data is : {}",
            thread::current_thread().name(),
            LOCAL_DATA.get().unwrap_or_default()
        );
    }
}

/// Ping-pong with a thread-local counter: each thread counts its own prints.
static COUNTER: Local<u32> = Local::new(|| 0);

fn sub_task(word: &'static str) {
    while COUNTER.get() < 5 {
        print!("{word}");
        std::io::stdout().flush().ok();
        COUNTER.with(|c| *c += 1);
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let threads = [
        Thread::builder().name("Thread1").build(|| fun(5)),
        Thread::builder().name("Thread2").build(|| fun(5)),
    ];
    for t in &threads {
        t.start()?;
    }
    for t in &threads {
        t.join()?;
    }

    let p1 = thread::spawn(|| sub_task("Ping"))?;
    let p2 = thread::spawn(|| sub_task("Pong"))?;
    p1.join()?;
    p2.join()?;
    println!();
    println!(
        "each thread printed its word 5 times; main's counter: {}",
        COUNTER.get()
    );
    Ok(())
}
