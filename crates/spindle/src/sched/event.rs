//! [`ScheduledEvent`]: the handle of an event entered in a scheduler, apart
//! from scheduler.rs so that the errors (error.rs) can carry one without
//! naming the scheduler.
#![forbid(unsafe_code)]

use std::time::Instant;

/// A handle to one event entered in a [`Scheduler`](super::Scheduler): its
/// time, priority and sequence number, in the order the scheduler runs events.
///
/// Mirrors the `Event` named tuple of Python's `sched` (named so as not to clash
/// with `spindle::sync::Event`); the action itself stays inside the scheduler.
/// Events compare as Python's do: by time, then priority (lower first), then
/// insertion order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ScheduledEvent {
    pub(super) time: Instant,
    pub(super) priority: i64,
    pub(super) sequence: u64,
    /// The id of the scheduler it was entered in.
    pub(super) scheduler: u64,
}

impl ScheduledEvent {
    /// When the event is due, on its scheduler's clock.
    pub fn time(&self) -> Instant {
        self.time
    }

    /// Its priority: among events due at the same time, lower runs first.
    pub fn priority(&self) -> i64 {
        self.priority
    }

    /// Its insertion number in its scheduler: among equal times and priorities,
    /// earlier entered runs first.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }
}
