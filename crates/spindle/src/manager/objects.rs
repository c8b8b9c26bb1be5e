//! The objects a manager server holds, and how each call runs on them.
//!
//! Values are opaque byte strings (the clients' encodings). Blocking calls
//! wait in slices of [`SLICE`] and give up when their channel's connection
//! is gone, so no server thread waits for a client that left.
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use super::proto::{Arg, Bin, Call, Fail, Value, Wait};
use super::remote::RemoteCell;
use std::convert::Infallible;

use crate::sync::{
    Barrier, BlockingLock, BlockingSemaphore, BoundedSemaphore, Condition, Event, Lock, RLock,
    ReleaseNError, Semaphore,
};

/// How often a blocked server thread looks whether its client left.
pub(crate) const SLICE: Duration = Duration::from_millis(100);

/// What a blocking call checks between slices: whether its client left.
pub(crate) trait Cancel {
    fn cancelled(&self) -> bool;
    /// Asked under the object's lock just before a queue call takes or
    /// puts its item: `false` aborts it (a cancelled async call).
    fn commit(&self) -> bool {
        true
    }
}

/// The end of a wait, if any.
fn deadline(wait: Wait) -> Option<Instant> {
    match wait {
        Wait::Nanos(n) => Some(Instant::now() + Duration::from_nanos(n)),
        _ => None,
    }
}

/// The next slice of a wait: `None` when the deadline has passed.
fn slice(until: Option<Instant>) -> Option<Duration> {
    match until {
        None => Some(SLICE),
        Some(at) => {
            let left = at.saturating_duration_since(Instant::now());
            (!left.is_zero()).then(|| left.min(SLICE))
        }
    }
}

/// A queue of opaque items: FIFO or LIFO, bounded or not, joinable, with
/// Python 3.13's shutdown.
///
/// Getters (and putters) that must wait stand in a line, oldest first, each
/// with its own condition variable: the getter at place `i` may take an
/// item once more than `i` are queued, and exactly the waiters that may go
/// are woken. So one item wakes one waiter, the oldest, as in a thread
/// queue; a call that does not wait may take an item only if enough are
/// queued for everyone in line too. (Waits are sliced, so a shared
/// condition variable's own order would not survive.)
#[derive(Debug)]
pub(crate) struct ByteQueue {
    lifo: bool,
    maxsize: usize,
    st: Mutex<QState>,
    all_done: Condvar,
}

type Line = VecDeque<(u64, Arc<Condvar>)>;

#[derive(Debug, Default)]
struct QState {
    items: VecDeque<Bin>,
    unfinished: usize,
    shutdown: bool,
    getters: Line,
    putters: Line,
    next_ticket: u64,
}

/// Where `ticket` stands in `line` (0: first), and its condition variable;
/// `None` once it was taken out of line (its async call was cancelled).
fn place(line: &Line, ticket: u64) -> Option<(usize, Arc<Condvar>)> {
    line.iter()
        .position(|(t, _)| *t == ticket)
        .map(|i| (i, line[i].1.clone()))
}

/// The line of getters, or of putters.
fn line_of(st: &mut QState, getter: bool) -> &mut Line {
    if getter {
        &mut st.getters
    } else {
        &mut st.putters
    }
}

fn leave(line: &mut Line, ticket: u64) {
    if let Some(i) = line.iter().position(|(t, _)| *t == ticket) {
        line.remove(i);
    }
}

/// Wakes the first `n` waiters of `line`.
fn wake_first(line: &Line, n: usize) {
    for (_, cv) in line.iter().take(n) {
        cv.notify_one();
    }
}

impl QState {
    fn free(&self, maxsize: usize) -> usize {
        if maxsize == 0 {
            usize::MAX
        } else {
            maxsize.saturating_sub(self.items.len())
        }
    }

    /// Wakes the waiters that may go now.
    fn wake(&self, maxsize: usize) {
        if self.shutdown {
            wake_first(&self.getters, usize::MAX);
            wake_first(&self.putters, usize::MAX);
        } else {
            wake_first(&self.getters, self.items.len());
            wake_first(&self.putters, self.free(maxsize));
        }
    }

    fn enter(&mut self, getter: bool) -> u64 {
        self.next_ticket += 1;
        let t = self.next_ticket;
        let line = if getter {
            &mut self.getters
        } else {
            &mut self.putters
        };
        line.push_back((t, Arc::new(Condvar::new())));
        t
    }
}

impl ByteQueue {
    pub(crate) fn new(lifo: bool, maxsize: usize) -> ByteQueue {
        ByteQueue {
            lifo,
            maxsize,
            st: Mutex::new(QState::default()),
            all_done: Condvar::new(),
        }
    }

    /// Takes a place in the line of waiting getters (or putters) now, for
    /// a call that will wait in a channel's thread: the line follows the
    /// order in which calls arrived, not the order their threads ran.
    pub(crate) fn enter_line(&self, getter: bool) -> u64 {
        self.st.lock().enter(getter)
    }

