//! The queue conformance suite: generic checks every [`BlockingQueue`]
//! implementation must pass, whatever its scope (threads, processes,
//! managers, Redis).
//!
//! The checks port the behaviours of CPython's `Lib/test/test_queue.py`
//! (`BaseQueueTestMixin`, including Python 3.13's shutdown tests); each
//! function names the Python test it mirrors. Each check takes the expected
//! [`ExpectedOrder`] and a factory `make(maxsize)` that builds a fresh, empty
//! queue of `u64` (0 = unbounded), and panics with a message when the
//! implementation breaks the contract.
//!
//! The [`queue_suite!`](crate::queue_suite) macro expands to one `#[test]`
//! per check:
//!
//! ```
//! use spindle::queue::LifoQueue;
//! use spindle_conformance::queue::{self, ExpectedOrder};
//!
//! // In a test file: spindle_conformance::queue_suite!(ExpectedOrder::Lifo, LifoQueue::with_maxsize);
//! // Or call the checks one by one:
//! queue::basic(ExpectedOrder::Lifo, LifoQueue::with_maxsize);
//! ```

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::thread;
use std::time::{Duration, Instant};

use spindle::queue::{BlockingQueue, GetTimeoutError, PutTimeoutError, TryGetError, TryPutError};

/// The order a queue under test hands its items out in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedOrder {
    /// First in, first out (`Queue`).
    Fifo,
    /// Last in, first out (`LifoQueue`).
    Lifo,
    /// Smallest first (`PriorityQueue`).
    Priority,
}

/// `QUEUE_SIZE` of CPython's test_queue.py.
const QUEUE_SIZE: usize = 5;

/// Long enough for a helper thread to block in the call under test; the
/// checks stay correct (only less searching) if it does not.
const SETTLE: Duration = Duration::from_millis(30);

/// A wait nobody signals: it must time out.
const SHORT: Duration = Duration::from_millis(5);

/// Fails the calling check when `cond` does not hold.
fn check(cond: bool, what: &str) {
    assert!(cond, "queue conformance: {what}");
}

/// Runs `block` (which must block) and `trigger` in another thread after a
/// pause; `block` must not return before `trigger` ran. CPython's
/// `BlockingTestMixin.do_blocking_test`.
fn blocking<R>(block: impl FnOnce() -> R, trigger: impl FnOnce() + Send) -> R {
    let triggered = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            thread::sleep(SETTLE);
            triggered.store(true, SeqCst);
            trigger();
        });
        let r = block();
        check(
            triggered.load(SeqCst),
            "blocking call returned before it was unblocked",
        );
        r
    })
}

/// `basic_queue_test`: order of 111, 333, 222; full and empty conditions;
/// try, timeout and blocking variants of put and get.
pub fn basic<Q, F>(order: ExpectedOrder, make: F)
where
    Q: BlockingQueue<u64> + Sync,
    F: Fn(usize) -> Q,
{
    let q = make(QUEUE_SIZE);
    check(q.is_empty() && q.qsize() == 0, "a new queue is empty");
    check(q.maxsize() == QUEUE_SIZE, "maxsize is what was asked");
    for n in [111, 333, 222] {
        q.put(n).unwrap();
    }
    let expected = match order {
        ExpectedOrder::Fifo => [111, 333, 222],
        ExpectedOrder::Lifo => [222, 333, 111],
        ExpectedOrder::Priority => [111, 222, 333],
    };
    let got = [q.get().unwrap(), q.get().unwrap(), q.get().unwrap()];
    check(
        got == expected,
        &format!("{order:?} order: got {got:?}, want {expected:?}"),
    );

    for i in 0..QUEUE_SIZE as u64 - 1 {
        q.put(i).unwrap();
        check(q.qsize() > 0, "qsize counts puts");
    }
    check(!q.is_full(), "not full one short of maxsize");
    let (last, full) = (2 * QUEUE_SIZE as u64, 6 * QUEUE_SIZE as u64);
    q.put(last).unwrap();
    check(q.is_full() && !q.is_empty(), "full at maxsize");
    check(
        q.try_put(full) == Err(TryPutError::Full(full)),
        "try_put on a full queue hands the item back as Full",
    );
    check(
        matches!(q.put_timeout(full, SHORT), Err(PutTimeoutError::Timeout(x)) if x == full),
        "put_timeout on a full queue times out with the item",
    );
    blocking(
        || q.put(full).unwrap(),
        || {
            q.get().unwrap();
        },
    );
    blocking(
        || q.put_timeout(full, Duration::from_secs(10)).unwrap(),
        || {
            q.get().unwrap();
        },
    );
    for _ in 0..QUEUE_SIZE {
        q.get().unwrap();
    }
    check(q.qsize() == 0, "empty after taking everything");
    check(
        q.try_get() == Err(TryGetError::Empty),
        "try_get on an empty queue is Empty",
    );
    check(
        q.get_timeout(SHORT) == Err(GetTimeoutError::Timeout),
        "get_timeout on an empty queue times out",
    );
    check(
        blocking(|| q.get().unwrap(), || q.put(7).unwrap()) == 7,
        "blocked get takes the item put",
    );
    let got = blocking(
        || q.get_timeout(Duration::from_secs(10)).unwrap(),
        || q.put(8).unwrap(),
    );
    check(got == 8, "get_timeout takes the item put while it waits");
}

