//! Cross-process `Queue` (Python's `multiprocessing.Queue`,
//! `JoinableQueue`, `SimpleQueue`).
//!
//! Design (see `ipc/README.md`, "The queue"): items are postcard-encoded.
//! An item of at most [`ring::INLINE`] bytes is copied into a slot of a ring
//! in shared memory ([`ring`]), one of at most [`ring::ARENA_ITEM_MAX`]
//! bytes into the ring's byte arena; a larger one is sent as a record of a
//! `SOCK_SEQPACKET` socket pair ([`record`]) and its slot only says so. The
//! ring's producer and consumer locks are futex words holding the holder's
//! thread id, taken over when the holder is found dead, and every change is
//! published by one final store, so a process killed mid-call never wedges
//! the queue. Getters spin briefly, then sleep on a futex; puts only enter
//! the kernel when a getter sleeps. When the ring (or the socket) is full, a
//! producer's items wait in a per-process buffer drained by a feeder thread
//! (as in Python), so `put` on an unbounded queue never blocks; the buffer
//! is flushed before the process exits.

mod future;
mod record;
mod ring;

pub use future::{GetFuture, JoinFuture, PutFuture};

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use parking_lot::{Condvar, Mutex};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use self::record::{ITEM_MAX, TAG_INLINE, recv_record, send_record, sock_pair};
use self::ring::{Item, Popped, Push, Ring, Tag, UNBOUNDED_CAP, W_BUFFERED, W_UNFINISHED, dec};
use super::error::{ItemError, ItemErrorKind, QueueError, TaskDoneError};
use super::fdpass;
use super::sync::core::my_pid;
use crate::queue::{
    BlockingQueue, GetTimeoutError, JoinTimeoutError, PutError, PutTimeoutError, ShutDown,
    TryGetError, TryPutError,
};

/// The largest `maxsize` (the free-places count is a 32-bit word).
const MAXSIZE_LIMIT: usize = (u32::MAX / 2) as usize;

/// How long a getter polls before it sleeps.
const SPINS: u32 = 200;

/// How long a getter waits for the socket record its slot announced (it was
/// sent before the slot was published, so it is normally there at once).
const RECORD_GRACE: Duration = Duration::from_secs(10);

/// How long a put waits for room in a full ring before it hands the item to
/// the feeder thread instead.
const FULL_GRACE: Duration = Duration::from_millis(10);

/// After a normal shutdown, how long a getter waits for items still counted
/// but not published (in a feeder buffer) before it reports `ShutDown`.
const FEEDER_GRACE: Duration = Duration::from_secs(1);

/// An item waiting in this process's buffer for the feeder thread.
enum Pending {
    /// Goes into a slot, or the arena if too large for one.
    Ring(Vec<u8>),
    /// Goes on the socket (a whole record), then its slot is published.
    Record(Vec<u8>),
    /// Its record is on the socket; only the slot announcing it is left to
    /// publish.
    Announce,
}

struct Feeder {
    pid: u32,
    buf: VecDeque<Pending>,
    running: bool,
}

struct Inner {
    tx: OwnedFd,
    rx: OwnedFd,
    ring: Ring,
    maxsize: usize,
    /// Fast path: whether this process's feeder holds items (then every
    /// put of this process goes behind them, keeping its order).
    feeding: AtomicBool,
    feeder: Mutex<Feeder>,
    flushed: Condvar,
    /// The process that called `close` (0: none). A pid, not a flag, so a
    /// forked child starts with its copy open (Python's `_after_fork`).
    closed_by: AtomicU32,
    /// The process that called `cancel_join_thread` (0: none): its exit
    /// does not wait for this queue's feeder.
    no_join_by: AtomicU32,
    /// This process's async tasks waiting on the queue, and its waiter
    /// thread (`future.rs`).
    waiters: Mutex<future::Waiters>,
}

static FEEDERS: Mutex<Vec<Weak<Inner>>> = Mutex::new(Vec::new());

/// A queue shared by processes (Python's `multiprocessing.Queue`, with the
/// `task_done`/`join` of `JoinableQueue` and the `shutdown` of Python 3.13).
///
/// Clone a handle for another thread; move a handle into a `Fork` closure or
/// pass it as a task argument for another process. Items are serde values
/// (postcard on the wire). Unbounded by default; [`Queue::with_maxsize`]
/// gives Python's `Queue(maxsize)`.
///
/// It implements [`BlockingQueue`], the contract of the thread queues, and
/// passes the same conformance suite. Its own methods report the thread
/// queues' very errors per operation ([`TryPutError`], [`PutTimeoutError`],
/// [`TryGetError`], [`GetTimeoutError`], ...) inside a [`QueueError`], whose
/// other variant, [`QueueError::Item`], is what only a queue between
/// processes can meet: an item that cannot be encoded, decoded or moved
/// (the trait reports that as a shut-down queue).
///
/// # Examples
/// ```
/// use spindle::ipc::Queue;
/// use spindle::process::Process;
///
/// #[spindle::task]
/// fn producer(q: Queue<u64>) {
///     for i in 0..100 {
///         q.put(i).unwrap();
///     }
/// }
///
/// let q = Queue::new()?;
/// let mut p = Process::new(producer::call(q.clone()));
/// p.start()?;
/// let sum: u64 = (0..100).map(|_| q.get().unwrap()).sum();
/// p.join()?;
/// assert_eq!(sum, 4950);
/// assert!(q.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Queue<T> {
    inner: Arc<Inner>,
    _items: PhantomData<fn(T) -> T>,
}

