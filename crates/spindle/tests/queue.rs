//! Thread-queue tests beyond the conformance suite (which runs in
//! `crates/spindle-conformance/tests/queue.rs`). Behaviours ported from CPython's
//! `Lib/test/test_queue.py` (credited per test: `BaseSimpleQueueTest`,
//! `FailingQueueTest`, `test_order`); the rest checks what Rust adds:
//! stable priorities, items handed back, drops outside the lock, iterators.

use std::cmp::Ordering;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier, mpsc};
use std::thread;
use std::time::Duration;

use spindle::queue::{
    GetTimeoutError, LifoQueue, PriorityQueue, PutTimeoutError, Queue, ShutDown, SimpleQueue,
    TryGetError, TryPutError,
};

const N: usize = if cfg!(miri) { 100 } else { 20_000 };

#[test]
fn handles_are_send_sync_clone() {
    fn assert<X: Send + Sync + Clone + 'static>() {}
    assert::<Queue<String>>();
    assert::<LifoQueue<Vec<u8>>>();
    assert::<PriorityQueue<(u8, String)>>();
    assert::<SimpleQueue<Box<dyn Send>>>();
    fn assert_err<E: std::error::Error + Send + Sync + 'static>() {}
    struct NoDebug;
    assert_err::<spindle::queue::PutError<NoDebug>>();
    assert_err::<TryPutError<NoDebug>>();
    assert_err::<PutTimeoutError<NoDebug>>();
    assert_err::<ShutDown>();
    assert_err::<TryGetError>();
    assert_err::<GetTimeoutError>();
}

#[test]
fn errors_hand_items_back_and_debug_without_t_debug() {
    struct Opaque(u32);
    let q = Queue::with_maxsize(1);
    q.put(Opaque(1)).unwrap();
    let err = q.try_put(Opaque(2)).unwrap_err();
    assert_eq!(format!("{err:?}"), "Full(..)");
    assert_eq!(err.to_string(), "queue is full");
    assert_eq!(err.into_inner().0, 2);
    let err = q
        .put_timeout(Opaque(3), Duration::from_millis(1))
        .unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(err.into_inner().0, 3);
    q.shutdown(false);
    assert_eq!(q.put(Opaque(4)).unwrap_err().into_inner().0, 4);
    assert_eq!(
        format!("{q:?}"),
        "Queue { len: 1, maxsize: 1, unfinished_tasks: 1, shutdown: true }"
    );
}

/// Python's heapq-based PriorityQueue does not promise an order for equal
/// items; spindle's hands them out in insertion order.
#[test]
fn priority_is_stable_for_equal_items() {
    #[derive(Debug)]
    struct Job(u8, usize);
    impl PartialEq for Job {
        fn eq(&self, o: &Self) -> bool {
            self.0 == o.0
        }
    }
    impl Eq for Job {}
    impl PartialOrd for Job {
        fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
            Some(self.cmp(o))
        }
    }
    impl Ord for Job {
        fn cmp(&self, o: &Self) -> Ordering {
            self.0.cmp(&o.0)
        }
    }
    let q = PriorityQueue::new();
    for i in 0..1000 {
        q.put(Job((i * 7 % 5) as u8, i)).unwrap();
    }
    let out: Vec<Job> = q.try_iter().collect();
    for w in out.windows(2) {
        assert!(
            w[0].0 < w[1].0 || (w[0].0 == w[1].0 && w[0].1 < w[1].1),
            "{w:?}"
        );
    }
    assert_eq!(out.len(), 1000);
}

