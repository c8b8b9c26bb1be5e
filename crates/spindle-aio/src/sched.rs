//! The Python Cookbook's generator schedulers (recipe 12.12, "Using
//! generators as an alternative to threads"), with futures for generators:
//! [`TaskScheduler`] and [`ActorScheduler`].
//!
//! This is not a runtime and has no I/O or timers: one thread polls a FIFO
//! of futures, deterministically, and [`yield_now().await`](yield_now) plays
//! the generator's bare `yield` (back of the queue, next task runs). The
//! futures need not be `Send` and may borrow local data.
//!
//! A task that is pending with no live [`Waker`] clone can never run again;
//! [`TaskScheduler::run`] then returns [`Stalled`] instead of hanging.
#![forbid(unsafe_code)]

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Duration;

/// Yields to the scheduler once: the task goes to the back of the run
/// queue (the generator's bare `yield`). Works under any executor that
/// honours wake-ups (under tokio, prefer `tokio::task::yield_now`).
pub fn yield_now() -> YieldNow {
    YieldNow(false)
}

/// The future of [`yield_now`].
#[derive(Debug)]
pub struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// [`TaskScheduler::run`] found tasks that can never run again: pending, and
/// no [`Waker`] of theirs alive anywhere (Python's generator scheduler has no
/// such state; a generator is always resumable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stalled {
    /// How many tasks were left.
    pub tasks: usize,
}

impl fmt::Display for Stalled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} task(s) are pending and nothing can wake them",
            self.tasks
        )
    }
}

impl std::error::Error for Stalled {}

/// The run queue, shared with the wakers (which may be on other threads).
struct Ready {
    queue: Mutex<VecDeque<usize>>,
    thread: Mutex<Option<Thread>>,
    /// Set (under `queue`'s lock) while `run` parks: only then does a
    /// wake-up unpark it, so the wake-ups `run` makes itself (every
    /// `yield_now`) take no thread handle.
    sleeping: AtomicBool,
}

impl Ready {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<usize>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// No task in [`FIRST`].
const NO_TASK: usize = usize::MAX;

thread_local! {
    /// The address of the `Ready` whose scheduler is running on this
    /// thread (0: none), and the wake-ups of its tasks made on this thread
    /// while it runs: those skip the queue's lock (`run` moves them to the
    /// back of its batch after each poll, in order). The first of a poll
    /// goes in `FIRST` (the common case, a `yield_now`, costs no `RefCell`
    /// and no `Vec`), the others after it in `LOCAL`.
    static RUNNING: Cell<usize> = const { Cell::new(0) };
    static FIRST: Cell<usize> = const { Cell::new(NO_TASK) };
    static LOCAL: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// Takes the wake-ups made on this thread since the last call, in order.
fn take_local(into: &mut VecDeque<usize>) {
    let first = FIRST.replace(NO_TASK);
    if first != NO_TASK {
        into.push_back(first);
        LOCAL.with(|l| {
            let mut l = l.borrow_mut();
            if !l.is_empty() {
                into.extend(l.drain(..));
            }
        });
    }
}

/// Marks this thread as running `ready`'s scheduler until dropped; then
/// queues the local wake-ups left (a task panicked) and restores the
/// scheduler this one runs inside, if any.
struct Running<'r> {
    ready: &'r Arc<Ready>,
    outer: (usize, usize, Vec<usize>),
}

impl<'r> Running<'r> {
    fn enter(ready: &'r Arc<Ready>) -> Running<'r> {
        let me = Arc::as_ptr(ready) as usize;
        let outer = (RUNNING.replace(me), FIRST.replace(NO_TASK), LOCAL.take());
        Running { ready, outer }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let mut left = VecDeque::new();
        take_local(&mut left);
        LOCAL.set(std::mem::take(&mut self.outer.2));
        FIRST.set(self.outer.1);
        RUNNING.set(self.outer.0);
        if !left.is_empty() {
            self.ready.lock().extend(left);
        }
    }
}

struct TaskWaker {
    id: usize,
    queued: AtomicBool,
    ready: Arc<Ready>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let me = Arc::as_ptr(&self.ready) as usize;
        if RUNNING.try_with(Cell::get) == Ok(me) {
            // On the scheduler's own thread (the common case: every
            // `yield_now`), no read-modify-write: a wake-up from another
            // thread racing with this one can queue the task twice, and
            // the second poll is a spurious one, which futures allow.
            if self.queued.load(Ordering::Relaxed) {
                return;
            }
            self.queued.store(true, Ordering::Relaxed);
            let first = FIRST.try_with(|f| {
                if f.get() == NO_TASK {
                    f.set(self.id);
                    true
                } else {
                    false
                }
            });
            if first == Ok(true)
                || (first.is_ok() && LOCAL.try_with(|l| l.borrow_mut().push(self.id)).is_ok())
            {
                return;
            }
            // This thread's locals are being destroyed: the shared queue.
            self.push_shared();
        } else if !self.queued.swap(true, Ordering::AcqRel) {
            self.push_shared();
        }
    }
}

impl TaskWaker {
    /// Queues the task on the shared queue (a wake-up from another thread)
    /// and unparks the scheduler if it sleeps.
    fn push_shared(&self) {
        let sleeping = {
            let mut q = self.ready.lock();
            q.push_back(self.id);
            self.ready.sleeping.load(Ordering::Relaxed)
        };
        if !sleeping {
            return;
        }
        let t = self
            .ready
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(t) = t {
            t.unpark();
        }
    }
}

struct Slot<'a> {
    fut: Pin<Box<dyn Future<Output = ()> + 'a>>,
    waker: Arc<TaskWaker>,
    /// `waker` as a `Waker`, made once (a second strong reference).
    handle: Waker,
}