/// Python's `multiprocessing.JoinableQueue`: spindle's [`Queue`] already has
/// `task_done` and `join`.
pub type JoinableQueue<T> = Queue<T>;

/// Python's `multiprocessing.SimpleQueue`: an unbounded [`Queue`].
pub type SimpleQueue<T> = Queue<T>;

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            inner: self.inner.clone(),
            _items: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("qsize", &self.inner.ring.qsize())
            .field("maxsize", &self.inner.maxsize)
            .finish()
    }
}

thread_local! {
    /// Encoding buffer of `put`, reused.
    static ENCODE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Buffer a `get` copies an item into before decoding it, reused.
    static DECODE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Why a put did not happen (before the item is handed back).
enum PutFail {
    /// No room before the deadline (only a bounded put).
    Full,
    ShutDown,
    Item(ItemErrorKind),
}

/// Why a get did not return an item.
enum GetFail {
    /// Nothing before the deadline (only a bounded get).
    Empty,
    ShutDown,
    Item(ItemErrorKind),
}

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// An unbounded queue (Python's `Queue()`).
    ///
    /// # Errors
    /// The OS error if the socket or the shared memory cannot be made.
    pub fn new() -> io::Result<Queue<T>> {
        Queue::with_maxsize(0)
    }

    /// A queue of at most `maxsize` items; 0 means unbounded (Python's
    /// `Queue(maxsize)`).
    ///
    /// # Errors
    /// [`io::ErrorKind::InvalidInput`] if `maxsize` exceeds 2³¹ − 1;
    /// otherwise as [`new`](Self::new).
    pub fn with_maxsize(maxsize: usize) -> io::Result<Queue<T>> {
        if maxsize > MAXSIZE_LIMIT {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("queue maxsize {maxsize} exceeds {MAXSIZE_LIMIT}"),
            ));
        }
        let (tx, rx) = sock_pair()?;
        let cap = if maxsize == 0 {
            UNBOUNDED_CAP
        } else {
            (maxsize as u32).min(UNBOUNDED_CAP)
        };
        let ring = Ring::new(cap, maxsize as u32)?;
        Ok(Queue::from_parts(tx, rx, ring))
    }

    /// A queue of at most `maxsize` items (0: unbounded) whose items may
    /// encode to at most `max_item` bytes (spindle only; the default of
    /// [`new`](Self::new) is 1 GiB, the most a queue carries). A larger item
    /// is refused by `put` with [`ItemErrorKind::TooLarge`] (`len`, `limit`)
    /// before anything is sent, and handed back. The limit is the queue's,
    /// shared by every handle (in every process). Python's queues have no
    /// limit but memory.
    ///
    /// # Errors
    /// [`io::ErrorKind::InvalidInput`] if `max_item` is 0 or over 1 GiB;
    /// otherwise as [`with_maxsize`](Self::with_maxsize).
    ///
    /// # Examples
    /// ```
    /// use spindle::ipc::{ItemErrorKind, Queue, QueueError};
    ///
    /// let q: Queue<Vec<u8>> = Queue::with_max_item(0, 1000)?;
    /// q.put(vec![0; 10]).unwrap();
    /// match q.put(vec![0; 1000]) {
    ///     Err(QueueError::Item(e)) => {
    ///         assert!(matches!(e.kind(), ItemErrorKind::TooLarge { len: 1002, limit: 1000 }))
    ///     }
    ///     other => panic!("{other:?}"),
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn with_max_item(maxsize: usize, max_item: usize) -> io::Result<Queue<T>> {
        if max_item == 0 || max_item > ITEM_MAX {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("queue max_item {max_item} is not in 1..={ITEM_MAX}"),
            ));
        }
        let q = Queue::with_maxsize(maxsize)?;
        q.ring().set_max_item(max_item as u32);
        Ok(q)
    }

    /// The largest encoded item a put accepts, in bytes.
    pub fn max_item(&self) -> usize {
        self.ring().max_item()
    }

    fn from_parts(tx: OwnedFd, rx: OwnedFd, ring: Ring) -> Self {
        let maxsize = ring.maxsize() as usize;
        let inner = Arc::new(Inner {
            tx,
            rx,
            ring,
            maxsize,
            feeding: AtomicBool::new(false),
            feeder: Mutex::new(Feeder {
                pid: my_pid(),
                buf: VecDeque::new(),
                running: false,
            }),
            flushed: Condvar::new(),
            closed_by: AtomicU32::new(0),
            no_join_by: AtomicU32::new(0),
            waiters: Mutex::new(future::Waiters::new()),
        });
        Queue {
            inner,
            _items: PhantomData,
        }
    }

    fn ring(&self) -> &Ring {
        &self.inner.ring
    }

    /// Puts an item, waiting for a free place if the queue is bounded and
    /// full (Python's `put(item)`).
    ///
    /// # Errors
    /// [`QueueError::Queue`] with a [`PutError`] after
    /// [`shutdown`](Self::shutdown); [`QueueError::Item`] if the item cannot
    /// be encoded or sent. The item is handed back.
    pub fn put(&self, item: T) -> Result<(), QueueError<PutError<T>, T>> {
        loop {
            return match self.put_until(&item, None) {
                Ok(()) => Ok(()),
                // Only a bounded wait runs out; wait again.
                Err(PutFail::Full) => continue,
                Err(PutFail::ShutDown) => Err(QueueError::Queue(PutError(item))),
                Err(PutFail::Item(k)) => Err(QueueError::Item(ItemError::new(item, k))),
            };
        }
    }

    /// Puts an item only if there is room now (Python's `put_nowait`).
    ///
    /// # Errors
    /// [`QueueError::Queue`] with [`TryPutError::Full`] if the queue is full
    /// or [`TryPutError::ShutDown`]; otherwise as [`put`](Self::put).
    pub fn try_put(&self, item: T) -> Result<(), QueueError<TryPutError<T>, T>> {
        match self.put_until(&item, Some(Instant::now())) {
            Ok(()) => Ok(()),
            Err(PutFail::Full) => Err(QueueError::Queue(TryPutError::Full(item))),
            Err(PutFail::ShutDown) => Err(QueueError::Queue(TryPutError::ShutDown(item))),
            Err(PutFail::Item(k)) => Err(QueueError::Item(ItemError::new(item, k))),
        }
    }

    /// Puts an item, waiting at most `timeout` for room (Python's
    /// `put(item, timeout=...)`). A timeout too long to represent waits
    /// forever.
    ///
    /// # Errors
    /// [`QueueError::Queue`] with [`PutTimeoutError::Timeout`] if no place
    /// freed in time (never "full") or [`PutTimeoutError::ShutDown`];
    /// otherwise as [`put`](Self::put).
    pub fn put_timeout(
        &self,
        item: T,
        timeout: Duration,
    ) -> Result<(), QueueError<PutTimeoutError<T>, T>> {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.put_deadline(item, deadline),
            None => self.put(item).map_err(|e| match e {
                QueueError::Queue(e) => QueueError::Queue(e.into()),
                QueueError::Item(e) => QueueError::Item(e),
            }),
        }
    }

    /// Puts an item, waiting until `deadline` for room.
    ///
    /// # Errors
    /// As [`put_timeout`](Self::put_timeout).
    pub fn put_deadline(
        &self,
        item: T,
        deadline: Instant,
    ) -> Result<(), QueueError<PutTimeoutError<T>, T>> {
        match self.put_until(&item, Some(deadline)) {
            Ok(()) => Ok(()),
            Err(PutFail::Full) => Err(QueueError::Queue(PutTimeoutError::Timeout(item))),
            Err(PutFail::ShutDown) => Err(QueueError::Queue(PutTimeoutError::ShutDown(item))),
            Err(PutFail::Item(k)) => Err(QueueError::Item(ItemError::new(item, k))),
        }
    }

    /// Puts `item`, waiting for room until `deadline` (`None`: forever).
    fn put_until(&self, item: &T, deadline: Option<Instant>) -> Result<(), PutFail> {
        ENCODE.with(|b| match b.try_borrow_mut() {
            Ok(mut buf) => self.put_encoded(item, &mut buf, deadline),
            // Re-entered from `T::serialize`: use a fresh buffer.
            Err(_) => self.put_encoded(item, &mut Vec::new(), deadline),
        })
    }

    fn put_encoded(
        &self,
        item: &T,
        buf: &mut Vec<u8>,
        deadline: Option<Instant>,
    ) -> Result<(), PutFail> {
        self.encode(item, buf)?;
        if self.inner.maxsize > 0 {
            match self.ring().take_place(deadline) {
                Push::Done => {}
                Push::Full => return Err(PutFail::Full),
                Push::ShutDown => return Err(PutFail::ShutDown),
            }
        }
        self.publish_placed(buf, true)
    }

    /// The checks of a put before it waits for room: closed, shut down,
    /// then the item encoded into `buf` and its size checked.
    fn encode(&self, item: &T, buf: &mut Vec<u8>) -> Result<(), PutFail> {
        if self.inner.is_closed() {
            return Err(PutFail::Item(ItemErrorKind::Closed));
        }
        let ring = self.ring();
        if ring.shutdown_state() != 0 {
            return Err(PutFail::ShutDown);
        }
        buf.clear();
        let payload = postcard::to_extend(item, std::mem::take(buf))
            .map_err(|e| PutFail::Item(ItemErrorKind::Encode(e.to_string())))?;
        *buf = payload;
        let limit = ring.max_item();
        if buf.len() > limit {
            return Err(PutFail::Item(ItemErrorKind::TooLarge {
                len: buf.len(),
                limit,
            }));
        }
        Ok(())
    }

    /// The end of a put that holds its place (a bounded queue's): counts
    /// the task and publishes the encoded item, waiting up to
    /// [`FULL_GRACE`] for room in the ring if `brief` (an async put does
    /// not wait: it hands the item to the feeder at once); a failure gives
    /// the place and the task back.
    fn publish_placed(&self, buf: &[u8], brief: bool) -> Result<(), PutFail> {
        let ring = self.ring();
        ring.w(W_UNFINISHED).fetch_add(1, SeqCst);
        let outcome = self.inner.enqueue(buf, brief);
        if outcome.is_err() {
            ring.tasks_dropped(1);
            ring.give_places(1);
        }
        outcome
    }

    /// Removes and returns an item, waiting for one (Python's `get()`).
    ///
    /// # Errors
    /// [`QueueError::Queue`] with [`ShutDown`] once the queue is shut down
    /// and empty (or shut down immediately); [`QueueError::Item`] if an
    /// item does not decode as a `T` (it is consumed).
    pub fn get(&self) -> Result<T, QueueError<ShutDown>> {
        loop {
            return match self.get_raw(None) {
                Ok(v) => Ok(v),
                // Only a bounded wait runs out; wait again.
                Err(GetFail::Empty) => continue,
                Err(GetFail::ShutDown) => Err(QueueError::Queue(ShutDown)),
                Err(GetFail::Item(k)) => Err(QueueError::Item(ItemError::new((), k))),
            };
        }
    }

    /// Removes and returns an item if one is there (Python's `get_nowait`).
    ///
    /// # Errors
    /// [`QueueError::Queue`] with [`TryGetError::Empty`] if none is, or
    /// [`TryGetError::ShutDown`]; otherwise as [`get`](Self::get).
    pub fn try_get(&self) -> Result<T, QueueError<TryGetError>> {
        match self.get_raw(Some(Instant::now())) {
            Ok(v) => Ok(v),
            Err(GetFail::Empty) => Err(QueueError::Queue(TryGetError::Empty)),
            Err(GetFail::ShutDown) => Err(QueueError::Queue(TryGetError::ShutDown)),
            Err(GetFail::Item(k)) => Err(QueueError::Item(ItemError::new((), k))),
        }
    }

    /// Removes and returns an item, waiting at most `timeout` (Python's
    /// `get(timeout=...)`). A timeout too long to represent waits forever.
    ///
    /// # Errors
    /// [`QueueError::Queue`] with [`GetTimeoutError::Timeout`] if none came
    /// in time (never "empty") or [`GetTimeoutError::ShutDown`]; otherwise
    /// as [`get`](Self::get).
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, QueueError<GetTimeoutError>> {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.get_deadline(deadline),
            None => self.get().map_err(|e| match e {
                QueueError::Queue(e) => QueueError::Queue(e.into()),
                QueueError::Item(e) => QueueError::Item(e),
            }),
        }
    }

    /// Removes and returns an item, waiting until `deadline`.
    ///
    /// # Errors
    /// As [`get_timeout`](Self::get_timeout).
    pub fn get_deadline(&self, deadline: Instant) -> Result<T, QueueError<GetTimeoutError>> {
        match self.get_raw(Some(deadline)) {
            Ok(v) => Ok(v),
            Err(GetFail::Empty) => Err(QueueError::Queue(GetTimeoutError::Timeout)),
            Err(GetFail::ShutDown) => Err(QueueError::Queue(GetTimeoutError::ShutDown)),
            Err(GetFail::Item(k)) => Err(QueueError::Item(ItemError::new((), k))),
        }
    }

    fn get_raw(&self, deadline: Option<Instant>) -> Result<T, GetFail> {
        if self.inner.is_closed() {
            return Err(GetFail::Item(ItemErrorKind::Closed));
        }
        DECODE.with(|b| match b.try_borrow_mut() {
            Ok(mut buf) => {
                let got = self.get_into(&mut buf, deadline);
                // Do not keep a huge buffer alive in every getter thread.
                if buf.capacity() > 256 << 10 {
                    *buf = Vec::new();
                }
                got
            }
            Err(_) => self.get_into(&mut Vec::new(), deadline),
        })
    }

    fn get_into(&self, slot: &mut Vec<u8>, deadline: Option<Instant>) -> Result<T, GetFail> {
        let ring = self.ring();
        let mut spins = 0;
        let mut drained_since = None;
        loop {
            if let Some(v) = self.take_now(slot, &mut drained_since)? {
                return Ok(v);
            }
            let shut = ring.shutdown_state();
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(GetFail::Empty);
            }
            if spins < SPINS {
                spins += 1;
                if spins % 16 == 0 {
                    std::thread::yield_now();
                }
                for _ in 0..64 {
                    if ring.has_items() {
                        break;
                    }
                    std::hint::spin_loop();
                }
                continue;
            }
            // After a normal shutdown, the remaining items may come from a
            // feeder that only bumps the futex; wake up now and then.
            let until = if shut == 0 {
                deadline
            } else {
                let slice = Instant::now() + Duration::from_millis(10);
                Some(deadline.map_or(slice, |d| d.min(slice)))
            };
            ring.wait_items(shut, until);
        }
    }

    /// One attempt of a get: the item, `None` if there is none now, or why
    /// none will come (`ShutDown`: shut down and drained; `drained_since`
    /// is when this getter first found the queue shut down and empty).
    fn take_now(
        &self,
        slot: &mut Vec<u8>,
        drained_since: &mut Option<Instant>,
    ) -> Result<Option<T>, GetFail> {
        let ring = self.ring();
        match ring.try_pop(slot) {
            Popped::Item(Tag::Inline | Tag::Arena) => {
                return postcard::from_bytes(slot).map(Some).map_err(decode_fail);
            }
            Popped::Item(Tag::Socket) => {
                let rec = self.inner.take_record()?;
                return postcard::from_bytes(&rec).map(Some).map_err(decode_fail);
            }
            Popped::ShutDown => return Err(GetFail::ShutDown),
            Popped::Corrupt => {
                return Err(GetFail::Item(ItemErrorKind::Corrupt(
                    "malformed queue slot".into(),
                )));
            }
            Popped::Empty => {}
        }
        // Items counted but not yet in the ring are in some producer's
        // feeder buffer: a normal shutdown waits for them, but not for the
        // buffer of a producer that died (nothing comes for a while).
        if ring.shutdown_state() == 1 {
            let since = *drained_since.get_or_insert_with(Instant::now);
            // An item published before the shutdown (`Ring::shutdown`
            // changes the state under the producer lock) is visible now:
            // take it before saying ShutDown.
            if !ring.has_items()
                && (ring.w(W_BUFFERED).load(SeqCst) == 0 || since.elapsed() > FEEDER_GRACE)
            {
                return Err(GetFail::ShutDown);
            }
        }
        Ok(None)
    }

    /// The number of items put and not yet taken (Python's `qsize()`;
    /// approximate while others put and get).
    pub fn qsize(&self) -> usize {
        self.ring().qsize()
    }

    /// The same as [`qsize`](Self::qsize) (the thread queues' name).
    pub fn len(&self) -> usize {
        self.qsize()
    }

    /// Whether [`qsize`](Self::qsize) is 0 (Python's `empty()`).
    pub fn is_empty(&self) -> bool {
        self.qsize() == 0
    }

    /// Whether a bounded queue holds `maxsize` items (Python's `full()`).
    pub fn is_full(&self) -> bool {
        self.inner.maxsize > 0 && self.qsize() >= self.inner.maxsize
    }

    /// The bound, 0 for unbounded (Python's `maxsize`).
    pub fn maxsize(&self) -> usize {
        self.inner.maxsize
    }

    /// The queue's counters, shared by every process using it (spindle
    /// only; see [`QueueStats`](crate::stats::QueueStats)): `qsize`,
    /// `unfinished_tasks`, and the items put and got so far.
    ///
    /// `puts` counts items published to the shared ring (an item still in
    /// this process's feeder buffer is in `qsize`, not yet in `puts`);
    /// `gets` counts items a get took (not those an immediate shutdown
    /// dropped). The two counts are 64-bit words in the ring's shared
    /// memory, written under the producer and the consumer lock that every
    /// put and get takes anyway; `stats` reads each under its lock, so it
    /// waits for a put or get in progress.
    ///
    /// ```
    /// let q = spindle::ipc::Queue::<u32>::new().unwrap();
    /// q.put(1).unwrap();
    /// q.put(2).unwrap();
    /// q.get().unwrap();
    /// let s = q.stats();
    /// assert_eq!((s.qsize, s.unfinished, s.puts, s.gets), (1, 2, 2, 1));
    /// ```
    pub fn stats(&self) -> crate::stats::QueueStats {
        let ring = self.ring();
        let (puts, gets) = ring.counts();
        crate::stats::QueueStats::new(
            ring.qsize() as u64,
            u64::from(ring.w(W_UNFINISHED).load(SeqCst)),
            puts,
            gets,
        )
    }

    /// How many items put have not been marked done yet (the thread queues'
    /// `unfinished_tasks`; Python's `JoinableQueue._unfinished_tasks`): the
    /// non-blocking check of [`join`](Self::join), which returns once it is 0.
    pub fn unfinished_tasks(&self) -> usize {
        self.ring().w(W_UNFINISHED).load(SeqCst) as usize
    }

    /// Marks one item taken with `get` as processed (Python's
    /// `JoinableQueue.task_done()`).
    ///
    /// # Errors
    /// [`TaskDoneError`] if called more times than items were put (Python's
    /// `ValueError`).
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        if self.ring().task_done() {
            Ok(())
        } else {
            Err(TaskDoneError)
        }
    }

    /// Waits until every item put has been marked with
    /// [`task_done`](Self::task_done) (Python's `JoinableQueue.join()`).
    pub fn join(&self) {
        self.ring().join(None);
    }

    /// Waits at most `timeout` for [`join`](Self::join). A timeout too long
    /// to represent waits forever.
    ///
    /// # Errors
    /// [`JoinTimeoutError`] if tasks were still unfinished at the deadline.
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), JoinTimeoutError> {
        match Instant::now().checked_add(timeout) {
            Some(d) => self.join_deadline(d),
            None => {
                self.join();
                Ok(())
            }
        }
    }

    /// Waits until `deadline` for [`join`](Self::join).
    ///
    /// # Errors
    /// [`JoinTimeoutError`] if tasks were still unfinished at the deadline.
    pub fn join_deadline(&self, deadline: Instant) -> Result<(), JoinTimeoutError> {
        if self.ring().join(Some(deadline)) {
            Ok(())
        } else {
            Err(JoinTimeoutError)
        }
    }

    /// Shuts the queue down for every process (Python 3.13's
    /// `shutdown(immediate)`): puts fail with `ShutDown`; gets drain what is
    /// left then fail with `ShutDown` — at once if `immediate`, which also
    /// discards the items still queued and counts them as done for `join`.
    ///
    /// A put racing with the shutdown either lands before it or fails.
    /// Items already in a process's feeder buffer are still delivered after
    /// a normal shutdown; after an immediate one, that feeder drops them a
    /// moment later.
    pub fn shutdown(&self, immediate: bool) {
        let ring = self.ring();
        let rx = self.inner.rx.as_raw_fd();
        let dropped = ring.shutdown(immediate, || {
            let _ = recv_record(rx);
        });
        ring.tasks_dropped(dropped);
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    pub fn is_shutdown(&self) -> bool {
        self.ring().shutdown_state() != 0
    }

    /// Says this process puts and gets nothing more through the queue
    /// (Python's `close()`): from now on `put` and `get` (every form) of
    /// every handle of it in this process fail with
    /// [`ItemErrorKind::Closed`]. Items already in this process's feeder
    /// buffer are still published, and the feeder thread ends once they
    /// are ([`join_thread`](Self::join_thread) waits for that). Other
    /// processes, and a child forked later, keep using the queue. Closing
    /// again does nothing.
    ///
    /// # Examples
    /// ```
    /// use spindle::ipc::{ItemErrorKind, Queue, QueueError};
    ///
    /// let q = Queue::new()?;
    /// q.put(1u32).unwrap();
    /// q.close();
    /// q.join_thread().unwrap();
    /// let e = q.put(2).unwrap_err();
    /// assert!(matches!(&e, QueueError::Item(i) if matches!(i.kind(), ItemErrorKind::Closed)));
    /// assert_eq!(q.qsize(), 1, "what was put before close is there");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn close(&self) {
        self.inner.closed_by.store(my_pid(), SeqCst);
    }

    /// Whether this process [`close`](Self::close)d the queue.
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Waits until this process's feeder thread has published every item
    /// it buffered (Python's `join_thread()`, which joins that thread);
    /// returns at once if there is none, or after
    /// [`cancel_join_thread`](Self::cancel_join_thread), as Python's.
    ///
    /// # Errors
    /// [`NotClosedError`] unless this process called [`close`](Self::close)
    /// first (Python's `AssertionError`: a put after the join would start
    /// the feeder again).
    pub fn join_thread(&self) -> Result<(), NotClosedError> {
        if !self.inner.is_closed() {
            return Err(NotClosedError);
        }
        if self.inner.no_join_by.load(SeqCst) != my_pid() {
            self.inner.flush();
        }
        Ok(())
    }

    /// This process's exit (and [`join_thread`](Self::join_thread)) will
    /// not wait for the queue's feeder thread (Python's
    /// `cancel_join_thread()`): items still in its buffer when the process
    /// ends are lost (Python: "data may be lost"); spindle also takes them
    /// out of `qsize` and of the unfinished-task count, so `join` does not
    /// wait for them (Python's stay counted). Useful when a process must
    /// exit at once though no consumer reads.
    pub fn cancel_join_thread(&self) {
        self.inner.no_join_by.store(my_pid(), SeqCst);
    }
}