    /// Takes a cancelled call's place out of line, and wakes who may go.
    pub(crate) fn leave_line(&self, ticket: u64, getter: bool) {
        let mut st = self.st.lock();
        if getter {
            leave(&mut st.getters, ticket);
        } else {
            leave(&mut st.putters, ticket);
        }
        st.wake(self.maxsize);
    }

    pub(crate) fn put(&self, item: Bin, wait: Wait, cancel: &dyn Cancel) -> Result<Value, Fail> {
        self.put_in_line(item, wait, cancel, None)
    }

    /// Waits for this call's turn in the line of getters (or putters),
    /// taking a place at the end unless `ticket` is one it already has:
    /// `Ok` (out of line) once it may go on, or why not. A call not in
    /// line goes at once if there is enough for everyone waiting and for
    /// it too. A getter goes before it looks at shutdown (the items left
    /// are still taken); a putter looks at shutdown first.
    fn wait_turn(
        &self,
        st: &mut MutexGuard<'_, QState>,
        getter: bool,
        wait: Wait,
        cancel: &dyn Cancel,
        ticket: Option<u64>,
    ) -> Result<(), Fail> {
        let maxsize = self.maxsize;
        // How many may go now: items for getters, free places for putters.
        let room = |st: &QState| {
            if getter {
                st.items.len()
            } else {
                st.free(maxsize)
            }
        };
        let closed = |st: &QState| st.shutdown && (!getter || st.items.is_empty());
        let give_up = |st: &mut QState, fail: Fail| {
            if let Some(t) = ticket {
                leave(line_of(st, getter), t);
                st.wake(maxsize);
            }
            Err(fail)
        };
        if !getter && st.shutdown {
            return give_up(st, Fail::ShutDown);
        }
        if ticket.is_none() && room(st) > line_of(st, getter).len() {
            return Ok(());
        }
        if closed(st) {
            return give_up(st, Fail::ShutDown);
        }
        if wait == Wait::No {
            return give_up(st, if getter { Fail::Empty } else { Fail::Full });
        }
        let until = deadline(wait);
        let me = ticket.unwrap_or_else(|| st.enter(getter));
        loop {
            let Some((at, cv)) = place(line_of(st, getter), me) else {
                return Err(Fail::Cancelled);
            };
            let ready = room(st) > at;
            let out = if ready && (getter || !st.shutdown) {
                None
            } else if st.shutdown || cancel.cancelled() {
                Some(Fail::ShutDown)
            } else {
                match slice(until) {
                    Some(d) => {
                        cv.wait_for(st, d);
                        continue;
                    }
                    None => Some(if getter { Fail::Empty } else { Fail::Full }),
                }
            };
            leave(line_of(st, getter), me);
            return match out {
                None => Ok(()),
                Some(fail) => {
                    st.wake(maxsize);
                    Err(fail)
                }
            };
        }
    }

    /// `put`, with the place in line `enter_line` gave, if any.
    pub(crate) fn put_in_line(
        &self,
        item: Bin,
        wait: Wait,
        cancel: &dyn Cancel,
        ticket: Option<u64>,
    ) -> Result<Value, Fail> {
        let mut st = self.st.lock();
        self.wait_turn(&mut st, false, wait, cancel, ticket)?;
        if !cancel.commit() {
            // Pass on the free place this call was woken for.
            st.wake(self.maxsize);
            return Err(Fail::Cancelled);
        }
        st.items.push_back(item);
        st.unfinished += 1;
        st.wake(self.maxsize);
        Ok(Value::Unit)
    }

    /// Takes an item; `commit` is asked first whether the client is still
    /// there to receive it (an item is never taken for a client that left).
    pub(crate) fn get(&self, wait: Wait, cancel: &dyn Cancel) -> Result<Bin, Fail> {
        self.get_in_line(wait, cancel, None)
    }

    /// `get`, with the place in line `enter_line` gave, if any.
    pub(crate) fn get_in_line(
        &self,
        wait: Wait,
        cancel: &dyn Cancel,
        ticket: Option<u64>,
    ) -> Result<Bin, Fail> {
        let mut st = self.st.lock();
        self.wait_turn(&mut st, true, wait, cancel, ticket)?;
        // An item is there for us: the client must still be there to get it.
        if cancel.cancelled() || !cancel.commit() {
            // Pass on the item this call was woken for.
            st.wake(self.maxsize);
            return Err(Fail::Cancelled);
        }
        let item = if self.lifo {
            st.items.pop_back()
        } else {
            st.items.pop_front()
        };
        st.wake(self.maxsize);
        Ok(item.expect("checked non-empty"))
    }

