//! Python Cookbook recipe 12.2: wait until a thread has really started, with
//! an `Event`.
//!
//! The countdown thread sets `started_evt` first thing; the main thread blocks
//! in `started_evt.wait()` until then. (Python: `threading.Event`; the recipe
//! counts down from 10 every 5 s, this port from 5 every 100 ms.)

use spindle::sync::Event;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

fn countdown(mut n: u32, started_evt: &Event) {
    println!("countdown starting");
    started_evt.set(); // the event's flag becomes true: wake whoever waits
    while n > 0 {
        println!("T-minus {n}");
        n -= 1;
        thread::sleep(Duration::from_millis(100));
    }
}

fn main() {
    let started_evt = Arc::new(Event::new());
    println!("Launching countdown");
    let evt = Arc::clone(&started_evt);
    let t = thread::spawn(move || countdown(5, &evt));
    started_evt.wait(); // blocks until the thread has started
    println!("countdown is running");
    t.join().expect("countdown thread panicked");
}
