//! The async faces of [`Queue`]: `put_async`, `get_async`, `join_async`.
//!
//! Runtime-agnostic (no runtime in the core): a pending future lists its
//! waker in this process's [`Waiters`] of the queue, and one **waiter
//! thread** per queue with async waiters in this process
//! (`spindle-queue-waiter`) wakes them. It is started by the first future
//! that has to wait and ends once no future has waited for [`IDLE`].
//!
//! Why one thread, and the doorbell: the tasks of one process may wait for
//! items, free places and `join` at once, each a different futex word of
//! the ring, and a thread sleeps on one futex word. So the ring has one
//! more word, the **doorbell** (`W_BELL`), and a count of the waiter
//! threads of every process (`W_ASYNC`): while that count is not 0, every
//! change an async waiter may wait for (a publish, a freed place, the last
//! `task_done`, a shutdown, and the pass-ons below) bumps the doorbell and
//! wakes every thread sleeping on it, in every process. The thread then
//! wakes as many listed getters as there are items in the ring, as many
//! putters as there are free places, and every joiner once no task is
//! unfinished (every waiter once the queue is shut down).
//!
//! The lost wake-up is excluded as in the blocking paths (`ring.rs`): the
//! waiter thread is counted in `W_ASYNC` before it is started, under the
//! waiters' mutex, and a future registers under that mutex and then tries
//! once more, so a change made after its try rings the doorbell; the thread
//! reads the doorbell, then checks the lists and the state under the mutex,
//! then sleeps only while the doorbell still reads the same.
//!
//! Cancel safety (`queue/README.md` rule 6): a waker is removed from its
//! list by whoever wakes it, so "my key is gone" means "I was woken". A
//! future dropped after it was woken and before it used the wake-up passes
//! it on: a getter announces the items still in the ring again (a blocking
//! getter in any process and every waiter thread re-check), a putter passes
//! a free place on. So a wake-up that came from another process's put is
//! never lost with a cancelled task.
#![forbid(unsafe_code)]

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use parking_lot::MutexGuard;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::ring::{Push, W_UNFINISHED};
use super::{GetFail, Inner, PutFail, Queue};
use crate::ipc::error::{ItemError, ItemErrorKind, QueueError};
use crate::ipc::sync::core::my_pid;
use crate::queue::waiters::WaitList;
use crate::queue::{PutError, ShutDown};

/// How long a waiter thread with no future to wake for stays, in case
/// another comes (an async consumer waiting for each item would otherwise
/// start a thread per item).
pub(super) const IDLE: Duration = Duration::from_millis(100);

/// The longest a waiter thread sleeps on the doorbell before it checks by
/// itself (a process killed between a change and its doorbell delays the
/// others by that much, never for ever).
const SLICE: Duration = Duration::from_millis(500);

/// How often the waiter thread lets getters re-check a queue shut down
/// normally while items are still counted in some feeder buffer (as the
/// blocking `get`'s 10 ms slices).
const SHUT_SLICE: Duration = Duration::from_millis(10);

/// This process's async tasks waiting on one queue.
pub(super) struct Waiters {
    /// The process these lists belong to (a forked child starts afresh).
    pid: u32,
    /// Whether the waiter thread runs (it is counted in `W_ASYNC`).
    running: bool,
    getters: WaitList,
    putters: WaitList,
    joiners: WaitList,
    /// Getters woken (taken off the list) that have not polled or gone
    /// away since: the items they were woken for are not offered again.
    woken_getters: usize,
    /// The same for putters and free places.
    woken_putters: usize,
}

impl Waiters {
    pub(super) fn new() -> Waiters {
        Waiters {
            pid: my_pid(),
            running: false,
            getters: WaitList::default(),
            putters: WaitList::default(),
            joiners: WaitList::default(),
            woken_getters: 0,
            woken_putters: 0,
        }
    }

    fn is_empty(&self) -> bool {
        self.getters.is_empty() && self.putters.is_empty() && self.joiners.is_empty()
    }
}

