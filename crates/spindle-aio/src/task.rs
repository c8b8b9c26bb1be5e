//! [`Task`] (asyncio's `Task`, gevent's `Greenlet`) and the functions over
//! many of them: [`gather`], [`join_all`], [`as_completed`], [`wait`],
//! [`wait_timeout`], [`wait_for`].
#![forbid(unsafe_code)]

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use spindle::futures::ReturnWhen;
use tokio::task::JoinHandle;

use crate::{block_on_deadline, in_runtime};

/// Why a [`Task`] gave no value: the error half of what awaiting or joining
/// it returns. `Panicked` and `Cancelled` are the task's own end, as in
/// [`spindle::futures::FutureError`]; the others describe the wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskError {
    /// The task panicked (Python: it raised); the panic message.
    Panicked(String),
    /// The task was cancelled ([`Task::cancel`], a [`TaskGroup`](crate::TaskGroup)
    /// failing, its runtime shut down). Python: `CancelledError`.
    Cancelled,
    /// [`Task::join_timeout`] or [`join_all`] gave up waiting; the task
    /// runs on and can be joined again.
    Timeout,
    /// A blocking join ([`Task::join`], [`Task::join_timeout`],
    /// [`join_all`]) was called on a thread of a tokio runtime, where it
    /// could deadlock the runtime: `.await` the task there instead.
    InRuntime,
    /// The task's outcome was already taken by an earlier join or `.await`.
    Joined,
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Panicked(msg) => write!(f, "the task panicked: {msg}"),
            TaskError::Cancelled => f.write_str("the task was cancelled"),
            TaskError::Timeout => f.write_str("timed out waiting for the task"),
            TaskError::InRuntime => f.write_str(
                "a blocking join was called on a tokio runtime thread; .await the task instead",
            ),
            TaskError::Joined => f.write_str("the task's outcome was already taken"),
        }
    }
}

impl std::error::Error for TaskError {}

impl TaskError {
    /// The panic message, if the task panicked.
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            TaskError::Panicked(msg) => Some(msg),
            _ => None,
        }
    }
}

/// [`wait_for`] gave up: the future did not finish in time (Python:
/// `TimeoutError`). The future was dropped, which cancels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout;

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("timed out")
    }
}

impl std::error::Error for Timeout {}

pub(crate) fn from_join_error(e: tokio::task::JoinError) -> TaskError {
    if e.is_panic() {
        let payload = e.into_panic();
        let msg = if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_owned()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "Box<dyn Any>".to_owned()
        };
        TaskError::Panicked(msg)
    } else {
        TaskError::Cancelled
    }
}

enum State<T> {
    Running,
    Done(Result<T, TaskError>),
    Taken,
}

/// A spawned future running on a tokio runtime: asyncio's `Task`, gevent's
/// `Greenlet`. Made by [`spawn`] (or [`Pool::spawn`](crate::Pool::spawn)).
///
/// `.await` it from async code, [`join`](Task::join) it from a plain thread;
/// either yields `Ok(value)`, or [`TaskError::Panicked`] /
/// [`TaskError::Cancelled`]. Dropping a `Task` detaches it: the future runs
/// on (as an asyncio task you no longer reference; call
/// [`cancel`](Task::cancel) to stop it).
pub struct Task<T> {
    handle: JoinHandle<T>,
    state: State<T>,
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Running => "running",
            State::Done(_) => "done",
            State::Taken => "joined",
        };
        f.debug_struct("Task")
            .field("id", &self.handle.id())
            .field("state", &state)
            .finish()
    }
}

/// Spawns `fut` on the current tokio runtime — or, called outside any, on a
/// global one started on first use (gevent's implicit hub) — and returns its
/// [`Task`]: Python's `asyncio.ensure_future(coro)` / `gevent.spawn(fn)`.
///
/// # Examples
///
/// From a plain thread, gevent style:
///
/// ```
/// let t = spindle_aio::spawn(async { "done" });
/// assert_eq!(t.join(), Ok("done"));
/// ```
pub fn spawn<F>(fut: F) -> Task<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    Task::new(crate::handle().spawn(fut))
}

