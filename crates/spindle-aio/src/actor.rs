//! Actors on tokio: an [`Actor`] handles the messages of its mailbox one at
//! a time; [`ActorRef`] sends to it from threads or tasks; a [`Supervisor`]
//! restarts it when a handler panics; a [`Registry`] finds it by name.
//!
//! The mailbox is a bounded [`spindle::queue::Queue`]: a full mailbox blocks
//! [`send`](ActorRef::send) (a plain thread), suspends
//! [`send_async`](ActorRef::send_async), and fails
//! [`try_send`](ActorRef::try_send) with [`SendError::Full`] — back-pressure
//! instead of an unbounded backlog. Stopping is the queue's shutdown:
//! [`ActorRef::shutdown(false)`](ActorRef::shutdown) lets the actor drain
//! its mailbox, `shutdown(true)` drops what is queued.
//!
//! Python has no actors in its standard library; the model is Pykka's and
//! Erlang/OTP's (`one_for_one` supervision, `max_restarts` within a period).
//!
//! # Asks from outside the runtime
//!
//! An [`ask`](ActorRef::ask) from a plain thread (or an
//! [`ask_async`](ActorRef::ask_async) from `Runtime::block_on`'s own future)
//! crosses threads twice: the request wakes the actor's worker, the reply
//! wakes the asker. Parking and waking a thread through the kernel costs
//! several microseconds each way, far more than the message itself, so both
//! ends spin briefly before they park, as the core queue's blocking
//! `get` does: the asker polls for its reply for up to [`ASK_SPIN`], and an
//! actor whose last message came from such a thread, finding its mailbox
//! empty, yields to its runtime and looks again for up to [`IDLE_SPIN`]
//! before it waits to be woken. Back-to-back asks then hand over without
//! a sleep; an actor sent nothing more parks after [`IDLE_SPIN`]. Both
//! spins adapt: after 3 in a row that found nothing (the other end was not
//! running, e.g. on a machine whose cores are all busy), the next 8 waits
//! park at once, then 16, ... up to 1,024 after further misses, so where
//! spinning does not pay it costs a spin per that many waits. Asks
//! between tasks of one multi-thread runtime do not spin (tokio hands the
//! woken task to the same worker), nor do asks on a `current_thread`
//! runtime (its one thread runs both ends).
//!
//! # Examples
//!
//! ```
//! use spindle_aio::actor::{self, Actor, Reply, RestartPolicy};
//!
//! enum Msg {
//!     Add(u64),
//!     Get(Reply<u64>),
//! }
//!
//! struct Counter(u64);
//!
//! impl Actor for Counter {
//!     type Msg = Msg;
//!     async fn handle(&mut self, msg: Msg) {
//!         match msg {
//!             Msg::Add(n) => self.0 += n,
//!             Msg::Get(reply) => reply.send(self.0),
//!         }
//!     }
//! }
//!
//! let counter = actor::spawn(|| Counter(0), 16);
//! for n in 1..=10 {
//!     counter.send(Msg::Add(n)).unwrap(); // from a plain thread
//! }
//! assert_eq!(counter.ask(Msg::Get).unwrap(), 55);
//! counter.shutdown(false);
//! counter.join();
//! ```
#![forbid(unsafe_code)]

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use spindle::queue::{PutError, PutTimeoutError, Queue, TryGetError, TryPutError};
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::{oneshot, watch};

use crate::{block_on_deadline, in_runtime};

/// Something that handles messages one at a time, with state of its own.
pub trait Actor: Send + 'static {
    /// What it is sent.
    type Msg: Send + 'static;

    /// Handles one message. A panic here is caught by the actor's
    /// [`Supervisor`], reported, and the actor restarted (a fresh one from
    /// its factory) under the [`RestartPolicy`]; the message is lost.
    fn handle(&mut self, msg: Self::Msg) -> impl Future<Output = ()> + Send;
}

/// Where an actor puts the answer to an [`ask`](ActorRef::ask).
#[derive(Debug)]
pub struct Reply<R>(oneshot::Sender<R>);

