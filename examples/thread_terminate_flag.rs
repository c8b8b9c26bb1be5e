//! Python Cookbook recipe 12.1, ending a thread: a `CountdownTask` whose
//! `run()` polls a `_running` flag and whose `terminate()` clears it.
//!
//! spindle's `StopSource` is the flag, made safe to share, and its token's
//! `wait_timeout` replaces `time.sleep(5)` so the thread wakes at once when
//! terminated instead of finishing its sleep.

use std::time::{Duration, Instant};

use spindle::thread::{StopSource, StopToken, Thread};

struct CountdownTask {
    stop: StopSource,
}

impl CountdownTask {
    fn new() -> Self {
        CountdownTask {
            stop: StopSource::new(),
        }
    }

    /// Python: `def terminate(self): self._running = False`.
    fn terminate(&self) {
        self.stop.stop();
    }

    /// Python: `while self._running and n > 0: ...; time.sleep(5)`.
    fn run(token: StopToken, mut n: u32) -> u32 {
        while !token.is_stopped() && n > 0 {
            println!("T-minus {n}");
            n -= 1;
            // Sleep 5 s like the recipe, but wake as soon as terminate() is
            // called.
            token.wait_timeout(Duration::from_secs(5));
        }
        n
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let c = CountdownTask::new();
    let token = c.stop.token();
    let t = Thread::builder()
        .name("countdown")
        .spawn(move || CountdownTask::run(token, 10))?;
    std::thread::sleep(Duration::from_millis(50));
    let t0 = Instant::now();
    c.terminate(); // Signal termination
    let left = t.join()?; // Wait for actual termination
    println!(
        "terminated with {left} ticks left; the thread stopped {:.1} ms after terminate() \
         (not after the rest of its 5 s sleep)",
        t0.elapsed().as_secs_f64() * 1e3
    );
    assert!(t0.elapsed() < Duration::from_secs(5));
    Ok(())
}