/// CPython `FailingQueueTest`: a failure inside the queue's container
/// leaves the queue usable. The Rust analogue is an item whose `Ord` panics.
#[test]
fn panicking_ord_leaves_the_queue_usable() {
    static FAIL: AtomicBool = AtomicBool::new(false);
    #[derive(PartialEq, Eq, Debug)]
    struct Touchy(u32);
    impl PartialOrd for Touchy {
        fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
            Some(self.cmp(o))
        }
    }
    impl Ord for Touchy {
        fn cmp(&self, o: &Self) -> Ordering {
            assert!(!FAIL.load(SeqCst), "You Lose");
            self.0.cmp(&o.0)
        }
    }
    let q = PriorityQueue::with_maxsize(5);
    for i in [3, 1, 2] {
        q.put(Touchy(i)).unwrap();
    }
    FAIL.store(true, SeqCst);
    assert!(catch_unwind(AssertUnwindSafe(|| q.put(Touchy(0)))).is_err());
    FAIL.store(false, SeqCst);
    // The queue is not poisoned and its counts agree.
    assert_eq!(q.len(), q.unfinished_tasks());
    // Nothing lost (BinaryHeap leaves the order unspecified after a panic).
    let mut got: Vec<u32> = q.try_iter().map(|t| t.0).collect();
    got.sort_unstable();
    assert_eq!(got, [0, 1, 2, 3]);
    q.put(Touchy(9)).unwrap();
    assert_eq!(q.get().unwrap().0, 9);
}

/// An `Ord` that panics inside `get` (issue 16 §6): the popped item stays
/// in the queue, `qsize()` and `unfinished_tasks()` still count it, and
/// `join()` returns once it is taken and marked done. (Python's `heappop`
/// loses the item when a comparison raises.)
#[test]
fn panicking_ord_in_get_keeps_the_item() {
    static FAIL: AtomicBool = AtomicBool::new(false);
    #[derive(PartialEq, Eq, Debug)]
    struct Touchy(u32);
    impl PartialOrd for Touchy {
        fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
            Some(self.cmp(o))
        }
    }
    impl Ord for Touchy {
        fn cmp(&self, o: &Self) -> Ordering {
            assert!(!FAIL.load(SeqCst), "You Lose");
            self.0.cmp(&o.0)
        }
    }
    let q = PriorityQueue::new();
    for i in [5, 1, 4, 2, 3] {
        q.put(Touchy(i)).unwrap();
    }
    FAIL.store(true, SeqCst);
    assert!(catch_unwind(AssertUnwindSafe(|| q.get())).is_err());
    assert!(catch_unwind(AssertUnwindSafe(|| q.try_get())).is_err());
    FAIL.store(false, SeqCst);
    assert_eq!(q.qsize(), 5, "the popped item is still counted");
    assert_eq!(q.unfinished_tasks(), 5);
    // Nothing lost, and the order is still the priority order.
    let got: Vec<u32> = q.try_iter().map(|t| t.0).collect();
    assert_eq!(got, [1, 2, 3, 4, 5]);
    for _ in 0..5 {
        q.task_done().unwrap();
    }
    q.join_timeout(Duration::from_secs(10)).unwrap();
}

/// Items are dropped outside the queue's lock, so an item whose `Drop`
/// touches the queue does not deadlock (immediate shutdown drops items).
#[test]
fn immediate_shutdown_drops_items_outside_the_lock() {
    struct Reentrant(Queue<Reentrant>, &'static AtomicUsize);
    impl Drop for Reentrant {
        fn drop(&mut self) {
            let _ = self.0.len();
            self.1.fetch_add(1, SeqCst);
        }
    }
    static DROPPED: AtomicUsize = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let q = Queue::new();
        for _ in 0..3 {
            q.put(Reentrant(q.clone(), &DROPPED)).unwrap();
        }
        q.shutdown(true);
        tx.send(q.len()).unwrap();
    });
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10)),
        Ok(0),
        "deadlock or panic"
    );
    assert_eq!(DROPPED.load(SeqCst), 3);
}

#[test]
fn iterators_end_on_shutdown() {
    let q = Queue::new();
    let consumer = {
        let q = q.clone();
        thread::spawn(move || q.into_iter().sum::<usize>())
    };
    for i in 0..N {
        q.put(i).unwrap();
    }
    q.shutdown(false);
    assert_eq!(consumer.join().unwrap(), (0..N).sum());
    // Immediate: the iterator ends at once, the rest is dropped.
    let q = LifoQueue::new();
    q.put(1).unwrap();
    q.shutdown(true);
    assert_eq!(q.iter().count(), 0);
    // try_iter ends at the first empty queue, like get(False) until Empty.
    let q = Queue::new();
    q.put(1).unwrap();
    assert_eq!(q.try_iter().collect::<Vec<_>>(), [1]);
    assert_eq!(q.try_get(), Err(TryGetError::Empty));
}