impl<R> Reply<R> {
    /// Answers the asker (ignored if it stopped waiting).
    pub fn send(self, value: R) {
        self.0.send(value).ok();
    }
}

/// Why a message was not delivered; it is handed back.
#[derive(Clone, PartialEq, Eq)]
pub enum SendError<M> {
    /// The mailbox is full ([`try_send`](ActorRef::try_send)): Python's
    /// `queue.Full`.
    Full(M),
    /// The actor is stopped or stopping: its mailbox is shut down.
    Stopped(M),
    /// The mailbox stayed full for the whole
    /// [`send_timeout`](ActorRef::send_timeout).
    Timeout(M),
}

impl<M> SendError<M> {
    /// The undelivered message.
    pub fn into_inner(self) -> M {
        match self {
            SendError::Full(m) | SendError::Stopped(m) | SendError::Timeout(m) => m,
        }
    }
}

impl<M> fmt::Debug for SendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::Full(_) => "Full(..)",
            SendError::Stopped(_) => "Stopped(..)",
            SendError::Timeout(_) => "Timeout(..)",
        })
    }
}

impl<M> fmt::Display for SendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::Full(_) => "the actor's mailbox is full",
            SendError::Stopped(_) => "the actor is stopped",
            SendError::Timeout(_) => "the actor's mailbox stayed full until the timeout",
        })
    }
}

impl<M> std::error::Error for SendError<M> {}

/// Why an [`ask`](ActorRef::ask) got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AskError {
    /// The actor is stopped: the request was not delivered.
    Stopped,
    /// The request was delivered but dropped unanswered: the handler
    /// panicked, ignored its [`Reply`], or the actor was stopped with
    /// `shutdown(true)` before reading it.
    NoReply,
    /// The blocking [`ask`](ActorRef::ask) was called on a tokio runtime
    /// thread: use [`ask_async`](ActorRef::ask_async) there.
    InRuntime,
}

impl fmt::Display for AskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AskError::Stopped => "the actor is stopped",
            AskError::NoReply => "the actor dropped the request unanswered",
            AskError::InRuntime => "blocking ask on a tokio runtime thread; use ask_async",
        })
    }
}

impl std::error::Error for AskError {}

/// How long an asker outside the runtime's tasks (see [the module
/// docs](self#asks-from-outside-the-runtime)) polls for its reply before it
/// parks.
pub const ASK_SPIN: Duration = Duration::from_micros(20);

/// How long an actor whose last message came from outside the runtime's
/// tasks keeps looking at its empty mailbox, yielding to its runtime between
/// looks, before it waits to be woken.
pub const IDLE_SPIN: Duration = Duration::from_micros(20);

/// At most this many yields per [`IDLE_SPIN`], however slow the clock reads.
const IDLE_SPIN_MAX_YIELDS: u32 = 64;

/// Whether this thread, waiting for another thread of the process, may spin
/// before it parks: it is not a task (spinning would hold up the worker it
/// runs on) and not the thread of a `current_thread` runtime (the thread it
/// would wait for is itself).
fn spinning_helps() -> bool {
    tokio::task::try_id().is_none()
        && Handle::try_current()
            .map_or(true, |h| h.runtime_flavor() != RuntimeFlavor::CurrentThread)
}

/// Adaptive spinning: after a run of spins that found nothing (the other
/// end was not running: say all cores are busy, or the kernel put both
/// threads on one core), the next waits park at once: 8 after 3 misses in
/// a row, twice as many after each further miss, up to 1,024. So where
/// spinning does not pay it costs about one spin per that many waits; a
/// lone miss (a preempted thread) changes nothing, and a spin that pays
/// resets the count. Counts are approximate under races (relaxed atomics).
#[derive(Debug, Default)]
struct SpinGate {
    /// Waits left that park without spinning.
    skip: AtomicU32,
    /// Spins in a row that found nothing.
    misses: AtomicU32,
}