/// [`Queue::join_thread`] before [`Queue::close`] (Python's
/// `AssertionError: Queue ... not closed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotClosedError;

impl fmt::Display for NotClosedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("join_thread() needs close() first")
    }
}

impl std::error::Error for NotClosedError {}

/// An [`Item`](QueueError::Item) failure reads as a shut-down queue here,
/// as the trait asks of a transport that failed; the item is handed back.
impl<T: Serialize + DeserializeOwned> BlockingQueue<T> for Queue<T> {
    fn put(&self, item: T) -> Result<(), PutError<T>> {
        Queue::put(self, item).map_err(|e| match e {
            QueueError::Queue(e) => e,
            QueueError::Item(e) => PutError(e.into_inner()),
        })
    }
    fn try_put(&self, item: T) -> Result<(), TryPutError<T>> {
        Queue::try_put(self, item).map_err(|e| match e {
            QueueError::Queue(e) => e,
            QueueError::Item(e) => TryPutError::ShutDown(e.into_inner()),
        })
    }
    fn put_deadline(&self, item: T, deadline: Instant) -> Result<(), PutTimeoutError<T>> {
        Queue::put_deadline(self, item, deadline).map_err(|e| match e {
            QueueError::Queue(e) => e,
            QueueError::Item(e) => PutTimeoutError::ShutDown(e.into_inner()),
        })
    }
    fn get(&self) -> Result<T, ShutDown> {
        Queue::get(self).map_err(|_| ShutDown)
    }
    fn try_get(&self) -> Result<T, TryGetError> {
        Queue::try_get(self).map_err(|e| match e {
            QueueError::Queue(e) => e,
            QueueError::Item(_) => TryGetError::ShutDown,
        })
    }
    fn get_deadline(&self, deadline: Instant) -> Result<T, GetTimeoutError> {
        Queue::get_deadline(self, deadline).map_err(|e| match e {
            QueueError::Queue(e) => e,
            QueueError::Item(_) => GetTimeoutError::ShutDown,
        })
    }
    fn qsize(&self) -> usize {
        Queue::qsize(self)
    }
    fn maxsize(&self) -> usize {
        Queue::maxsize(self)
    }
    fn task_done(&self) -> Result<(), TaskDoneError> {
        Queue::task_done(self)
    }
    fn join(&self) {
        Queue::join(self)
    }
    fn join_deadline(&self, deadline: Instant) -> Result<(), JoinTimeoutError> {
        Queue::join_deadline(self, deadline)
    }
    fn shutdown(&self, immediate: bool) {
        Queue::shutdown(self, immediate)
    }
    fn is_shutdown(&self) -> bool {
        Queue::is_shutdown(self)
    }
}

