//! [`TaskLog`]: a bounded ring of the most recent tasks and their states,
//! fed by the pool's hooks, for `/api/tasks`, `/api/workers` and the page.

use std::collections::VecDeque;
use std::fmt::Display;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use spindle::futures::{Executor, Future, SubmitError, Task};
use spindle::process::TaskStart;

/// Where a task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    /// Submitted, not started.
    Pending,
    /// Running on a worker.
    Running,
    /// Returned a value.
    Done,
    /// Ended with an error (a panic, a lost worker, an `Err`, a cancel).
    Failed,
}

impl TaskState {
    /// The state named `s` (`pending`, `running`, `done`, `failed`).
    pub fn parse(s: &str) -> Option<TaskState> {
        match s {
            "pending" => Some(TaskState::Pending),
            "running" => Some(TaskState::Running),
            "done" => Some(TaskState::Done),
            "failed" => Some(TaskState::Failed),
            _ => None,
        }
    }
}

/// One task of the log. Text fields are cut to [`PREVIEW_CHARS`]
/// characters; they are data, never markup (the page shows them with
/// `textContent`, and the JSON API escapes `<`, `>` and `&`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// This log's number for the task, from 1.
    pub id: u64,
    /// The task's name (a registered task's name, or what the program
    /// passed).
    pub name: String,
    /// A preview of the arguments, as the program passed it.
    pub args: String,
    /// Where the task is now.
    pub state: TaskState,
    /// The worker process running or that ran it, once started.
    pub pid: Option<u32>,
    /// When it was submitted (ms since the Unix epoch).
    pub submitted_ms: u64,
    /// When it started.
    pub started_ms: Option<u64>,
    /// When it ended.
    pub finished_ms: Option<u64>,
    /// Why it failed.
    pub error: Option<String>,
}

/// The longest name, argument preview or error kept, in characters.
pub const PREVIEW_CHARS: usize = 200;

/// The most tasks a log keeps (its capacity is clamped to this).
pub const MAX_CAPACITY: usize = 100_000;