/// `test_nowait` and the deadline variants: non-blocking calls never block.
pub fn nowait<Q, F>(_: ExpectedOrder, make: F)
where
    Q: BlockingQueue<u64>,
    F: Fn(usize) -> Q,
{
    let q = make(QUEUE_SIZE);
    for i in 0..QUEUE_SIZE as u64 {
        q.try_put(i).unwrap();
    }
    check(q.try_put(99).unwrap_err().is_full(), "try_put Full");
    check(
        q.put_deadline(99, Instant::now()).unwrap_err().is_timeout(),
        "put_deadline in the past on a full queue times out",
    );
    for _ in 0..QUEUE_SIZE {
        q.try_get().unwrap();
    }
    check(q.try_get() == Err(TryGetError::Empty), "try_get Empty");
    check(
        q.get_deadline(Instant::now()) == Err(GetTimeoutError::Timeout),
        "get_deadline in the past",
    );
    let start = Instant::now();
    check(
        q.get_timeout(SHORT).is_err(),
        "a wait nobody signals times out",
    );
    check(
        start.elapsed() >= SHORT,
        "get_timeout waited at least its timeout",
    );
}

/// `test_queue_task_done`: `task_done` more often than `put` is an error,
/// and leaves the count usable.
pub fn task_done_too_many<Q, F>(_: ExpectedOrder, make: F)
where
    Q: BlockingQueue<u64>,
    F: Fn(usize) -> Q,
{
    let q = make(0);
    check(
        q.task_done().is_err(),
        "task_done on a fresh queue is an error",
    );
    q.put(1).unwrap();
    q.get().unwrap();
    check(q.task_done().is_ok(), "task_done after one put");
    check(q.task_done().is_err(), "second task_done is an error");
    check(
        q.join_timeout(Duration::from_secs(10)).is_ok(),
        "join returns when all tasks are done",
    );
}

/// `test_queue_join` (`queue_join_test`, twice): two consumers, 100 items,
/// `join` returns only once every item was processed.
pub fn join_with_consumers<Q, F>(_: ExpectedOrder, make: F)
where
    Q: BlockingQueue<u64> + Sync,
    F: Fn(usize) -> Q,
{
    const STOP: u64 = u64::MAX;
    let q = make(0);
    for _round in 0..2 {
        let cum = AtomicU64::new(0);
        thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    loop {
                        let x = q.get().unwrap();
                        if x == STOP {
                            q.task_done().unwrap();
                            return;
                        }
                        cum.fetch_add(x, SeqCst);
                        q.task_done().unwrap();
                    }
                });
            }
            for i in 0..100 {
                q.put(i).unwrap();
            }
            q.join();
            check(
                cum.load(SeqCst) == (0..100).sum::<u64>(),
                "join returned before every task was done",
            );
            for _ in 0..2 {
                q.put(STOP).unwrap();
            }
            q.join();
        });
    }
}