/// Which list a future waits in.
#[derive(Clone, Copy)]
enum List {
    Getters,
    Putters,
    Joiners,
}

impl Waiters {
    fn list(&mut self, which: List) -> &mut WaitList {
        match which {
            List::Getters => &mut self.getters,
            List::Putters => &mut self.putters,
            List::Joiners => &mut self.joiners,
        }
    }
}

impl Inner {
    /// This process's waiters of the queue.
    fn waiters(&self) -> MutexGuard<'_, Waiters> {
        let mut w = self.waiters.lock();
        if w.pid != my_pid() {
            // A forked copy: the parent's tasks and thread are not here.
            // Their wakers belong to the parent's executors: forget them
            // rather than run their drop code in this process.
            std::mem::forget(std::mem::replace(&mut *w, Waiters::new()));
        }
        w
    }

    /// Lists `waker` under `key` in `which`, starting the waiter thread if
    /// none runs; the key to keep.
    fn register(self: &Arc<Self>, which: List, key: Option<u64>, waker: &Waker) -> io::Result<u64> {
        let mut w = self.waiters();
        if !w.running {
            // Counted before the thread starts and before the caller tries
            // again: a change from then on rings the doorbell.
            self.ring.async_enter();
            let inner = Arc::clone(self);
            let spawned = std::thread::Builder::new()
                .name("spindle-queue-waiter".into())
                .stack_size(128 * 1024)
                .spawn(move || inner.wake_waiters());
            if let Err(e) = spawned {
                self.ring.async_leave();
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot start the queue's async waiter thread: {e}"),
                ));
            }
            w.running = true;
        }
        Ok(w.list(which).register(key, waker))
    }

    /// Removes `key` from `which`; false if it was not listed any more
    /// (it was woken: its wake-up is used, or given back by the caller).
    fn unregister(&self, which: List, key: u64) -> bool {
        let mut w = self.waiters();
        if w.list(which).remove(key) {
            return true;
        }
        match which {
            List::Getters => w.woken_getters = w.woken_getters.saturating_sub(1),
            List::Putters => w.woken_putters = w.woken_putters.saturating_sub(1),
            List::Joiners => {}
        }
        false
    }

    /// The waiter thread: wakes the listed tasks whose wait may be over,
    /// sleeping on the doorbell in between; ends after [`IDLE`] with no
    /// task listed.
    fn wake_waiters(self: Arc<Self>) {
        let ring = &self.ring;
        let mut idle_since: Option<Instant> = None;
        loop {
            let seen = ring.bell();
            let mut wake: Vec<Waker> = Vec::new();
            let slice;
            {
                let mut w = self.waiters();
                if w.is_empty() {
                    let since = *idle_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= IDLE {
                        w.running = false;
                        ring.async_leave();
                        return;
                    }
                    slice = IDLE;
                } else {
                    idle_since = None;
                    let shut = ring.shutdown_state();
                    // Getters: one per item in the ring that no woken getter
                    // is on its way to; all once shut down.
                    let n = if shut != 0 {
                        usize::MAX
                    } else {
                        (ring.len() as usize).saturating_sub(w.woken_getters)
                    };
                    for _ in 0..n {
                        match w.getters.take_one() {
                            Some(waker) => {
                                wake.push(waker);
                                w.woken_getters += 1;
                            }
                            None => break,
                        }
                    }
                    // Putters: one per free place, likewise.
                    let n = if shut != 0 {
                        usize::MAX
                    } else {
                        (ring.free_places() as usize).saturating_sub(w.woken_putters)
                    };
                    for _ in 0..n {
                        match w.putters.take_one() {
                            Some(waker) => {
                                wake.push(waker);
                                w.woken_putters += 1;
                            }
                            None => break,
                        }
                    }
                    if ring.w(W_UNFINISHED).load(SeqCst) == 0 {
                        wake.extend(w.joiners.take_all());
                    }
                    slice = if shut == 1 && !w.getters.is_empty() {
                        SHUT_SLICE
                    } else {
                        SLICE
                    };
                }
            }
            // After the mutex: a waker may re-enter the queue.
            for waker in wake {
                waker.wake();
            }
            ring.wait_bell(seen, Instant::now() + slice);
        }
    }
}

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// Puts an item, waiting asynchronously for a free place if the queue
    /// is bounded and full: the async face of [`put`](Self::put) (Python's
    /// `await asyncio.Queue.put(item)`, on a queue between processes). An
    /// unbounded queue never makes it wait: as `put`, an item that finds
    /// the ring full goes to this process's feeder thread.
    ///
    /// Runtime-agnostic: while it waits, this process's waiter thread of
    /// the queue wakes it (see [`get_async`](Self::get_async)).
    ///
    /// # Errors
    /// As [`put`](Self::put): [`QueueError::Queue`] with a [`PutError`]
    /// when the queue is (or becomes) shut down; [`QueueError::Item`] if
    /// the item cannot be encoded or sent, the queue was
    /// [`close`](Self::close)d, or the waiter thread cannot be started
    /// ([`ItemErrorKind::Io`]). The item is handed back.
    ///
    /// # Cancel safety
    /// Cancel-safe: the item is put only in the poll that returns `Ok`, so
    /// a future dropped before it completes put nothing (the item is
    /// dropped with it), and one dropped after a freed place woke it passes
    /// the place on to another waiting putter (a task or a blocked thread,
    /// in any process).
    ///
    /// # Examples
    /// ```
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let mut f = std::pin::pin!(f);
    /// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
    /// # }
    /// let q = spindle::ipc::Queue::with_maxsize(1)?;
    /// block_on(q.put_async(5u32)).unwrap();
    /// assert_eq!(block_on(q.get_async()).unwrap(), 5);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn put_async(&self, item: T) -> PutFuture<'_, T> {
        PutFuture {
            queue: self,
            item: Some(item),
            encoded: None,
            key: None,
        }
    }

    /// Takes the next item, waiting asynchronously: the async face of
    /// [`get`](Self::get) (Python's `await asyncio.Queue.get()`, on a queue
    /// between processes). Items put by any process (or thread) reach it.
    ///
    /// Runtime-agnostic: a pending future is woken by this process's waiter
    /// thread of the queue (`spindle-queue-waiter`), one per queue with
    /// async waiters, which sleeps on the queue's shared doorbell word and
    /// ends 100 ms after the last wait. A poll that takes an item whose
    /// record is on the queue's socket (items over 1 MiB encoded) may wait
    /// for that record as `get` does (it was sent before the item was
    /// published, so it is normally there at once).
    ///
    /// # Errors
    /// As [`get`](Self::get): [`QueueError::Queue`] with [`ShutDown`] once
    /// the queue is shut down and empty (or shut down immediately);
    /// [`QueueError::Item`] if the item does not decode (it is consumed),
    /// the queue was [`close`](Self::close)d, or the waiter thread cannot
    /// be started ([`ItemErrorKind::Io`]).
    ///
    /// # Cancel safety
    /// Cancel-safe: an item is only taken in the poll that returns it, so
    /// dropping the future (say, in a `select!` that took another branch)
    /// loses no item. A future dropped after it was woken for an item
    /// passes the wake-up on (the items still queued are announced again,
    /// to a task of this process or a getter in any process), including a
    /// wake-up that came from another process's `put`.
    ///
    /// # Examples
    /// ```
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let mut f = std::pin::pin!(f);
    /// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
    /// # }
    /// let q = spindle::ipc::Queue::new()?;
    /// let producer = {
    ///     let q = q.clone();
    ///     std::thread::spawn(move || q.put("from a thread".to_string()).unwrap())
    /// };
    /// assert_eq!(block_on(q.get_async()).unwrap(), "from a thread");
    /// producer.join().unwrap();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get_async(&self) -> GetFuture<'_, T> {
        GetFuture {
            queue: self,
            key: None,
            drained_since: None,
        }
    }

    /// Waits asynchronously until every item put (by any process) has been
    /// marked done: the async face of [`join`](Self::join) (Python's `await
    /// asyncio.Queue.join()`).
    ///
    /// # Cancel safety
    /// Cancel-safe: it only observes the count (every waiting joiner is
    /// woken when it reaches 0).
    ///
    /// # Examples
    /// ```
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let mut f = std::pin::pin!(f);
    /// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
    /// # }
    /// let q = spindle::ipc::Queue::new()?;
    /// q.put(1u8).unwrap();
    /// q.get().unwrap();
    /// q.task_done().unwrap();
    /// block_on(q.join_async());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn join_async(&self) -> JoinFuture<'_, T> {
        JoinFuture {
            queue: self,
            key: None,
        }
    }

    /// Whether this process runs the queue's async waiter thread now (test
    /// support: it ends [`IDLE`] after the last async wait).
    #[doc(hidden)]
    pub fn __async_waiter_running(&self) -> bool {
        self.inner.waiters().running
    }

    /// How many processes run an async waiter thread of this queue now
    /// (the ring's `W_ASYNC`; test support).
    #[doc(hidden)]
    pub fn __async_waiter_threads(&self) -> u32 {
        self.inner.ring.async_threads()
    }
}