    /// Puts every item at once if there is room for all of them and for
    /// the putters waiting in line; otherwise hands them back.
    pub(crate) fn try_put_all(&self, items: Vec<Bin>) -> Result<Value, Vec<Bin>> {
        let mut st = self.st.lock();
        if st.shutdown || st.free(self.maxsize) < items.len().saturating_add(st.putters.len()) {
            return Err(items);
        }
        let n = items.len() as u64;
        st.unfinished += items.len();
        st.items.extend(items);
        st.wake(self.maxsize);
        Ok(Value::U64(n))
    }

    /// `put_many`: each item in turn as `put_in_line` puts it (the first
    /// with the place in line `ticket`); how many went in. A failure before
    /// the first item is the call's failure.
    pub(crate) fn put_many_in_line(
        &self,
        items: Vec<Bin>,
        wait: Wait,
        cancel: &dyn Cancel,
        mut ticket: Option<u64>,
    ) -> Result<Value, Fail> {
        let mut done = 0u64;
        let mut st = self.st.lock();
        for item in items {
            if let Err(f) = self.wait_turn(&mut st, false, wait, cancel, ticket.take()) {
                if done == 0 {
                    return Err(f);
                }
                break;
            }
            if done == 0 && !cancel.commit() {
                st.wake(self.maxsize);
                return Err(Fail::Cancelled);
            }
            st.items.push_back(item);
            st.unfinished += 1;
            st.wake(self.maxsize);
            done += 1;
        }
        Ok(Value::U64(done))
    }

    /// `get_many`: one item as `get_in_line` takes it, then up to `max - 1`
    /// more that no getter waiting in line is owed, within
    /// [`GET_MANY_BYTES`](super::proto::GET_MANY_BYTES).
    pub(crate) fn get_many_in_line(
        &self,
        max: u64,
        wait: Wait,
        cancel: &dyn Cancel,
        ticket: Option<u64>,
    ) -> Result<Value, Fail> {
        let mut st = self.st.lock();
        self.wait_turn(&mut st, true, wait, cancel, ticket)?;
        if cancel.cancelled() || !cancel.commit() {
            st.wake(self.maxsize);
            return Err(Fail::Cancelled);
        }
        // This call's turn came: one item is its own; the rest only what is
        // left over for everyone still in line.
        let spare = st.items.len().saturating_sub(st.getters.len());
        let max = usize::try_from(max).unwrap_or(usize::MAX).max(1);
        let mut out = Vec::new();
        let mut bytes = 0;
        while out.len() < spare.clamp(1, max) {
            let next = if self.lifo {
                st.items.back()
            } else {
                st.items.front()
            };
            let Some(len) = next.map(|b| b.len()) else {
                break;
            };
            if !out.is_empty() && bytes + len > super::proto::GET_MANY_BYTES {
                break;
            }
            bytes += len;
            let item = if self.lifo {
                st.items.pop_back()
            } else {
                st.items.pop_front()
            };
            out.extend(item);
        }
        st.wake(self.maxsize);
        Ok(Value::Bins(out))
    }

    /// Puts items taken for a client that could not be told back where the
    /// next `get`s find them first, in the order they were taken.
    pub(crate) fn unget_all(&self, items: Vec<Bin>) {
        let mut st = self.st.lock();
        if self.lifo {
            st.items.extend(items.into_iter().rev());
        } else {
            for item in items.into_iter().rev() {
                st.items.push_front(item);
            }
        }
        st.wake(self.maxsize);
    }

    /// Puts an item taken for a client that could not be told back where
    /// the next `get` finds it first.
    pub(crate) fn unget(&self, item: Bin) {
        let mut st = self.st.lock();
        if self.lifo {
            st.items.push_back(item);
        } else {
            st.items.push_front(item);
        }
        st.wake(self.maxsize);
    }

    /// Takes back an item a cancelled `put_async` put, if it is still
    /// queued (the newest equal one): whether it was.
    pub(crate) fn unput(&self, item: &Bin) -> bool {
        let mut st = self.st.lock();
        let Some(at) = st.items.iter().rposition(|i| i == item) else {
            return false;
        };
        st.items.remove(at);
        st.unfinished = st.unfinished.saturating_sub(1);
        if st.unfinished == 0 {
            self.all_done.notify_all();
        }
        st.wake(self.maxsize);
        true
    }

    /// Wakes every waiter to look again (a cancelled call among them ends).
    pub(crate) fn wake_all(&self) {
        let st = self.st.lock();
        wake_first(&st.getters, usize::MAX);
        wake_first(&st.putters, usize::MAX);
        self.all_done.notify_all();
    }

    fn task_done(&self) -> Result<Value, Fail> {
        let mut st = self.st.lock();
        if st.unfinished == 0 {
            return Err(Fail::TooManyTaskDone);
        }
        st.unfinished -= 1;
        if st.unfinished == 0 {
            self.all_done.notify_all();
        }
        Ok(Value::Unit)
    }