impl SpinGate {
    const MISSES_BEFORE_SKIPPING: u32 = 3;
    const FIRST_SKIP: u32 = 8;
    const MAX_SKIP: u32 = 1024;

    /// Whether this wait may spin (else it counts one skipped wait).
    fn may_spin(&self) -> bool {
        match self.skip.load(Ordering::Relaxed) {
            0 => true,
            n => {
                self.skip.store(n - 1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Records whether a spin found what it waited for.
    fn record(&self, paid: bool) {
        let misses = self.misses.load(Ordering::Relaxed);
        if paid {
            if misses != 0 {
                self.misses.store(0, Ordering::Relaxed);
            }
            return;
        }
        let misses = misses.saturating_add(1);
        self.misses.store(misses, Ordering::Relaxed);
        if let Some(over) = misses.checked_sub(Self::MISSES_BEFORE_SKIPPING) {
            let skip = Self::FIRST_SKIP
                .checked_shl(over)
                .unwrap_or(Self::MAX_SKIP)
                .min(Self::MAX_SKIP);
            self.skip.store(skip, Ordering::Relaxed);
        }
    }
}

/// Polls `rx` for up to [`ASK_SPIN`] if `gate` allows: `None` if the reply
/// has not come.
fn spin_for_reply<R>(
    gate: &SpinGate,
    rx: &mut oneshot::Receiver<R>,
) -> Option<Result<R, AskError>> {
    if !gate.may_spin() {
        return None;
    }
    let out = spin_until_reply(rx);
    gate.record(out.is_some());
    out
}

fn spin_until_reply<R>(rx: &mut oneshot::Receiver<R>) -> Option<Result<R, AskError>> {
    let start = Instant::now();
    let mut round = 0u32;
    loop {
        match rx.try_recv() {
            Ok(v) => return Some(Ok(v)),
            Err(oneshot::error::TryRecvError::Closed) => return Some(Err(AskError::NoReply)),
            Err(oneshot::error::TryRecvError::Empty) => {}
        }
        if start.elapsed() >= ASK_SPIN {
            return None;
        }
        // A few busy rounds, then let a thread we may be waiting for run
        // (the core queue's backoff: long pure spinning starves it).
        if round < 4 {
            for _ in 0..1u32 << round {
                std::hint::spin_loop();
            }
            round += 1;
        } else {
            std::thread::yield_now();
        }
    }
}

struct Cell<M> {
    name: String,
    mailbox: Queue<M>,
    /// The last message came from a thread that spins for replies
    /// ([`spinning_helps`]): idle, the actor looks again for a while before
    /// it parks.
    outside_sender: AtomicBool,
    /// Adapts the askers' spinning ([`ASK_SPIN`]).
    ask_gate: SpinGate,
    /// Adapts the actor's spinning ([`IDLE_SPIN`]).
    idle_gate: SpinGate,
    stopped: watch::Sender<bool>,
    restarts: AtomicUsize,
    last_panic: Mutex<Option<String>>,
}

/// A handle to an actor: send it messages, ask it questions, stop it.
/// Cheap to clone; usable from plain threads (the blocking methods) and
/// from async code (the `_async` ones).
pub struct ActorRef<M> {
    cell: Arc<Cell<M>>,
}

impl<M> Clone for ActorRef<M> {
    fn clone(&self) -> Self {
        ActorRef {
            cell: self.cell.clone(),
        }
    }
}

impl<M> fmt::Debug for ActorRef<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorRef")
            .field("name", &self.cell.name)
            .field("queued", &self.cell.mailbox.qsize())
            .field("stopped", &*self.cell.stopped.borrow())
            .finish()
    }
}

impl<M: Send + 'static> ActorRef<M> {
    /// Records whether this message comes from a thread that spins for
    /// replies (written only when it changes: senders share the line).
    fn note_sender(&self) {
        let outside = spinning_helps();
        if self.cell.outside_sender.load(Ordering::Relaxed) != outside {
            self.cell.outside_sender.store(outside, Ordering::Relaxed);
        }
    }

    /// Puts `msg` in the mailbox, blocking this thread while it is full.
    ///
    /// # Errors
    ///
    /// [`SendError::Stopped`] if the actor is stopped.
    pub fn send(&self, msg: M) -> Result<(), SendError<M>> {
        self.note_sender();
        self.cell
            .mailbox
            .put(msg)
            .map_err(|PutError(m)| SendError::Stopped(m))
    }

    /// Puts `msg` in the mailbox, waiting asynchronously while it is full.
    ///
    /// # Errors
    ///
    /// [`SendError::Stopped`] if the actor is stopped.
    pub async fn send_async(&self, msg: M) -> Result<(), SendError<M>> {
        self.note_sender();
        self.cell
            .mailbox
            .put_async(msg)
            .await
            .map_err(|PutError(m)| SendError::Stopped(m))
    }

    /// Puts `msg` in the mailbox if there is room now.
    ///
    /// # Errors
    ///
    /// [`SendError::Full`] or [`SendError::Stopped`].
    pub fn try_send(&self, msg: M) -> Result<(), SendError<M>> {
        self.note_sender();
        self.cell.mailbox.try_put(msg).map_err(|e| match e {
            TryPutError::Full(m) => SendError::Full(m),
            TryPutError::ShutDown(m) => SendError::Stopped(m),
        })
    }

    /// [`send`](ActorRef::send), blocking at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`SendError::Timeout`] or [`SendError::Stopped`].
    pub fn send_timeout(&self, msg: M, timeout: Duration) -> Result<(), SendError<M>> {
        self.note_sender();
        self.cell
            .mailbox
            .put_timeout(msg, timeout)
            .map_err(|e| match e {
                PutTimeoutError::Timeout(m) => SendError::Timeout(m),
                PutTimeoutError::ShutDown(m) => SendError::Stopped(m),
            })
    }

    /// Sends the request `make(reply)` and blocks this thread for the
    /// answer (Pykka's `ask`). It polls for the answer for up to
    /// [`ASK_SPIN`] before it parks.
    ///
    /// # Errors
    ///
    /// [`AskError::Stopped`], [`AskError::NoReply`], or
    /// [`AskError::InRuntime`] on a runtime thread (nothing is sent).
    pub fn ask<R>(&self, make: impl FnOnce(Reply<R>) -> M) -> Result<R, AskError> {
        if in_runtime() {
            return Err(AskError::InRuntime);
        }
        let (tx, mut rx) = oneshot::channel();
        self.send(make(Reply(tx))).map_err(|_| AskError::Stopped)?;
        if let Some(out) = spin_for_reply(&self.cell.ask_gate, &mut rx) {
            return out;
        }
        block_on_deadline(rx, None)
            .expect("no deadline")
            .map_err(|_| AskError::NoReply)
    }

    /// Sends the request `make(reply)` and awaits the answer. Awaited
    /// outside any task (in `Runtime::block_on` of a multi-thread runtime,
    /// or another executor), it polls for the answer for up to [`ASK_SPIN`]
    /// first, blocking that thread meanwhile.
    ///
    /// # Errors
    ///
    /// [`AskError::Stopped`] or [`AskError::NoReply`].
    pub async fn ask_async<R>(&self, make: impl FnOnce(Reply<R>) -> M) -> Result<R, AskError> {
        let (tx, mut rx) = oneshot::channel();
        self.send_async(make(Reply(tx)))
            .await
            .map_err(|_| AskError::Stopped)?;
        if spinning_helps()
            && let Some(out) = spin_for_reply(&self.cell.ask_gate, &mut rx)
        {
            return out;
        }
        rx.await.map_err(|_| AskError::NoReply)
    }

    /// Stops the actor: with `immediate == false` it handles what is already
    /// in its mailbox first (drain); with `true` those messages are dropped.
    /// Sends fail with [`SendError::Stopped`] from now on. The queue's
    /// `shutdown(immediate)`.
    pub fn shutdown(&self, immediate: bool) {
        self.cell.mailbox.shutdown(immediate);
    }

    /// Whether the actor has stopped for good (drained after `shutdown`, or
    /// given up on by its supervisor).
    pub fn is_stopped(&self) -> bool {
        *self.cell.stopped.borrow()
    }

    /// Waits until the actor has stopped.
    pub async fn join_async(&self) {
        let mut rx = self.cell.stopped.subscribe();
        rx.wait_for(|s| *s).await.ok();
    }

    /// Blocks this thread until the actor has stopped (returns at once on a
    /// runtime thread if it has not: use [`join_async`](ActorRef::join_async)
    /// there). Returns whether it has stopped.
    pub fn join(&self) -> bool {
        if !self.is_stopped() && !in_runtime() {
            block_on_deadline(self.join_async(), None);
        }
        self.is_stopped()
    }

    /// How many times the supervisor restarted the actor.
    pub fn restarts(&self) -> usize {
        self.cell.restarts.load(Ordering::Acquire)
    }

    /// The message of the last handler panic, if any.
    pub fn last_panic(&self) -> Option<String> {
        self.cell
            .last_panic
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Messages waiting in the mailbox.
    pub fn queued(&self) -> usize {
        self.cell.mailbox.qsize()
    }

    /// The actor's name (given to [`Supervisor::spawn_named`], or
    /// `"actor"`).
    pub fn name(&self) -> &str {
        &self.cell.name
    }
}

/// How a [`Supervisor`] restarts a panicking actor: at most `max_restarts`
/// restarts within any `within` window (Erlang's intensity and period),
/// each after `backoff`; one more panic and it gives up, stopping the actor
/// (its mailbox is shut down immediately, so senders get `Stopped`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Restarts allowed within `within`.
    pub max_restarts: usize,
    /// The window restarts are counted in.
    pub within: Duration,
    /// Pause before each restart.
    pub backoff: Duration,
}

impl Default for RestartPolicy {
    /// 3 restarts within 5 s, no backoff.
    fn default() -> Self {
        RestartPolicy {
            max_restarts: 3,
            within: Duration::from_secs(5),
            backoff: Duration::ZERO,
        }
    }
}

/// A one-for-one supervisor: each actor it spawns is restarted on its own
/// when its handler panics (a fresh actor from the factory, the same
/// mailbox), under one [`RestartPolicy`]. The panic is reported on stderr
/// and kept ([`ActorRef::last_panic`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Supervisor {
    policy: RestartPolicy,
}