impl<T> Task<T> {
    pub(crate) fn new(handle: JoinHandle<T>) -> Task<T> {
        Task {
            handle,
            state: State::Running,
        }
    }

    /// Polls for the outcome and keeps it; `Ready` once there is one (or it
    /// was taken).
    fn poll_done(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let State::Running = self.state {
            match Pin::new(&mut self.handle).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(out) => self.state = State::Done(out.map_err(from_join_error)),
            }
        }
        Poll::Ready(())
    }

    fn take(&mut self) -> Result<T, TaskError> {
        match std::mem::replace(&mut self.state, State::Taken) {
            State::Done(out) => out,
            State::Taken => Err(TaskError::Joined),
            State::Running => {
                self.state = State::Running;
                Err(TaskError::Timeout)
            }
        }
    }

    /// Whether the task has finished (value, panic or cancellation): asyncio's
    /// `Task.done()`, gevent's `Greenlet.ready()`.
    pub fn ready(&self) -> bool {
        !matches!(self.state, State::Running) || self.handle.is_finished()
    }

    /// Asks the task to stop: it is dropped at its next `.await` point and
    /// its outcome becomes [`TaskError::Cancelled`] (asyncio's `Task.cancel()`,
    /// gevent's `Greenlet.kill(block=False)`). Returns `false` if the task had
    /// already finished, as Python does.
    pub fn cancel(&self) -> bool {
        if self.ready() {
            return false;
        }
        self.handle.abort();
        true
    }

    /// Blocks this (plain, non-runtime) thread until the task finishes and
    /// returns its outcome: gevent's `greenlet.join(); greenlet.get()`.
    ///
    /// # Errors
    ///
    /// [`TaskError::Panicked`] or [`TaskError::Cancelled`]; [`TaskError::InRuntime`]
    /// on a runtime thread, unless the task is already done (`.await` it there).
    pub fn join(mut self) -> Result<T, TaskError> {
        self.join_until(None)
    }

    /// [`join`](Task::join), waiting at most `timeout`: gevent's
    /// `greenlet.join(timeout)`.
    ///
    /// # Errors
    ///
    /// As [`join`](Task::join), plus [`TaskError::Timeout`] (the task runs on
    /// and can be joined again) and [`TaskError::Joined`] once the outcome was
    /// taken.
    pub fn join_timeout(&mut self, timeout: Duration) -> Result<T, TaskError> {
        self.join_until(Some(Instant::now() + timeout))
    }

    fn join_until(&mut self, deadline: Option<Instant>) -> Result<T, TaskError> {
        let mut cx = Context::from_waker(Waker::noop());
        if self.poll_done(&mut cx).is_pending() {
            if in_runtime() {
                return Err(TaskError::InRuntime);
            }
            block_on_deadline(poll_fn(|cx| self.poll_done(cx)), deadline);
        }
        self.take()
    }
}

// A `Task` holds its outcome by value but is never structurally pinned.
impl<T> Unpin for Task<T> {}

impl<T> Future for Task<T> {
    type Output = Result<T, TaskError>;

    /// Polling again after `Ready` yields `Err(TaskError::Joined)`.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match this.poll_done(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => Poll::Ready(this.take()),
        }
    }
}

/// Awaits every task and returns their outcomes in input order, whatever
/// order they finish in: Python's `await asyncio.gather(*tasks,
/// return_exceptions=True)`.
///
/// A task that panics is reported in its place (`Err(TaskError::Panicked)`)
/// while the others complete — Python's `return_exceptions=True`; without it
/// Python raises the first exception and leaves the others running.
///
/// # Examples
///
/// ```
/// use spindle_aio::{gather, spawn, TaskError};
///
/// # spindle_aio::run(async {
/// let tasks = vec![
///     spawn(async { 1 }),
///     spawn(async { panic!("two") }),
///     spawn(async { 3 }),
/// ];
/// let out = gather(tasks).await;
/// assert_eq!(out[0], Ok(1));
/// assert_eq!(out[1], Err(TaskError::Panicked("two".into())));
/// assert_eq!(out[2], Ok(3));
/// # }).unwrap();
/// ```
pub async fn gather<T, I>(tasks: I) -> Vec<Result<T, TaskError>>
where
    I: IntoIterator<Item = Task<T>>,
{
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await);
    }
    out
}