/// The failure of an item that does not decode.
fn decode_fail(e: postcard::Error) -> GetFail {
    GetFail::Item(ItemErrorKind::Decode(e.to_string()))
}

/// Builds the socket record of an encoded item.
fn make_record(payload: &[u8]) -> Vec<u8> {
    let mut rec = Vec::with_capacity(payload.len() + 1);
    rec.push(TAG_INLINE);
    rec.extend_from_slice(payload);
    rec
}

impl Inner {
    /// Hands an encoded item to the ring (or the socket) now if this
    /// process has nothing pending, else to the feeder thread, so one
    /// process's items keep their order.
    fn enqueue(self: &Arc<Self>, payload: &[u8], brief: bool) -> Result<(), PutFail> {
        if !self.feeding.load(Ordering::Acquire) {
            let pending = match Item::of(payload) {
                Some(item) => match if brief {
                    self.push_briefly(item)
                } else {
                    self.ring.push(item, 1)
                } {
                    Push::Done => return Ok(()),
                    Push::ShutDown => return Err(PutFail::ShutDown),
                    Push::Full => Pending::Ring(payload.to_vec()),
                },
                None => {
                    let rec = make_record(payload);
                    let sent = send_record(self.tx.as_raw_fd(), &rec)
                        .map_err(|e| PutFail::Item(ItemErrorKind::Io(e)))?;
                    if !sent {
                        Pending::Record(rec)
                    } else {
                        match self.ring.push(Item::Socket(&[]), 1) {
                            Push::Done => return Ok(()),
                            // The record stays on the socket unannounced;
                            // the queue is shut down for good.
                            Push::ShutDown => return Err(PutFail::ShutDown),
                            Push::Full => Pending::Announce,
                        }
                    }
                }
            };
            return self.hand_to_feeder(pending);
        }
        let pending = match Item::of(payload) {
            Some(_) => Pending::Ring(payload.to_vec()),
            None => Pending::Record(make_record(payload)),
        };
        self.hand_to_feeder(pending)
    }