impl Supervisor {
    /// A supervisor applying `policy` to each of its actors.
    pub fn new(policy: RestartPolicy) -> Supervisor {
        Supervisor { policy }
    }

    /// Starts the actor `factory()` with a mailbox of `capacity` messages
    /// (0: unbounded, as Python's `maxsize=0`), on the current runtime or
    /// the global one.
    pub fn spawn<A, F>(&self, factory: F, capacity: usize) -> ActorRef<A::Msg>
    where
        A: Actor,
        F: FnMut() -> A + Send + 'static,
    {
        self.spawn_named("actor", factory, capacity)
    }

    /// [`spawn`](Supervisor::spawn), naming the actor (in reports).
    pub fn spawn_named<A, F>(&self, name: &str, factory: F, capacity: usize) -> ActorRef<A::Msg>
    where
        A: Actor,
        F: FnMut() -> A + Send + 'static,
    {
        let (stopped, _) = watch::channel(false);
        let cell = Arc::new(Cell {
            name: name.to_owned(),
            mailbox: Queue::with_maxsize(capacity),
            outside_sender: AtomicBool::new(false),
            ask_gate: SpinGate::default(),
            idle_gate: SpinGate::default(),
            stopped,
            restarts: AtomicUsize::new(0),
            last_panic: Mutex::new(None),
        });
        crate::handle().spawn(supervise(cell.clone(), factory, self.policy));
        ActorRef { cell }
    }
}

