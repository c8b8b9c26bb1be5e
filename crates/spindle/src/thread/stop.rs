//! A cooperative stop signal: Python's `self._running = False` flag, made
//! safe to share and able to cut a sleep short.
#![forbid(unsafe_code)]

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

struct Shared {
    stopped: AtomicBool,
    lock: Mutex<()>,
    cond: Condvar,
}

impl Shared {
    fn wait_deadline(&self, deadline: Option<Instant>) -> bool {
        if self.stopped.load(Ordering::Acquire) {
            return true;
        }
        let mut guard = self.lock.lock();
        while !self.stopped.load(Ordering::Acquire) {
            match deadline {
                None => self.cond.wait(&mut guard),
                Some(at) => {
                    if self.cond.wait_until(&mut guard, at).timed_out() {
                        return self.stopped.load(Ordering::Acquire);
                    }
                }
            }
        }
        true
    }
}

/// The side that asks threads to stop. Threads observe it through
/// [`StopToken`]s made by [`token`](StopSource::token).
///
/// Python has no built-in for this; the Python Cookbook (recipe 12.1,
/// `CountdownTask`) writes a class with a `_running` flag and a
/// `terminate()` method. `StopSource::stop` is `terminate()`, and
/// [`StopToken::wait_timeout`] replaces the `time.sleep` between polls so a
/// stopped thread wakes at once instead of finishing its sleep. Stopping is
/// permanent and idempotent. Clones share one signal.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use spindle::thread::{self, StopSource};
///
/// let stop = StopSource::new();
/// let token = stop.token();
/// let h = thread::spawn(move || {
///     let mut n = 10;
///     while !token.is_stopped() && n > 0 {
///         n -= 1;
///         token.wait_timeout(Duration::from_millis(1)); // sleeps, wakes on stop
///     }
///     n
/// })?;
/// stop.stop(); // terminate()
/// let _left = h.join()?; // returns promptly, whatever n had reached
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct StopSource {
    shared: Arc<Shared>,
}

/// The side a thread polls or waits on; see [`StopSource`]. Cheap to clone,
/// `Send + Sync`, usable by any number of threads.
#[derive(Clone)]
pub struct StopToken {
    shared: Arc<Shared>,
}

impl StopSource {
    /// A new, not yet stopped signal.
    pub fn new() -> StopSource {
        let shared = Shared {
            stopped: AtomicBool::new(false),
            lock: Mutex::new(()),
            cond: Condvar::new(),
        };
        StopSource {
            shared: Arc::new(shared),
        }
    }

    /// A token observing this signal.
    pub fn token(&self) -> StopToken {
        StopToken {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Asks every token holder to stop and wakes those waiting. Returns `true`
    /// for the call that actually stopped it, `false` if it was already stopped.
    ///
    /// # Examples
    ///
    /// ```
    /// let stop = spindle::thread::StopSource::new();
    /// assert!(stop.stop());
    /// assert!(!stop.stop());
    /// assert!(stop.token().is_stopped());
    /// ```
    pub fn stop(&self) -> bool {
        // Take the lock so a waiter between its check and its sleep cannot
        // miss the notification.
        let _guard = self.shared.lock.lock();
        let first = !self.shared.stopped.swap(true, Ordering::AcqRel);
        self.shared.cond.notify_all();
        first
    }

    /// `true` once [`stop`](StopSource::stop) was called.
    pub fn is_stopped(&self) -> bool {
        self.shared.stopped.load(Ordering::Acquire)
    }
}

impl Default for StopSource {
    fn default() -> Self {
        StopSource::new()
    }
}

impl StopToken {
    /// `true` once the source was stopped. A single atomic load: cheap
    /// enough to poll in a hot loop.
    pub fn is_stopped(&self) -> bool {
        self.shared.stopped.load(Ordering::Acquire)
    }

    /// Blocks until the source is stopped.
    pub fn wait(&self) {
        self.shared.wait_deadline(None);
    }

    /// Sleeps for `timeout`, returning early when stopped. Returns `true` if
    /// stopped (so `while !token.wait_timeout(d) { work() }` runs until
    /// stopped), `false` when the time ran out.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let stop = spindle::thread::StopSource::new();
    /// let token = stop.token();
    /// assert!(!token.wait_timeout(Duration::from_millis(1)));
    /// stop.stop();
    /// assert!(token.wait_timeout(Duration::from_secs(3600))); // at once
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.shared
            .wait_deadline(Instant::now().checked_add(timeout))
    }

    /// Sleeps until `deadline`, returning early when stopped; see
    /// [`wait_timeout`](StopToken::wait_timeout).
    pub fn wait_deadline(&self, deadline: Instant) -> bool {
        self.shared.wait_deadline(Some(deadline))
    }
}

impl fmt::Debug for StopSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StopSource")
            .field("stopped", &self.is_stopped())
            .finish()
    }
}

impl fmt::Debug for StopToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StopToken")
            .field("stopped", &self.is_stopped())
            .finish()
    }
}
