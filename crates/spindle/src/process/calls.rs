//! [`calls`]: `map` over calls of a registered task that runs them on every
//! kind of executor.
#![forbid(unsafe_code)]

use std::fmt;
use std::sync::Arc;

use super::{Call, CallChunk, RemoteExecutor, Task};
use crate::futures::{self, Future, MapFn, ThreadJob, ThreadPoolExecutor};

/// Marks `f` — a task's generated call constructor, `my_task::call` — as a
/// function whose calls [`Executor::map`](crate::futures::Executor::map)
/// *runs*, on every executor kind.
///
/// Without it, `map(my_task::call, items)` runs the calls on a process pool
/// (or any [`RemoteExecutor`]), but on a
/// [`ThreadPoolExecutor`] `my_task::call` is just a closure, and `map`
/// yields the [`Call`]s it builds instead of their results. With `calls`,
/// both yield the task's results, so the same `map` line works whichever
/// executor is passed in.
///
/// # Examples
///
/// ```
/// use spindle::futures::{Executor, ThreadPoolExecutor};
/// use spindle::process::{self, ProcessPoolExecutor};
///
/// #[spindle::task]
/// fn square(n: u64) -> u64 {
///     n * n
/// }
///
/// let threads = ThreadPoolExecutor::new();
/// let on_threads: Vec<u64> = threads
///     .map(process::calls(square::call), 1..=4)
///     .unwrap()
///     .map(Result::unwrap)
///     .collect();
/// let procs = ProcessPoolExecutor::builder().max_workers(1).build()?;
/// let on_processes: Vec<u64> = procs
///     .map(process::calls(square::call), 1..=4)
///     .unwrap()
///     .map(Result::unwrap)
///     .collect();
/// assert_eq!(on_threads, [1, 4, 9, 16]);
/// assert_eq!(on_threads, on_processes);
/// # Ok::<(), spindle::process::PoolError>(())
/// ```
pub fn calls<F>(f: F) -> Calls<F> {
    Calls(f)
}

/// A call constructor whose calls `map` runs; see [`calls`].
#[derive(Clone, Copy)]
pub struct Calls<F>(pub F);

impl<F> fmt::Debug for Calls<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Calls").finish_non_exhaustive()
    }
}

/// On a [`RemoteExecutor`] (a process pool, say): as `map(my_task::call, ..)`,
/// one [`CallChunk`] per chunk.
impl<F, A, T, X> MapFn<A, X> for Calls<F>
where
    X: RemoteExecutor + ?Sized,
    F: Fn(A) -> Call<T>,
    T: Task,
    T::Output: Send + 'static,
{
    type Output = T::Output;
    type Error = std::convert::Infallible;
    type Task = CallChunk<T>;

    fn bind(this: &Arc<Calls<F>>, chunk: Vec<A>) -> CallChunk<T> {
        CallChunk::new(chunk.into_iter().map(|a| (this.0)(a)).collect())
    }
}

/// On a [`ThreadPoolExecutor`]: each call runs on a pool thread, in this
/// process, nothing encoded.
impl<F, A, T> MapFn<A, ThreadPoolExecutor> for Calls<F>
where
    F: Fn(A) -> Call<T> + Send + Sync + 'static,
    A: Send + 'static,
    T: Task,
    T::Output: Send + 'static,
{
    type Output = T::Output;
    type Error = std::convert::Infallible;
    type Task = CallsChunk<F, A>;

    fn bind(this: &Arc<Calls<F>>, chunk: Vec<A>) -> CallsChunk<F, A> {
        CallsChunk {
            f: this.clone(),
            items: chunk,
        }
    }
}

/// The task `map` submits for one chunk of [`calls`] on a
/// [`ThreadPoolExecutor`]: builds each call and runs it.
pub struct CallsChunk<F, A> {
    f: Arc<Calls<F>>,
    items: Vec<A>,
}

impl<F, A> fmt::Debug for CallsChunk<F, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallsChunk")
            .field("items", &self.items.len())
            .finish_non_exhaustive()
    }
}

impl<F, A, T> futures::Task<ThreadPoolExecutor> for CallsChunk<F, A>
where
    F: Fn(A) -> Call<T> + Send + Sync + 'static,
    A: Send + 'static,
    T: Task,
    T::Output: Send + 'static,
{
    type Output = Vec<T::Output>;
    type Error = std::convert::Infallible;

    fn into_job(self) -> (ThreadJob, Future<Vec<T::Output>>) {
        let CallsChunk { f, items } = self;
        ThreadJob::new(move || Ok(items.into_iter().map(|a| (f.0)(a).run()).collect()))
    }
}