/// A deterministic, single-thread FIFO of futures: the Cookbook's
/// `TaskScheduler` (`new_task`, `run`), with `async` blocks for generators.
///
/// # Examples
///
/// ```
/// use std::cell::RefCell;
/// use spindle_aio::sched::{TaskScheduler, yield_now};
///
/// let out = RefCell::new(Vec::new());
/// let mut sched = TaskScheduler::new();
/// for name in ["a", "b"] {
///     let out = &out;
///     sched.new_task(async move {
///         for i in 0..2 {
///             out.borrow_mut().push(format!("{name}{i}"));
///             yield_now().await;
///         }
///     });
/// }
/// sched.run().unwrap();
/// assert_eq!(*out.borrow(), ["a0", "b0", "a1", "b1"]);
/// ```
pub struct TaskScheduler<'a> {
    tasks: Vec<Option<Slot<'a>>>,
    ready: Arc<Ready>,
    /// The ids taken from `ready` in one lock, run in order.
    batch: VecDeque<usize>,
    live: usize,
}

impl fmt::Debug for TaskScheduler<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskScheduler")
            .field("tasks", &self.live)
            .finish()
    }
}

impl Default for TaskScheduler<'_> {
    fn default() -> Self {
        TaskScheduler::new()
    }
}

/// How long [`TaskScheduler::run`] parks before it looks again whether a
/// pending task's wakers are all gone (a waker dropped unwoken sends no
/// signal).
const RECHECK: Duration = Duration::from_millis(10);

