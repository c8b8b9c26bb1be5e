//! The async faces of the queues: runtime-agnostic (polled here by a tiny
//! executor of our own, no runtime dependency), shared with blocking
//! threads, woken by shutdown, and cancel-safe (a dropped `get_async` loses
//! no item; CPython has no equivalent, its asyncio.Queue is a separate class).

mod common;

use std::sync::atomic::Ordering::SeqCst;
use std::task::Poll;
use std::thread;
use std::time::Duration;

use spindle::queue::{LifoQueue, Queue, ShutDown, SimpleQueue};

use common::{block_on, counting, poll_once};

const N: usize = if cfg!(miri) { 100 } else { 20_000 };

#[test]
fn blocking_producer_async_consumer() {
    let q = Queue::with_maxsize(64);
    let producer = {
        let q = q.clone();
        thread::spawn(move || {
            for i in 0..N {
                q.put(i).unwrap();
            }
            q.shutdown(false);
        })
    };
    let sum = block_on(async {
        let mut sum = 0;
        while let Ok(x) = q.get_async().await {
            sum += x;
        }
        sum
    });
    producer.join().unwrap();
    assert_eq!(sum, (0..N).sum());
}

#[test]
fn async_producer_blocking_consumer_bounded() {
    let q = Queue::with_maxsize(4);
    let consumer = {
        let q = q.clone();
        thread::spawn(move || q.iter().sum::<usize>())
    };
    block_on(async {
        for i in 0..N {
            q.put_async(i).await.unwrap();
        }
    });
    q.shutdown(false);
    assert_eq!(consumer.join().unwrap(), (0..N).sum());
}

#[test]
fn join_async_waits_for_task_done() {
    let q = Queue::new();
    q.put(1).unwrap();
    let (count, waker) = counting();
    let mut join = q.join_async();
    assert!(poll_once(&mut join, &waker).is_pending());
    q.get().unwrap();
    assert_eq!(count.0.load(SeqCst), 0);
    q.task_done().unwrap();
    assert_eq!(count.0.load(SeqCst), 1, "task_done wakes join_async");
    assert!(poll_once(&mut join, &waker).is_ready());
}

#[test]
fn shutdown_wakes_async_getters_putters_and_immediate_joiners() {
    let q = Queue::with_maxsize(1);
    let (count, waker) = counting();
    let mut lifo = LifoQueue::<u8>::new();
    lifo.shutdown(false);
    assert_eq!(block_on(lifo.get_async()), Err(ShutDown));
    lifo = LifoQueue::new();
    let mut pending_get = lifo.get_async();
    assert!(poll_once(&mut pending_get, &waker).is_pending());
    q.put(1).unwrap();
    let mut pending_put = q.put_async(2);
    assert!(poll_once(&mut pending_put, &waker).is_pending());
    let mut pending_join = q.join_async();
    assert!(poll_once(&mut pending_join, &waker).is_pending());
    lifo.shutdown(false);
    assert_eq!(count.0.load(SeqCst), 1);
    assert_eq!(
        poll_once(&mut pending_get, &waker),
        Poll::Ready(Err(ShutDown))
    );
    q.shutdown(true); // wakes the putter, and the joiner (the item is dropped)
    assert_eq!(count.0.load(SeqCst), 3);
    match poll_once(&mut pending_put, &waker) {
        Poll::Ready(Err(e)) => assert_eq!(e.into_inner(), 2),
        other => panic!("put after shutdown: {other:?}"),
    }
    assert!(poll_once(&mut pending_join, &waker).is_ready());
}

/// A woken `get_async` that is dropped instead of polled passes the wakeup
/// on: the item goes to the next waiter, nothing is stranded.
#[test]
fn cancelled_get_async_passes_its_wakeup_on() {
    let q = Queue::new();
    let (a_count, a_waker) = counting();
    let (b_count, b_waker) = counting();
    let mut a = q.get_async();
    let mut b = q.get_async();
    assert!(poll_once(&mut a, &a_waker).is_pending());
    assert!(poll_once(&mut b, &b_waker).is_pending());
    q.put(7).unwrap();
    assert_eq!(
        (a_count.0.load(SeqCst), b_count.0.load(SeqCst)),
        (1, 0),
        "one item wakes one task"
    );
    drop(a); // cancelled, e.g. the other branch of a select! won
    assert_eq!(b_count.0.load(SeqCst), 1, "the wakeup was passed on");
    assert_eq!(poll_once(&mut b, &b_waker), Poll::Ready(Ok(7)));
    assert!(q.is_empty());
}

