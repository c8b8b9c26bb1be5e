//! [`Event`]: Python's `threading.Event`.

use super::deadline_after;
use parking_lot_core::{
    self as plc, DEFAULT_PARK_TOKEN, DEFAULT_UNPARK_TOKEN, ParkResult, SpinWait,
};
use std::fmt;
use std::sync::atomic::AtomicU8;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};
use std::time::{Duration, Instant};

/// The flag is set.
const SET: u8 = 1;
/// The flag is clear and some thread may be parked (never together with SET).
const PARKED: u8 = 2;

/// A flag threads can wait on, Python's `threading.Event`: [`set`](Event::set)
/// wakes every waiter, [`clear`](Event::clear) resets it.
///
/// As in Python, a thread that was already waiting when `set` ran returns
/// `true` even if `clear` follows immediately: the wake-up cannot be lost.
///
/// # Examples
///
/// ```
/// use spindle::sync::Event;
/// use std::sync::Arc;
///
/// let started = Arc::new(Event::new());
/// let s2 = Arc::clone(&started);
/// let t = std::thread::spawn(move || s2.set());
/// started.wait(); // returns once the thread has set the flag
/// assert!(started.is_set());
/// t.join().unwrap();
/// ```
pub struct Event {
    state: AtomicU8,
}

impl Event {
    /// Creates a clear event (`threading.Event()`); usable in a `static`.
    pub const fn new() -> Self {
        Event {
            state: AtomicU8::new(0),
        }
    }

    /// Whether the flag is set (`is_set()`).
    #[inline]
    pub fn is_set(&self) -> bool {
        self.state.load(Acquire) == SET
    }

    /// Sets the flag and wakes every waiting thread (`set()`).
    #[inline]
    pub fn set(&self) {
        if self.state.swap(SET, AcqRel) == PARKED {
            // SAFETY: the key is our state's address, parked on only by
            // `wait_inner`.
            unsafe {
                plc::unpark_all(self.key(), DEFAULT_UNPARK_TOKEN);
            }
        }
    }

    /// Clears the flag (`clear()`); later waits block until the next `set`.
    #[inline]
    pub fn clear(&self) {
        // SET and PARKED never coexist, so this leaves a PARKED mark alone.
        let _ = self.state.compare_exchange(SET, 0, Relaxed, Relaxed);
    }

    /// Blocks until the flag is set (`wait()`).
    pub fn wait(&self) {
        self.wait_inner(None);
    }

    /// Returns whether the flag is set, never blocking (`wait(0)`).
    pub fn try_wait(&self) -> bool {
        self.is_set()
    }

    /// Blocks until the flag is set or `timeout` passed (`wait(timeout)`);
    /// returns `true` if woken by `set` or found set, `false` on timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let event = spindle::sync::Event::new();
    /// assert!(!event.wait_timeout(Duration::from_millis(1)));
    /// event.set();
    /// assert!(event.wait_timeout(Duration::from_secs(1)));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_inner(deadline_after(timeout))
    }

    /// Blocks until the flag is set or `deadline`; `false` on timeout.
    pub fn wait_deadline(&self, deadline: Instant) -> bool {
        self.wait_inner(Some(deadline))
    }

    /// Test support, not part of the API: how many threads are blocked in
    /// this object right now.
    #[doc(hidden)]
    pub fn __parked(&self) -> usize {
        super::parked_on(self.key())
    }

    fn key(&self) -> usize {
        &self.state as *const AtomicU8 as usize
    }

    fn wait_inner(&self, deadline: Option<Instant>) -> bool {
        if self.is_set() {
            return true;
        }
        // A short spin catches a `set` that is already on its way (ping-pong
        // between two running threads) without a trip through the kernel.
        let mut spin = SpinWait::new();
        while spin.spin() {
            if self.is_set() {
                return true;
            }
        }
        loop {
            match self.state.load(Acquire) {
                SET => return true,
                0 if self
                    .state
                    .compare_exchange_weak(0, PARKED, Relaxed, Relaxed)
                    .is_err() =>
                {
                    continue;
                }
                _ => {}
            }
            // SAFETY: our own key. `validate` and `timed_out` only touch our
            // atomic: they neither unwind nor call into parking_lot.
            let result = unsafe {
                plc::park(
                    self.key(),
                    || self.state.load(Relaxed) == PARKED,
                    || {},
                    |_, was_last| {
                        if was_last {
                            let _ = self.state.compare_exchange(PARKED, 0, Relaxed, Relaxed);
                        }
                    },
                    DEFAULT_PARK_TOKEN,
                    deadline,
                )
            };
            match result {
                // Only `set` unparks us: we were waiting when the flag was
                // set, so we report it even if it was cleared since.
                ParkResult::Unparked(_) => return true,
                ParkResult::TimedOut => return self.is_set(),
                ParkResult::Invalid => {}
            }
        }
    }
}

impl Default for Event {
    fn default() -> Self {
        Event::new()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.is_set())
            .finish()
    }
}
