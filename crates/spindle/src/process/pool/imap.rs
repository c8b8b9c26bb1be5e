//! [`IMapUnordered`]: the lazy, completion-ordered iterator of
//! `Pool::imap_unordered`.
#![forbid(unsafe_code)]

use std::fmt;
use std::iter::Fuse;
use std::num::NonZeroUsize;

use crossbeam_channel::{Receiver, Sender};
use serde::de::DeserializeOwned;

use super::ProcessPoolExecutor;
use super::call::Call;
use super::engine::Refused;
use super::job::{self, Failure, Job, Sink};
use super::wire::ItemOutcome;
use crate::futures::FutureError;
use crate::process;

type ChunkResult<O> = Result<Vec<O>, FutureError>;

/// The results of [`Pool::imap_unordered`](super::Pool::imap_unordered) in
/// the order they complete: Python's `IMapUnorderedIterator`.
///
/// Lazy: at most a window of chunks (64 per worker, as
/// [`ProcessPoolExecutor`]'s `map`) is in flight, so a huge
/// or endless input does not fill memory (Python submits every item at
/// once). Each item is `Ok(value)` or the [`FutureError`] of its chunk; an
/// error does not end the iteration.
pub struct IMapUnordered<'a, F, I, T>
where
    I: Iterator,
    T: process::Task,
{
    exec: &'a ProcessPoolExecutor,
    f: F,
    items: Fuse<I>,
    chunksize: usize,
    window: usize,
    in_flight: usize,
    tx: Sender<ChunkResult<T::Output>>,
    rx: Receiver<ChunkResult<T::Output>>,
    current: std::vec::IntoIter<T::Output>,
    stopped: bool,
}

/// Sends one chunk's outcome to the iterator; dropped unreported (never sent
/// to a worker), it reports a broken pool so the iterator never waits forever.
struct ChannelSink<O> {
    tx: Option<Sender<ChunkResult<O>>>,
}

impl<O> Drop for ChannelSink<O> {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            let b = crate::futures::BrokenPool::new("the task was dropped before it ran");
            tx.send(Err(FutureError::BrokenPool(b))).ok();
        }
    }
}

impl<O: DeserializeOwned + Send + 'static> Sink for ChannelSink<O> {
    fn start(&mut self) -> bool {
        true
    }

    fn finish(mut self: Box<Self>, outcomes: Vec<ItemOutcome>) {
        if let Some(tx) = self.tx.take() {
            tx.send(job::decode_chunk(outcomes)).ok();
        }
    }

    fn fail(mut self: Box<Self>, failure: Failure) {
        let e = match failure {
            Failure::Lost(w) => FutureError::WorkerLost(w),
            Failure::Broken(b) => FutureError::BrokenPool(b),
            Failure::Cancelled => FutureError::Cancelled,
            Failure::Refused(m) => FutureError::Panicked(m),
            Failure::TooLarge(t) => FutureError::TooLarge(t),
            Failure::Unavailable => FutureError::Unavailable,
        };
        if let Some(tx) = self.tx.take() {
            tx.send(Err(e)).ok();
        }
    }
}

impl<'a, F, I, T> IMapUnordered<'a, F, I, T>
where
    I: Iterator,
    F: Fn(I::Item) -> Call<T>,
    T: process::Task,
    T::Output: Send + 'static,
{
    pub(crate) fn new(
        exec: &'a ProcessPoolExecutor,
        f: F,
        items: I,
        chunksize: NonZeroUsize,
    ) -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        let window = crate::futures::Executor::map_window(exec);
        let mut it = IMapUnordered {
            exec,
            f,
            items: items.fuse(),
            chunksize: chunksize.get(),
            window,
            in_flight: 0,
            tx,
            rx,
            current: Vec::new().into_iter(),
            stopped: false,
        };
        it.fill();
        it
    }

    fn fill(&mut self) {
        while !self.stopped && self.in_flight < self.window {
            let calls: Vec<Call<T>> = self
                .items
                .by_ref()
                .take(self.chunksize)
                .map(&self.f)
                .collect();
            if calls.is_empty() {
                return;
            }
            let sink: Box<dyn Sink> = Box::new(ChannelSink {
                tx: Some(self.tx.clone()),
            });
            let j: Job = super::call::job_of_sink(&calls, sink);
            match self.exec.submit_job(j) {
                Ok(()) => self.in_flight += 1,
                // The refused chunk reports its error through the channel,
                // in turn; no more input is taken.
                Err(Refused::ShutDown(j)) => {
                    j.sink.fail(Failure::Cancelled);
                    self.in_flight += 1;
                    self.stopped = true;
                }
                Err(Refused::Broken(j, b)) => {
                    j.sink.fail(Failure::Broken(b));
                    self.in_flight += 1;
                    self.stopped = true;
                }
            }
        }
    }
}

impl<F, I, T> Iterator for IMapUnordered<'_, F, I, T>
where
    I: Iterator,
    F: Fn(I::Item) -> Call<T>,
    T: process::Task,
    T::Output: Send + 'static,
{
    type Item = Result<T::Output, FutureError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(v) = self.current.next() {
                return Some(Ok(v));
            }
            self.fill();
            if self.in_flight == 0 {
                return None;
            }
            let res = self.rx.recv().expect("the iterator holds a sender");
            self.in_flight -= 1;
            match res {
                Ok(v) => self.current = v.into_iter(),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

impl<F, I, T> fmt::Debug for IMapUnordered<'_, F, I, T>
where
    I: Iterator,
    T: process::Task,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IMapUnordered")
            .field("in_flight", &self.in_flight)
            .field("chunksize", &self.chunksize)
            .finish_non_exhaustive()
    }
}