/// Many producers and consumers through a small bounded queue: every item
/// arrives exactly once (counts, sums and a set of ids).
pub fn many_producers_consumers<Q, F>(_: ExpectedOrder, make: F)
where
    Q: BlockingQueue<u64> + Sync,
    F: Fn(usize) -> Q,
{
    const PRODUCERS: u64 = 4;
    const CONSUMERS: usize = 4;
    let per = if cfg!(miri) { 50 } else { 5_000 };
    let q = make(16);
    let seen = Mutex::new(HashSet::new());
    let count = AtomicUsize::new(0);
    thread::scope(|s| {
        let consumers: Vec<_> = (0..CONSUMERS)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    while let Ok(x) = q.get() {
                        mine.push(x);
                    }
                    count.fetch_add(mine.len(), SeqCst);
                    let mut seen = seen.lock().unwrap();
                    for x in mine {
                        check(seen.insert(x), "an item was delivered twice");
                    }
                })
            })
            .collect();
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let q = &q;
                s.spawn(move || {
                    for i in 0..per {
                        q.put(p * 1_000_000 + i).unwrap();
                    }
                })
            })
            .collect();
        producers.into_iter().for_each(|h| h.join().unwrap());
        q.shutdown(false);
        consumers.into_iter().for_each(|h| h.join().unwrap());
    });
    let total = PRODUCERS as usize * per as usize;
    check(count.load(SeqCst) == total, "items lost");
    let want: u64 = (0..PRODUCERS)
        .flat_map(|p| (0..per).map(move |i| p * 1_000_000 + i))
        .sum();
    check(
        seen.into_inner().unwrap().iter().sum::<u64>() == want,
        "sum of items differs",
    );
}

mod async_faces;
mod shutdown;

pub use async_faces::{
    AsyncQueue, async_cancelled_get_loses_no_item, async_cancelled_get_passes_wake_on,
    async_cancelled_put_passes_place_on, async_get_from_blocking_producer,
    async_join_waits_for_task_done, async_put_to_blocking_consumer,
    async_put_wakes_a_blocked_thread, async_racing_cancellations_lose_nothing,
    async_shutdown_wakes_waiters,
};

pub use shutdown::{
    shutdown_all_methods_in_many_threads, shutdown_all_methods_in_one_thread,
    shutdown_allowed_transitions, shutdown_empty, shutdown_get, shutdown_get_task_done_join,
    shutdown_join, shutdown_nonempty, shutdown_pending_get, shutdown_put, shutdown_put_join,
};

/// An item whose comparison panics while its flag is up: the Rust form of
/// CPython's `FailingQueueTest` (a queue whose `_put` / `_get` raise). Items
/// compare by their number; every item of one check shares one flag.
#[derive(Debug, Clone)]
pub struct Touchy {
    /// The value the items are ordered by.
    pub n: u64,
    fail: std::sync::Arc<AtomicBool>,
}

impl Touchy {
    /// Items `ns` sharing a fresh flag (down), and the flag.
    pub fn batch(ns: &[u64]) -> (Vec<Touchy>, std::sync::Arc<AtomicBool>) {
        let fail = std::sync::Arc::new(AtomicBool::new(false));
        let items = ns
            .iter()
            .map(|&n| Touchy {
                n,
                fail: fail.clone(),
            })
            .collect();
        (items, fail)
    }
}

impl PartialEq for Touchy {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}

impl Eq for Touchy {}

impl PartialOrd for Touchy {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Touchy {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        assert!(
            !self.fail.load(SeqCst),
            "Touchy: comparison failed on purpose"
        );
        self.n.cmp(&other.n)
    }
}

