//! [`TaskGroup`]: Python 3.11's `asyncio.TaskGroup`, over tokio's `JoinSet`.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::fmt;
use std::future::Future;

use tokio::task::{Id, JoinSet};

use crate::task::{TaskError, from_join_error};

/// The first failure of a [`TaskGroup`], which cancelled the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupError<E> {
    /// Task `index` (in spawn order) returned `Err(error)`.
    Failed {
        /// The task's index in spawn order.
        index: usize,
        /// Its error.
        error: E,
    },
    /// Task `index` panicked (or was cancelled from outside the group).
    Task {
        /// The task's index in spawn order.
        index: usize,
        /// How it ended.
        error: TaskError,
    },
}

impl<E> GroupError<E> {
    /// The index, in spawn order, of the task that failed first.
    pub fn index(&self) -> usize {
        match self {
            GroupError::Failed { index, .. } | GroupError::Task { index, .. } => *index,
        }
    }
}

impl<E: fmt::Display> fmt::Display for GroupError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupError::Failed { index, error } => write!(f, "task {index} failed: {error}"),
            GroupError::Task { index, error } => write!(f, "task {index}: {error}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for GroupError<E> {}

/// Tasks that succeed together or fail together: Python's `async with
/// asyncio.TaskGroup() as tg: tg.create_task(...)`.
///
/// Each task returns `Result<T, E>`. [`join`](TaskGroup::join) awaits them
/// all and returns their values in spawn order; the first task to fail
/// (return `Err`, or panic) cancels the others, which [`join`](TaskGroup::join)
/// waits for before returning that first failure. Python raises an
/// `ExceptionGroup` of every failure seen while cancelling; here the first
/// one is returned. Dropping the group without joining cancels its tasks
/// (Python's group cannot be left without waiting).
///
/// # Examples
///
/// ```
/// use spindle_aio::{GroupError, TaskGroup};
///
/// # spindle_aio::run(async {
/// let mut tg = TaskGroup::new();
/// tg.spawn(async { Ok::<_, String>(1) });
/// tg.spawn(async { Err("bad input".to_string()) });
/// tg.spawn(std::future::pending()); // cancelled by the failure
/// let err = tg.join().await.unwrap_err();
/// assert_eq!(err, GroupError::Failed { index: 1, error: "bad input".into() });
/// # }).unwrap();
/// ```
pub struct TaskGroup<T, E> {
    set: JoinSet<(usize, Result<T, E>)>,
    index: HashMap<Id, usize>,
}

impl<T, E> fmt::Debug for TaskGroup<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskGroup")
            .field("tasks", &self.index.len())
            .field("running", &self.set.len())
            .finish()
    }
}

impl<T, E> Default for TaskGroup<T, E>
where
    T: Send + 'static,
    E: Send + 'static,
{
    fn default() -> Self {
        TaskGroup::new()
    }
}

impl<T, E> TaskGroup<T, E>
where
    T: Send + 'static,
    E: Send + 'static,
{
    /// An empty group.
    pub fn new() -> TaskGroup<T, E> {
        TaskGroup {
            set: JoinSet::new(),
            index: HashMap::new(),
        }
    }

    /// Starts `fut` in the group (on the current runtime, or the global one
    /// outside any): `tg.create_task(coro)`. Returns its index.
    pub fn spawn<F>(&mut self, fut: F) -> usize
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
    {
        let i = self.index.len();
        let abort = self
            .set
            .spawn_on(async move { (i, fut.await) }, &crate::handle());
        self.index.insert(abort.id(), i);
        i
    }

    /// How many tasks were spawned.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether no task was spawned.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Awaits every task; their values in spawn order, or the first failure
    /// (after the other tasks, cancelled by it, have stopped): leaving the
    /// `async with` block.
    ///
    /// # Errors
    ///
    /// [`GroupError::Failed`] (a task's `Err`) or [`GroupError::Task`] (a
    /// panic), naming the task.
    pub async fn join(mut self) -> Result<Vec<T>, GroupError<E>> {
        let mut values: Vec<Option<T>> = (0..self.index.len()).map(|_| None).collect();
        let mut first: Option<GroupError<E>> = None;
        while let Some(joined) = self.set.join_next_with_id().await {
            let failure = match joined {
                Ok((_, (i, Ok(v)))) => {
                    values[i] = Some(v);
                    None
                }
                Ok((_, (index, Err(error)))) => Some(GroupError::Failed { index, error }),
                Err(e) => {
                    let index = self.index.get(&e.id()).copied().unwrap_or(usize::MAX);
                    let error = from_join_error(e);
                    // Tasks we cancelled ourselves are not failures.
                    (first.is_none() || error != TaskError::Cancelled)
                        .then_some(GroupError::Task { index, error })
                }
            };
            if let Some(f) = failure
                && first.is_none()
            {
                first = Some(f);
                self.set.abort_all();
            }
        }
        match first {
            Some(e) => Err(e),
            None => Ok(values
                .into_iter()
                .map(|v| v.expect("every task joined"))
                .collect()),
        }
    }
}
