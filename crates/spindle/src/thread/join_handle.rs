//! `JoinHandle<T>`: a started thread plus the value its closure returns.
#![forbid(unsafe_code)]

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::Thread;
use super::error::{JoinError, JoinTimeoutError};

/// Owns a running thread's result: [`join`](JoinHandle::join) waits and
/// returns the closure's value. Returned by [`Builder::spawn`](super::Builder::spawn)
/// and [`spawn`](super::spawn).
///
/// Python's `Thread.join()` returns `None`; spindle hands back the value, or
/// the panic message as [`JoinError::Panicked`]. To wait from several threads,
/// or to wait with a timeout and join later, use the shared
/// [`Thread`] from [`thread()`](JoinHandle::thread) or the by-reference
/// [`join_timeout`](JoinHandle::join_timeout). Dropping the handle detaches
/// the thread (it keeps running; its value is dropped when it ends).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let h = spindle::thread::spawn(|| (1..=10).sum::<u32>())?;
/// h.join_timeout(Duration::from_secs(60))?; // finished within a minute
/// assert!(!h.is_alive());
/// assert_eq!(h.join()?, 55); // returns at once
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct JoinHandle<T> {
    thread: Thread,
    value: Arc<Mutex<Option<T>>>,
}

impl<T> JoinHandle<T> {
    pub(super) fn new(thread: Thread, value: Arc<Mutex<Option<T>>>) -> Self {
        JoinHandle { thread, value }
    }

    /// Waits for the thread to finish and returns its closure's value.
    /// Mirrors `Thread.join()`.
    ///
    /// # Errors
    ///
    /// [`JoinError::Panicked`] carrying the panic message if the closure
    /// panicked; [`JoinError::CurrentThread`] if called from the thread itself.
    ///
    /// # Examples
    ///
    /// ```
    /// let h = spindle::thread::spawn(|| -> u8 { panic!("out of fuel") })?;
    /// let err = h.join().unwrap_err();
    /// assert_eq!(err.panic_message(), Some("out of fuel"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join(self) -> Result<T, JoinError> {
        self.thread.join()?;
        let value = self.value.lock().take();
        Ok(value.expect("a thread that finished without panicking stored its value"))
    }

    /// Waits at most `timeout` for the thread to finish. Mirrors
    /// `Thread.join(timeout)`; `Ok(())` means it has finished, and
    /// [`join`](JoinHandle::join) then returns its value at once.
    ///
    /// # Errors
    ///
    /// [`JoinTimeoutError::Timeout`] if it is still running (the handle stays
    /// usable); [`JoinTimeoutError::Panicked`] if its closure panicked.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use spindle::thread::StopSource;
    ///
    /// let stop = StopSource::new();
    /// let token = stop.token();
    /// let h = spindle::thread::spawn(move || { token.wait(); "stopped" })?;
    /// assert!(h.join_timeout(Duration::from_millis(5)).unwrap_err().is_timeout());
    /// stop.stop();
    /// assert_eq!(h.join()?, "stopped");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), JoinTimeoutError> {
        self.thread.join_timeout(timeout)
    }

    /// Waits until `deadline` at most; see [`join_timeout`](JoinHandle::join_timeout).
    ///
    /// # Errors
    ///
    /// As for [`join_timeout`](JoinHandle::join_timeout).
    pub fn join_deadline(&self, deadline: Instant) -> Result<(), JoinTimeoutError> {
        self.thread.join_deadline(deadline)
    }

    /// The shared [`Thread`]: clone it to join from other threads.
    pub fn thread(&self) -> &Thread {
        &self.thread
    }

    /// `true` until the closure has returned or panicked (`Thread.is_alive()`).
    pub fn is_alive(&self) -> bool {
        self.thread.is_alive()
    }

    /// The thread's name (`Thread.name`).
    pub fn name(&self) -> &str {
        self.thread.name()
    }

    /// The daemon flag (`Thread.daemon`).
    pub fn is_daemon(&self) -> bool {
        self.thread.is_daemon()
    }

    /// The thread's spindle ident (`Thread.ident`); always `Some` for a
    /// spawned thread.
    pub fn ident(&self) -> Option<u64> {
        self.thread.ident()
    }

    /// The kernel's id for the thread (`Thread.native_id`).
    pub fn native_id(&self) -> Option<u64> {
        self.thread.native_id()
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("JoinHandle").field(&self.thread).finish()
    }
}