impl<'a> TaskScheduler<'a> {
    /// An empty scheduler.
    pub fn new() -> TaskScheduler<'a> {
        TaskScheduler {
            tasks: Vec::new(),
            ready: Arc::new(Ready {
                queue: Mutex::new(VecDeque::new()),
                thread: Mutex::new(None),
                sleeping: AtomicBool::new(false),
            }),
            batch: VecDeque::new(),
            live: 0,
        }
    }

    /// Adds a task at the back of the run queue: `sched.new_task(gen)`.
    pub fn new_task(&mut self, fut: impl Future<Output = ()> + 'a) {
        let id = self.tasks.len();
        let waker = Arc::new(TaskWaker {
            id,
            queued: AtomicBool::new(true),
            ready: self.ready.clone(),
        });
        let handle = Waker::from(waker.clone());
        self.tasks.push(Some(Slot {
            fut: Box::pin(fut),
            waker,
            handle,
        }));
        self.live += 1;
        self.ready.lock().push_back(id);
    }

    /// Tasks not yet finished.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether every task has finished.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Runs tasks in FIFO order, each until it yields or waits, until all
    /// have finished: `sched.run()`. A task woken from another thread is
    /// queued and run here.
    ///
    /// # Errors
    ///
    /// [`Stalled`] when the queue is empty and every task left is pending
    /// with no live waker (it could never be woken); those tasks stay in the
    /// scheduler.
    pub fn run(&mut self) -> Result<(), Stalled> {
        self.run_until(&|_| false).map(|_| ())
    }

    /// Runs until no task can make progress. `idle` says whether a pending
    /// task waits only on something the caller owns (it holds one waker
    /// clone): such tasks do not count as stalled. Returns how many idle
    /// tasks are left.
    fn run_until(&mut self, idle: &dyn Fn(&Waker) -> bool) -> Result<usize, Stalled> {
        *self
            .ready
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(thread::current());
        let ready = self.ready.clone();
        let _running = Running::enter(&ready);
        loop {
            // Everything queued so far, in one lock; tasks woken while it
            // runs queue behind it, so the order stays FIFO. (A batch left
            // by a panicking task runs first.)
            if self.batch.is_empty() {
                std::mem::swap(&mut *self.ready.lock(), &mut self.batch);
            }
            if !self.batch.is_empty() {
                while let Some(id) = self.batch.pop_front() {
                    self.poll_task(id);
                    take_local(&mut self.batch);
                }
                continue;
            }
            if self.live == 0 {
                return Ok(0);
            }
            // Under the queue's lock: a waker pushes its task before its
            // clone is dropped, so a count read here sees no lost wake-up.
            let q = self.ready.lock();
            if !q.is_empty() {
                continue;
            }
            // Set under the lock: a waker that pushes after it is released
            // sees it and unparks us.
            self.ready.sleeping.store(true, Ordering::Relaxed);
            fence(Ordering::Acquire);
            let (mut dead, mut idle_tasks, mut wakeable) = (0, 0, 0);
            for slot in self.tasks.iter().flatten() {
                // Ours in the slot and its `handle`.
                let others = Arc::strong_count(&slot.waker) - 2;
                if others == 0 {
                    dead += 1;
                } else if others == 1 && idle(&slot.handle) {
                    idle_tasks += 1;
                } else {
                    wakeable += 1;
                }
            }
            drop(q);
            if wakeable == 0 {
                self.ready.sleeping.store(false, Ordering::Relaxed);
                return if dead > 0 {
                    Err(Stalled { tasks: dead })
                } else {
                    Ok(idle_tasks)
                };
            }
            thread::park_timeout(RECHECK);
            self.ready.sleeping.store(false, Ordering::Relaxed);
        }
    }

    fn poll_task(&mut self, id: usize) {
        let Some(slot) = self.tasks.get_mut(id).and_then(Option::as_mut) else {
            return; // finished; a stale wake-up
        };
        slot.waker.queued.store(false, Ordering::Release);
        let mut cx = Context::from_waker(&slot.handle);
        if slot.fut.as_mut().poll(&mut cx).is_ready() {
            self.tasks[id] = None;
            self.live -= 1;
        }
    }
}

/// [`Actors::send`] named no actor that is alive. Python's Cookbook
/// `ActorScheduler.send` drops such a message silently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownActor(pub String);

impl fmt::Display for UnknownActor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no actor named {:?}", self.0)
    }
}

impl std::error::Error for UnknownActor {}

struct Mailbox<M> {
    msgs: RefCell<VecDeque<M>>,
    waiting: RefCell<Option<Waker>>,
}

type Directory<M> = Rc<RefCell<HashMap<String, Weak<Mailbox<M>>>>>;

/// The actors of an [`ActorScheduler`] by name: clone it into actors so
/// they can send (`sched.send(name, msg)` in Python).
pub struct Actors<M> {
    dir: Directory<M>,
}

impl<M> Clone for Actors<M> {
    fn clone(&self) -> Self {
        Actors {
            dir: self.dir.clone(),
        }
    }
}

impl<M> fmt::Debug for Actors<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Actors")
            .field("names", &self.dir.borrow().keys().collect::<Vec<_>>())
            .finish()
    }
}

impl<M> Actors<M> {
    /// Queues `msg` for the actor `name` and wakes it.
    ///
    /// # Errors
    ///
    /// [`UnknownActor`] if no actor of that name is alive (never created, or
    /// its future has finished); the message is dropped. Python drops it
    /// silently.
    pub fn send(&self, name: &str, msg: M) -> Result<(), UnknownActor> {
        let mailbox = self
            .dir
            .borrow()
            .get(name)
            .and_then(Weak::upgrade)
            .ok_or_else(|| UnknownActor(name.to_owned()))?;
        mailbox.msgs.borrow_mut().push_back(msg);
        let waker = mailbox.waiting.borrow_mut().take();
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }
}

/// An actor's mailbox, handed to its future by [`ActorScheduler::new_actor`].
pub struct Inbox<M> {
    mailbox: Rc<Mailbox<M>>,
}

impl<M> fmt::Debug for Inbox<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inbox")
            .field("queued", &self.mailbox.msgs.borrow().len())
            .finish()
    }
}

