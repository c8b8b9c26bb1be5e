//! Python's `sched` module: a thread creates a `sched.scheduler`, enters three
//! actions due in 1 second with priorities 3, 2 and 1, and runs them: being due
//! at the same time, they run by priority (lower first), so the last URL prints
//! first.
//!
//! The Python program calls `enter(1, …)` three times, so each event is due one
//! second after *its own* call: the three times differ by microseconds, and on
//! a clock with fine resolution (Linux's `time.monotonic`) the Python program
//! actually prints them in entry order (python, shell, java); the output its
//! author shows, in priority order, comes from a coarse clock (Windows' ~15 ms
//! ticks) that made the times equal. Here the three events are entered at one
//! absolute time (`enterabs`), so priority decides on every platform, as the
//! program intends.

use std::thread;
use std::time::Duration;

use spindle::sched::Scheduler;

fn action(arg: &str) {
    println!("{arg}");
}

/// Python's `thread_action(*add)`: schedule each argument with a falling priority.
fn thread_action(add: &[&'static str]) {
    let sche = Scheduler::new();
    // All three due one second from now.
    let at = sche.now() + Duration::from_secs(1);
    let mut priority = 3;
    for &arc in add {
        sche.enterabs(at, priority, move || action(arc));
        priority -= 1;
    }
    println!("queued: {} events, running them…", sche.queue().len());
    // Run every scheduled action (blocks about one second).
    sche.run().expect("no action panics");
}

fn main() {
    let my_tuple = [
        "http://c.biancheng.net/python/",
        "http://c.biancheng.net/shell/",
        "http://c.biancheng.net/java/",
    ];
    let thread = thread::Builder::new()
        .name("thread_action".into())
        .spawn(move || thread_action(&my_tuple))
        .expect("spawn");
    thread.join().expect("thread_action never panics");
}
