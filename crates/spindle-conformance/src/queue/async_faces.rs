//! Async checks: the async faces of a queue (`put_async`, `get_async`,
//! `join_async`, asyncio's `await q.put(x)`, `await q.get()`, `await
//! q.join()`) on the same queue as its blocking methods. They are
//! runtime-agnostic: the futures are driven here by a tiny `block_on` and
//! by hand (`poll_once`), no runtime involved. CPython has no equivalent
//! (its `asyncio.Queue` is a separate class for one event loop), so these
//! check spindle's rules (`spindle/src/queue/README.md`, rule 6): tasks and
//! threads share the queue, shutdown wakes parked tasks, one item (or free
//! place) wakes one task, and a cancelled (dropped) future loses no item
//! and passes on a wake-up it did not use.
//!
//! A queue takes part through [`AsyncQueue`]; the wakes may come from
//! another thread (a queue between processes wakes its tasks from a
//! waiter thread), so the checks wait for them, within generous bounds.

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use spindle::queue::{BlockingQueue, Order, OrderedQueue, PutError, ShutDown};

use super::{ExpectedOrder, check};

/// A queue with async faces: the futures of `put`, `get` and `join`, with
/// the blocking methods' outcomes.
///
/// Implemented here for the thread queues (`Queue`, `LifoQueue`,
/// `PriorityQueue`) and for `spindle::ipc::Queue` (whose item failures,
/// `QueueError::Item`, read as a shut-down queue, as its `BlockingQueue`
/// implementation says).
pub trait AsyncQueue<T>: BlockingQueue<T> {
    /// `put_async(item)`: `Err` with the item when the queue is shut down.
    fn put_async(&self, item: T) -> impl Future<Output = Result<(), PutError<T>>> + Send + '_;
    /// `get_async()`: `Err(ShutDown)` once shut down and empty.
    fn get_async(&self) -> impl Future<Output = Result<T, ShutDown>> + Send + '_;
    /// `join_async()`: ready once every item put is marked done.
    fn join_async(&self) -> impl Future<Output = ()> + Send + '_;
}

impl<T: Send, O: Order<T>> AsyncQueue<T> for OrderedQueue<T, O>
where
    OrderedQueue<T, O>: BlockingQueue<T>,
    O::Core: Sync,
{
    fn put_async(&self, item: T) -> impl Future<Output = Result<(), PutError<T>>> + Send + '_ {
        OrderedQueue::put_async(self, item)
    }
    fn get_async(&self) -> impl Future<Output = Result<T, ShutDown>> + Send + '_ {
        OrderedQueue::get_async(self)
    }
    fn join_async(&self) -> impl Future<Output = ()> + Send + '_ {
        OrderedQueue::join_async(self)
    }
}

impl<T> AsyncQueue<T> for spindle::ipc::Queue<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned + Send,
{
    fn put_async(&self, item: T) -> impl Future<Output = Result<(), PutError<T>>> + Send + '_ {
        let put = spindle::ipc::Queue::put_async(self, item);
        async move {
            put.await.map_err(|e| match e {
                spindle::ipc::QueueError::Queue(e) => e,
                spindle::ipc::QueueError::Item(e) => PutError(e.into_inner()),
            })
        }
    }
    fn get_async(&self) -> impl Future<Output = Result<T, ShutDown>> + Send + '_ {
        let get = spindle::ipc::Queue::get_async(self);
        async move { get.await.map_err(|_| ShutDown) }
    }
    fn join_async(&self) -> impl Future<Output = ()> + Send + '_ {
        spindle::ipc::Queue::join_async(self)
    }
}

macro_rules! proxy_async_queue {
    ($proxy:ident) => {
        impl<T> AsyncQueue<T> for spindle::manager::$proxy<T>
        where
            T: serde::Serialize + serde::de::DeserializeOwned + Send,
        {
            fn put_async(
                &self,
                item: T,
            ) -> impl Future<Output = Result<(), PutError<T>>> + Send + '_ {
                spindle::manager::$proxy::put_async(self, item)
            }
            fn get_async(&self) -> impl Future<Output = Result<T, ShutDown>> + Send + '_ {
                spindle::manager::$proxy::get_async(self)
            }
            fn join_async(&self) -> impl Future<Output = ()> + Send + '_ {
                spindle::manager::$proxy::join_async(self)
            }
        }
    };
}

// The manager's queue proxies: each async call runs on the server on a
// channel of its own and is cancelled there when its future is dropped.
proxy_async_queue!(QueueProxy);
proxy_async_queue!(LifoQueueProxy);

/// Items of the streaming checks.
const N: u64 = if cfg!(miri) { 100 } else { 5_000 };

/// How long a wake-up that must come may take (a loaded machine).
const LONG: Duration = Duration::from_secs(20);

/// Wakes the thread parked in [`block_on`].
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs a future to completion on this thread, parking it until woken.
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        thread::park();
    }
}

/// A waker that counts its wakes.
#[derive(Default)]
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

impl Count {
    fn get(&self) -> usize {
        self.0.load(SeqCst)
    }
}

