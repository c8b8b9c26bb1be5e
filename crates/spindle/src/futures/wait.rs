//! [`as_completed`] and [`wait`]: waiting on many futures at once (Python's
//! `concurrent.futures.as_completed` and `concurrent.futures.wait`).
#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Future;
use super::error::Timeout;
use super::waiter::WaitSet;
use crate::util::deadline_after;

/// Registers `set` on each future (distinct ones only; Python uses a set):
/// a future already done is pushed at once.
fn register<T, E>(set: &Arc<WaitSet>, fs: &[Future<T, E>]) {
    for (i, f) in fs.iter().enumerate() {
        let mut g = f.shared.inner.lock();
        if g.state.is_done() {
            let exc = g.is_exception();
            drop(g);
            set.push(i, exc);
        } else {
            g.lists().waiters.push((set.clone(), i));
        }
    }
}

fn unregister<T, E>(set: &Arc<WaitSet>, fs: &[Future<T, E>]) {
    for f in fs {
        let mut g = f.shared.inner.lock();
        if let Some(lists) = g.lists.as_mut() {
            lists.waiters.retain(|(s, _)| !Arc::ptr_eq(s, set));
        }
    }
}

/// Distinct futures, first occurrence kept, in input order.
fn distinct<'a, T: 'a, E: 'a>(fs: impl IntoIterator<Item = &'a Future<T, E>>) -> Vec<Future<T, E>> {
    let mut seen = HashSet::new();
    fs.into_iter()
        .filter(|f| seen.insert(f.key()))
        .cloned()
        .collect()
}

/// An iterator over futures as they complete: Python's
/// `concurrent.futures.as_completed(fs)`. See [`as_completed`].
#[must_use = "iterators are lazy"]
pub struct AsCompleted<T, E = std::convert::Infallible> {
    fs: Vec<Future<T, E>>,
    set: Arc<WaitSet>,
    yielded: usize,
    deadline: Option<Instant>,
    timed_out: bool,
}

impl<T, E> AsCompleted<T, E> {
    fn new<'a>(
        fs: impl IntoIterator<Item = &'a Future<T, E>>,
        deadline: Option<Instant>,
    ) -> AsCompleted<T, E>
    where
        T: 'a,
        E: 'a,
    {
        let fs = distinct(fs);
        let set = WaitSet::new();
        register(&set, &fs);
        AsCompleted {
            fs,
            set,
            yielded: 0,
            deadline,
            timed_out: false,
        }
    }

    /// The next done future, waiting until the deadline; `Err` on timeout.
    fn next_until(&mut self) -> Option<Result<Future<T, E>, Timeout>> {
        if self.yielded == self.fs.len() || self.timed_out {
            return None;
        }
        let mut g = self.set.inner.lock();
        loop {
            if let Some(i) = g.ready.pop_front() {
                self.yielded += 1;
                return Some(Ok(self.fs[i].clone()));
            }
            let timed_out = match self.deadline {
                None => {
                    self.set.cond.wait(&mut g);
                    false
                }
                Some(at) => self.set.cond.wait_until(&mut g, at).timed_out(),
            };
            if timed_out && g.ready.is_empty() {
                self.timed_out = true;
                return Some(Err(Timeout {
                    not_done: self.fs.len() - self.yielded,
                    total: self.fs.len(),
                }));
            }
        }
    }
}

impl<T, E> Iterator for AsCompleted<T, E> {
    type Item = Future<T, E>;

    fn next(&mut self) -> Option<Future<T, E>> {
        // Without a deadline the wait never times out.
        self.next_until().and_then(Result::ok)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.fs.len() - self.yielded;
        (left, Some(left))
    }
}

impl<T, E> Drop for AsCompleted<T, E> {
    fn drop(&mut self) {
        unregister(&self.set, &self.fs);
    }
}

impl<T, E> std::fmt::Debug for AsCompleted<T, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsCompleted")
            .field("futures", &self.fs.len())
            .field("yielded", &self.yielded)
            .finish_non_exhaustive()
    }
}

/// [`as_completed`] with a deadline: yields `Ok(future)` as each one
/// completes, then `Err(Timeout)` once if the deadline passes first, and ends.
#[must_use = "iterators are lazy"]
pub struct AsCompletedTimeout<T, E = std::convert::Infallible>(AsCompleted<T, E>);

impl<T, E> Iterator for AsCompletedTimeout<T, E> {
    type Item = Result<Future<T, E>, Timeout>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next_until()
    }
}

impl<T, E> std::fmt::Debug for AsCompletedTimeout<T, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Yields each future once it is done (finished or cancelled), in completion
/// order: Python's `concurrent.futures.as_completed(fs)`.
///
/// Futures already done come first. A future passed twice is yielded once.
/// Dropping the iterator early unregisters it from the futures.
///
/// # Examples
///
/// ```
/// use spindle::futures::{as_completed, Executor, ThreadPoolExecutor};
///
/// let pool = ThreadPoolExecutor::builder().max_workers(4).build().unwrap();
/// let fs: Vec<_> = (1..=5u64).map(|n| pool.submit(move || n * n).unwrap()).collect();
/// let mut total = 0;
/// for f in as_completed(&fs) {
///     total += f.result().unwrap();
/// }
/// assert_eq!(total, 55);
/// ```
pub fn as_completed<'a, T: 'a, E: 'a>(
    fs: impl IntoIterator<Item = &'a Future<T, E>>,
) -> AsCompleted<T, E> {
    AsCompleted::new(fs, None)
}