/// The error of a thread that could not be started, as an item error.
fn io_fail(e: io::Error) -> ItemErrorKind {
    ItemErrorKind::Io(e)
}

/// The future of [`Queue::put_async`].
#[must_use = "futures do nothing unless polled"]
pub struct PutFuture<'a, T> {
    queue: &'a Queue<T>,
    /// The item, until it is put (then `None`) or handed back.
    item: Option<T>,
    /// Its encoding, made at the first poll.
    encoded: Option<Vec<u8>>,
    key: Option<u64>,
}

/// The future of [`Queue::get_async`].
#[must_use = "futures do nothing unless polled"]
pub struct GetFuture<'a, T> {
    queue: &'a Queue<T>,
    key: Option<u64>,
    /// When this getter first found the queue shut down (normally) and
    /// empty while items were still counted in feeder buffers.
    drained_since: Option<Instant>,
}

/// The future of [`Queue::join_async`].
#[must_use = "futures do nothing unless polled"]
pub struct JoinFuture<'a, T> {
    queue: &'a Queue<T>,
    key: Option<u64>,
}

// The futures never hand out pinned references to their fields.
impl<T> Unpin for PutFuture<'_, T> {}
impl<T> Unpin for GetFuture<'_, T> {}
impl<T> Unpin for JoinFuture<'_, T> {}