fn counting() -> (Arc<Count>, Waker) {
    let c = Arc::new(Count::default());
    (c.clone(), Waker::from(c))
}

/// Polls `f` once with `waker`.
fn poll_once<F: Future + ?Sized>(f: Pin<&mut F>, waker: &Waker) -> Poll<F::Output> {
    f.poll(&mut Context::from_waker(waker))
}

/// Waits (yielding) until `cond` holds; fails naming `what` after [`LONG`].
fn until(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        check(
            start.elapsed() < LONG,
            &format!("timed out waiting for {what}"),
        );
        thread::yield_now();
    }
}

/// A blocking producer thread feeds an async consumer through a bounded
/// queue; shutdown ends the consumer after the last item.
pub fn async_get_from_blocking_producer<Q, F>(_: ExpectedOrder, make: F)
where
    Q: AsyncQueue<u64> + Sync,
    F: Fn(usize) -> Q,
{
    let q = make(64);
    thread::scope(|s| {
        s.spawn(|| {
            for i in 0..N {
                q.put(i).unwrap();
            }
            q.shutdown(false);
        });
        let sum = block_on(async {
            let mut sum = 0;
            while let Ok(x) = q.get_async().await {
                sum += x;
            }
            sum
        });
        check(
            sum == (0..N).sum::<u64>(),
            "the async consumer got every item",
        );
    });
}

/// An async producer feeds a blocking consumer thread through a bounded
/// queue of 4: `put_async` waits for room.
pub fn async_put_to_blocking_consumer<Q, F>(_: ExpectedOrder, make: F)
where
    Q: AsyncQueue<u64> + Sync,
    F: Fn(usize) -> Q,
{
    let q = make(4);
    thread::scope(|s| {
        let consumer = s.spawn(|| {
            let mut sum = 0;
            while let Ok(x) = q.get() {
                sum += x;
            }
            sum
        });
        block_on(async {
            for i in 0..N {
                q.put_async(i).await.unwrap();
            }
        });
        q.shutdown(false);
        check(
            consumer.join().unwrap() == (0..N).sum::<u64>(),
            "the blocking consumer got every item",
        );
    });
}

/// `join_async` waits for `task_done`, and is woken by the last one.
pub fn async_join_waits_for_task_done<Q, F>(_: ExpectedOrder, make: F)
where
    Q: AsyncQueue<u64> + Sync,
    F: Fn(usize) -> Q,
{
    let q = make(0);
    q.put(1).unwrap();
    let (count, waker) = counting();
    let mut join = pin!(q.join_async());
    check(
        poll_once(join.as_mut(), &waker).is_pending(),
        "join_async waits while a task is unfinished",
    );
    q.get().unwrap();
    check(count.get() == 0, "a get alone does not wake join_async");
    q.task_done().unwrap();
    until("task_done to wake join_async", || count.get() >= 1);
    check(
        poll_once(join.as_mut(), &waker).is_ready(),
        "join_async is ready once every task is done",
    );
    block_on(q.join_async());
}

/// Shutdown wakes parked tasks: a getter of an empty queue (`ShutDown`), a
/// putter of a full one (the item handed back), and with `immediate` a
/// joiner (the dropped items count as done).
pub fn async_shutdown_wakes_waiters<Q, F>(_: ExpectedOrder, make: F)
where
    Q: AsyncQueue<u64> + Sync,
    F: Fn(usize) -> Q,
{
    let q = make(0);
    q.shutdown(false);
    check(
        block_on(q.get_async()) == Err(ShutDown),
        "get_async on a shut-down empty queue",
    );
    let q = make(0);
    let (count, waker) = counting();
    let mut get = pin!(q.get_async());
    check(
        poll_once(get.as_mut(), &waker).is_pending(),
        "get_async waits on an empty queue",
    );
    q.shutdown(false);
    until("shutdown to wake the getter", || count.get() >= 1);
    check(
        poll_once(get.as_mut(), &waker) == Poll::Ready(Err(ShutDown)),
        "the woken getter reports ShutDown",
    );

    let q = make(1);
    q.put(1).unwrap();
    let (count, waker) = counting();
    let mut put = pin!(q.put_async(2));
    check(
        poll_once(put.as_mut(), &waker).is_pending(),
        "put_async waits on a full queue",
    );
    let mut join = pin!(q.join_async());
    check(
        poll_once(join.as_mut(), &waker).is_pending(),
        "join_async waits while a task is unfinished",
    );
    q.shutdown(true);
    until(
        "an immediate shutdown to wake the putter and the joiner",
        || count.get() >= 2,
    );
    match poll_once(put.as_mut(), &waker) {
        Poll::Ready(Err(e)) => check(e.into_inner() == 2, "the put's item is handed back"),
        other => check(false, &format!("put_async after shutdown: {other:?}")),
    }
    check(
        poll_once(join.as_mut(), &waker).is_ready(),
        "join_async is ready after an immediate shutdown",
    );
}

