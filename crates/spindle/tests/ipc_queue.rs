//! Cross-process queue tests, ported from CPython's
//! `Lib/test/_test_multiprocessing.py` (`_TestQueue`: test_put, test_get,
//! test_fork, test_qsize, test_task_done, test_no_import_lock_contention's
//! spirit) and `Lib/test/test_queue.py` (shutdown), manually rewritten in
//! Rust for spindle.

mod common;

use std::time::{Duration, Instant};

use spindle::ipc::{ItemErrorKind, JoinableQueue, Queue, QueueError, SimpleQueue};
use spindle::process::{Process, StartMethod};
use spindle::queue::{
    BlockingQueue, GetTimeoutError, PutError, PutTimeoutError, ShutDown, TryGetError, TryPutError,
};

use common::{LONG, start};

/// CPython `test_put` / `test_get`: blocking, non-blocking and timed
/// variants, `full`/`empty`/`qsize` on a bounded queue.
#[test]
fn put_get_bounded_in_one_process() {
    let q: Queue<u32> = Queue::with_maxsize(6).unwrap();
    assert_eq!(q.maxsize(), 6);
    assert!(q.is_empty() && !q.is_full());
    q.put(1).unwrap();
    q.put(2).unwrap();
    q.try_put(3).unwrap();
    q.put_timeout(4, LONG).unwrap();
    q.put_deadline(5, Instant::now() + LONG).unwrap();
    q.put(6).unwrap();
    assert!(q.is_full());
    assert_eq!(q.qsize(), 6);
    assert!(matches!(
        q.try_put(7),
        Err(QueueError::Queue(TryPutError::Full(7)))
    ));
    // A put that waits and runs out is a timeout, not "full".
    let t = Instant::now();
    assert!(matches!(
        q.put_timeout(7, Duration::from_millis(50)),
        Err(QueueError::Queue(PutTimeoutError::Timeout(7)))
    ));
    assert!(t.elapsed() >= Duration::from_millis(50));
    let t = Instant::now();
    let e = q
        .put_deadline(7, t + Duration::from_millis(50))
        .unwrap_err();
    assert!(e.is_timeout() && !e.is_shutdown(), "{e}");
    assert!(t.elapsed() >= Duration::from_millis(50));
    assert_eq!(e.into_inner(), 7);
    for i in 1..=6 {
        assert_eq!(q.get_timeout(LONG).unwrap(), i);
    }
    assert!(q.is_empty());
    assert!(matches!(
        q.try_get(),
        Err(QueueError::Queue(TryGetError::Empty))
    ));
    // A get that waits and runs out is a timeout, not "empty".
    let t = Instant::now();
    assert!(matches!(
        q.get_timeout(Duration::from_millis(50)),
        Err(QueueError::Queue(GetTimeoutError::Timeout))
    ));
    assert!(t.elapsed() >= Duration::from_millis(50));
    let t = Instant::now();
    let e = q.get_deadline(t + Duration::from_millis(50)).unwrap_err();
    assert!(e.is_timeout() && !e.is_shutdown(), "{e}");
    assert!(t.elapsed() >= Duration::from_millis(50));
    // A timeout too long to represent waits forever (here: not at all).
    q.put_timeout(8, Duration::MAX).unwrap();
    assert_eq!(q.get_timeout(Duration::MAX).unwrap(), 8);
}

/// A value that encodes only below 100 and decodes only when even: the
/// failures only a queue between processes has.
#[derive(Debug, Clone, PartialEq)]
struct Picky(u32);

impl serde::Serialize for Picky {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 >= 100 {
            return Err(serde::ser::Error::custom("too big to encode"));
        }
        self.0.serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Picky {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = u32::deserialize(d)?;
        if v % 2 == 1 {
            return Err(serde::de::Error::custom("odd"));
        }
        Ok(Picky(v))
    }
}

