//! A Python `threading.Event` example: a traffic light thread sets (green) and
//! clears (red) an `Event`; a car thread drives while it is set and waits while
//! it is clear.
//!
//! Bounded: two light cycles of 100 ms ticks instead of an endless loop of
//! 1 s ticks. (Python: `threading.Event`.)

use spindle::sync::Event;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::thread;
use std::time::Duration;

const TICK: Duration = Duration::from_millis(100);
const CYCLES: u32 = 2;

fn lighter(event: &Event, stop: &AtomicBool) {
    let mut count = 0;
    let mut cycles = 0;
    event.set(); // green at first
    loop {
        if 5 < count && count <= 10 {
            event.clear(); // red: clear the flag
            println!("\x1b[41;1mred light is on...\x1b[0m");
        } else if count > 10 {
            event.set(); // green again
            count = 0;
            cycles += 1;
            if cycles == CYCLES {
                break;
            }
        } else {
            println!("\x1b[42;1mgreen light is on...\x1b[0m");
        }
        thread::sleep(TICK);
        count += 1;
    }
    stop.store(true, SeqCst);
}

fn car(name: &str, event: &Event, stop: &AtomicBool) {
    while !stop.load(SeqCst) {
        if event.is_set() {
            println!("[{name}] running...");
            thread::sleep(TICK);
        } else {
            println!("[{name}] sees red light, waiting...");
            event.wait();
            println!("[{name}] green light is on, start going...");
        }
    }
}

fn main() {
    let event = Event::new();
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| lighter(&event, &stop));
        s.spawn(|| car("MINI", &event, &stop));
    });
    println!("{CYCLES} light cycles done");
}