/// Blocks this (plain) thread until every task is done or `timeout` passes,
/// and returns each task's outcome in input order: gevent's
/// `gevent.joinall(greenlets, timeout)` followed by `g.value` for each.
///
/// A task still running at the timeout gets `Err(TaskError::Timeout)` and
/// stays in `tasks`, joinable later; the others' outcomes are taken (a second
/// call reports them as [`TaskError::Joined`]).
///
/// # Examples
///
/// ```
/// use spindle_aio::{join_all, spawn};
///
/// let mut tasks: Vec<_> = (1..=3).map(|n| spawn(async move { n * 10 })).collect();
/// let out = join_all(&mut tasks, None);
/// assert_eq!(out, [Ok(10), Ok(20), Ok(30)]);
/// ```
pub fn join_all<T>(tasks: &mut [Task<T>], timeout: Option<Duration>) -> Vec<Result<T, TaskError>> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut cx = Context::from_waker(Waker::noop());
    let all_done = tasks.iter_mut().all(|t| t.poll_done(&mut cx).is_ready());
    if !all_done {
        if in_runtime() {
            return tasks.iter().map(|_| Err(TaskError::InRuntime)).collect();
        }
        block_on_deadline(poll_fn(|cx| poll_all(tasks, cx)), deadline);
    }
    tasks.iter_mut().map(Task::take).collect()
}

/// Polls every task; `Ready` when all are done.
fn poll_all<T>(tasks: &mut [Task<T>], cx: &mut Context<'_>) -> Poll<()> {
    let mut pending = false;
    for t in tasks.iter_mut() {
        pending |= t.poll_done(cx).is_pending();
    }
    if pending {
        Poll::Pending
    } else {
        Poll::Ready(())
    }
}

/// The tasks' outcomes in the order they finish, each with the task's index
/// in the input: Python's `asyncio.as_completed(tasks)`. Made by
/// [`as_completed`].
///
/// A [`futures_core::Stream`]; [`next`](AsCompleted::next) awaits the next
/// item without any stream extension trait.
pub struct AsCompleted<T> {
    tasks: Vec<Option<Task<T>>>,
}

impl<T> fmt::Debug for AsCompleted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompleted")
            .field("left", &self.tasks.iter().flatten().count())
            .finish()
    }
}

/// The outcomes of `tasks` as they finish, each with its input index:
/// Python's `asyncio.as_completed(tasks)` (which yields awaitables; Python
/// 3.13's async iteration yields the tasks themselves).
///
/// # Examples
///
/// ```
/// use spindle_aio::{as_completed, spawn};
///
/// # spindle_aio::run(async {
/// let mut results = as_completed(vec![spawn(async { 1 }), spawn(async { 2 })]);
/// let mut sum = 0;
/// while let Some((_index, out)) = results.next().await {
///     sum += out.unwrap();
/// }
/// assert_eq!(sum, 3);
/// # }).unwrap();
/// ```
pub fn as_completed<T, I>(tasks: I) -> AsCompleted<T>
where
    I: IntoIterator<Item = Task<T>>,
{
    AsCompleted {
        tasks: tasks.into_iter().map(Some).collect(),
    }
}

impl<T> AsCompleted<T> {
    /// The next task to finish (its index and outcome); `None` when all have
    /// been reported.
    pub async fn next(&mut self) -> Option<(usize, Result<T, TaskError>)> {
        poll_fn(|cx| self.poll_item(cx)).await
    }

    fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<(usize, Result<T, TaskError>)>> {
        let mut any = false;
        for (i, slot) in self.tasks.iter_mut().enumerate() {
            if let Some(task) = slot {
                any = true;
                if task.poll_done(cx).is_ready() {
                    let out = task.take();
                    *slot = None;
                    return Poll::Ready(Some((i, out)));
                }
            }
        }
        if any {
            Poll::Pending
        } else {
            Poll::Ready(None)
        }
    }
}

