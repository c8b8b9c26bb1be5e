//! Small helpers the modules share: how long a blocking call may wait.
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

/// How long a blocking operation may wait: the one argument of every
/// acquisition path, so `verb`, `try_verb`, `verb_timeout` and
/// `verb_deadline` share one code path (and what a scope's raw lock is
/// asked for).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// `try_*`: never block.
    Never,
    /// Block until done.
    Forever,
    /// Block until done or until the instant has passed.
    Until(Instant),
}

impl Wait {
    /// The wait of a `_timeout` call: until `d` from now; a duration too
    /// long to represent waits forever.
    pub(crate) fn after(d: Duration) -> Wait {
        match deadline_after(d) {
            Some(t) => Wait::Until(t),
            None => Wait::Forever,
        }
    }
}

/// A deadline `d` from now, or `None` (forever) if it cannot be represented.
pub(crate) fn deadline_after(d: Duration) -> Option<Instant> {
    Instant::now().checked_add(d)
}

/// Whether `deadline` (`None`: never) has passed. Under loom, whether the
/// model's clock has passed every deadline (see `crate::loom`).
#[inline]
pub(crate) fn passed(deadline: Option<Instant>) -> bool {
    #[cfg(loom)]
    return deadline.is_some() && crate::loom::expired();
    #[cfg(not(loom))]
    deadline.is_some_and(|d| Instant::now() >= d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_timeout_waits_forever() {
        assert_eq!(Wait::after(Duration::MAX), Wait::Forever);
        assert!(matches!(
            Wait::after(Duration::from_secs(1)),
            Wait::Until(_)
        ));
        assert!(passed(Some(Instant::now())));
        assert!(!passed(None));
    }
}