    /// Publishes `item`, waiting up to [`FULL_GRACE`] for room: a consumer
    /// that is merely behind frees half the ring by then, which is cheaper
    /// than going through the feeder thread.
    fn push_briefly(&self, item: Item<'_>) -> Push {
        let mut until = None;
        loop {
            match self.ring.push(item, 1) {
                Push::Full => {}
                done => return done,
            }
            let until = *until.get_or_insert_with(|| Instant::now() + FULL_GRACE);
            if Instant::now() >= until {
                return Push::Full;
            }
            self.ring.wait_space(item.arena_bytes(), Some(until));
        }
    }

    fn hand_to_feeder(self: &Arc<Self>, item: Pending) -> Result<(), PutFail> {
        let mut f = self.feeder.lock();
        let me = my_pid();
        if f.pid != me {
            // A forked copy: the parent's pending items are the parent's.
            *f = Feeder {
                pid: me,
                buf: VecDeque::new(),
                running: false,
            };
        }
        // Counted before the shutdown check: a getter that sees the shutdown
        // also sees this item coming (or the put fails).
        let buffered = self.ring.w(W_BUFFERED);
        buffered.fetch_add(1, SeqCst);
        if self.ring.shutdown_state() != 0 {
            dec(buffered);
            return Err(PutFail::ShutDown);
        }
        if !f.running {
            let inner = self.clone();
            let spawned = std::thread::Builder::new()
                .name("spindle-queue-feeder".into())
                .spawn(move || inner.feed());
            if let Err(e) = spawned {
                dec(buffered);
                return Err(PutFail::Item(ItemErrorKind::Io(io::Error::new(
                    e.kind(),
                    format!("cannot start the feeder thread: {e}"),
                ))));
            }
            f.running = true;
            FEEDERS.lock().push(Arc::downgrade(self));
        }
        f.buf.push_back(item);
        self.feeding.store(true, Ordering::Release);
        Ok(())
    }