/// [`as_completed`] bounded by `timeout` (counted from this call): Python's
/// `as_completed(fs, timeout)`.
///
/// # Errors
///
/// The iterator yields `Err(Timeout)` once and ends if some futures are still
/// not done when the time is up; those are not yielded.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use spindle::futures::{as_completed_timeout, Promise};
///
/// let (done, a) = Promise::<u32>::new();
/// let (_pending, b) = Promise::<u32>::new();
/// done.set_result(1).unwrap();
/// let got: Vec<_> = as_completed_timeout([&a, &b], Duration::from_millis(10)).collect();
/// assert!(got[0].as_ref().unwrap().ptr_eq(&a));
/// assert_eq!(got[1].as_ref().unwrap_err().not_done, 1);
/// assert_eq!(got.len(), 2);
/// ```
pub fn as_completed_timeout<'a, T: 'a, E: 'a>(
    fs: impl IntoIterator<Item = &'a Future<T, E>>,
    timeout: Duration,
) -> AsCompletedTimeout<T, E> {
    AsCompletedTimeout(AsCompleted::new(fs, deadline_after(timeout)))
}

/// [`as_completed_timeout`] with an absolute deadline.
pub fn as_completed_deadline<'a, T: 'a, E: 'a>(
    fs: impl IntoIterator<Item = &'a Future<T, E>>,
    deadline: Instant,
) -> AsCompletedTimeout<T, E> {
    AsCompletedTimeout(AsCompleted::new(fs, Some(deadline)))
}

/// When [`wait`] returns: Python's `FIRST_COMPLETED`, `FIRST_EXCEPTION`,
/// `ALL_COMPLETED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ReturnWhen {
    /// As soon as any future is done (finished or cancelled).
    FirstCompleted,
    /// As soon as any future fails (its own error, a panic, a broken pool —
    /// not a cancellation); like `AllCompleted` if none fails.
    FirstException,
    /// When every future is done.
    #[default]
    AllCompleted,
}

/// The futures [`wait`] found done and not done (Python's `DoneAndNotDoneFutures`
/// named tuple; distinct futures, in input order, instead of sets).
#[derive(Debug)]
pub struct DoneAndNotDone<T, E = std::convert::Infallible> {
    /// The futures that were done (finished or cancelled).
    pub done: Vec<Future<T, E>>,
    /// The futures that were not.
    pub not_done: Vec<Future<T, E>>,
}

/// Waits until the futures satisfy `return_when`: Python's
/// `concurrent.futures.wait(fs, return_when=...)`.
///
/// # Examples
///
/// ```
/// use spindle::futures::{wait, Executor, ReturnWhen, ThreadPoolExecutor};
///
/// let pool = ThreadPoolExecutor::new();
/// let fs: Vec<_> = (0..4).map(|i| pool.submit(move || i).unwrap()).collect();
/// let r = wait(&fs, ReturnWhen::AllCompleted);
/// assert_eq!((r.done.len(), r.not_done.len()), (4, 0));
/// ```
pub fn wait<'a, T: 'a, E: 'a>(
    fs: impl IntoIterator<Item = &'a Future<T, E>>,
    return_when: ReturnWhen,
) -> DoneAndNotDone<T, E> {
    wait_until(fs, None, return_when)
}

/// [`wait`] for at most `timeout`: Python's `wait(fs, timeout, return_when)`.
/// On timeout it returns normally; `not_done` holds the stragglers.
pub fn wait_timeout<'a, T: 'a, E: 'a>(
    fs: impl IntoIterator<Item = &'a Future<T, E>>,
    timeout: Duration,
    return_when: ReturnWhen,
) -> DoneAndNotDone<T, E> {
    wait_until(fs, deadline_after(timeout), return_when)
}

/// [`wait_timeout`] with an absolute deadline.
pub fn wait_deadline<'a, T: 'a, E: 'a>(
    fs: impl IntoIterator<Item = &'a Future<T, E>>,
    deadline: Instant,
    return_when: ReturnWhen,
) -> DoneAndNotDone<T, E> {
    wait_until(fs, Some(deadline), return_when)
}

fn wait_until<'a, T: 'a, E: 'a>(
    fs: impl IntoIterator<Item = &'a Future<T, E>>,
    deadline: Option<Instant>,
    return_when: ReturnWhen,
) -> DoneAndNotDone<T, E> {
    let fs = distinct(fs);
    let set = WaitSet::new();
    register(&set, &fs);
    {
        let mut g = set.inner.lock();
        loop {
            let satisfied = match return_when {
                ReturnWhen::FirstCompleted => g.finished > 0 || fs.is_empty(),
                ReturnWhen::FirstException => g.exceptions > 0 || g.finished == fs.len(),
                ReturnWhen::AllCompleted => g.finished == fs.len(),
            };
            if satisfied {
                break;
            }
            match deadline {
                None => set.cond.wait(&mut g),
                Some(at) => {
                    if set.cond.wait_until(&mut g, at).timed_out() {
                        break;
                    }
                }
            }
        }
    }
    unregister(&set, &fs);
    let (done, not_done) = fs.into_iter().partition(Future::done);
    DoneAndNotDone { done, not_done }
}