    fn join(&self, wait: Wait, cancel: &dyn Cancel) -> Result<Value, Fail> {
        let mut st = self.st.lock();
        let until = deadline(wait);
        while st.unfinished > 0 {
            if wait == Wait::No {
                return Err(Fail::Timeout);
            }
            if cancel.cancelled() {
                return Err(Fail::ShutDown);
            }
            match slice(until) {
                Some(d) => {
                    self.all_done.wait_for(&mut st, d);
                }
                None => return Err(Fail::Timeout),
            }
        }
        Ok(Value::Unit)
    }

    fn shutdown(&self, immediate: bool) {
        let mut st = self.st.lock();
        st.shutdown = true;
        if immediate {
            let n = st.items.len();
            st.items.clear();
            st.unfinished = st.unfinished.saturating_sub(n);
            self.all_done.notify_all();
        }
        st.wake(self.maxsize);
    }

    fn len(&self) -> usize {
        self.st.lock().items.len()
    }

    fn is_shut_down(&self) -> bool {
        self.st.lock().shutdown
    }
}

/// A dict in insertion order (as Python's), keys compared by encoding.
#[derive(Debug, Default)]
pub(crate) struct ByteDict {
    index: HashMap<Bin, u64>,
    entries: BTreeMap<u64, (Bin, Bin)>,
    next: u64,
}

impl ByteDict {
    fn set(&mut self, key: Bin, val: Bin) {
        if let Some(seq) = self.index.get(&key) {
            self.entries.get_mut(seq).expect("indexed").1 = val;
        } else {
            let seq = self.next;
            self.next += 1;
            self.index.insert(key.clone(), seq);
            self.entries.insert(seq, (key, val));
        }
    }

    fn get(&self, key: &Bin) -> Option<&Bin> {
        self.index.get(key).map(|s| &self.entries[s].1)
    }

    fn remove(&mut self, key: &Bin) -> Option<Bin> {
        let seq = self.index.remove(key)?;
        self.entries.remove(&seq).map(|(_, v)| v)
    }

    fn len(&self) -> usize {
        self.index.len()
    }
}

/// One object on the server.
#[derive(Debug)]
pub(crate) enum Object {
    Queue(ByteQueue),
    Dict(Mutex<ByteDict>),
    List(Mutex<Vec<Bin>>),
    /// A list of fixed length.
    Array(Mutex<Vec<Bin>>),
    Value(Mutex<Bin>),
    Namespace(Mutex<BTreeMap<String, Bin>>),
    Lock(Lock),
    RLock(RLock),
    Semaphore(Semaphore),
    BoundedSemaphore(BoundedSemaphore),
    Event(Event),
    Condition(Condition),
    Barrier(Barrier),
    /// An object of the user's own type (`#[spindle::remote]`).
    Remote(RemoteCell),
    /// A task broker.
    Broker(super::broker::ByteBroker),
}

fn size(arg: &Arg) -> Result<usize, Fail> {
    match arg {
        Arg::Size(n) => {
            usize::try_from(*n).map_err(|_| Fail::BadArg(format!("size {n} too large")))
        }
        Arg::None => Ok(0),
        other => Err(Fail::BadArg(format!("expected a size, got {other:?}"))),
    }
}

impl Object {
    /// Makes an object of `typeid` from `arg`.
    pub(crate) fn create(typeid: &str, arg: Arg) -> Result<Object, Fail> {
        Ok(match typeid {
            "Queue" | "JoinableQueue" => Object::Queue(ByteQueue::new(false, size(&arg)?)),
            "LifoQueue" => Object::Queue(ByteQueue::new(true, size(&arg)?)),
            "dict" => {
                let mut d = ByteDict::default();
                if let Arg::Bins(kv) = arg {
                    if kv.len() % 2 != 0 {
                        return Err(Fail::BadArg("odd number of key/value items".into()));
                    }
                    let mut it = kv.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        d.set(k, v);
                    }
                }
                Object::Dict(Mutex::new(d))
            }
            "list" => Object::List(Mutex::new(match arg {
                Arg::Bins(v) => v,
                _ => Vec::new(),
            })),
            "Array" => Object::Array(Mutex::new(match arg {
                Arg::Bins(v) => v,
                other => {
                    return Err(Fail::BadArg(format!(
                        "Array needs its items, got {other:?}"
                    )));
                }
            })),
            "Value" => Object::Value(Mutex::new(match arg {
                Arg::Bin(v) => v,
                other => return Err(Fail::BadArg(format!("Value needs a value, got {other:?}"))),
            })),
            "Namespace" => Object::Namespace(Mutex::new(BTreeMap::new())),
            "Lock" => Object::Lock(Lock::new()),
            "RLock" => Object::RLock(RLock::new()),
            "Semaphore" => Object::Semaphore(Semaphore::new(size(&arg)?)),
            "BoundedSemaphore" => Object::BoundedSemaphore(BoundedSemaphore::new(size(&arg)?)),
            "Event" => Object::Event(Event::new()),
            "Condition" => Object::Condition(Condition::new()),
            "Barrier" => {
                let n = size(&arg)?;
                Object::Barrier(
                    Barrier::new(n).map_err(|e| Fail::BadArg(format!("Barrier({n}): {e}")))?,
                )
            }
            "Broker" => Object::Broker(Default::default()),
            other if other.starts_with("remote:") => {
                return Err(Fail::NotFound(format!(
                    "way to make a {other}: a remote object is registered by its server, not made by a client"
                )));
            }
            other => return Err(Fail::NotFound(format!("typeid {other:?}"))),
        })
    }
}