fn cut(s: &str) -> String {
    match s.char_indices().nth(PREVIEW_CHARS) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[derive(Debug)]
struct Log {
    next_id: u64,
    tasks: VecDeque<TaskRecord>,
    capacity: usize,
}

impl Log {
    fn get_mut(&mut self, id: u64) -> Option<&mut TaskRecord> {
        // Ids only grow, and records leave without reordering: sorted.
        let i = self.tasks.binary_search_by_key(&id, |t| t.id).ok()?;
        self.tasks.get_mut(i)
    }
}

/// The most recent tasks of a pool and their states: a ring of at most
/// `capacity` records (the oldest finished task leaves first; if none has
/// finished, the oldest). Memory is bounded by the capacity and
/// [`PREVIEW_CHARS`].
///
/// Feed it with [`submit`](TaskLog::submit) (records the task as pending,
/// then done or failed from the future's done-callback) and, for a
/// process pool, [`observer`](TaskLog::observer) as the builder's
/// `on_task_start` (running, with the worker's pid). The start hook names
/// only the task and the worker, so a start is given to the *oldest*
/// pending task of that name: exact for tasks of one name run in order
/// (the pool starts tasks in submission order), approximate when a
/// retried task runs again before newer ones. A thread pool has no start
/// hook: its tasks go from pending to done.
#[derive(Debug)]
pub struct TaskLog {
    log: Mutex<Log>,
}

impl TaskLog {
    /// An empty log keeping at most `capacity` tasks (1 to
    /// [`MAX_CAPACITY`]).
    pub fn new(capacity: usize) -> Arc<TaskLog> {
        let capacity = capacity.clamp(1, MAX_CAPACITY);
        Arc::new(TaskLog {
            log: Mutex::new(Log {
                next_id: 1,
                tasks: VecDeque::with_capacity(capacity.min(1024)),
                capacity,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Log> {
        // A panic while holding it leaves consistent records.
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a new pending task; returns its id.
    pub fn pending(&self, name: &str, args: &str) -> u64 {
        let mut log = self.lock();
        let id = log.next_id;
        log.next_id += 1;
        if log.tasks.len() >= log.capacity {
            let i = log
                .tasks
                .iter()
                .position(|t| matches!(t.state, TaskState::Done | TaskState::Failed))
                .unwrap_or(0);
            log.tasks.remove(i);
        }
        log.tasks.push_back(TaskRecord {
            id,
            name: cut(name),
            args: cut(args),
            state: TaskState::Pending,
            pid: None,
            submitted_ms: now_ms(),
            started_ms: None,
            finished_ms: None,
            error: None,
        });
        id
    }

    /// Task `id` started on worker `pid`.
    pub fn running(&self, id: u64, pid: u32) {
        if let Some(t) = self.lock().get_mut(id)
            && t.state == TaskState::Pending
        {
            t.state = TaskState::Running;
            t.pid = Some(pid);
            t.started_ms = Some(now_ms());
        }
    }

    /// The oldest pending task named `name` started on worker `pid` (what
    /// a process pool's `on_task_start` says).
    pub fn started(&self, name: &str, pid: u32) {
        let mut log = self.lock();
        if let Some(t) = log
            .tasks
            .iter_mut()
            .find(|t| t.state == TaskState::Pending && t.name == name)
        {
            t.state = TaskState::Running;
            t.pid = Some(pid);
            t.started_ms = Some(now_ms());
        }
    }

    /// Task `id` ended: done for `None`, else failed with `error`.
    pub fn finished(&self, id: u64, error: Option<String>) {
        if let Some(t) = self.lock().get_mut(id) {
            t.state = if error.is_some() {
                TaskState::Failed
            } else {
                TaskState::Done
            };
            t.finished_ms = Some(now_ms());
            t.error = error.map(|e| cut(&e));
        }
    }

    /// The `on_task_start` observer of a process pool that feeds this log
    /// (`ProcessPoolExecutor::builder().on_task_start(log.observer())`).
    pub fn observer(self: &Arc<Self>) -> impl Fn(&TaskStart) + Send + Sync + 'static {
        let log = Arc::downgrade(self);
        move |s: &TaskStart| {
            if let Some(log) = log.upgrade() {
                log.started(s.task, s.pid);
            }
        }
    }

    /// Submits `task` to `pool`, recorded as `name` with the argument
    /// preview `args`: pending now, then done or failed when its future
    /// is. A refused submit is recorded as failed.
    ///
    /// # Errors
    /// The pool's [`SubmitError`], as `pool.submit(task)`.
    pub fn submit<X, W>(
        self: &Arc<Self>,
        pool: &X,
        name: &str,
        args: &str,
        task: W,
    ) -> Result<Future<W::Output, W::Error>, SubmitError<W>>
    where
        X: Executor,
        W: Task<X>,
        W::Output: Send + 'static,
        W::Error: Display + Send + Sync + 'static,
    {
        let id = self.pending(name, args);
        match pool.submit(task) {
            Ok(f) => {
                let log = Arc::downgrade(self);
                f.add_done_callback(move |f| {
                    if let Some(log) = log.upgrade() {
                        log.finished(id, f.exception().map(|e| e.to_string()));
                    }
                });
                Ok(f)
            }
            Err(e) => {
                self.finished(id, Some(format!("not submitted: {e}")));
                Err(e)
            }
        }
    }

    /// The most recent tasks (newest first), only those in `state` if
    /// given, at most `limit`.
    pub fn recent(&self, state: Option<TaskState>, limit: usize) -> Vec<TaskRecord> {
        self.lock()
            .tasks
            .iter()
            .rev()
            .filter(|t| state.is_none_or(|s| t.state == s))
            .take(limit)
            .cloned()
            .collect()
    }

    /// The task running on `pid`, if any.
    pub fn running_on(&self, pid: u32) -> Option<TaskRecord> {
        self.lock()
            .tasks
            .iter()
            .rev()
            .find(|t| t.state == TaskState::Running && t.pid == Some(pid))
            .cloned()
    }
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_log_drops_the_oldest_finished_task_first() {
        let log = TaskLog::new(3);
        let a = log.pending("a", "");
        let b = log.pending("b", "");
        log.finished(b, None);
        let _c = log.pending("c", "");
        let _d = log.pending("d", "");
        let names: Vec<String> = log.recent(None, 10).into_iter().map(|t| t.name).collect();
        assert_eq!(names, ["d", "c", "a"]);
        log.started("a", 7);
        assert_eq!(log.running_on(7).map(|t| t.id), Some(a));
        assert_eq!(log.recent(Some(TaskState::Running), 10).len(), 1);
        log.finished(a, Some("x".repeat(500)));
        let t = &log.recent(Some(TaskState::Failed), 1)[0];
        assert_eq!(t.error.as_ref().unwrap().chars().count(), PREVIEW_CHARS + 1);
    }
}