/// [`Supervisor::spawn`] with the default [`RestartPolicy`].
pub fn spawn<A, F>(factory: F, capacity: usize) -> ActorRef<A::Msg>
where
    A: Actor,
    F: FnMut() -> A + Send + 'static,
{
    Supervisor::default().spawn(factory, capacity)
}

/// Marks the actor stopped however supervision ends (its runtime dropping
/// the task included).
struct MarkStopped<M>(Arc<Cell<M>>);

impl<M> Drop for MarkStopped<M> {
    fn drop(&mut self) {
        self.0.mailbox.shutdown(true);
        self.0.stopped.send_replace(true);
    }
}

async fn supervise<A, F>(cell: Arc<Cell<A::Msg>>, mut factory: F, policy: RestartPolicy)
where
    A: Actor,
    F: FnMut() -> A + Send + 'static,
{
    let _mark = MarkStopped(cell.clone());
    let mut recent: VecDeque<tokio::time::Instant> = VecDeque::new();
    loop {
        let mut actor = factory();
        let inbox = cell.clone();
        let run = tokio::spawn(async move {
            while let Some(msg) = next_message(&inbox).await {
                actor.handle(msg).await;
            }
        });
        match run.await {
            Ok(()) => return, // shut down and drained
            Err(e) if e.is_panic() => {
                let msg = crate::task::from_join_error(e)
                    .panic_message()
                    .unwrap_or_default()
                    .to_owned();
                eprintln!("spindle-aio: actor {:?} panicked: {msg}", cell.name);
                *cell
                    .last_panic
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(msg);
                let now = tokio::time::Instant::now();
                recent.push_back(now);
                while recent
                    .front()
                    .is_some_and(|t| now.duration_since(*t) > policy.within)
                {
                    recent.pop_front();
                }
                if recent.len() > policy.max_restarts {
                    eprintln!(
                        "spindle-aio: actor {:?}: more than {} restarts within {:?}; giving up",
                        cell.name, policy.max_restarts, policy.within
                    );
                    return;
                }
                if !policy.backoff.is_zero() {
                    tokio::time::sleep(policy.backoff).await;
                }
                cell.restarts.fetch_add(1, Ordering::AcqRel);
            }
            Err(_) => return, // cancelled: the runtime is shutting down
        }
    }
}