/// The value of a call that cannot fail (the thread scope's contracts).
fn ok<T>(r: Result<T, Infallible>) -> T {
    match r {
        Ok(v) => v,
        Err(never) => match never {},
    }
}

/// The calling thread's recursion depth of an RLock (0: not its own).
fn depth(l: &RLock) -> Value {
    Value::U64(if l.is_owned() {
        l.recursion_depth() as u64
    } else {
        0
    })
}

/// `Acquire`, `Release` and `Locked` on a Lock, an RLock or a Condition,
/// through their one contract; `held` says what this channel now owns.
fn lock_call<L: BlockingLock<Error = Infallible>>(
    l: &L,
    held: Held,
    call: Call,
    cancel: &dyn Cancel,
    effect: &mut Effect,
) -> Result<Value, Fail> {
    match call {
        Call::Acquire { wait } => {
            let r = wait_bool(
                wait,
                cancel,
                || ok(l.try_acquire()),
                |d| ok(l.acquire_timeout(d)),
                || {
                    let _ = l.release();
                },
            );
            if r == Ok(Value::Bool(true)) {
                *effect = Effect::Took(held);
            }
            r
        }
        Call::Release => match ok(l.release()) {
            Ok(()) => {
                *effect = Effect::Gave(held);
                Ok(Value::Unit)
            }
            Err(_) => Err(Fail::NotOwned),
        },
        Call::Locked => Ok(Value::Bool(ok(l.is_locked()))),
        other => Err(Fail::BadArg(format!("not a lock call: {other:?}"))),
    }
}

/// `Acquire`, `Release`, `SemValue` and `SemReleaseN` on a semaphore,
/// bounded or not, through its contract.
fn semaphore_call<S: BlockingSemaphore<Error = Infallible>>(
    s: &S,
    call: Call,
    cancel: &dyn Cancel,
) -> Result<Value, Fail> {
    match call {
        Call::Acquire { wait } => wait_bool(
            wait,
            cancel,
            || ok(s.try_acquire()),
            |d| ok(s.acquire_timeout(d)),
            || {
                let _ = s.release_n(1);
            },
        ),
        Call::Release => ok(s.release())
            .map(|()| Value::Unit)
            .map_err(|_| Fail::OverRelease),
        Call::SemValue => Ok(Value::U64(ok(s.value()) as u64)),
        Call::SemReleaseN { n } => {
            let n = usize::try_from(n).map_err(|_| Fail::OverRelease)?;
            match ok(s.release_n(n)) {
                Ok(()) => Ok(Value::Unit),
                Err(ReleaseNError::Zero) => Err(Fail::ReleaseZero),
                Err(_) => Err(Fail::OverRelease),
            }
        }
        other => Err(Fail::BadArg(format!("not a semaphore call: {other:?}"))),
    }
}

/// A lock-like object a channel took, to release if the channel dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Held {
    Lock,
    RLock,
    Condition,
}

/// What a call did to the channel's holdings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    None,
    Took(Held),
    Gave(Held),
}

fn index(len: usize, i: i64) -> Result<usize, Fail> {
    let j = if i < 0 { i + len as i64 } else { i };
    if j < 0 || j as usize >= len {
        Err(Fail::IndexError)
    } else {
        Ok(j as usize)
    }
}

/// Waits for a yes/no condition: `try_once` tries without blocking,
/// `block_for(d)` blocks at most `d` and says whether it succeeded (an
/// acquisition it made counts: it is never followed by another).
fn wait_bool(
    wait: Wait,
    cancel: &dyn Cancel,
    try_once: impl Fn() -> bool,
    block_for: impl Fn(Duration) -> bool,
    give_back: impl Fn(),
) -> Result<Value, Fail> {
    // What was taken for a call cancelled meanwhile goes back.
    let got = || {
        if cancel.commit() {
            Ok(Value::Bool(true))
        } else {
            give_back();
            Err(Fail::Cancelled)
        }
    };
    if try_once() {
        return got();
    }
    if wait == Wait::No {
        return Ok(Value::Bool(false));
    }
    let until = deadline(wait);
    loop {
        if cancel.cancelled() {
            return Err(Fail::ShutDown);
        }
        match slice(until) {
            Some(d) => {
                if block_for(d) {
                    return got();
                }
            }
            None => return Ok(Value::Bool(false)),
        }
    }
}

impl Object {
    /// The typeid this object answers to (a JoinableQueue is a Queue).
    pub(crate) fn runs(&self, call: Call, cancel: &dyn Cancel) -> (Result<Value, Fail>, Effect) {
        self.runs_in_line(call, cancel, None)
    }