/// One item wakes one parked getter; a woken `get_async` dropped instead
/// of polled passes the wake-up on: the item goes to the next task.
pub fn async_cancelled_get_passes_wake_on<Q, F>(_: ExpectedOrder, make: F)
where
    Q: AsyncQueue<u64> + Sync,
    F: Fn(usize) -> Q,
{
    let q = make(0);
    let (a_count, a_waker) = counting();
    let (b_count, b_waker) = counting();
    let mut a = Box::pin(q.get_async());
    let mut b = Box::pin(q.get_async());
    check(poll_once(a.as_mut(), &a_waker).is_pending(), "a waits");
    check(poll_once(b.as_mut(), &b_waker).is_pending(), "b waits");
    q.put(7).unwrap();
    until("the put to wake the first getter", || a_count.get() >= 1);
    check(b_count.get() == 0, "one item wakes one task");
    drop(a); // cancelled, e.g. the other branch of a select! won
    until("the wake-up to be passed on", || b_count.get() >= 1);
    check(
        poll_once(b.as_mut(), &b_waker) == Poll::Ready(Ok(7)),
        "the next getter takes the item",
    );
    check(q.is_empty(), "nothing left");
}

/// A cancelled `get_async` never takes an item: the item stays queued.
pub fn async_cancelled_get_loses_no_item<Q, F>(_: ExpectedOrder, make: F)
where
    Q: AsyncQueue<u64> + Sync,
    F: Fn(usize) -> Q,
{
    let q = make(0);
    let (_, waker) = counting();
    let mut pending = Box::pin(q.get_async());
    check(
        poll_once(pending.as_mut(), &waker).is_pending(),
        "get_async waits on an empty queue",
    );
    q.put(5).unwrap();
    drop(pending);
    check(
        q.try_get() == Ok(5),
        "the item put under a cancelled getter is still there",
    );
}

/// A cancelled `put_async` puts nothing, and a free place it was woken for
/// goes to the next putter.
pub fn async_cancelled_put_passes_place_on<Q, F>(_: ExpectedOrder, make: F)
where
    Q: AsyncQueue<u64> + Sync,
    F: Fn(usize) -> Q,
{
    let q = make(1);
    q.put(0).unwrap();
    let (a_count, a_waker) = counting();
    let (b_count, b_waker) = counting();
    let mut a = Box::pin(q.put_async(1));
    let mut b = Box::pin(q.put_async(2));
    check(poll_once(a.as_mut(), &a_waker).is_pending(), "a waits");
    check(poll_once(b.as_mut(), &b_waker).is_pending(), "b waits");
    check(q.get() == Ok(0), "the first item");
    until("the freed place to wake the first putter", || {
        a_count.get() >= 1
    });
    check(b_count.get() == 0, "one place wakes one task");
    drop(a);
    until("the place to be passed on", || b_count.get() >= 1);
    check(
        matches!(poll_once(b.as_mut(), &b_waker), Poll::Ready(Ok(()))),
        "the next putter puts",
    );
    check(q.try_get() == Ok(2), "only the second item was put");
    check(q.is_empty(), "the cancelled put put nothing");
}

/// Stress: consumers that cancel their `get_async` every other time
/// against blocking producers; every item is received exactly once.
pub fn async_racing_cancellations_lose_nothing<Q, F>(_: ExpectedOrder, make: F)
where
    Q: AsyncQueue<u64> + Sync,
    F: Fn(usize) -> Q,
{
    let q = make(0);
    let mut all: Vec<u64> = thread::scope(|s| {
        let producers: Vec<_> = (0..2u64)
            .map(|p| {
                let q = &q;
                s.spawn(move || (0..N / 2).for_each(|i| q.put(p * N + i).unwrap()))
            })
            .collect();
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let (_, waker) = counting();
                    let mut got = Vec::new();
                    let mut round = 0usize;
                    loop {
                        round += 1;
                        let mut f = Box::pin(q.get_async());
                        match poll_once(f.as_mut(), &waker) {
                            Poll::Ready(Ok(x)) => got.push(x),
                            Poll::Ready(Err(ShutDown)) => break,
                            Poll::Pending if round.is_multiple_of(2) => drop(f), // cancelled
                            Poll::Pending => match block_on(f) {
                                Ok(x) => got.push(x),
                                Err(ShutDown) => break,
                            },
                        }
                    }
                    got
                })
            })
            .collect();
        producers.into_iter().for_each(|p| p.join().unwrap());
        q.shutdown(false);
        consumers
            .into_iter()
            .flat_map(|c| c.join().unwrap())
            .collect()
    });
    check(all.len() == N as usize, "items lost or duplicated");
    all.sort_unstable();
    all.dedup();
    check(all.len() == N as usize, "an item was delivered twice");
}

/// An async put wakes a thread blocked in `get_timeout`: the faces
/// interoperate on one queue.
pub fn async_put_wakes_a_blocked_thread<Q, F>(_: ExpectedOrder, make: F)
where
    Q: AsyncQueue<u64> + Sync,
    F: Fn(usize) -> Q,
{
    let q = make(0);
    thread::scope(|s| {
        let t = s.spawn(|| q.get_timeout(LONG));
        block_on(q.put_async(5)).unwrap();
        check(
            t.join().unwrap() == Ok(5),
            "the blocked thread got the item",
        );
    });
}
