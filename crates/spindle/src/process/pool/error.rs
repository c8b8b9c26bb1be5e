//! Errors of the process pools.
#![forbid(unsafe_code)]

use std::fmt;

use crate::process::ProcessError;

/// Why a pool operation failed: the pool could not start, or a call broke
/// Python's rules (joining a running pool).
///
/// Opaque, with predicates. Task failures are not `PoolError`s: they come
/// back from each task's [`Future`](crate::futures::Future) /
/// [`AsyncResult`](super::AsyncResult) as a
/// [`FutureError`](crate::futures::FutureError).
pub struct PoolError {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Start(ProcessError),
    StillRunning,
    Timeout,
    /// A builder argument that must not be 0 was 0 (Python's `ValueError`).
    Invalid(&'static str),
}

impl PoolError {
    pub(crate) fn start(e: ProcessError) -> PoolError {
        PoolError {
            kind: Kind::Start(e),
        }
    }

    pub(crate) fn still_running() -> PoolError {
        PoolError {
            kind: Kind::StillRunning,
        }
    }

    pub(crate) fn invalid(name: &'static str) -> PoolError {
        PoolError {
            kind: Kind::Invalid(name),
        }
    }

    pub(crate) fn timeout() -> PoolError {
        PoolError {
            kind: Kind::Timeout,
        }
    }

    /// A worker process could not be started; see
    /// [`process_error`](Self::process_error).
    pub fn is_start_failed(&self) -> bool {
        matches!(self.kind, Kind::Start(_))
    }

    /// `join` was called on a pool neither closed nor terminated (Python's
    /// `ValueError: Pool is still running`).
    pub fn is_still_running(&self) -> bool {
        matches!(self.kind, Kind::StillRunning)
    }

    /// `join_timeout` / `join_deadline` ran out with workers still alive.
    pub fn is_timeout(&self) -> bool {
        matches!(self.kind, Kind::Timeout)
    }

    /// A builder argument was 0 where Python raises `ValueError` (`processes`,
    /// `max_workers`, `maxtasksperchild`, `max_tasks_per_child`,
    /// `task_timeout`); [`invalid_argument`](Self::invalid_argument) names it.
    /// Nothing was started.
    pub fn is_invalid_argument(&self) -> bool {
        matches!(self.kind, Kind::Invalid(_))
    }

    /// The builder argument behind [`is_invalid_argument`](Self::is_invalid_argument).
    pub fn invalid_argument(&self) -> Option<&'static str> {
        match self.kind {
            Kind::Invalid(name) => Some(name),
            _ => None,
        }
    }

    /// The process error behind a start failure.
    pub fn process_error(&self) -> Option<&ProcessError> {
        match &self.kind {
            Kind::Start(e) => Some(e),
            Kind::StillRunning | Kind::Timeout | Kind::Invalid(_) => None,
        }
    }
}

impl fmt::Debug for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PoolError").field(&self.kind).finish()
    }
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Start(e) => write!(f, "a pool worker could not be started: {e}"),
            Kind::StillRunning => {
                f.write_str("the pool is still running: close or terminate it before join")
            }
            Kind::Timeout => f.write_str("timed out waiting for the pool's workers to exit"),
            Kind::Invalid(name) => write!(
                f,
                "{name} must be greater than 0 (leave it unset for the default)"
            ),
        }
    }
}

impl std::error::Error for PoolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            Kind::Start(e) => Some(e),
            Kind::StillRunning | Kind::Timeout | Kind::Invalid(_) => None,
        }
    }
}
