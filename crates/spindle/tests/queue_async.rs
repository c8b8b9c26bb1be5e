//! The async faces of the thread queues, what only they have: a
//! `SimpleQueue`'s `get_async`, and blocked threads and parked tasks served
//! exactly one item each, whichever kind of waiter it is (a queue between
//! processes may hand an item to a task its thread woke while a blocked
//! thread of another process wakes too). The async behaviours every queue
//! shares (tasks and threads on one queue, shutdown waking parked tasks,
//! cancel safety) are checked for `Queue`, `LifoQueue` and `PriorityQueue`
//! by the conformance suite (`spindle-conformance`'s `queue_suite!(async:
//! ..)`, `tests/queue.rs` there). Futures are polled by hand: no runtime.

mod common;

use std::sync::atomic::Ordering::SeqCst;
use std::task::Poll;
use std::thread;
use std::time::Duration;

use spindle::queue::{Queue, SimpleQueue};

use common::{counting, poll_once};

/// A cancelled `SimpleQueue::get_async` never takes an item: the item stays
/// queued.
#[test]
fn simple_queue_cancelled_get_async_loses_no_item() {
    let q = SimpleQueue::new();
    let (_, waker) = counting();
    let mut pending = q.get_async();
    assert!(poll_once(&mut pending, &waker).is_pending());
    q.put("kept");
    drop(pending);
    assert_eq!(q.try_get(), Some("kept"));
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