    /// The feeder thread: publishes the buffered items, waiting for room.
    fn feed(&self) {
        loop {
            let item = {
                let mut f = self.feeder.lock();
                match f.buf.pop_front() {
                    Some(r) => r,
                    None => {
                        f.running = false;
                        self.feeding.store(false, Ordering::Release);
                        self.flushed.notify_all();
                        return;
                    }
                }
            };
            if self.publish_blocking(item) {
                dec(self.ring.w(W_BUFFERED));
            } else {
                self.drop_item();
            }
        }
    }

    /// Publishes one buffered item; false if the queue was shut down
    /// immediately (or its socket broke) first. Items accepted before a
    /// normal shutdown are still published.
    fn publish_blocking(&self, item: Pending) -> bool {
        if let Pending::Record(rec) = &item {
            loop {
                if self.ring.shutdown_state() == 2 {
                    return false;
                }
                match send_record(self.tx.as_raw_fd(), rec) {
                    Ok(true) => break,
                    Ok(false) => {
                        let mut fds = [PollFd::new(self.tx.as_fd(), PollFlags::POLLOUT)];
                        let _ = poll(&mut fds, PollTimeout::from(100u8));
                    }
                    Err(_) => return false,
                }
            }
        }
        let slot = match &item {
            Pending::Ring(p) => Item::of(p).unwrap_or(Item::Arena(p)),
            _ => Item::Socket(&[]),
        };
        loop {
            match self.ring.push(slot, 2) {
                Push::Done => return true,
                Push::ShutDown => return false,
                Push::Full => {}
            }
            self.ring.wait_space(
                slot.arena_bytes(),
                Some(Instant::now() + Duration::from_millis(100)),
            );
        }
    }