/// The next message of the actor's mailbox, `None` once it is shut down
/// and drained. With an empty mailbox and a last sender outside the
/// runtime's tasks, it yields and looks again for up to [`IDLE_SPIN`] before
/// it waits to be woken (module docs: "Asks from outside the runtime").
async fn next_message<M>(cell: &Cell<M>) -> Option<M> {
    let look = || match cell.mailbox.try_get() {
        Ok(msg) => Some(Some(msg)),
        Err(TryGetError::ShutDown) => Some(None),
        Err(TryGetError::Empty) => None,
    };
    if let Some(next) = look() {
        return next;
    }
    if cell.outside_sender.load(Ordering::Relaxed) && cell.idle_gate.may_spin() {
        // std's clock: a paused tokio clock would never end the spin.
        let start = Instant::now();
        for _ in 0..IDLE_SPIN_MAX_YIELDS {
            tokio::task::yield_now().await;
            if let Some(next) = look() {
                cell.idle_gate.record(true);
                return next;
            }
            if start.elapsed() >= IDLE_SPIN {
                break;
            }
        }
        cell.idle_gate.record(false);
    }
    cell.mailbox.get_async().await.ok()
}

/// Why a [`Registry`] lookup failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryError {
    /// No actor is registered under the name.
    Unknown(String),
    /// The actor takes another message type.
    WrongType {
        /// The name looked up.
        name: String,
        /// The message type asked for.
        expected: &'static str,
        /// The message type the actor takes.
        registered: &'static str,
    },
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryError::Unknown(name) => write!(f, "no actor registered as {name:?}"),
            RegistryError::WrongType {
                name,
                expected,
                registered,
            } => write!(f, "actor {name:?} takes {registered}, not {expected}"),
        }
    }
}

