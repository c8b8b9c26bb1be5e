//! [`Watchdog`]: a thread that runs [`detect`](super::detect)
//! periodically, reports each new deadlock once and applies a [`Recovery`].
#![forbid(unsafe_code)]

use super::{Deadlock, Recovery, detect, enable};
use parking_lot::Mutex;
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A thread that runs [`detect`] every `interval`, reports each new deadlock
/// once (to standard error or a callback) and applies a [`Recovery`]. It stops
/// when dropped.
pub struct Watchdog {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    found: Arc<Mutex<Vec<Deadlock>>>,
}

type Callback = Arc<dyn Fn(&Deadlock) + Send + Sync>;

/// Configures a [`Watchdog`]; from [`Watchdog::builder`].
#[must_use = "call start() to start the watchdog"]
pub struct WatchdogBuilder {
    interval: Duration,
    recovery: Recovery,
    on_deadlock: Option<Callback>,
}

impl Watchdog {
    /// Starts a watchdog that checks every `interval` and only reports.
    pub fn start(interval: Duration) -> Watchdog {
        Watchdog::builder().interval(interval).start()
    }

    /// A builder: interval 100 ms, [`Recovery::Report`], reports on stderr.
    pub fn builder() -> WatchdogBuilder {
        WatchdogBuilder {
            interval: Duration::from_millis(100),
            recovery: Recovery::Report,
            on_deadlock: None,
        }
    }

    /// The deadlocks found so far.
    pub fn found(&self) -> Vec<Deadlock> {
        self.found.lock().clone()
    }

    /// Stops the watchdog and waits for its thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl fmt::Debug for Watchdog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watchdog")
            .field("found", &self.found.lock().len())
            .finish()
    }
}

impl WatchdogBuilder {
    /// How often to look (default 100 ms).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }
    /// What to do with a deadlock (default [`Recovery::Report`]).
    pub fn recovery(mut self, recovery: Recovery) -> Self {
        self.recovery = recovery;
        self
    }
    /// Calls `f` with each new deadlock instead of printing it.
    pub fn on_deadlock(mut self, f: impl Fn(&Deadlock) + Send + Sync + 'static) -> Self {
        self.on_deadlock = Some(Arc::new(f));
        self
    }
    /// Enables the detector's tracking and starts the watchdog thread.
    ///
    /// # Panics
    ///
    /// If the thread cannot be spawned.
    pub fn start(self) -> Watchdog {
        enable();
        let (tx, rx) = mpsc::channel::<()>();
        let found = Arc::new(Mutex::new(Vec::new()));
        let found2 = Arc::clone(&found);
        let thread = std::thread::Builder::new()
            .name("spindle-deadlock-watchdog".into())
            .spawn(move || {
                let mut seen = HashSet::new();
                while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(self.interval) {
                    for d in detect() {
                        if !seen.insert(d.key()) {
                            continue;
                        }
                        found2.lock().push(d.clone());
                        match &self.on_deadlock {
                            Some(f) => f(&d),
                            None => eprint!("spindle lockorder: {d}"),
                        }
                        d.recover(self.recovery);
                    }
                }
            })
            .expect("spawn the deadlock watchdog thread");
        Watchdog {
            stop: Some(tx),
            thread: Some(thread),
            found,
        }
    }
}

impl fmt::Debug for WatchdogBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchdogBuilder")
            .field("interval", &self.interval)
            .field("recovery", &self.recovery)
            .finish()
    }
}