impl<T> futures_core::Stream for AsCompleted<T> {
    type Item = (usize, Result<T, TaskError>);

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_item(cx)
    }
}

/// The tasks [`wait`] found done and still pending, each in input order
/// (Python's `(done, pending)` pair of sets). A done task's outcome is kept:
/// `.await` or [`join`](Task::join) it for the value, at once.
#[derive(Debug)]
pub struct Done<T> {
    /// Finished tasks (value, panic or cancellation).
    pub done: Vec<Task<T>>,
    /// Tasks still running.
    pub pending: Vec<Task<T>>,
}

/// Waits until `return_when` holds for `tasks`: Python's `await
/// asyncio.wait(tasks, return_when=...)`, with the same [`ReturnWhen`] as
/// core's [`spindle::futures::wait`].
///
/// `FirstException` returns once a task panicked (a cancellation is not an
/// exception, as in Python); like `AllCompleted` if none does.
/// An empty `tasks` returns at once (Python raises `ValueError`).
///
/// # Examples
///
/// ```
/// use spindle_aio::{ReturnWhen, spawn, wait};
///
/// # spindle_aio::run(async {
/// let quick = spawn(async { 1 });
/// let slow = spawn(std::future::pending::<i32>());
/// let d = wait(vec![quick, slow], ReturnWhen::FirstCompleted).await;
/// assert_eq!((d.done.len(), d.pending.len()), (1, 1));
/// d.pending[0].cancel();
/// # }).unwrap();
/// ```
pub async fn wait<T>(tasks: Vec<Task<T>>, return_when: ReturnWhen) -> Done<T> {
    let mut tasks = tasks;
    poll_fn(|cx| poll_wait(&mut tasks, return_when, cx)).await;
    partition(tasks)
}

/// [`wait`], returning after at most `timeout` with whatever is done then:
/// `asyncio.wait(tasks, timeout=..., return_when=...)` (no error on the
/// timeout, as in Python).
pub async fn wait_timeout<T>(
    tasks: Vec<Task<T>>,
    timeout: Duration,
    return_when: ReturnWhen,
) -> Done<T> {
    let mut tasks = tasks;
    let _ = tokio::time::timeout(
        timeout,
        poll_fn(|cx| poll_wait(&mut tasks, return_when, cx)),
    )
    .await;
    partition(tasks)
}

fn poll_wait<T>(tasks: &mut [Task<T>], when: ReturnWhen, cx: &mut Context<'_>) -> Poll<()> {
    let mut done = 0;
    let mut failed = false;
    for t in tasks.iter_mut() {
        if t.poll_done(cx).is_ready() {
            done += 1;
            failed |= matches!(t.state, State::Done(Err(TaskError::Panicked(_))));
        }
    }
    let ok = match when {
        ReturnWhen::FirstCompleted => done > 0 || tasks.is_empty(),
        ReturnWhen::FirstException => failed || done == tasks.len(),
        ReturnWhen::AllCompleted => done == tasks.len(),
    };
    if ok { Poll::Ready(()) } else { Poll::Pending }
}

fn partition<T>(mut tasks: Vec<Task<T>>) -> Done<T> {
    // Catch the tasks that finished since their last poll (after a timeout).
    let mut cx = Context::from_waker(Waker::noop());
    for t in &mut tasks {
        let _ = t.poll_done(&mut cx);
    }
    let (done, pending) = tasks
        .into_iter()
        .partition(|t| !matches!(t.state, State::Running));
    Done { done, pending }
}

/// Awaits `fut` for at most `timeout`: Python's `await asyncio.wait_for(aw,
/// timeout)`.
///
/// # Errors
///
/// [`Timeout`] when it did not finish in time; `fut` is then dropped,
/// which cancels it — except a [`Task`], which dropping detaches: call
/// [`Task::cancel`] on it (or use [`Task::join_timeout`]) where Python's
/// `wait_for` would cancel the task.
pub async fn wait_for<F: Future>(fut: F, timeout: Duration) -> Result<F::Output, Timeout> {
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| Timeout)
}
