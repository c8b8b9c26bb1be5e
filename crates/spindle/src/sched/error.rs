//! Errors of `spindle::sched`.
#![forbid(unsafe_code)]

use std::any::Any;
use std::fmt;

use parking_lot::Mutex;

use super::event::ScheduledEvent;
use crate::util::panic_message;

/// [`Scheduler::cancel`](super::Scheduler::cancel) failed: the event was not in
/// this scheduler's queue (Python raises `ValueError`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CancelError {
    /// The event already ran, is running, or was already cancelled.
    NotQueued,
    /// The event was entered in another scheduler.
    ForeignEvent,
}

impl fmt::Display for CancelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CancelError::NotQueued => "event is not in the scheduler's queue",
            CancelError::ForeignEvent => "event belongs to another scheduler",
        })
    }
}

impl std::error::Error for CancelError {}

/// A scheduled action panicked; [`Scheduler::run`](super::Scheduler::run) stopped
/// and returned this instead of unwinding (Python propagates the exception out of
/// `run()`).
///
/// The scheduler is left consistent: the panicking event is no longer queued, the
/// others are, and calling `run` again carries on with them. To propagate the panic
/// as Python does, `std::panic::resume_unwind(err.into_panic())`.
pub struct ActionPanicked {
    event: ScheduledEvent,
    message: Option<String>,
    // In a Mutex only so that the error is Sync (the payload is only Send).
    payload: Mutex<Box<dyn Any + Send>>,
}

impl ActionPanicked {
    pub(crate) fn new(event: ScheduledEvent, payload: Box<dyn Any + Send>) -> Self {
        ActionPanicked {
            event,
            message: panic_message(&*payload).map(str::to_owned),
            payload: Mutex::new(payload),
        }
    }

    /// The event whose action panicked.
    pub fn event(&self) -> ScheduledEvent {
        self.event
    }

    /// The panic message, if the payload was a string.
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }

    /// The panic payload, for `std::panic::resume_unwind`.
    pub fn into_panic(self) -> Box<dyn Any + Send> {
        self.payload.into_inner()
    }
}

impl fmt::Debug for ActionPanicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActionPanicked")
            .field("event", &self.event)
            .field("message", &self.message)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for ActionPanicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Some(m) => write!(f, "scheduled action panicked: {m}"),
            None => f.write_str("scheduled action panicked"),
        }
    }
}

impl std::error::Error for ActionPanicked {}

/// [`Timer::start`](super::Timer::start) failed.
#[derive(Debug)]
pub enum StartError {
    /// The timer was already started (Python raises `RuntimeError`: "threads can
    /// only be started once").
    AlreadyStarted,
    /// The operating system refused to create the timer's thread.
    Spawn(crate::thread::SpawnError),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::AlreadyStarted => f.write_str("timer already started"),
            StartError::Spawn(e) => write!(f, "cannot spawn the timer thread: {e}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Spawn(e) => Some(e),
            StartError::AlreadyStarted => None,
        }
    }
}

/// [`Timer::join`](super::Timer::join) or
/// [`join_timeout`](super::Timer::join_timeout) failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JoinError {
    /// The timer was never started (Python raises `RuntimeError`).
    NotStarted,
    /// The timer's thread is still running at the deadline.
    Timeout,
    /// Called from the timer's own function, which would wait for itself forever
    /// (Python raises `RuntimeError`: "cannot join current thread").
    CurrentThread,
    /// The timer's function panicked; no further runs happen. Holds the panic
    /// message if it was a string.
    Panicked(Option<String>),
}

impl JoinError {
    /// Whether the timer's function panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, JoinError::Panicked(_))
    }

    /// Whether the join timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, JoinError::Timeout)
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::NotStarted => f.write_str("timer was never started"),
            JoinError::Timeout => f.write_str("timed out joining the timer"),
            JoinError::CurrentThread => f.write_str("a timer cannot join itself"),
            JoinError::Panicked(Some(m)) => write!(f, "timer function panicked: {m}"),
            JoinError::Panicked(None) => f.write_str("timer function panicked"),
        }
    }
}

impl std::error::Error for JoinError {}