#[test]
fn huge_timeouts_do_not_overflow() {
    let q = Queue::new();
    q.put(1).unwrap();
    q.put_timeout(2, Duration::MAX).unwrap();
    assert_eq!(q.get_timeout(Duration::MAX), Ok(1));
    assert_eq!(q.get_timeout(Duration::MAX), Ok(2));
    q.shutdown(false);
    assert_eq!(q.get_timeout(Duration::MAX), Err(GetTimeoutError::ShutDown));
    assert!(q.put_timeout(3, Duration::MAX).unwrap_err().is_shutdown());
    q.task_done().unwrap();
    q.task_done().unwrap();
    assert!(q.join_timeout(Duration::MAX).is_ok());
}

#[test]
fn join_timeout_waits_then_gives_up() {
    let q = Queue::new();
    q.put(1).unwrap();
    let start = std::time::Instant::now();
    assert!(q.join_timeout(Duration::from_millis(20)).is_err());
    assert!(start.elapsed() >= Duration::from_millis(20));
    q.get().unwrap();
    q.task_done().unwrap();
    assert!(q.join_timeout(Duration::from_secs(10)).is_ok());
}

/// Python's worker pool: 30 workers drain a pre-filled queue with get(False) until
/// Empty; every token is handled exactly once.
#[test]
fn thirty_workers_drain_with_try_get() {
    // Fewer under miri, where every step is interpreted.
    const TOKENS: usize = if cfg!(miri) { 300 } else { 3000 };
    let q = Queue::new();
    for token in 0..TOKENS {
        q.put(token).unwrap();
    }
    let handled = AtomicUsize::new(0);
    let sum = AtomicUsize::new(0);
    let start = Barrier::new(30);
    thread::scope(|s| {
        for _ in 0..30 {
            s.spawn(|| {
                start.wait();
                while let Ok(token) = q.try_get() {
                    handled.fetch_add(1, SeqCst);
                    sum.fetch_add(token, SeqCst);
                }
            });
        }
    });
    assert_eq!(handled.load(SeqCst), TOKENS);
    assert_eq!(sum.load(SeqCst), (0..TOKENS).sum());
}

// ---- SimpleQueue: CPython's BaseSimpleQueueTest ----

/// `test_basic`.
#[test]
fn simple_basic() {
    let q = SimpleQueue::new();
    assert!(q.is_empty());
    q.put(1);
    q.put(2);
    assert_eq!((q.qsize(), q.len()), (2, 2));
    assert_eq!(q.get(), 1);
    assert_eq!(q.try_get(), Some(2));
    assert_eq!(q.try_get(), None);
    assert_eq!(q.get_timeout(Duration::from_millis(1)), None);
    let q2 = q.clone();
    let t = thread::spawn(move || q2.get_timeout(Duration::from_secs(10)));
    q.put(3);
    assert_eq!(t.join().unwrap(), Some(3));
}

/// `test_order`: FIFO.
#[test]
fn simple_order() {
    let q = SimpleQueue::new();
    let input = [3, 1, 4, 1, 5, 9, 2, 6];
    input.iter().for_each(|&x| q.put(x));
    let out: Vec<_> = q.try_iter().collect();
    assert_eq!(out, input);
}

/// `test_many_threads`, `_nonblock` and `_timeout`: 4 producers, 4
/// consumers, every item arrives once.
#[test]
fn simple_many_threads() {
    for mode in 0..3 {
        let q = SimpleQueue::new();
        let (tx, rx) = mpsc::channel();
        thread::scope(|s| {
            let producers: Vec<_> = (0..4)
                .map(|p| {
                    let q = &q;
                    s.spawn(move || (0..N / 4).for_each(|i| q.put(Some(p * N + i))))
                })
                .collect();
            for _ in 0..4 {
                let (q, tx) = (&q, tx.clone());
                s.spawn(move || {
                    let mut got = Vec::new();
                    loop {
                        let item = match mode {
                            0 => q.get(),
                            1 => match q.try_get() {
                                Some(x) => x,
                                None => {
                                    thread::yield_now();
                                    continue;
                                }
                            },
                            _ => match q.get_timeout(Duration::from_millis(1)) {
                                Some(x) => x,
                                None => continue,
                            },
                        };
                        match item {
                            Some(x) => got.push(x),
                            None => break, // the sentinel, as in CPython's test
                        }
                    }
                    tx.send(got).unwrap();
                });
            }
            drop(tx);
            producers.into_iter().for_each(|p| p.join().unwrap());
            for _ in 0..4 {
                q.put(None);
            }
            let mut all: Vec<usize> = rx.iter().flatten().collect();
            assert_eq!(
                all.len(),
                N / 4 * 4,
                "mode {mode}: items lost or duplicated"
            );
            all.sort_unstable();
            all.dedup();
            assert_eq!(all.len(), N / 4 * 4, "mode {mode}: duplicates");
        });
    }
}