/// An item that cannot be encoded or decoded is `QueueError::Item`, never a
/// "full", "empty" or "shut down" of the queue; a put hands the item back,
/// and a get that fails consumes only that item. Through `BlockingQueue` it
/// reads as a shut-down queue (the trait's rule), still with the item.
#[test]
fn item_errors_are_their_own_variant() {
    let q: Queue<Picky> = Queue::with_maxsize(2).unwrap();
    let e = q.put(Picky(100)).unwrap_err();
    assert!(
        matches!(
            e.item_error().map(|i| i.kind()),
            Some(ItemErrorKind::Encode(_))
        ),
        "{e}"
    );
    assert!(!e.is_shutdown());
    assert_eq!(e.into_inner(), Picky(100));
    let e = q.try_put(Picky(101)).unwrap_err();
    assert!(!e.is_full() && !e.is_shutdown() && e.item_error().is_some());
    assert_eq!(e.into_inner(), Picky(101));
    let e = q.put_timeout(Picky(102), LONG).unwrap_err();
    assert!(!e.is_timeout() && e.item_error().is_some());
    assert_eq!(q.qsize(), 0, "nothing was put");
    assert_eq!(q.unfinished_tasks(), 0);

    q.put(Picky(3)).unwrap();
    q.put(Picky(4)).unwrap();
    let e = q.get().unwrap_err();
    assert!(
        matches!(e, QueueError::Item(ref i) if matches!(i.kind(), ItemErrorKind::Decode(_))),
        "{e}"
    );
    assert!(!e.is_shutdown());
    assert_eq!(q.try_get().unwrap(), Picky(4));

    let e = BlockingQueue::put(&q, Picky(200)).unwrap_err();
    assert_eq!(e.into_inner(), Picky(200));
    assert!(matches!(
        BlockingQueue::try_put(&q, Picky(201)),
        Err(TryPutError::ShutDown(Picky(201)))
    ));
    q.put(Picky(5)).unwrap();
    assert_eq!(BlockingQueue::try_get(&q), Err(TryGetError::ShutDown));
    assert!(!q.is_shutdown(), "only the item failed");
}

/// Unbounded puts never block, even far past the socket buffer: the feeder
/// thread holds the rest (Python's feeder thread).
#[test]
fn unbounded_put_never_blocks() {
    const N: u64 = if cfg!(miri) { 100 } else { 20_000 };
    let q: SimpleQueue<(u64, String)> = Queue::new().unwrap();
    for i in 0..N {
        q.put((i, "x".repeat((i % 50) as usize))).unwrap();
    }
    assert_eq!(q.qsize(), N as usize);
    for i in 0..N {
        let (j, s) = q.get_timeout(LONG).unwrap();
        assert_eq!((j, s.len()), (i, (i % 50) as usize));
    }
    assert!(q.is_empty());
}

/// Items larger than a socket record travel as memfds.
#[test]
fn large_items() {
    let q: Queue<Vec<u8>> = Queue::new().unwrap();
    let big: Vec<u8> = (0..3 << 20).map(|i| (i % 253) as u8).collect();
    q.put(big.clone()).unwrap();
    q.put(vec![1; 64 << 10]).unwrap();
    assert_eq!(q.get_timeout(LONG).unwrap(), big);
    assert_eq!(q.get_timeout(LONG).unwrap(), vec![1; 64 << 10]);
}

#[spindle::task]
fn produce(q: Queue<u64>, from: u64, to: u64) {
    for i in from..to {
        q.put(i).unwrap();
    }
}

#[spindle::task]
fn consume(q: Queue<u64>, results: Queue<(u64, u64)>) {
    // Sums until the sentinel (u64::MAX), then reports (count, sum).
    let (mut n, mut sum) = (0, 0);
    loop {
        let v = q.get().unwrap();
        if v == u64::MAX {
            break;
        }
        n += 1;
        sum += v;
    }
    results.put((n, sum)).unwrap();
}

/// Several producer and consumer processes: nothing lost, nothing
/// duplicated (counts and sums), bounded and unbounded, every start method.
#[test]
fn many_producers_many_consumers() {
    const PER: u64 = if cfg!(miri) { 10 } else { 5_000 };
    for (m, maxsize) in [
        (StartMethod::ForkServer, 0),
        (StartMethod::Spawn, 7),
        (StartMethod::Fork, 100),
    ] {
        let q: Queue<u64> = Queue::with_maxsize(maxsize).unwrap();
        let results: Queue<(u64, u64)> = Queue::new().unwrap();
        let mut producers: Vec<Process> = (0..3)
            .map(|k| start(produce::call(q.clone(), k * PER, (k + 1) * PER), m))
            .collect();
        let mut consumers: Vec<Process> = (0..3)
            .map(|_| start(consume::call(q.clone(), results.clone()), m))
            .collect();
        for p in &mut producers {
            p.join_timeout(LONG).unwrap();
        }
        for _ in 0..3 {
            q.put(u64::MAX).unwrap();
        }
        for p in &mut consumers {
            p.join_timeout(LONG).unwrap();
        }
        let (mut n, mut sum) = (0, 0);
        for _ in 0..3 {
            let (cn, cs) = results.get_timeout(LONG).unwrap();
            n += cn;
            sum += cs;
        }
        let total = 3 * PER;
        assert_eq!(n, total, "{m:?}: lost or duplicated items");
        assert_eq!(sum, total * (total - 1) / 2, "{m:?}");
        assert!(q.is_empty(), "{m:?}");
    }
}