impl<T: Serialize + DeserializeOwned> Future for PutFuture<'_, T> {
    type Output = Result<(), QueueError<PutError<T>, T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let q = this.queue;
        assert!(this.item.is_some(), "PutFuture polled after it completed");
        let fail = |this: &mut Self, f: PutFail| {
            let item = this.item.take().expect("the item is still here");
            Poll::Ready(Err(match f {
                PutFail::ShutDown | PutFail::Full => QueueError::Queue(PutError(item)),
                PutFail::Item(k) => QueueError::Item(ItemError::new(item, k)),
            }))
        };
        if this.encoded.is_none() {
            let mut buf = Vec::new();
            let item = this.item.as_ref().expect("checked above");
            if let Err(f) = q.encode(item, &mut buf) {
                return fail(this, f);
            }
            this.encoded = Some(buf);
        } else if q.inner.is_closed() {
            return fail(this, PutFail::Item(ItemErrorKind::Closed));
        }
        if q.maxsize() > 0 {
            // A wake-up (or a spurious poll) is used by this poll: withdraw
            // the registration, and list again below if still no place.
            if let Some(key) = this.key.take() {
                q.inner.unregister(List::Putters, key);
            }
            let mut registered = false;
            loop {
                match q.ring().take_place(Some(Instant::now())) {
                    Push::Done => break,
                    Push::ShutDown => return fail(this, PutFail::ShutDown),
                    Push::Full if registered => return Poll::Pending,
                    Push::Full => {}
                }
                // Listed, then one more try: a place freed after that try
                // rings the doorbell.
                match q.inner.register(List::Putters, this.key, cx.waker()) {
                    Ok(k) => this.key = Some(k),
                    Err(e) => return fail(this, PutFail::Item(io_fail(e))),
                }
                registered = true;
            }
            if let Some(key) = this.key.take() {
                // Woken or not, this future used its place.
                q.inner.unregister(List::Putters, key);
            }
        }
        let buf = this.encoded.take().expect("encoded above");
        match q.publish_placed(&buf, false) {
            Ok(()) => {
                this.item = None;
                Poll::Ready(Ok(()))
            }
            Err(f) => fail(this, f),
        }
    }
}

