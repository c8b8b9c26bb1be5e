//! Small helpers the modules share: how long a blocking call may wait, and
//! what a panic said.
#![forbid(unsafe_code)]

use std::any::Any;
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

/// The message of a panic payload: the `&str` or `String` that `panic!`
/// carries, `None` for any other payload (the answer of the
/// `panic_message` methods of the crate's errors).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> Option<&str> {
    if let Some(s) = payload.downcast_ref::<&str>() {
        Some(s)
    } else {
        payload.downcast_ref::<String>().map(String::as_str)
    }
}

/// [`panic_message`], or `"Box<dyn Any>"` for a payload that is not a
/// string (as the default panic hook prints it).
pub(crate) fn panic_text(payload: &(dyn Any + Send)) -> String {
    panic_message(payload).unwrap_or("Box<dyn Any>").to_owned()
}

/// Test support: a waker that records that it was woken.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    use std::task::{Wake, Waker};

    /// Set when its waker is woken.
    pub(crate) struct WakeFlag(AtomicBool);

    impl WakeFlag {
        /// Whether the waker was woken.
        pub(crate) fn woken(&self) -> bool {
            self.0.load(SeqCst)
        }
    }

    impl Wake for WakeFlag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, SeqCst);
        }
    }

    /// A fresh flag and the waker that sets it.
    pub(crate) fn flag_waker() -> (Arc<WakeFlag>, Waker) {
        let f = Arc::new(WakeFlag(AtomicBool::new(false)));
        (Arc::clone(&f), Waker::from(f))
    }
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

    #[test]
    fn panic_payloads() {
        let s: Box<dyn Any + Send> = Box::new("static");
        let owned: Box<dyn Any + Send> = Box::new(String::from("owned"));
        let other: Box<dyn Any + Send> = Box::new(7u32);
        assert_eq!(panic_message(&*s), Some("static"));
        assert_eq!(panic_message(&*owned), Some("owned"));
        assert_eq!(panic_message(&*other), None);
        assert_eq!(panic_text(&*owned), "owned");
        assert_eq!(panic_text(&*other), "Box<dyn Any>");
    }
}