#[spindle::task]
fn worker_task_done(q: JoinableQueue<u32>) {
    while let Ok(v) = q.get() {
        if v == 0 {
            q.task_done().unwrap();
            break;
        }
        q.task_done().unwrap();
    }
}

/// CPython `test_task_done`: `join` returns once every item is marked done.
#[test]
fn task_done_and_join() {
    let q: JoinableQueue<u32> = Queue::new().unwrap();
    assert!(
        q.task_done().is_err(),
        "task_done on an empty queue is an error"
    );
    assert!(q.join_timeout(Duration::ZERO).is_ok());
    let mut workers: Vec<Process> = (0..2)
        .map(|_| Process::new(worker_task_done::call(q.clone())).start_and())
        .collect();
    for i in 1..=100 {
        q.put(i).unwrap();
    }
    q.put(0).unwrap();
    q.put(0).unwrap();
    q.join();
    assert!(q.join_timeout(Duration::ZERO).is_ok());
    assert_eq!(q.unfinished_tasks(), 0);
    for w in &mut workers {
        w.join_timeout(LONG).unwrap();
    }
    // Nothing pending: a 1 ms join with an undone item times out.
    q.put(5).unwrap();
    let t = Instant::now();
    assert!(q.join_timeout(Duration::from_millis(20)).is_err());
    assert!(t.elapsed() >= Duration::from_millis(20));
    assert_eq!(q.unfinished_tasks(), 1);
    assert_eq!(q.get().unwrap(), 5);
    assert_eq!(q.unfinished_tasks(), 1, "taken, not done");
    q.task_done().unwrap();
    assert_eq!(q.unfinished_tasks(), 0);
    q.join();
}

trait StartAnd {
    fn start_and(self) -> Self;
}

impl StartAnd for Process {
    fn start_and(mut self) -> Self {
        self.start().unwrap();
        self
    }
}

#[spindle::task]
fn block_get(q: Queue<u32>, report: Queue<String>) {
    let r = match q.get() {
        Ok(v) => format!("got {v}"),
        Err(e) => format!("{e}"),
    };
    report.put(r).unwrap();
}

/// Python 3.13 `Queue.shutdown`: blocked getters in other processes wake;
/// puts fail; `immediate` discards what is left.
#[test]
fn shutdown_wakes_other_processes() {
    let q: Queue<u32> = Queue::with_maxsize(1).unwrap();
    let report: Queue<String> = Queue::new().unwrap();
    let mut p = Process::new(block_get::call(q.clone(), report.clone())).start_and();
    q.shutdown(false);
    assert_eq!(report.get_timeout(LONG).unwrap(), "queue is shut down");
    p.join_timeout(LONG).unwrap();
    assert!(q.is_shutdown());
    assert!(matches!(q.put(1), Err(QueueError::Queue(PutError(1)))));

    // Not immediate: what was put before is still delivered.
    let q: Queue<u32> = Queue::new().unwrap();
    q.put(1).unwrap();
    q.put(2).unwrap();
    q.shutdown(false);
    assert_eq!(q.get().unwrap(), 1);
    assert_eq!(q.get().unwrap(), 2);
    assert!(matches!(q.get(), Err(QueueError::Queue(ShutDown))));

    // Immediate: the rest is dropped and join is released.
    let q: Queue<u32> = Queue::new().unwrap();
    q.put(1).unwrap();
    q.shutdown(true);
    assert!(matches!(q.get(), Err(QueueError::Queue(ShutDown))));
    assert!(q.join_timeout(Duration::ZERO).is_ok());
    assert!(q.is_empty());

    // A bounded put blocked on a full queue is released too.
    let q: Queue<u32> = Queue::with_maxsize(1).unwrap();
    q.put(1).unwrap();
    let q2 = q.clone();
    let h = std::thread::spawn(move || q2.put(2));
    while !q.is_full() {
        std::thread::yield_now();
    }
    q.shutdown(false);
    assert!(h.join().unwrap().unwrap_err().is_shutdown());
}

