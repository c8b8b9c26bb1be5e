//! Cross-process `Queue` (Python's `multiprocessing.Queue`,
//! `JoinableQueue`, `SimpleQueue`).
//!
//! Design (see `process/README.md`): items travel as records of a
//! `SOCK_SEQPACKET` socket pair. Every producer holds the sending socket and
//! every consumer the receiving one; the kernel makes each record atomic, so
//! any number of producers and consumers in any processes need no lock that a
//! dying process could leave held. Counters (`qsize`, free slots of a bounded
//! queue, unfinished tasks, the shutdown flag) are atomic words in a shared
//! memfd, with futexes to sleep on. Records above 100 KiB travel as a memfd
//! attached to the record. When the socket buffer is full, a producer's items
//! wait in a per-process buffer drained by a feeder thread (as in Python), so
//! `put` on an unbounded queue never blocks; the buffer is flushed before the
//! process exits.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Write};
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg,
    sendmsg, setsockopt, socketpair, sockopt,
};
use parking_lot::{Condvar, Mutex};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::{GetError, PutError, TaskDoneError};
use super::fdpass;
use super::shm::{SharedWords, futex_wait, futex_wake};

const W_COUNT: usize = 0;
const W_UNFINISHED: usize = 1;
const W_SHUTDOWN: usize = 2;
const W_SLOTS: usize = 3;
const WORDS: usize = 4;

const INLINE_MAX: usize = 100 * 1024;
const TAG_INLINE: u8 = 0;
const TAG_MEMFD: u8 = 1;

struct Feeder {
    pid: u32,
    buf: VecDeque<Vec<u8>>,
    running: bool,
}

struct Inner {
    tx: OwnedFd,
    rx: OwnedFd,
    wake: EventFd,
    shm: SharedWords,
    maxsize: usize,
    feeder: Mutex<Feeder>,
    flushed: Condvar,
}

static FEEDERS: Mutex<Vec<Weak<Inner>>> = Mutex::new(Vec::new());

/// A queue shared by processes (Python's `multiprocessing.Queue`, with the
/// `task_done`/`join` of `JoinableQueue` and the `shutdown` of Python 3.13).
///
/// Clone a handle for another thread; move a handle into a `Fork` closure or
/// pass it as a task argument for another process. Items are serde values
/// (postcard on the wire). Unbounded by default; [`Queue::bounded`] gives
/// Python's `Queue(maxsize)`.
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
/// assert!(q.empty());
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
            .field("qsize", &self.inner.shm.word(W_COUNT).load(SeqCst))
            .field("maxsize", &self.inner.maxsize)
            .finish()
    }
}

