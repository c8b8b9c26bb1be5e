//! [`Map`]: the lazy, order-keeping iterator of [`Executor::map`].
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::fmt;
use std::iter::Fuse;
use std::sync::Arc;
use std::time::Instant;

use super::{Executor, MapFn, MapOptions};
use crate::futures::Future;
use crate::futures::error::{FutureError, SubmitError};

type ChunkFuture<A, X, F> = Future<Vec<<F as MapFn<A, X>>::Output>, <F as MapFn<A, X>>::Error>;

/// The results of [`Executor::map`], in input order: Python's `Executor.map`
/// result iterator.
///
/// Each item is the function's value, or the [`FutureError`] of its call
/// (its own error, a panic, …); iteration goes on after such an error. A
/// [`Timeout`](FutureError::Timeout) ends the iteration and cancels the calls
/// not yet started.
///
/// Dropping it follows Python's generator (CPython `Executor.map`, whose
/// `result_iterator` cancels the futures left in its `finally`, which runs
/// only if the generator was started): dropped before the first
/// [`next`](Iterator::next), it cancels nothing — the calls already
/// submitted (the first window, all of them with
/// `buffersize(usize::MAX)`) run to the end, and the items past the window
/// are never submitted, as with Python 3.14's `buffersize`; dropped after
/// the first `next`, it cancels the calls not yet started.
#[must_use = "the calls of the first window run; iterate to get their results"]
pub struct Map<'a, X, F, I>
where
    X: Executor + ?Sized,
    I: Iterator,
    F: MapFn<I::Item, X>,
{
    executor: &'a X,
    f: Arc<F>,
    items: Fuse<I>,
    chunksize: usize,
    window: usize,
    deadline: Option<Instant>,
    in_flight: VecDeque<ChunkFuture<I::Item, X, F>>,
    current: std::vec::IntoIter<F::Output>,
    /// A later submission failed: no more input is taken; reported in order.
    stopped: Option<FutureError<F::Error>>,
    ended: bool,
    /// `next` was called: only then does dropping cancel (Python's
    /// generator runs its `finally` only once started).
    started: bool,
}

impl<'a, X, F, I> Map<'a, X, F, I>
where
    X: Executor + ?Sized,
    I: Iterator,
    F: MapFn<I::Item, X>,
{
    pub(crate) fn new(
        executor: &'a X,
        f: F,
        items: I,
        options: MapOptions,
    ) -> Result<Map<'a, X, F, I>, SubmitError<()>> {
        // Python: `ValueError: chunksize must be >= 1.` and (3.14)
        // `buffersize must be None or > 0.`, raised before any item is taken.
        let chunksize = match options.chunksize {
            None => 1,
            Some(0) => return Err(SubmitError::InvalidArgument((), "chunksize")),
            Some(n) => n,
        };
        let window = match options.buffersize {
            None => executor.map_window().max(1),
            Some(0) => return Err(SubmitError::InvalidArgument((), "buffersize")),
            Some(n) => n,
        };
        let mut map = Map {
            executor,
            f: Arc::new(f),
            items: items.fuse(),
            chunksize,
            window,
            deadline: options.timeout.and_then(|t| Instant::now().checked_add(t)),
            in_flight: VecDeque::new(),
            current: Vec::new().into_iter(),
            stopped: None,
            ended: false,
            started: false,
        };
        map.fill().map_err(|e| e.map_task(drop))?;
        Ok(map)
    }

    /// Submits chunks until the window is full or the input is exhausted.
    fn fill(&mut self) -> Result<(), SubmitError<F::Task>> {
        while self.stopped.is_none() && self.in_flight.len() < self.window {
            let chunk: Vec<I::Item> = self.items.by_ref().take(self.chunksize).collect();
            if chunk.is_empty() {
                break;
            }
            let fut = self.executor.submit(F::bind(&self.f, chunk))?;
            self.in_flight.push_back(fut);
        }
        Ok(())
    }

    fn cancel_rest(&mut self) {
        for f in self.in_flight.drain(..) {
            f.cancel();
        }
        self.ended = true;
    }
}

impl<X, F, I> Iterator for Map<'_, X, F, I>
where
    X: Executor + ?Sized,
    I: Iterator,
    F: MapFn<I::Item, X>,
{
    type Item = Result<F::Output, FutureError<F::Error>>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.started = true;
        // The chunk in hand, inline; the next chunk out of line.
        match self.current.next() {
            Some(v) => Some(Ok(v)),
            None => self.next_chunk(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let (lo, _) = self.current.size_hint();
        (lo, None)
    }

    /// Runs `g` over the rest, a chunk at a time (the chunk's values in one
    /// tight loop: what `for`, `sum` and `collect` use).
    fn fold<B, G>(mut self, init: B, mut g: G) -> B
    where
        G: FnMut(B, Self::Item) -> B,
    {
        self.started = true;
        let mut acc = init;
        loop {
            acc = self.current.by_ref().map(Ok).fold(acc, &mut g);
            match self.next_chunk() {
                Some(item) => acc = g(acc, item),
                None => return acc,
            }
        }
    }
}

impl<X, F, I> Map<'_, X, F, I>
where
    X: Executor + ?Sized,
    I: Iterator,
    F: MapFn<I::Item, X>,
{
    /// The chunk in hand is used up: refill the window and wait for the
    /// next chunk's results.
    #[inline(never)]
    fn next_chunk(&mut self) -> Option<Result<F::Output, FutureError<F::Error>>> {
        if let Some(v) = self.current.next() {
            return Some(Ok(v));
        }
        if self.ended {
            return None;
        }
        if let Err(e) = self.fill() {
            // Shut down or broken since the map began: the chunk is lost; take
            // no more input and report it once, after the results before it.
            self.stopped = Some(match e {
                SubmitError::ShutDown(_) => FutureError::Cancelled,
                SubmitError::BrokenPool(_, b) => FutureError::BrokenPool(b),
                SubmitError::TooLarge(_, t) => FutureError::TooLarge(t),
                SubmitError::Unavailable(_) => FutureError::Unavailable,
                // A map chunk that cannot travel: its items fail as one, as
                // a chunk whose arguments a pool could not encode.
                SubmitError::Unsendable(_, e) => FutureError::Panicked(e.to_string()),
                // `new` checked map's own arguments: only a foreign
                // executor refusing this chunk's task gets here.
                e @ SubmitError::InvalidArgument(..) => FutureError::BrokenPool(
                    crate::futures::BrokenPool::new(format!("the executor refused a chunk: {e}")),
                ),
            });
        }
        let Some(fut) = self.in_flight.pop_front() else {
            self.ended = true;
            return self.stopped.take().map(Err);
        };
        match fut.take_deadline(self.deadline) {
            Ok(values) => {
                self.current = values.into_iter();
                self.next_chunk()
            }
            Err(FutureError::Timeout) => {
                fut.cancel();
                self.cancel_rest();
                Some(Err(FutureError::Timeout))
            }
            Err(e) => Some(Err(e)),
        }
    }
}

impl<X, F, I> Drop for Map<'_, X, F, I>
where
    X: Executor + ?Sized,
    I: Iterator,
    F: MapFn<I::Item, X>,
{
    fn drop(&mut self) {
        if self.started {
            self.cancel_rest();
        }
    }
}

impl<X, F, I> fmt::Debug for Map<'_, X, F, I>
where
    X: Executor + ?Sized,
    I: Iterator,
    F: MapFn<I::Item, X>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Map")
            .field("in_flight", &self.in_flight.len())
            .field("window", &self.window)
            .field("chunksize", &self.chunksize)
            .field("ended", &self.ended)
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}