#[test]
fn try_put_on_shut_down_queue_reports_shutdown_not_full() {
    let q = Queue::with_maxsize(1);
    q.put(1).unwrap();
    q.shutdown(false);
    assert_eq!(q.try_put(2), Err(TryPutError::ShutDown(2)));
    assert_eq!(q.get(), Ok(1));
    assert_eq!(q.get(), Err(ShutDown));
}

// A bounded `Queue` above 65536 places keeps its items in a segmented
// list whose puts check the count held (below, a preallocated ring): it is
// full at exactly `maxsize`, a get frees one place, and a put blocked on
// the full list is woken by the get that frees one.
#[test]
fn queue_bounded_above_the_ring_size_is_full_at_maxsize() {
    let max = (1 << 16) + 1;
    let q = Queue::with_maxsize(max);
    for i in 0..max {
        q.try_put(i).unwrap();
    }
    assert!(q.is_full());
    assert_eq!(q.len(), max);
    assert_eq!(q.try_put(max), Err(TryPutError::Full(max)));
    assert_eq!(q.get(), Ok(0));
    q.try_put(max).unwrap();
    assert_eq!(q.try_put(max + 1), Err(TryPutError::Full(max + 1)));
    let blocked = {
        let q = q.clone();
        thread::spawn(move || q.put(max + 1))
    };
    assert_eq!(q.get(), Ok(1));
    blocked.join().unwrap().unwrap();
    assert_eq!(q.len(), max);
    let all: Vec<usize> = q.try_iter().collect();
    assert_eq!(all, (2..=max + 1).collect::<Vec<_>>());
}

/// Puts from two threads race `shutdown(immediate)`; a getter drains and
/// marks done. Every put that succeeded is got, or dropped by an
/// immediate shutdown and counted done: `join` returns either way.
fn puts_racing_shutdown(immediate: bool) {
    for round in 0..if cfg!(miri) { 2 } else { 200 } {
        let q = Queue::new();
        let put_ok = Arc::new(AtomicUsize::new(0));
        let putters: Vec<_> = (0..2)
            .map(|_| {
                let (q, put_ok) = (q.clone(), put_ok.clone());
                thread::spawn(move || {
                    let mut i = 0u64;
                    while q.put(i).is_ok() {
                        put_ok.fetch_add(1, SeqCst);
                        i += 1;
                    }
                })
            })
            .collect();
        let getter = {
            let q = q.clone();
            thread::spawn(move || {
                let mut got = 0;
                while q.get().is_ok() {
                    q.task_done().unwrap();
                    got += 1;
                }
                got
            })
        };
        while put_ok.load(SeqCst) < 10 + round {
            thread::yield_now();
        }
        q.shutdown(immediate);
        putters.into_iter().for_each(|t| t.join().unwrap());
        let got = getter.join().unwrap();
        let put = put_ok.load(SeqCst);
        if immediate {
            assert!(got <= put);
        } else {
            assert_eq!(got, put, "round {round}: an item put was not got");
        }
        assert!(
            q.join_timeout(Duration::from_secs(30)).is_ok(),
            "round {round}"
        );
        assert_eq!(q.unfinished_tasks(), 0);
        assert_eq!(q.len(), 0);
    }
}

#[test]
fn puts_racing_shutdown_are_got_or_refused() {
    puts_racing_shutdown(false);
}

#[test]
fn puts_racing_immediate_shutdown_are_dropped_and_counted_done() {
    puts_racing_shutdown(true);
}