impl std::error::Error for RegistryError {}

struct Entry {
    actor: Box<dyn Any + Send + Sync>,
    msg_type: &'static str,
}

/// Actors by name, of any message type: the lookup is typed, and asking for
/// the wrong message type is [`RegistryError::WrongType`], not a panic.
#[derive(Default)]
pub struct Registry {
    entries: Mutex<HashMap<String, Entry>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries = self.lock();
        f.debug_map()
            .entries(entries.iter().map(|(k, e)| (k, e.msg_type)))
            .finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers `actor` as `name`, replacing (and returning `true` for) an
    /// earlier actor of that name.
    pub fn register<M: Send + 'static>(&self, name: &str, actor: ActorRef<M>) -> bool {
        self.lock()
            .insert(
                name.to_owned(),
                Entry {
                    actor: Box::new(actor),
                    msg_type: std::any::type_name::<M>(),
                },
            )
            .is_some()
    }

    /// Removes `name`; whether it was registered.
    pub fn unregister(&self, name: &str) -> bool {
        self.lock().remove(name).is_some()
    }

    /// The actor registered as `name`, taking messages of type `M`.
    ///
    /// # Errors
    ///
    /// [`RegistryError::Unknown`] or [`RegistryError::WrongType`].
    pub fn get<M: Send + 'static>(&self, name: &str) -> Result<ActorRef<M>, RegistryError> {
        let entries = self.lock();
        let entry = entries
            .get(name)
            .ok_or_else(|| RegistryError::Unknown(name.to_owned()))?;
        entry
            .actor
            .downcast_ref::<ActorRef<M>>()
            .cloned()
            .ok_or_else(|| RegistryError::WrongType {
                name: name.to_owned(),
                expected: std::any::type_name::<M>(),
                registered: entry.msg_type,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits the gate lets spin out of the next `n`.
    fn spins(gate: &SpinGate, n: u32) -> u32 {
        (0..n).filter(|_| gate.may_spin()).count() as u32
    }

    #[test]
    fn spin_gate_backs_off_after_misses_in_a_row_and_resets_on_a_hit() {
        let gate = SpinGate::default();
        assert_eq!(spins(&gate, 100), 100, "spins until a miss");
        gate.record(false);
        gate.record(false);
        assert_eq!(spins(&gate, 10), 10, "two misses change nothing");
        gate.record(false); // the third in a row: skip 8
        assert_eq!(spins(&gate, 9), 1);
        gate.record(false); // the fourth: skip 16
        assert_eq!(spins(&gate, 17), 1);
        for _ in 0..20 {
            gate.record(false);
        }
        assert_eq!(spins(&gate, 1025), 1, "at most 1,024 skipped");
        gate.record(true);
        assert_eq!(spins(&gate, 10), 10, "a hit resets");
        gate.record(false);
        assert_eq!(spins(&gate, 10), 10, "the count of misses restarted");
    }

    #[test]
    fn spin_until_reply_sees_a_reply_a_drop_or_gives_up() {
        let (tx, mut rx) = oneshot::channel();
        tx.send(5).unwrap();
        assert_eq!(spin_until_reply(&mut rx), Some(Ok(5)));

        let (tx, mut rx) = oneshot::channel::<u8>();
        drop(tx);
        assert_eq!(spin_until_reply(&mut rx), Some(Err(AskError::NoReply)));

        let (_tx, mut rx) = oneshot::channel::<u8>();
        let start = Instant::now();
        assert_eq!(spin_until_reply(&mut rx), None);
        assert!(start.elapsed() >= ASK_SPIN);

        // From another thread while it spins (or after: then the next
        // spin sees it).
        let (tx, mut rx) = oneshot::channel();
        let sender = std::thread::spawn(move || tx.send(7).unwrap());
        let got = loop {
            if let Some(out) = spin_until_reply(&mut rx) {
                break out;
            }
        };
        assert_eq!(got, Ok(7));
        sender.join().unwrap();
    }
}