    /// Forgets an item that will never be published.
    fn drop_item(&self) {
        dec(self.ring.w(W_BUFFERED));
        self.ring.tasks_dropped(1);
        self.ring.give_places(1);
    }

    /// Receives the socket record a taken slot announced.
    fn take_record(&self) -> Result<Vec<u8>, GetFail> {
        let start = Instant::now();
        loop {
            match recv_record(self.rx.as_raw_fd()) {
                Ok(Some(rec)) => return Ok(rec),
                Ok(None) => {}
                Err(e) => return Err(GetFail::Item(ItemErrorKind::Io(e))),
            }
            if start.elapsed() > RECORD_GRACE {
                return Err(GetFail::Item(ItemErrorKind::Corrupt(
                    "the item announced by the queue never arrived".into(),
                )));
            }
            let mut fds = [PollFd::new(self.rx.as_fd(), PollFlags::POLLIN)];
            let _ = poll(&mut fds, PollTimeout::from(10u8));
        }
    }

    fn is_closed(&self) -> bool {
        self.closed_by.load(SeqCst) == my_pid()
    }

    /// Forgets the items this process's feeder has not taken up yet (the
    /// exit of a process that called `cancel_join_thread`): they leave
    /// `qsize`, the unfinished-task count and a bounded queue's places, so
    /// `join` does not wait for them. One item the feeder is publishing at
    /// that moment may land or stay counted.
    fn discard_buffer(&self) {
        let lost: Vec<Pending> = {
            let mut f = self.feeder.lock();
            if f.pid != my_pid() {
                return;
            }
            f.buf.drain(..).collect()
        };
        for _ in lost {
            self.drop_item();
        }
    }