    /// `runs`, for a queue call that took its place in line on arrival.
    pub(crate) fn runs_in_line(
        &self,
        call: Call,
        cancel: &dyn Cancel,
        ticket: Option<u64>,
    ) -> (Result<Value, Fail>, Effect) {
        let mut effect = Effect::None;
        let out = match (self, call, ticket) {
            (Object::Queue(q), Call::Put { item, wait }, Some(_)) => {
                q.put_in_line(item, wait, cancel, ticket)
            }
            (Object::Queue(q), Call::Get { wait }, Some(_)) => {
                q.get_in_line(wait, cancel, ticket).map(Value::Bin)
            }
            (Object::Queue(q), Call::PutMany { items, wait }, _) => {
                q.put_many_in_line(items, wait, cancel, ticket)
            }
            (Object::Queue(q), Call::GetMany { max, wait }, _) => {
                q.get_many_in_line(max, wait, cancel, ticket)
            }
            (_, call, _) => self.run(call, cancel, &mut effect),
        };
        (out, effect)
    }

    fn run(&self, call: Call, cancel: &dyn Cancel, effect: &mut Effect) -> Result<Value, Fail> {
        use Call::*;
        match (self, call) {
            (Object::Queue(q), Put { item, wait }) => q.put(item, wait, cancel),
            (Object::Queue(q), Get { wait }) => q.get(wait, cancel).map(Value::Bin),
            (Object::Queue(q), QSize) => Ok(Value::U64(q.len() as u64)),
            (Object::Queue(q), MaxSize) => Ok(Value::U64(q.maxsize as u64)),
            (Object::Queue(q), TaskDone) => q.task_done(),
            (Object::Queue(q), Join { wait }) => q.join(wait, cancel),
            (Object::Queue(q), QShutdown { immediate }) => {
                q.shutdown(immediate);
                Ok(Value::Unit)
            }
            (Object::Queue(q), IsShutdown) => Ok(Value::Bool(q.is_shut_down())),
            (Object::Queue(q), Unget { item }) => {
                q.unget(item);
                Ok(Value::Unit)
            }
            (Object::Queue(q), Unput { item }) => Ok(Value::Bool(q.unput(&item))),
            (Object::Queue(q), UngetMany { items }) => {
                q.unget_all(items);
                Ok(Value::Unit)
            }

            (Object::Dict(d), DGet { key }) => Ok(Value::OptBin(d.lock().get(&key).cloned())),
            (Object::Dict(d), DSet { key, val }) => {
                d.lock().set(key, val);
                Ok(Value::Unit)
            }
            (Object::Dict(d), DDel { key }) => match d.lock().remove(&key) {
                Some(_) => Ok(Value::Unit),
                None => Err(Fail::KeyError),
            },
            (Object::Dict(d), DPop { key }) => Ok(Value::OptBin(d.lock().remove(&key))),
            (Object::Dict(d), DContains { key }) => Ok(Value::Bool(d.lock().get(&key).is_some())),
            (Object::Dict(d), DSetDefault { key, val }) => {
                let mut d = d.lock();
                if let Some(v) = d.get(&key) {
                    return Ok(Value::Bin(v.clone()));
                }
                d.set(key, val.clone());
                Ok(Value::Bin(val))
            }
            (Object::Dict(d), DUpdate { pairs }) => {
                let mut d = d.lock();
                for (k, v) in pairs {
                    d.set(k, v);
                }
                Ok(Value::Unit)
            }
            (Object::Dict(d), DItems) => {
                Ok(Value::Pairs(d.lock().entries.values().cloned().collect()))
            }
            (Object::Dict(d), DClear) => {
                *d.lock() = ByteDict::default();
                Ok(Value::Unit)
            }
            (Object::Dict(d), Len) => Ok(Value::U64(d.lock().len() as u64)),

            (Object::List(l) | Object::Array(l), Len) => Ok(Value::U64(l.lock().len() as u64)),
            (Object::List(l) | Object::Array(l), LGet { index: i }) => {
                let l = l.lock();
                Ok(Value::Bin(l[index(l.len(), i)?].clone()))
            }
            (Object::List(l) | Object::Array(l), LSet { index: i, val }) => {
                let mut l = l.lock();
                let j = index(l.len(), i)?;
                l[j] = val;
                Ok(Value::Unit)
            }
            (Object::List(l) | Object::Array(l), LAll) => Ok(Value::Bins(l.lock().clone())),
            (Object::List(l) | Object::Array(l), LIndex { val }) => l
                .lock()
                .iter()
                .position(|v| *v == val)
                .map(|p| Value::U64(p as u64))
                .ok_or(Fail::ValueError),
            (Object::List(l) | Object::Array(l), LCount { val }) => Ok(Value::U64(
                l.lock().iter().filter(|v| **v == val).count() as u64,
            )),
            (Object::List(l), LAppend { val }) => {
                l.lock().push(val);
                Ok(Value::Unit)
            }
            (Object::List(l), LExtend { vals }) => {
                l.lock().extend(vals);
                Ok(Value::Unit)
            }
            (Object::List(l), LInsert { index: i, val }) => {
                // Python's list.insert clamps the index.
                let mut l = l.lock();
                let n = l.len() as i64;
                let j = if i < 0 { (i + n).max(0) } else { i.min(n) };
                l.insert(j as usize, val);
                Ok(Value::Unit)
            }
            (Object::List(l), LPop { index: i }) => {
                let mut l = l.lock();
                let j = index(l.len(), i)?;
                Ok(Value::Bin(l.remove(j)))
            }
            (Object::List(l), LRemove { val }) => {
                let mut l = l.lock();
                let p = l.iter().position(|v| *v == val).ok_or(Fail::ValueError)?;
                l.remove(p);
                Ok(Value::Unit)
            }
            (Object::List(l), LReverse) => {
                l.lock().reverse();
                Ok(Value::Unit)
            }
            (Object::List(l), LClear) => {
                l.lock().clear();
                Ok(Value::Unit)
            }

            (Object::Value(v), VGet) => Ok(Value::Bin(v.lock().clone())),
            (Object::Value(v), VSet { val }) => {
                *v.lock() = val;
                Ok(Value::Unit)
            }

            (Object::Namespace(n), NGet { name }) => n
                .lock()
                .get(&name)
                .cloned()
                .map(Value::Bin)
                .ok_or(Fail::KeyError),
            (Object::Namespace(n), NSet { name, val }) => {
                n.lock().insert(name, val);
                Ok(Value::Unit)
            }
            (Object::Namespace(n), NDel { name }) => n
                .lock()
                .remove(&name)
                .map(|_| Value::Unit)
                .ok_or(Fail::KeyError),
            (Object::Namespace(n), NAll) => Ok(Value::Names(
                n.lock()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            )),

            (Object::Lock(l), call @ (Acquire { .. } | Release | Locked)) => {
                lock_call(l, Held::Lock, call, cancel, effect)
            }
            (Object::RLock(l), Depth) => Ok(depth(l)),
            (Object::RLock(l), call @ (Acquire { .. } | Release | Locked)) => {
                lock_call(l, Held::RLock, call, cancel, effect)
            }
            (Object::Condition(c), Depth) => Ok(depth(c.get_lock())),
            (Object::Condition(c), call @ (Acquire { .. } | Release | Locked)) => {
                lock_call(c, Held::Condition, call, cancel, effect)
            }
            (Object::Condition(c), CondWait { wait }) => {
                // Waited in slices like the rest: between two slices this
                // thread holds the lock again, and a notify needs the lock,
                // so no notification falls between them.
                let until = deadline(wait);
                loop {
                    // A deadline already past still waits once for no time,
                    // so that waiting without the lock is refused.
                    let d = match wait {
                        Wait::No => Duration::ZERO,
                        _ => slice(until).unwrap_or(Duration::ZERO),
                    };
                    match c.wait_timeout(d) {
                        // A cancelled async wait that was notified passes
                        // the notification on (asyncio 3.13).
                        Ok(true) if !cancel.commit() => {
                            let _ = c.notify(1);
                            return Err(Fail::Cancelled);
                        }
                        Ok(true) => return Ok(Value::Bool(true)),
                        Ok(false) if d.is_zero() => return Ok(Value::Bool(false)),
                        Ok(false) if cancel.cancelled() => return Err(Fail::ShutDown),
                        Ok(false) => {}
                        Err(_) => return Err(Fail::NotOwned),
                    }
                }
            }
            (Object::Condition(c), CondNotify { n }) => c
                .notify(usize::try_from(n).unwrap_or(usize::MAX))
                .map(|k| Value::U64(k as u64))
                .map_err(|_| Fail::NotOwned),

            (Object::Semaphore(_), SemBound) => Ok(Value::U64(u64::MAX)),
            (
                Object::Semaphore(s),
                call @ (Acquire { .. } | Release | SemValue | SemReleaseN { .. }),
            ) => semaphore_call(s, call, cancel),
            (Object::BoundedSemaphore(s), SemBound) => Ok(Value::U64(s.bound() as u64)),
            (
                Object::BoundedSemaphore(s),
                call @ (Acquire { .. } | Release | SemValue | SemReleaseN { .. }),
            ) => semaphore_call(s, call, cancel),

            (Object::Event(e), EvSet) => {
                e.set();
                Ok(Value::Unit)
            }
            (Object::Event(e), EvClear) => {
                e.clear();
                Ok(Value::Unit)
            }
            (Object::Event(e), EvIsSet) => Ok(Value::Bool(e.is_set())),
            (Object::Event(e), EvWait { wait }) => {
                wait_bool(wait, cancel, || e.is_set(), |d| e.wait_timeout(d), || {})
            }

            (Object::Barrier(b), BarWait { wait }) => {
                // One wait (a barrier's arrival cannot be taken back).
                let r = match deadline(wait) {
                    None => b.wait().map_err(|_| Fail::Broken),
                    Some(at) => b.wait_deadline(at).map_err(|e| {
                        if e.is_timeout() {
                            Fail::Timeout
                        } else {
                            Fail::Broken
                        }
                    }),
                };
                r.map(|i| Value::U64(i as u64))
            }
            (Object::Barrier(b), BarReset) => {
                b.reset();
                Ok(Value::Unit)
            }
            (Object::Barrier(b), BarAbort) => {
                b.abort();
                Ok(Value::Unit)
            }
            (Object::Barrier(b), BarInfo) => Ok(Value::Bins(vec![
                Bin::from((b.parties() as u64).to_le_bytes().to_vec()),
                Bin::from((b.n_waiting() as u64).to_le_bytes().to_vec()),
                Bin::from(vec![u8::from(b.is_broken())]),
            ])),

            (
                Object::Broker(b),
                BPut {
                    items,
                    max_deliveries,
                    on_dead,
                },
            ) => b.put(items, max_deliveries, on_dead),
            (
                Object::Broker(b),
                BFetch {
                    n,
                    wait,
                    lease_ms,
                    consumer,
                },
            ) => b.fetch(n, wait, lease_ms, &consumer, cancel),
            (Object::Broker(b), BAck { ids, consumer }) => b.ack(&ids, &consumer),
            (
                Object::Broker(b),
                BNack {
                    id,
                    consumer,
                    delay_ms,
                },
            ) => b.nack(id, &consumer, delay_ms),
            (
                Object::Broker(b),
                BExtend {
                    ids,
                    consumer,
                    lease_ms,
                },
            ) => b.extend(&ids, &consumer, lease_ms),
            (
                Object::Broker(b),
                BDeadLetter {
                    id,
                    consumer,
                    reason,
                    notify,
                },
            ) => b.dead_letter(id, &consumer, reason, notify),
            (
                Object::Broker(b),
                BAckResult {
                    id,
                    consumer,
                    client,
                    result,
                    ttl_ms,
                },
            ) => b.ack_result(id, &consumer, client, result, ttl_ms),
            (Object::Broker(b), BResults { client, max, wait }) => {
                b.take_results(&client, max, wait, cancel)
            }
            (Object::Broker(b), BCancel { id }) => Ok(b.cancel(id)),
            (
                Object::Broker(b),
                BNotify {
                    client,
                    message,
                    ttl_ms,
                },
            ) => Ok(b.notify(client, message, ttl_ms)),
            (Object::Broker(b), BDead { limit }) => Ok(b.dead(limit)),
            (Object::Broker(b), BCounts) => Ok(b.counts()),
            (Object::Broker(b), BJoin { wait }) => b.join(wait, cancel),
            (
                Object::Broker(b),
                BHeartbeat {
                    worker,
                    record,
                    expire_ms,
                },
            ) => b.heartbeat(worker, record, expire_ms),
            (Object::Broker(b), BWorkers) => Ok(b.workers()),
            (Object::Broker(b), BRetryDead) => Ok(b.retry_dead()),
            (Object::Broker(b), BPurgeDead) => Ok(b.purge_dead()),

            (Object::Remote(r), Invoke { method, args }) => {
                r.invoke(&method, &args, || cancel.commit())
            }

            (obj, call) => Err(Fail::BadArg(format!(
                "{} has no method {call:?}",
                obj.typeid()
            ))),
        }
    }

