//! [`WaitSet`]: what `wait` and `as_completed` register on each future, and
//! what a future pushes itself into once done (Python's `_Waiter`). Apart
//! from wait.rs so that the futures' shared state (shared.rs) can name it
//! without naming the functions that take futures.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::sync::Arc;

use crate::loom::sync::{Condvar, Mutex};

/// A set of waiters registered on several futures (Python's `_Waiter`): each
/// future pushes its index when it is done.
pub(crate) struct WaitSet {
    pub(super) inner: Mutex<WaitSetInner>,
    pub(super) cond: Condvar,
}

#[derive(Default)]
pub(super) struct WaitSetInner {
    /// Indices of done futures not yet taken by `as_completed`.
    pub(super) ready: VecDeque<usize>,
    pub(super) finished: usize,
    pub(super) exceptions: usize,
}

impl WaitSet {
    pub(super) fn new() -> Arc<WaitSet> {
        Arc::new(WaitSet {
            inner: Mutex::new(WaitSetInner::default()),
            cond: Condvar::new(),
        })
    }

    pub(crate) fn push(&self, index: usize, exception: bool) {
        let mut g = self.inner.lock();
        g.ready.push_back(index);
        g.finished += 1;
        g.exceptions += usize::from(exception);
        drop(g);
        self.cond.notify_all();
    }
}