    /// Waits until this process's pending items are published.
    fn flush(&self) {
        let mut f = self.feeder.lock();
        while f.running && f.pid == my_pid() {
            self.flushed.wait(&mut f);
        }
    }
}

/// Publishes every queue's pending items before the process exits (Python
/// joins its feeder threads at exit).
pub(crate) fn flush_all() {
    // Bounded: in a child forked from a threaded process, another thread of
    // the parent may have held this lock at the fork, for good.
    let Some(mut registered) = FEEDERS.try_lock_for(std::time::Duration::from_millis(500)) else {
        return;
    };
    let feeders: Vec<_> = std::mem::take(&mut *registered);
    drop(registered);
    let me = my_pid();
    for q in feeders.iter().filter_map(Weak::upgrade) {
        // `cancel_join_thread`: this process does not wait for this feeder;
        // what it still buffers is given up, and uncounted.
        if q.no_join_by.load(SeqCst) == me {
            q.discard_buffer();
        } else {
            q.flush();
        }
    }
}

impl<T> Serialize for Queue<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let i = &self.inner;
        let ids = [i.tx.as_fd(), i.rx.as_fd(), i.ring.fd()].map(fdpass::export);
        let mut out = [0u32; 3];
        for (o, r) in out.iter_mut().zip(ids) {
            *o = r.map_err(serde::ser::Error::custom)?;
        }
        out.serialize(s)
    }
}

impl<'de, T: Serialize + DeserializeOwned> Deserialize<'de> for Queue<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let ids = <[u32; 3]>::deserialize(d)?;
        let take = |i: u32| fdpass::import(i).map_err(serde::de::Error::custom);
        let (tx, rx, shm) = (take(ids[0])?, take(ids[1])?, take(ids[2])?);
        let ring = Ring::map(shm).map_err(serde::de::Error::custom)?;
        Ok(Queue::from_parts(tx, rx, ring))
    }
}