/// `FailingQueueTest` for a priority queue: an item `Ord` that panics in
/// `put` or in `get` loses nothing and leaves the counts true — `qsize`
/// still counts the item a panicking `get` was taking, and `join` returns
/// once every item is taken and marked done. `make(maxsize)` builds a fresh,
/// empty queue of [`Touchy`] (0 = unbounded).
pub fn failing_order<Q, F>(make: F)
where
    Q: BlockingQueue<Touchy> + Sync,
    F: Fn(usize) -> Q,
{
    use std::panic::{AssertUnwindSafe, catch_unwind};
    let q = make(0);
    let (items, fail) = Touchy::batch(&[5, 1, 4, 2, 3, 0]);
    let mut items = items.into_iter();
    for item in items.by_ref().take(5) {
        q.put(item).unwrap();
    }
    fail.store(true, SeqCst);
    let last = items.next().expect("six items");
    check(
        catch_unwind(AssertUnwindSafe(|| q.put(last))).is_err(),
        "the put's comparison panicked",
    );
    check(
        q.qsize() == 6,
        "a put whose comparison panicked keeps its item",
    );
    check(
        catch_unwind(AssertUnwindSafe(|| q.get())).is_err(),
        "the get's comparison panicked",
    );
    check(
        q.qsize() == 6,
        "a get whose comparison panicked keeps the item it was taking",
    );
    fail.store(false, SeqCst);
    let mut got = Vec::new();
    for _ in 0..6 {
        match q.get_deadline(Instant::now() + Duration::from_secs(10)) {
            Ok(t) => got.push(t.n),
            Err(_) => check(false, &format!("an item was lost: only {got:?} came out")),
        }
    }
    got.sort_unstable();
    check(got == [0, 1, 2, 3, 4, 5], "every item comes out once");
    for _ in 0..6 {
        q.task_done().unwrap();
    }
    check(
        q.join_deadline(Instant::now() + Duration::from_secs(10))
            .is_ok(),
        "join returns once every item is done",
    );
}

/// Expands to one `#[test]` per queue conformance check for a queue of `u64`.
///
/// `$order` is an [`ExpectedOrder`](crate::queue::ExpectedOrder) and `$make`
/// a factory `Fn(usize) -> Q` (maxsize to fresh queue). Use it inside a test
/// module of any crate that implements
/// [`BlockingQueue`](spindle::queue::BlockingQueue).
///
/// The async checks (the `async_*` functions: `put_async`, `get_async`,
/// `join_async` beside the blocking methods, shutdown waking parked tasks,
/// cancel safety) are opt-in, for a queue that implements
/// [`AsyncQueue`](crate::queue::AsyncQueue): `queue_suite!(async: $order,
/// $make)` expands to one `#[test]` per async check (named `async_*`, so
/// both suites may expand in one module).
///
/// # Examples
///
/// ```
/// mod lifo_conformance {
///     use spindle::queue::LifoQueue;
///     use spindle_conformance::queue::ExpectedOrder;
///     spindle_conformance::queue_suite!(ExpectedOrder::Lifo, LifoQueue::with_maxsize);
///     spindle_conformance::queue_suite!(async: ExpectedOrder::Lifo, LifoQueue::with_maxsize);
/// }
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! queue_suite {
    (async: $order:expr, $make:expr) => {
        $crate::queue_suite!(@tests $order, $make;
            async_get_from_blocking_producer, async_put_to_blocking_consumer,
            async_join_waits_for_task_done, async_shutdown_wakes_waiters,
            async_cancelled_get_passes_wake_on, async_cancelled_get_loses_no_item,
            async_cancelled_put_passes_place_on, async_racing_cancellations_lose_nothing,
            async_put_wakes_a_blocked_thread);
    };
    ($order:expr, $make:expr) => {
        $crate::queue_suite!(@tests $order, $make;
            basic, nowait, task_done_too_many, join_with_consumers, many_producers_consumers,
            shutdown_empty, shutdown_nonempty, shutdown_allowed_transitions,
            shutdown_all_methods_in_one_thread, shutdown_all_methods_in_many_threads,
            shutdown_get, shutdown_put, shutdown_join, shutdown_put_join,
            shutdown_get_task_done_join, shutdown_pending_get);
    };
    (@tests $order:expr, $make:expr; $($check:ident),*) => {$(
        #[test]
        fn $check() {
            $crate::queue::$check($order, $make);
        }
    )*};
}