impl<M> Inbox<M> {
    /// The next message: the generator's `msg = yield`. It always yields to
    /// the scheduler once first, so each delivery is one scheduler step, in
    /// the order the Cookbook's message queue would make.
    pub fn recv(&self) -> Recv<'_, M> {
        Recv {
            inbox: self,
            yielded: false,
        }
    }
}

/// The future of [`Inbox::recv`].
#[derive(Debug)]
pub struct Recv<'b, M> {
    inbox: &'b Inbox<M>,
    yielded: bool,
}

impl<M> Future for Recv<'_, M> {
    type Output = M;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<M> {
        if !self.yielded {
            self.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let mailbox = &self.inbox.mailbox;
        if let Some(msg) = mailbox.msgs.borrow_mut().pop_front() {
            return Poll::Ready(msg);
        }
        *mailbox.waiting.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// The Cookbook's `ActorScheduler`: named actors, each a future reading its
/// [`Inbox`], sending to others through [`Actors`]; `run` ends when no
/// message is left to deliver (actors waiting on empty mailboxes stay).
///
/// # Examples
///
/// The Cookbook's printer and counter:
///
/// ```
/// use std::cell::RefCell;
/// use spindle_aio::sched::ActorScheduler;
///
/// let got = RefCell::new(Vec::new());
/// let mut sched = ActorScheduler::new();
/// sched.new_actor("printer", |inbox, _| {
///     let got = &got;
///     async move {
///         loop {
///             let n: u32 = inbox.recv().await;
///             got.borrow_mut().push(n);
///         }
///     }
/// });
/// sched.new_actor("counter", |inbox, actors| async move {
///     loop {
///         let n = inbox.recv().await;
///         if n == 0 {
///             break;
///         }
///         actors.send("printer", n).unwrap();
///         actors.send("counter", n - 1).unwrap();
///     }
/// });
/// sched.send("counter", 3).unwrap();
/// sched.run().unwrap();
/// assert_eq!(*got.borrow(), [3, 2, 1]);
/// ```
pub struct ActorScheduler<'a, M> {
    sched: TaskScheduler<'a>,
    actors: Actors<M>,
}

impl<M> fmt::Debug for ActorScheduler<'_, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorScheduler")
            .field("sched", &self.sched)
            .field("actors", &self.actors)
            .finish()
    }
}

impl<'a, M: 'a> Default for ActorScheduler<'a, M> {
    fn default() -> Self {
        ActorScheduler::new()
    }
}

impl<'a, M: 'a> ActorScheduler<'a, M> {
    /// No actors yet.
    pub fn new() -> ActorScheduler<'a, M> {
        ActorScheduler {
            sched: TaskScheduler::new(),
            actors: Actors {
                dir: Rc::new(RefCell::new(HashMap::new())),
            },
        }
    }

    /// Starts an actor named `name`: `actor(inbox, actors)` is its body
    /// (`sched.new_actor(name, gen)`). A later actor of the same name
    /// replaces it in the directory.
    pub fn new_actor<F, Fut>(&mut self, name: &str, actor: F)
    where
        F: FnOnce(Inbox<M>, Actors<M>) -> Fut,
        Fut: Future<Output = ()> + 'a,
    {
        let mailbox = Rc::new(Mailbox {
            msgs: RefCell::new(VecDeque::new()),
            waiting: RefCell::new(None),
        });
        self.actors
            .dir
            .borrow_mut()
            .insert(name.to_owned(), Rc::downgrade(&mailbox));
        self.sched
            .new_task(actor(Inbox { mailbox }, self.actors.clone()));
    }

    /// A handle to send to the actors by name.
    pub fn actors(&self) -> Actors<M> {
        self.actors.clone()
    }

    /// [`Actors::send`].
    ///
    /// # Errors
    ///
    /// [`UnknownActor`].
    pub fn send(&self, name: &str, msg: M) -> Result<(), UnknownActor> {
        self.actors.send(name, msg)
    }

    /// Delivers messages until none is left: `sched.run()`.
    ///
    /// # Errors
    ///
    /// [`Stalled`] if an actor waits on something other than its mailbox
    /// that nothing can wake.
    pub fn run(&mut self) -> Result<(), Stalled> {
        let dir = self.actors.dir.clone();
        let waits_on_mailbox = move |w: &Waker| {
            dir.borrow().values().filter_map(Weak::upgrade).any(|m| {
                m.msgs.borrow().is_empty()
                    && m.waiting.borrow().as_ref().is_some_and(|x| x.will_wake(w))
            })
        };
        self.sched.run_until(&waits_on_mailbox).map(|_| ())
    }
}