#[spindle::task]
fn put_then_die(q: Queue<u32>) {
    q.put(1).unwrap();
    // Killed from outside while blocked here.
    std::thread::sleep(LONG);
}

/// A process killed while using the queue does not wedge it for others.
#[test]
fn killed_process_does_not_wedge_the_queue() {
    let q: Queue<u32> = Queue::with_maxsize(2).unwrap();
    let mut p = Process::new(put_then_die::call(q.clone())).start_and();
    assert_eq!(q.get_timeout(LONG).unwrap(), 1);
    p.kill().unwrap();
    assert_eq!(p.join_timeout(LONG).unwrap_err().exitcode(), Some(-9));
    q.put(2).unwrap();
    q.put(3).unwrap();
    assert_eq!(q.get().unwrap(), 2);
    assert_eq!(q.get().unwrap(), 3);
}

/// An item of `n` bytes whose content depends on `n` and `seq`.
fn blob(seq: u64, n: usize) -> serde_bytes::ByteBuf {
    serde_bytes::ByteBuf::from(
        (0..n)
            .map(|i| (i as u64 ^ seq).wrapping_mul(31) as u8)
            .collect::<Vec<u8>>(),
    )
}

/// Sizes that take every path: a ring slot, the arena (including items that
/// must skip the arena's end), a socket record, a memfd.
const SIZES: [usize; 9] = [
    0,
    1,
    119,
    121,
    4000,
    64 << 10,
    700 << 10,
    (1 << 20) + 7,
    3 << 20,
];

#[spindle::task]
fn produce_blobs(q: Queue<(u64, serde_bytes::ByteBuf)>, producer: u64, rounds: u64) {
    for r in 0..rounds {
        for (k, n) in SIZES.iter().enumerate() {
            let seq = producer << 32 | r << 8 | k as u64;
            q.put((seq, blob(seq, *n))).unwrap();
        }
    }
}

/// Items of every size from two producer processes arrive whole, each
/// producer's in its order, none lost or duplicated.
#[test]
fn items_of_every_size_between_processes() {
    every_size_between_processes(12);
}

/// The same, one round of each size: the memcheck run of `.ci/valgrind`
/// (twelve rounds of multi-MiB items take minutes under memcheck).
#[test]
fn one_round_of_every_size_between_processes() {
    every_size_between_processes(1);
}

fn every_size_between_processes(rounds: u64) {
    let q: Queue<(u64, serde_bytes::ByteBuf)> = Queue::new().unwrap();
    let mut producers: Vec<Process> = (0..2)
        .map(|p| Process::new(produce_blobs::call(q.clone(), p, rounds)).start_and())
        .collect();
    let mut last = [None::<u64>; 2];
    let total = 2 * rounds as usize * SIZES.len();
    for _ in 0..total {
        let (seq, data) = q.get_timeout(LONG).unwrap();
        let producer = (seq >> 32) as usize;
        let k = (seq & 0xff) as usize;
        assert_eq!(data, blob(seq, SIZES[k]), "item {seq:#x} arrived damaged");
        assert!(last[producer] < Some(seq), "item {seq:#x} out of order");
        last[producer] = Some(seq);
    }
    for p in &mut producers {
        p.join_timeout(LONG).unwrap();
    }
    assert!(q.try_get().is_err(), "nothing is left over");
    assert!(q.is_empty());
}

/// An immediate shutdown drops items of every kind, including those whose
/// payload waits on the socket, and the queue's counts stay right.
#[test]
fn immediate_shutdown_drops_items_of_every_size() {
    let q: JoinableQueue<(u64, serde_bytes::ByteBuf)> = Queue::new().unwrap();
    for (k, n) in SIZES.iter().enumerate() {
        q.put((k as u64, blob(k as u64, *n))).unwrap();
    }
    assert_eq!(q.qsize(), SIZES.len());
    q.shutdown(true);
    assert_eq!(q.qsize(), 0);
    assert!(q.try_get().unwrap_err().is_shutdown());
    assert!(q.join_timeout(Duration::ZERO).is_ok());
}