    fn typeid(&self) -> &'static str {
        match self {
            Object::Queue(q) if q.lifo => "LifoQueue",
            Object::Queue(_) => "Queue",
            Object::Dict(_) => "dict",
            Object::List(_) => "list",
            Object::Array(_) => "Array",
            Object::Value(_) => "Value",
            Object::Namespace(_) => "Namespace",
            Object::Lock(_) => "Lock",
            Object::RLock(_) => "RLock",
            Object::Semaphore(_) => "Semaphore",
            Object::BoundedSemaphore(_) => "BoundedSemaphore",
            Object::Event(_) => "Event",
            Object::Condition(_) => "Condition",
            Object::Barrier(_) => "Barrier",
            Object::Remote(r) => r.typeid(),
            Object::Broker(_) => "Broker",
        }
    }

    /// Releases what a dead channel's thread held of this object; the
    /// number of releases.
    pub(crate) fn release_dead(&self, held: Held) -> u64 {
        let mut n = 0;
        match (self, held) {
            (Object::Lock(l), Held::Lock) if l.release().is_ok() => n += 1,
            (Object::RLock(l), Held::RLock) => {
                while l.is_owned() && l.release().is_ok() {
                    n += 1;
                }
            }
            (Object::Condition(c), Held::Condition) => {
                while c.release().is_ok() {
                    n += 1;
                }
            }
            _ => {}
        }
        n
    }
}
