//! [`Pool`]: gevent's `gevent.pool.Pool`, over tokio's `Semaphore`.
#![forbid(unsafe_code)]

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::{Semaphore, mpsc};

use crate::task::{Task, TaskError, gather, spawn};

/// At most `size` tasks at once: gevent's `Pool(size)`.
///
/// [`spawn`](Pool::spawn) waits for a free slot before starting the task;
/// [`map`](Pool::map) keeps input order; [`imap_unordered`](Pool::imap_unordered)
/// yields results as they come. A panicking task is reported in its place
/// (`Err(TaskError::Panicked)`) and frees its slot; the others complete.
/// The pool is a cheap handle: clones share the slots.
///
/// # Examples
///
/// ```
/// use spindle_aio::Pool;
///
/// # spindle_aio::run(async {
/// let pool = Pool::new(3).unwrap();
/// let squares = pool.map(|n: u64| async move { n * n }, 1..=5).await;
/// assert_eq!(squares, [Ok(1), Ok(4), Ok(9), Ok(16), Ok(25)]);
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct Pool {
    slots: Arc<Semaphore>,
    size: usize,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("size", &self.size)
            .field("free", &self.free_count())
            .finish()
    }
}

/// [`Pool::new`] was given a size of 0 or one above tokio's
/// [`Semaphore::MAX_PERMITS`] (gevent: `ValueError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidSize(pub usize);

impl fmt::Display for InvalidSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pool size {} is out of range 1..={}",
            self.0,
            Semaphore::MAX_PERMITS
        )
    }
}

impl std::error::Error for InvalidSize {}

impl Pool {
    /// A pool running at most `size` tasks at once.
    ///
    /// # Errors
    ///
    /// [`InvalidSize`] for 0 or more than [`Semaphore::MAX_PERMITS`].
    pub fn new(size: usize) -> Result<Pool, InvalidSize> {
        if size == 0 || size > Semaphore::MAX_PERMITS {
            return Err(InvalidSize(size));
        }
        Ok(Pool {
            slots: Arc::new(Semaphore::new(size)),
            size,
        })
    }

    /// The most tasks that run at once.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Free slots now: gevent's `Pool.free_count()`.
    pub fn free_count(&self) -> usize {
        self.slots.available_permits()
    }

    /// Waits for a free slot, then spawns `fut` in it: gevent's
    /// `pool.spawn(fn)` (which blocks the calling greenlet while the pool is
    /// full). The slot is freed when the task ends, however it ends.
    pub async fn spawn<F>(&self, fut: F) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let permit = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("the pool's semaphore is never closed");
        spawn(async move {
            let _slot = permit;
            fut.await
        })
    }

    /// Applies `f` to every item, at most [`size`](Pool::size) at a time, and
    /// returns the outcomes in input order: gevent's `pool.map(fn, items)`.
    pub async fn map<A, F, Fut, I>(&self, f: F, items: I) -> Vec<Result<Fut::Output, TaskError>>
    where
        I: IntoIterator<Item = A>,
        F: Fn(A) -> Fut,
        Fut: Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        let mut tasks = Vec::new();
        for item in items {
            tasks.push(self.spawn(f(item)).await);
        }
        gather(tasks).await
    }

    /// Applies `f` to every item, at most [`size`](Pool::size) at a time,
    /// yielding each outcome as its task finishes: gevent's
    /// `pool.imap_unordered(fn, items)`.
    ///
    /// The items are fed by a task of their own; at most `size` results wait
    /// unread before the feeding pauses (back-pressure).
    pub fn imap_unordered<A, F, Fut, I>(&self, f: F, items: I) -> ImapUnordered<Fut::Output>
    where
        I: IntoIterator<Item = A> + Send + 'static,
        I::IntoIter: Send,
        A: Send + 'static,
        F: Fn(A) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        let (tx, rx) = mpsc::channel(self.size);
        let pool = self.clone();
        crate::handle().spawn(async move {
            for item in items {
                if tx.is_closed() {
                    return; // the stream was dropped: start nothing more
                }
                let permit = pool
                    .slots
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("the pool's semaphore is never closed");
                let task = spawn(f(item));
                let tx = tx.clone();
                // The slot stays busy until the result is handed over.
                crate::handle().spawn(async move {
                    let out = task.await;
                    tx.send(out).await.ok();
                    drop(permit);
                });
            }
        });
        ImapUnordered { rx }
    }

    /// Waits until every task of the pool has finished: gevent's
    /// `pool.join()`.
    pub async fn join(&self) {
        let all = u32::try_from(self.size).expect("size <= MAX_PERMITS fits u32");
        let permits = self
            .slots
            .acquire_many(all)
            .await
            .expect("the pool's semaphore is never closed");
        drop(permits);
    }
}

/// The outcomes of [`Pool::imap_unordered`] in completion order: a
/// [`futures_core::Stream`], or call [`next`](ImapUnordered::next).
#[derive(Debug)]
pub struct ImapUnordered<T> {
    rx: mpsc::Receiver<Result<T, TaskError>>,
}

impl<T> ImapUnordered<T> {
    /// The next outcome; `None` once every item's has been yielded.
    pub async fn next(&mut self) -> Option<Result<T, TaskError>> {
        self.rx.recv().await
    }
}

impl<T> futures_core::Stream for ImapUnordered<T> {
    type Item = Result<T, TaskError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().rx.poll_recv(cx)
    }
}