#[spindle::task]
fn put_forever(q: Queue<u64>) {
    for i in 0.. {
        q.put(i).unwrap();
    }
}

#[spindle::task]
fn get_forever(q: Queue<u64>) {
    while q.get().is_ok() {}
}

/// Processes killed at arbitrary moments while putting or getting (maybe
/// holding the ring's producer or consumer lock) do not wedge the queue:
/// the survivors take a dead holder's lock over.
#[test]
fn processes_killed_mid_call_do_not_wedge_the_queue() {
    let q: Queue<u64> = Queue::with_maxsize(64).unwrap();
    for round in 0..8u64 {
        let mut procs = vec![
            Process::new(put_forever::call(q.clone())).start_and(),
            Process::new(put_forever::call(q.clone())).start_and(),
            Process::new(get_forever::call(q.clone())).start_and(),
        ];
        std::thread::sleep(Duration::from_millis(20 + 7 * round));
        for p in &mut procs {
            p.kill().unwrap();
        }
        for p in &mut procs {
            assert_eq!(p.join_timeout(LONG).unwrap_err().exitcode(), Some(-9));
        }
        // Whatever the killed ones held, this process gets through.
        let t = Instant::now();
        while q.try_get().is_ok() {}
        q.put_timeout(1, LONG).unwrap();
        assert_eq!(q.get_timeout(LONG).unwrap(), 1);
        assert!(t.elapsed() < LONG);
    }
}

#[spindle::task]
fn count_until_shutdown(q: Queue<u64>, results: Queue<(u64, u64)>) {
    let (mut n, mut sum) = (0, 0);
    while let Ok(v) = q.get() {
        n += 1;
        sum += v;
    }
    results.put((n, sum)).unwrap();
}