fn sock_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    // Larger buffers hold more records in flight; the kernel caps them.
    let _ = setsockopt(&a, sockopt::SndBuf, &(1 << 20));
    let _ = setsockopt(&b, sockopt::RcvBuf, &(1 << 20));
    Ok((a, b))
}

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// An unbounded queue (Python's `Queue()`).
    ///
    /// # Errors
    /// The OS error if the sockets or the shared memory cannot be made.
    pub fn new() -> io::Result<Queue<T>> {
        Queue::bounded(0)
    }

    /// A queue of at most `maxsize` items; 0 means unbounded (Python's
    /// `Queue(maxsize)`).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn bounded(maxsize: usize) -> io::Result<Queue<T>> {
        let (tx, rx) = sock_pair()?;
        let shm = SharedWords::new(WORDS)?;
        let slots = u32::try_from(maxsize).unwrap_or(u32::MAX);
        shm.word(W_SLOTS).store(slots, SeqCst);
        let wake =
            EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?;
        Ok(Queue::from_parts(tx, rx, wake, shm, maxsize))
    }

    fn from_parts(
        tx: OwnedFd,
        rx: OwnedFd,
        wake: EventFd,
        shm: SharedWords,
        maxsize: usize,
    ) -> Self {
        let inner = Arc::new(Inner {
            tx,
            rx,
            wake,
            shm,
            maxsize,
            feeder: Mutex::new(Feeder {
                pid: std::process::id(),
                buf: VecDeque::new(),
                running: false,
            }),
            flushed: Condvar::new(),
        });
        Queue {
            inner,
            _items: PhantomData,
        }
    }

    fn word(&self, i: usize) -> &std::sync::atomic::AtomicU32 {
        self.inner.shm.word(i)
    }

    /// Puts an item, waiting for a free slot if the queue is bounded and full
    /// (Python's `put(item)`).
    ///
    /// # Errors
    /// [`PutError::ShutDown`] after [`shutdown`](Self::shutdown);
    /// [`PutError::Failed`] if the item cannot be encoded or sent. The item
    /// is handed back.
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_deadline_opt(item, None)
    }

    /// Puts an item only if there is room now (Python's `put_nowait`).
    ///
    /// # Errors
    /// [`PutError::Full`] if the queue is full; otherwise as [`put`](Self::put).
    pub fn try_put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_deadline_opt(item, Some(Instant::now()))
    }

    /// Puts an item, waiting at most `timeout` for room (Python's
    /// `put(item, timeout=...)`).
    ///
    /// # Errors
    /// [`PutError::Full`] if no slot freed in time; otherwise as [`put`](Self::put).
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.put_deadline_opt(item, Instant::now().checked_add(timeout))
    }

    /// Puts an item, waiting until `deadline` for room.
    ///
    /// # Errors
    /// As [`put_timeout`](Self::put_timeout).
    pub fn put_deadline(&self, item: T, deadline: Instant) -> Result<(), PutError<T>> {
        self.put_deadline_opt(item, Some(deadline))
    }

    fn put_deadline_opt(&self, item: T, deadline: Option<Instant>) -> Result<(), PutError<T>> {
        if self.word(W_SHUTDOWN).load(SeqCst) != 0 {
            return Err(PutError::ShutDown(item));
        }
        let payload = match postcard::to_allocvec(&item) {
            Ok(p) => p,
            Err(e) => return Err(PutError::Failed(item, e.to_string())),
        };
        if self.inner.maxsize > 0 {
            let slots = self.word(W_SLOTS);
            loop {
                if self.word(W_SHUTDOWN).load(SeqCst) != 0 {
                    return Err(PutError::ShutDown(item));
                }
                let v = slots.load(SeqCst);
                if v > 0 {
                    if slots.compare_exchange(v, v - 1, SeqCst, SeqCst).is_ok() {
                        break;
                    }
                    continue;
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(PutError::Full(item));
                }
                futex_wait(slots, 0, deadline);
            }
        }
        let record = match make_record(payload) {
            Ok(r) => r,
            Err(e) => {
                self.release_slot();
                return Err(PutError::Failed(item, e.to_string()));
            }
        };
        self.word(W_COUNT).fetch_add(1, SeqCst);
        self.word(W_UNFINISHED).fetch_add(1, SeqCst);
        self.inner.enqueue(record);
        Ok(())
    }

    fn release_slot(&self) {
        if self.inner.maxsize > 0 {
            self.word(W_SLOTS).fetch_add(1, SeqCst);
            futex_wake(self.word(W_SLOTS), 1);
        }
    }

    /// Removes and returns an item, waiting for one (Python's `get()`).
    ///
    /// # Errors
    /// [`GetError::ShutDown`] once the queue is shut down and empty (or shut
    /// down immediately); [`GetError::Failed`] if an item does not decode as
    /// a `T` (it is consumed).
    pub fn get(&self) -> Result<T, GetError> {
        self.get_deadline_opt(None)
    }

    /// Removes and returns an item if one is there (Python's `get_nowait`).
    ///
    /// # Errors
    /// [`GetError::Empty`] if none is; otherwise as [`get`](Self::get).
    pub fn try_get(&self) -> Result<T, GetError> {
        self.get_deadline_opt(Some(Instant::now()))
    }

    /// Removes and returns an item, waiting at most `timeout` (Python's
    /// `get(timeout=...)`).
    ///
    /// # Errors
    /// [`GetError::Empty`] if none came in time; otherwise as [`get`](Self::get).
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.get_deadline_opt(Instant::now().checked_add(timeout))
    }

    /// Removes and returns an item, waiting until `deadline`.
    ///
    /// # Errors
    /// As [`get_timeout`](Self::get_timeout).
    pub fn get_deadline(&self, deadline: Instant) -> Result<T, GetError> {
        self.get_deadline_opt(Some(deadline))
    }

    fn get_deadline_opt(&self, deadline: Option<Instant>) -> Result<T, GetError> {
        loop {
            let shut = self.word(W_SHUTDOWN).load(SeqCst);
            if shut == 2 {
                return Err(GetError::ShutDown);
            }
            match recv_record(self.inner.rx.as_raw_fd()) {
                Ok(Some(payload)) => {
                    self.word(W_COUNT).fetch_sub(1, SeqCst);
                    self.release_slot();
                    return postcard::from_bytes(&payload)
                        .map_err(|e| GetError::Failed(e.to_string()));
                }
                Ok(None) => {}
                Err(e) => return Err(GetError::Failed(e.to_string())),
            }
            if shut == 1 && self.word(W_COUNT).load(SeqCst) == 0 {
                return Err(GetError::ShutDown);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(GetError::Empty);
            }
            // Wait for a record or the shutdown signal (after a shutdown,
            // only for records, in short slices).
            let slice = if shut == 0 {
                deadline
            } else {
                Some(Instant::now() + Duration::from_millis(10))
            };
            let slice = match (slice, deadline) {
                (Some(s), Some(d)) => Some(s.min(d)),
                (s, d) => s.or(d),
            };
            let timeout = match slice {
                None => PollTimeout::NONE,
                Some(d) => {
                    let ms = d
                        .saturating_duration_since(Instant::now())
                        .as_nanos()
                        .div_ceil(1_000_000);
                    PollTimeout::try_from(ms.min(i32::MAX as u128) as i32)
                        .unwrap_or(PollTimeout::MAX)
                }
            };
            let mut fds = vec![PollFd::new(self.inner.rx.as_fd(), PollFlags::POLLIN)];
            if shut == 0 {
                fds.push(PollFd::new(self.inner.wake.as_fd(), PollFlags::POLLIN));
            }
            let _ = poll(&mut fds, timeout);
        }
    }

    /// The number of items put and not yet taken (Python's `qsize()`;
    /// approximate while others put and get).
    pub fn qsize(&self) -> usize {
        self.word(W_COUNT).load(SeqCst) as usize
    }

    /// Whether [`qsize`](Self::qsize) is 0 (Python's `empty()`).
    pub fn empty(&self) -> bool {
        self.qsize() == 0
    }

    /// Whether a bounded queue holds `maxsize` items (Python's `full()`).
    pub fn full(&self) -> bool {
        self.inner.maxsize > 0 && self.qsize() >= self.inner.maxsize
    }

    /// The bound, 0 for unbounded (Python's `maxsize`).
    pub fn maxsize(&self) -> usize {
        self.inner.maxsize
    }

    /// Marks one item taken with `get` as processed (Python's
    /// `JoinableQueue.task_done()`).
    ///
    /// # Errors
    /// [`TaskDoneError`] if called more times than items were put (Python's
    /// `ValueError`).
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        let w = self.word(W_UNFINISHED);
        let mut v = w.load(SeqCst);
        loop {
            if v == 0 {
                return Err(TaskDoneError);
            }
            match w.compare_exchange(v, v - 1, SeqCst, SeqCst) {
                Ok(_) => break,
                Err(now) => v = now,
            }
        }
        if v == 1 {
            futex_wake(w, i32::MAX);
        }
        Ok(())
    }

    /// Waits until every item put has been marked with
    /// [`task_done`](Self::task_done) (Python's `JoinableQueue.join()`).
    pub fn join(&self) {
        let _ = self.join_deadline_opt(None);
    }

    /// Waits at most `timeout` for [`join`](Self::join); true if all tasks
    /// are done.
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.join_deadline_opt(Instant::now().checked_add(timeout))
    }

    fn join_deadline_opt(&self, deadline: Option<Instant>) -> bool {
        let w = self.word(W_UNFINISHED);
        loop {
            let v = w.load(SeqCst);
            if v == 0 {
                return true;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            futex_wait(w, v, deadline);
        }
    }

    /// Shuts the queue down for every process (Python 3.13's
    /// `shutdown(immediate)`): puts fail with `ShutDown`; gets drain what is
    /// left then fail with `ShutDown` — at once if `immediate`, which also
    /// discards the items still queued and releases `join`.
    pub fn shutdown(&self, immediate: bool) {
        self.word(W_SHUTDOWN)
            .store(if immediate { 2 } else { 1 }, SeqCst);
        if immediate {
            while let Ok(Some(_)) = recv_record(self.inner.rx.as_raw_fd()) {
                self.word(W_COUNT).fetch_sub(1, SeqCst);
            }
            self.word(W_UNFINISHED).store(0, SeqCst);
            futex_wake(self.word(W_UNFINISHED), i32::MAX);
        }
        futex_wake(self.word(W_SLOTS), i32::MAX);
        let _ = self.inner.wake.write(1);
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    pub fn is_shutdown(&self) -> bool {
        self.word(W_SHUTDOWN).load(SeqCst) != 0
    }
}

/// Encodes a record: inline, or as a memfd for large payloads.
fn make_record(payload: Vec<u8>) -> io::Result<Vec<u8>> {
    let mut rec = Vec::with_capacity(payload.len() + 1);
    rec.push(TAG_INLINE);
    rec.extend_from_slice(&payload);
    Ok(rec)
}

/// Sends one record without blocking; `Ok(false)` if the socket is full.
fn send_record(tx: RawFd, rec: &[u8]) -> io::Result<bool> {
    let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
    if rec.len() - 1 <= INLINE_MAX {
        match sendmsg::<()>(tx, &[IoSlice::new(rec)], &[], flags, None) {
            Ok(_) => return Ok(true),
            Err(nix::errno::Errno::EAGAIN) => return Ok(false),
            Err(nix::errno::Errno::EMSGSIZE) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // Too large for one record: the payload goes in a memfd.
    let memfd =
        nix::sys::memfd::memfd_create("spindle-item", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)?;
    let mut file = std::fs::File::from(memfd);
    file.write_all(&rec[1..])?;
    let mut head = vec![TAG_MEMFD];
    head.extend_from_slice(&((rec.len() - 1) as u64).to_le_bytes());
    let fds = [file.as_raw_fd()];
    match sendmsg::<()>(
        tx,
        &[IoSlice::new(&head)],
        &[ControlMessage::ScmRights(&fds)],
        flags,
        None,
    ) {
        Ok(_) => Ok(true),
        Err(nix::errno::Errno::EAGAIN) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

thread_local! {
    static RECV_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Receives one record without blocking; `Ok(None)` if there is none.
fn recv_record(rx: RawFd) -> io::Result<Option<Vec<u8>>> {
    RECV_BUF.with(|b| {
        let mut buf = b.borrow_mut();
        if buf.len() < INLINE_MAX + 16 {
            buf.resize(INLINE_MAX + 16, 0);
        }
        let mut cmsg = nix::cmsg_space!([RawFd; 4]);
        let (n, fd, truncated) = {
            let mut iov = [IoSliceMut::new(&mut buf[..])];
            let msg = match recvmsg::<()>(
                rx,
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(m) => m,
                Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            let mut fd = None;
            for c in msg.cmsgs()? {
                if let ControlMessageOwned::ScmRights(raw) = c {
                    for r in raw {
                        // SAFETY: the kernel installed `r` for us with this
                        // record; nothing else owns it.
                        let owned = unsafe { OwnedFd::from_raw_fd(r) };
                        fd.get_or_insert(owned);
                    }
                }
            }
            (msg.bytes, fd, msg.flags.contains(MsgFlags::MSG_TRUNC))
        };
        if truncated || n == 0 {
            return Err(io::Error::other("malformed queue record"));
        }
        match (buf[0], fd) {
            (TAG_INLINE, _) => Ok(Some(buf[1..n].to_vec())),
            (TAG_MEMFD, Some(fd)) if n == 9 => {
                let len = u64::from_le_bytes(buf[1..9].try_into().expect("8 bytes")) as usize;
                let file = std::fs::File::from(fd);
                if file.metadata()?.len() < len as u64 {
                    return Err(io::Error::other("queue item shorter than announced"));
                }
                let mut out = vec![0u8; len];
                file.read_exact_at(&mut out, 0)?;
                Ok(Some(out))
            }
            _ => Err(io::Error::other("malformed queue record")),
        }
    })
}

impl Inner {
    /// Sends a record now if nothing of ours is pending, else hands it to the
    /// feeder thread (so one process's items keep their order).
    fn enqueue(self: &Arc<Self>, rec: Vec<u8>) {
        let mut f = self.feeder.lock();
        let me = std::process::id();
        if f.pid != me {
            // A forked copy: the parent's pending items are the parent's.
            *f = Feeder {
                pid: me,
                buf: VecDeque::new(),
                running: false,
            };
        }
        if !f.running {
            match send_record(self.tx.as_raw_fd(), &rec) {
                Ok(true) => return,
                Ok(false) => {}
                // A broken socket: keep the item for the feeder, which
                // reports nothing but never loses order; reads will fail.
                Err(_) => {}
            }
        }
        f.buf.push_back(rec);
        if !f.running {
            f.running = true;
            FEEDERS.lock().push(Arc::downgrade(self));
            let inner = self.clone();
            let spawned = std::thread::Builder::new()
                .name("spindle-queue-feeder".into())
                .spawn(move || inner.feed());
            if spawned.is_err() {
                f.running = false;
            }
        }
    }

    /// The feeder thread: sends the buffered records, blocking as needed.
    fn feed(&self) {
        loop {
            let rec = {
                let mut f = self.feeder.lock();
                match f.buf.pop_front() {
                    Some(r) => r,
                    None => {
                        f.running = false;
                        self.flushed.notify_all();
                        return;
                    }
                }
            };
            loop {
                match send_record(self.tx.as_raw_fd(), &rec) {
                    Ok(true) => break,
                    Ok(false) => {
                        let mut fds = [PollFd::new(self.tx.as_fd(), PollFlags::POLLOUT)];
                        let _ = poll(&mut fds, PollTimeout::from(100u8));
                    }
                    Err(_) => break, // the receiving side is gone for good
                }
            }
        }
    }

    /// Waits until this process's pending records are sent.
    fn flush(&self) {
        let mut f = self.feeder.lock();
        while f.running && f.pid == std::process::id() {
            self.flushed.wait(&mut f);
        }
    }
}

/// Sends every queue's pending records before the process exits (Python
/// joins its feeder threads at exit).
pub(crate) fn flush_all() {
    let feeders: Vec<_> = std::mem::take(&mut *FEEDERS.lock());
    for q in feeders.iter().filter_map(Weak::upgrade) {
        q.flush();
    }
}

impl<T> Serialize for Queue<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let i = &self.inner;
        let ids =
            [i.tx.as_fd(), i.rx.as_fd(), i.wake.as_fd(), i.shm.fd()].map(|fd| fdpass::export(fd));
        let mut out = [0u32; 4];
        for (o, r) in out.iter_mut().zip(ids) {
            *o = r.map_err(serde::ser::Error::custom)?;
        }
        (out, i.maxsize as u64).serialize(s)
    }
}

impl<'de, T: Serialize + DeserializeOwned> Deserialize<'de> for Queue<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (ids, maxsize) = <([u32; 4], u64)>::deserialize(d)?;
        let take = |i: u32| fdpass::import(i).map_err(serde::de::Error::custom);
        let (tx, rx, wake, shm) = (take(ids[0])?, take(ids[1])?, take(ids[2])?, take(ids[3])?);
        let shm = SharedWords::map(shm, WORDS).map_err(serde::de::Error::custom)?;
        // SAFETY: `wake` is the eventfd the sender exported, now ours alone.
        let wake = unsafe { EventFd::from_owned_fd(wake) };
        Ok(Queue::from_parts(tx, rx, wake, shm, maxsize as usize))
    }
}