/// A cancelled `get_async` never takes an item: the item stays queued.
#[test]
fn cancelled_get_async_loses_no_item() {
    let q = SimpleQueue::new();
    let (_, waker) = counting();
    let mut pending = q.get_async();
    assert!(poll_once(&mut pending, &waker).is_pending());
    q.put("kept");
    drop(pending);
    assert_eq!(q.try_get(), Some("kept"));
}

/// A cancelled `put_async` puts nothing, and a free slot it was woken for
/// goes to the next putter.
#[test]
fn cancelled_put_async_puts_nothing_and_passes_the_slot_on() {
    let q = Queue::with_maxsize(1);
    q.put(0).unwrap();
    let (a_count, a_waker) = counting();
    let (b_count, b_waker) = counting();
    let mut a = q.put_async(1);
    let mut b = q.put_async(2);
    assert!(poll_once(&mut a, &a_waker).is_pending());
    assert!(poll_once(&mut b, &b_waker).is_pending());
    assert_eq!(q.get(), Ok(0));
    assert_eq!(a_count.0.load(SeqCst), 1);
    drop(a);
    assert_eq!(b_count.0.load(SeqCst), 1);
    assert!(matches!(poll_once(&mut b, &b_waker), Poll::Ready(Ok(()))));
    assert_eq!(q.try_iter().collect::<Vec<_>>(), [2]);
}

/// Stress: consumers that keep cancelling their `get_async` half the time
/// against blocking producers; every item is received exactly once.
#[test]
fn racing_cancellations_lose_nothing() {
    let q = Queue::new();
    let producers: Vec<_> = (0..2)
        .map(|p| {
            let q = q.clone();
            thread::spawn(move || (0..N / 2).for_each(|i| q.put(p * N + i).unwrap()))
        })
        .collect();
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let q = q.clone();
            thread::spawn(move || {
                let (_, waker) = counting();
                let mut got = Vec::new();
                let mut round = 0usize;
                loop {
                    round += 1;
                    let mut f = q.get_async();
                    let r = poll_once(&mut f, &waker);
                    match r {
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
    let mut all: Vec<usize> = consumers
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    assert_eq!(all.len(), N);
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), N);
}

#[test]
fn async_get_with_a_timeout_from_a_plain_thread_waits() {
    // The async face and get_timeout interoperate on one queue.
    let q = Queue::new();
    let q2 = q.clone();
    let t = thread::spawn(move || q2.get_timeout(Duration::from_secs(10)));
    block_on(q.put_async(5)).unwrap();
    assert_eq!(t.join().unwrap(), Ok(5));
}

/// Blocked threads and parked tasks wait on one queue: each item put
/// reaches somebody, whichever kind of waiter it is.
#[test]
fn mixed_thread_and_task_getters_all_served() {
    let q = Queue::new();
    let (count, waker) = counting();
    let mut task = q.get_async();
    assert!(poll_once(&mut task, &waker).is_pending());
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let q = q.clone();
            thread::spawn(move || q.get_timeout(Duration::from_secs(10)))
        })
        .collect();
    thread::sleep(Duration::from_millis(30)); // let the threads block
    for i in 0..4 {
        q.put(i).unwrap();
    }
    let mut got: Vec<u32> = threads
        .into_iter()
        .map(|t| t.join().unwrap().unwrap())
        .collect();
    // Four items for three threads: the fourth put found no parked thread
    // and woke the task (a real executor would now poll it).
    assert!(count.0.load(SeqCst) >= 1, "the task was never woken");
    let task_item = match poll_once(&mut task, &waker) {
        Poll::Ready(Ok(x)) => x,
        other => panic!(
            "the task was not served: {other:?} (woken {} times)",
            count.0.load(SeqCst)
        ),
    };
    got.push(task_item);
    got.sort_unstable();
    assert_eq!(got, [0, 1, 2, 3]);
}