impl<T> Drop for PutFuture<'_, T> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take()
            && !self.queue.inner.unregister(List::Putters, key)
        {
            // Woken for a free place it will not take: pass it on.
            self.queue.inner.ring.pass_place_on();
        }
    }
}

impl<T: Serialize + DeserializeOwned> Future for GetFuture<'_, T> {
    type Output = Result<T, QueueError<ShutDown>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let q = this.queue;
        // A wake-up (or a spurious poll) is used by this poll: withdraw the
        // registration, and list again below if there is still no item.
        if let Some(key) = this.key.take() {
            q.inner.unregister(List::Getters, key);
        }
        let mut registered = false;
        loop {
            let got = if q.inner.is_closed() {
                Err(GetFail::Item(ItemErrorKind::Closed))
            } else {
                let mut slot = Vec::new();
                q.take_now(&mut slot, &mut this.drained_since)
            };
            let done = match got {
                Ok(Some(v)) => Ok(v),
                Ok(None) => {
                    if registered {
                        return Poll::Pending;
                    }
                    // Listed, then one more try: an item published after
                    // that try rings the doorbell.
                    match q.inner.register(List::Getters, this.key, cx.waker()) {
                        Ok(k) => {
                            this.key = Some(k);
                            registered = true;
                            continue;
                        }
                        Err(e) => Err(QueueError::Item(ItemError::new((), io_fail(e)))),
                    }
                }
                Err(GetFail::ShutDown | GetFail::Empty) => Err(QueueError::Queue(ShutDown)),
                Err(GetFail::Item(k)) => Err(QueueError::Item(ItemError::new((), k))),
            };
            if let Some(key) = this.key.take() {
                // Woken or not, this future used its turn.
                q.inner.unregister(List::Getters, key);
            }
            return Poll::Ready(done);
        }
    }
}

impl<T> Drop for GetFuture<'_, T> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take()
            && !self.queue.inner.unregister(List::Getters, key)
        {
            // Woken for an item it will not take: announce what is left.
            self.queue.inner.ring.pass_items_on();
        }
    }
}

impl<T: Serialize + DeserializeOwned> Future for JoinFuture<'_, T> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let q = this.queue;
        let mut registered = false;
        loop {
            if q.ring().w(W_UNFINISHED).load(SeqCst) == 0 {
                if let Some(key) = this.key.take() {
                    q.inner.unregister(List::Joiners, key);
                }
                return Poll::Ready(());
            }
            if registered {
                return Poll::Pending;
            }
            match q.inner.register(List::Joiners, this.key, cx.waker()) {
                Ok(k) => this.key = Some(k),
                // No thread to wake it: have the task poll again.
                Err(_) => {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
            }
            registered = true;
        }
    }
}

impl<T> Drop for JoinFuture<'_, T> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.queue.inner.unregister(List::Joiners, key);
        }
    }
}

macro_rules! debug_future {
    ($($name:ident),*) => {$(
        impl<T> fmt::Debug for $name<'_, T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).field("waiting", &self.key.is_some()).finish()
            }
        }
    )*};
}

debug_future!(PutFuture, GetFuture, JoinFuture);
