//! What a [`ThreadPoolExecutor`] accepts: the [`Task`] and [`MapFn`] impls
//! for closures, [`Fallible`] closures and `map` chunks, each becoming a
//! [`ThreadJob`]. Apart from thread_task.rs (the job) so that the job does
//! not name the pool that runs it.
#![forbid(unsafe_code)]

use std::fmt;
use std::sync::Arc;

use super::executor::{Fallible, MapFn, Task};
use super::thread_task::ThreadJob;
use super::{Future, ThreadPoolExecutor};

impl<F, T> Task<ThreadPoolExecutor> for F
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    type Output = T;
    type Error = std::convert::Infallible;

    fn into_job(self) -> (ThreadJob, Future<T>) {
        ThreadJob::new(move || Ok(self()))
    }
}

impl<F, T, E> Task<ThreadPoolExecutor> for Fallible<F>
where
    F: FnOnce() -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Send + Sync + 'static,
{
    type Output = T;
    type Error = E;

    fn into_job(self) -> (ThreadJob, Future<T, E>) {
        ThreadJob::new(self.0)
    }
}

/// The task `map` submits for one chunk on a [`ThreadPoolExecutor`]: the
/// function and the chunk's items (Python's `_process_chunk` of
/// `ProcessPoolExecutor.map`).
pub struct MapChunk<F, A> {
    f: Arc<F>,
    items: Vec<A>,
}

impl<F, A> fmt::Debug for MapChunk<F, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapChunk")
            .field("items", &self.items.len())
            .finish_non_exhaustive()
    }
}

impl<F, A, T> Task<ThreadPoolExecutor> for MapChunk<F, A>
where
    F: Fn(A) -> T + Send + Sync + 'static,
    A: Send + 'static,
    T: Send + 'static,
{
    type Output = Vec<T>;
    type Error = std::convert::Infallible;

    fn into_job(self) -> (ThreadJob, Future<Vec<T>>) {
        let MapChunk { f, items } = self;
        ThreadJob::new(move || Ok(items.into_iter().map(|a| f(a)).collect()))
    }
}

impl<F, A, T> MapFn<A, ThreadPoolExecutor> for F
where
    F: Fn(A) -> T + Send + Sync + 'static,
    A: Send + 'static,
    T: Send + 'static,
{
    type Output = T;
    type Error = std::convert::Infallible;
    type Task = MapChunk<F, A>;

    fn bind(this: &Arc<F>, chunk: Vec<A>) -> MapChunk<F, A> {
        MapChunk {
            f: this.clone(),
            items: chunk,
        }
    }
}

/// The task `map` submits for one chunk of a [`Fallible`] function.
pub struct FallibleMapChunk<F, A> {
    f: Arc<Fallible<F>>,
    items: Vec<A>,
}

impl<F, A> fmt::Debug for FallibleMapChunk<F, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FallibleMapChunk")
            .field("items", &self.items.len())
            .finish_non_exhaustive()
    }
}

impl<F, A, T, E> Task<ThreadPoolExecutor> for FallibleMapChunk<F, A>
where
    F: Fn(A) -> Result<T, E> + Send + Sync + 'static,
    A: Send + 'static,
    T: Send + 'static,
    E: Send + Sync + 'static,
{
    type Output = Vec<T>;
    type Error = E;

    fn into_job(self) -> (ThreadJob, Future<Vec<T>, E>) {
        let FallibleMapChunk { f, items } = self;
        ThreadJob::new(move || items.into_iter().map(|a| (f.0)(a)).collect())
    }
}

impl<F, A, T, E> MapFn<A, ThreadPoolExecutor> for Fallible<F>
where
    F: Fn(A) -> Result<T, E> + Send + Sync + 'static,
    A: Send + 'static,
    T: Send + 'static,
    E: Send + Sync + 'static,
{
    type Output = T;
    type Error = E;
    type Task = FallibleMapChunk<F, A>;

    fn bind(this: &Arc<Fallible<F>>, chunk: Vec<A>) -> FallibleMapChunk<F, A> {
        FallibleMapChunk {
            f: this.clone(),
            items: chunk,
        }
    }
}