/// Getters asleep in several processes (and threads), items put one at a
/// time with pauses so the getters fall asleep between them: every item
/// reaches exactly one getter, and a shutdown wakes them all. (A lost
/// wake-up would only show as a delay of up to the 500 ms sleep slice, which
/// this test does not time.)
#[test]
fn sleeping_getters_in_many_processes_get_every_item() {
    const N: u64 = 300;
    let q: Queue<u64> = Queue::new().unwrap();
    let results: Queue<(u64, u64)> = Queue::new().unwrap();
    let mut procs: Vec<Process> = (0..3)
        .map(|_| Process::new(count_until_shutdown::call(q.clone(), results.clone())).start_and())
        .collect();
    let local: Vec<_> = (0..2)
        .map(|_| {
            let (q, results) = (q.clone(), results.clone());
            std::thread::spawn(move || count_until_shutdown(q, results))
        })
        .collect();
    for i in 1..=N {
        q.put(i).unwrap();
        if i % 3 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    // Normal shutdown: the getters drain what is left, then stop.
    q.shutdown(false);
    for p in &mut procs {
        p.join_timeout(LONG).unwrap();
    }
    for t in local {
        t.join().unwrap();
    }
    let (mut n, mut sum) = (0, 0);
    for _ in 0..5 {
        let (cn, cs) = results.get_timeout(LONG).unwrap();
        n += cn;
        sum += cs;
    }
    assert_eq!((n, sum), (N, N * (N + 1) / 2), "lost or duplicated items");
}

/// More items than the ring of an unbounded queue holds (16 Ki slots): with
/// nobody reading, the last ones wait in this process's feeder buffer.
const PAST_THE_RING: u32 = 16 * 1024 + 100;

fn is_closed<E, T>(e: &QueueError<E, T>) -> bool {
    matches!(e, QueueError::Item(i) if matches!(i.kind(), ItemErrorKind::Closed))
}

#[spindle::task]
fn take_one(q: Queue<u32>, report: spindle::ipc::Connection) {
    report.send(&q.get_timeout(LONG).unwrap()).unwrap();
}

/// Python's `Queue.close()`: this process puts and gets nothing more (every
/// form fails, the item handed back), other processes go on; `join_thread`
/// before `close` is Python's `AssertionError`.
#[test]
fn close_stops_this_process_only() {
    let q: Queue<u32> = Queue::new().unwrap();
    assert_eq!(q.join_thread(), Err(spindle::ipc::NotClosedError));
    q.put(7).unwrap();
    assert!(!q.is_closed());
    q.close();
    q.close();
    assert!(q.is_closed() && q.clone().is_closed());
    let e = q.put(8).unwrap_err();
    assert!(is_closed(&e), "{e:?}");
    assert_eq!(e.into_inner(), 8);
    assert!(is_closed(&q.try_put(8).unwrap_err()));
    assert!(is_closed(&q.get().unwrap_err()));
    assert!(is_closed(&q.try_get().unwrap_err()));
    assert!(is_closed(&q.get_timeout(Duration::ZERO).unwrap_err()));
    assert_eq!(q.qsize(), 1);
    q.join_thread().unwrap();
    let (ours, theirs) = spindle::ipc::Pipe(true).unwrap();
    let mut p = Process::new(take_one::call(q.clone(), theirs));
    p.start().unwrap();
    assert_eq!(ours.recv_timeout::<u32>(LONG).unwrap(), 7);
    p.join_timeout(LONG).unwrap();
}

#[spindle::task]
fn fill_close_join(q: Queue<u32>, report: spindle::ipc::Connection) {
    for i in 0..PAST_THE_RING {
        q.put(i).unwrap();
    }
    q.close();
    q.join_thread().unwrap();
    report.send(&q.qsize()).unwrap();
}

/// Python's `join_thread()`: it returns once the feeder has published every
/// buffered item, which needs a reader here.
#[test]
fn join_thread_waits_for_the_feeder() {
    let q: Queue<u32> = Queue::new().unwrap();
    let (ours, theirs) = spindle::ipc::Pipe(true).unwrap();
    let mut p = daemon_child(fill_close_join::call(q.clone(), theirs));
    p.start().unwrap();
    // The ring fills; the rest waits in the child's feeder until we read.
    let first = q.get_timeout(LONG).unwrap();
    assert_eq!(first, 0);
    assert!(
        !ours.poll_timeout(Duration::from_millis(300)).unwrap(),
        "join_thread returned with items still buffered"
    );
    for want in 1..PAST_THE_RING {
        assert_eq!(q.get_timeout(LONG).unwrap(), want);
    }
    let _left: usize = ours.recv_timeout(LONG).unwrap();
    p.join_timeout(LONG).unwrap();
}

/// A child whose feeder may still hold items when a failed assertion
/// ends the test: daemonic, so the test process's exit terminates it
/// instead of waiting on a feeder that no one will ever drain (a failure
/// then reports instead of hanging the run).
fn daemon_child(call: impl Into<spindle::process::TaskCall>) -> Process {
    Process::builder().task(call).daemon(true).build()
}

#[spindle::task]
fn fill_and_exit(q: Queue<u32>, cancel: bool) {
    for i in 0..PAST_THE_RING {
        q.put(i).unwrap();
    }
    if cancel {
        q.cancel_join_thread();
    }
}

/// Python's `cancel_join_thread()`: the process exits without waiting for
/// its feeder (the buffered items are lost); without it the exit waits
/// until they are published.
#[test]
fn cancel_join_thread_lets_the_process_exit() {
    let q: Queue<u32> = Queue::new().unwrap();
    let mut p = daemon_child(fill_and_exit::call(q.clone(), true));
    p.start().unwrap();
    p.join_timeout(LONG).unwrap();
    // The ring's items stay; the buffered ones are lost and uncounted (one
    // the feeder was publishing as the process ended may have landed).
    let left = q.qsize();
    assert!((16 * 1024..=16 * 1024 + 1).contains(&left), "{left}");
    assert_eq!(q.unfinished_tasks(), left);

    let q: Queue<u32> = Queue::new().unwrap();
    let mut p = daemon_child(fill_and_exit::call(q.clone(), false));
    p.start().unwrap();
    assert!(q.get_timeout(LONG).is_ok());
    assert!(
        p.join_timeout(Duration::from_millis(300))
            .unwrap_err()
            .is_timeout(),
        "the exit waits for the feeder"
    );
    for _ in 1..PAST_THE_RING {
        q.get_timeout(LONG).unwrap();
    }
    p.join_timeout(LONG).unwrap();
}
