//! [`Event`]: Python's `multiprocessing.Event`, in shared memory.

use std::fmt;
use std::io;
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::core::{self, Kind, Region};
use crate::sync::deadline_after;

/// Word 1: bit 0 is the flag, the other bits count the `set`s.
const W_FLAG: usize = 1;
const SET: u32 = 1;
/// Threads inside `wait` (test support).
const W_WAITING: usize = 2;
const WORDS: usize = 3;

/// A flag processes can wait on, Python's `multiprocessing.Event`:
/// [`set`](Event::set) wakes every waiter in every process,
/// [`clear`](Event::clear) resets it.
///
/// One shared word and a futex: there is no lock inside, so a process that
/// dies cannot wedge it.
///
/// # Examples
///
/// ```
/// use spindle::ipc::sync::Event;
/// use spindle::process::Process;
///
/// #[spindle::task]
/// fn signal(ready: Event) {
///     ready.set();
/// }
///
/// let ready = Event::new()?;
/// let mut p = Process::new(signal::call(ready.clone()));
/// p.start()?;
/// ready.wait(); // woken by the child
/// assert!(ready.is_set());
/// p.join()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Event {
    region: Region,
}

impl Event {
    /// Creates a clear event in fresh shared memory
    /// (`multiprocessing.Event()`).
    ///
    /// # Errors
    /// The OS error if the shared memory cannot be made.
    pub fn new() -> io::Result<Event> {
        Ok(Event {
            region: Region::new(Kind::Event, WORDS)?,
        })
    }

    /// Whether the flag is set (`is_set()`).
    pub fn is_set(&self) -> bool {
        self.region.word(W_FLAG).load(SeqCst) & SET != 0
    }

    /// Sets the flag and wakes every waiter (`set()`).
    pub fn set(&self) {
        let w = self.region.word(W_FLAG);
        let mut cur = w.load(SeqCst);
        while cur & SET == 0 {
            // Bump the generation too: a waiter that sleeps through a
            // `set` + `clear` still sees that a set happened.
            let next = (cur & !SET).wrapping_add(2) | SET;
            match w.compare_exchange(cur, next, SeqCst, SeqCst) {
                Ok(_) => {
                    core::wake_all(w);
                    return;
                }
                Err(now) => cur = now,
            }
        }
    }

    /// Clears the flag (`clear()`).
    pub fn clear(&self) {
        self.region.word(W_FLAG).fetch_and(!SET, SeqCst);
    }

    /// Blocks until the flag is set (`wait()`).
    pub fn wait(&self) {
        self.wait_inner(None);
    }

    /// Whether the flag is set, without blocking (`wait(0)`).
    pub fn try_wait(&self) -> bool {
        self.is_set()
    }

    /// Waits at most `timeout`; returns the flag (`wait(timeout)`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let ev = spindle::ipc::sync::Event::new()?;
    /// assert!(!ev.wait_timeout(Duration::from_millis(1)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_inner(deadline_after(timeout))
    }

    /// Waits at most until `deadline`; returns the flag.
    pub fn wait_deadline(&self, deadline: Instant) -> bool {
        self.wait_inner(Some(deadline))
    }

    fn wait_inner(&self, deadline: Option<Instant>) -> bool {
        let w = self.region.word(W_FLAG);
        let first = w.load(SeqCst);
        let waiting = self.region.word(W_WAITING);
        waiting.fetch_add(1, SeqCst);
        let r = self.wait_from(first, deadline);
        waiting.fetch_sub(1, SeqCst);
        r
    }

    fn wait_from(&self, first: u32, deadline: Option<Instant>) -> bool {
        let w = self.region.word(W_FLAG);
        loop {
            let cur = w.load(SeqCst);
            // Set now, or set (and maybe cleared) since we started waiting.
            if cur & SET != 0 || cur != first {
                return true;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            core::wait_on(w, cur, deadline);
        }
    }
}

impl Event {
    /// Test support, not part of the API: how many threads (of any process)
    /// are inside `wait` now.
    #[doc(hidden)]
    pub fn __waiting(&self) -> usize {
        self.region.word(W_WAITING).load(SeqCst) as usize
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.is_set())
            .finish()
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.region.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Event {
            region: Region::deserialize(d, Kind::Event, WORDS)?,
        })
    }
}
