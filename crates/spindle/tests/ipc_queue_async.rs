//! The async faces of `ipc::Queue` (`put_async`, `get_async`,
//! `join_async`) across processes: a child's put completes the parent's
//! pending `get_async` (through the queue's waiter thread, which sleeps on
//! the ring's doorbell word), a cancelled getter passes a wake-up from
//! another process on, a child's `task_done` completes `join_async`, and
//! the waiter thread ends when idle. Futures are driven by the tests' tiny
//! `block_on` and by hand with `poll_once`: no runtime is involved. The
//! checks shared with the thread queues are in the conformance suite
//! (`spindle-conformance`, `queue_suite!`'s async cases).

mod common;

use std::sync::atomic::Ordering::SeqCst;
use std::task::Poll;

use spindle::ipc::{ItemErrorKind, Queue, QueueError};
use spindle::process::StartMethod;
use spindle::queue::ShutDown;

use std::time::{Duration, Instant};

use common::{LONG, block_on, counting, poll_once, start, until};

/// Waits for the go-ahead, then puts a small item and one large enough to
/// travel as a socket record.
#[spindle::task]
fn put_when_told(q: Queue<Vec<u8>>, go: Queue<u8>) {
    go.get().unwrap();
    q.put(vec![7; 3]).unwrap();
    q.put(vec![8; 2 << 20]).unwrap();
}

/// A child process puts, the parent's pending `get_async` completes (each
/// start method's child: forked, from the fork server, spawned).
#[test]
fn ipc_queue_get_async_from_child() {
    for m in [
        StartMethod::Fork,
        StartMethod::ForkServer,
        StartMethod::Spawn,
    ] {
        let q: Queue<Vec<u8>> = Queue::new().unwrap();
        let go: Queue<u8> = Queue::new().unwrap();
        let mut child = start(put_when_told::call(q.clone(), go.clone()), m);
        let (count, waker) = counting();
        let mut get = q.get_async();
        assert!(
            poll_once(&mut get, &waker).is_pending(),
            "{m:?}: nothing put yet"
        );
        assert!(
            q.__async_waiter_running(),
            "{m:?}: the wait started the waiter thread"
        );
        go.put(1).unwrap();
        until("the child's put to wake the task", || {
            count.0.load(SeqCst) >= 1
        });
        match poll_once(&mut get, &waker) {
            Poll::Ready(Ok(v)) => assert_eq!(v, [7; 3], "{m:?}"),
            other => panic!("{m:?}: woken but not served: {other:?}"),
        }
        // The large item (a socket record) through block_on.
        assert_eq!(block_on(q.get_async()).unwrap().len(), 2 << 20, "{m:?}");
        child.join_timeout(LONG).unwrap();
        assert_eq!(child.exitcode(), Some(0), "{m:?}");
        assert!(q.is_empty());
    }
}

#[spindle::task]
fn put_one(q: Queue<u32>, v: u32) {
    q.put(v).unwrap();
}

/// A getter woken by another process's put and dropped before it took the
/// item passes the wake-up on: the second waiting getter is woken and gets
/// the item, nothing is lost. (Without the pass-on the second getter is
/// never woken: the item counts as taken by the first, which is gone.)
#[test]
fn ipc_queue_cancelled_get_async_passes_wake_on() {
    let q: Queue<u32> = Queue::new().unwrap();
    let (a_count, a_waker) = counting();
    let (b_count, b_waker) = counting();
    let mut a = q.get_async();
    let mut b = q.get_async();
    assert!(poll_once(&mut a, &a_waker).is_pending());
    assert!(poll_once(&mut b, &b_waker).is_pending());
    let mut child = start(put_one::call(q.clone(), 41), StartMethod::ForkServer);
    child.join_timeout(LONG).unwrap();
    until("the put to wake the first getter", || {
        a_count.0.load(SeqCst) == 1
    });
    assert_eq!(q.qsize(), 1);
    drop(a); // cancelled, e.g. the other branch of a select! won
    until("the wake-up to be passed on", || {
        b_count.0.load(SeqCst) >= 1
    });
    assert!(matches!(poll_once(&mut b, &b_waker), Poll::Ready(Ok(41))));
    assert!(q.is_empty());
    // A getter dropped before anything woke it takes nothing either.
    let mut c = q.get_async();
    assert!(poll_once(&mut c, &b_waker).is_pending());
    drop(c);
    q.put(42).unwrap();
    assert_eq!(q.try_get().unwrap(), 42);
}

#[spindle::task]
fn take_and_mark_done(q: Queue<u32>, n: u32) {
    for _ in 0..n {
        q.get().unwrap();
        q.task_done().unwrap();
    }
}

/// `join_async` completes once a child has marked every item done.
#[test]
fn ipc_queue_join_async_after_task_done_from_child() {
    let q: Queue<u32> = Queue::new().unwrap();
    for i in 0..3 {
        q.put(i).unwrap();
    }
    let (count, waker) = counting();
    let mut join = q.join_async();
    assert!(
        poll_once(&mut join, &waker).is_pending(),
        "3 tasks unfinished"
    );
    let mut child = start(
        take_and_mark_done::call(q.clone(), 3),
        StartMethod::ForkServer,
    );
    until("the child's last task_done to wake join_async", || {
        count.0.load(SeqCst) >= 1
    });
    assert_eq!(poll_once(&mut join, &waker), Poll::Ready(()));
    assert_eq!(q.unfinished_tasks(), 0);
    child.join_timeout(LONG).unwrap();
    // Nothing unfinished: ready at once.
    block_on(q.join_async());
}

/// The waiter thread is started by the first wait and ends once no task
/// has waited for a while (100 ms): observed through the queue's probes
/// (this process's thread, and the ring's count of waiter threads in every
/// process), not a sleep.
#[test]
fn ipc_queue_waiter_thread_ends_when_idle() {
    let q: Queue<u32> = Queue::new().unwrap();
    assert!(!q.__async_waiter_running());
    assert_eq!(q.__async_waiter_threads(), 0);
    // Ready at once: no wait, no thread.
    q.put(1).unwrap();
    assert_eq!(block_on(q.get_async()).unwrap(), 1);
    assert!(!q.__async_waiter_running());
    let (_, waker) = counting();
    let mut get = q.get_async();
    assert!(poll_once(&mut get, &waker).is_pending());
    assert!(q.__async_waiter_running());
    assert_eq!(q.__async_waiter_threads(), 1);
    // While a task waits, the thread stays (well past its idle time).
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(300) {
        assert!(
            q.__async_waiter_running(),
            "the thread ended while a task waited"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    q.put(2).unwrap();
    assert_eq!(block_on(get).unwrap(), 2);
    until("the idle waiter thread to end", || {
        !q.__async_waiter_running() && q.__async_waiter_threads() == 0
    });
    // The next wait starts it again.
    let mut get = q.get_async();
    assert!(poll_once(&mut get, &waker).is_pending());
    assert_eq!(q.__async_waiter_threads(), 1);
    q.shutdown(false);
    assert!(matches!(block_on(get), Err(QueueError::Queue(ShutDown))));
}

/// A bounded queue: `put_async` waits for a place freed by another
/// process's get; a cancelled putter puts nothing and passes the place on.
#[spindle::task]
fn get_one(q: Queue<u32>, out: Queue<u32>) {
    out.put(q.get().unwrap()).unwrap();
}

#[test]
fn ipc_queue_put_async_waits_for_a_place_and_passes_it_on() {
    let q: Queue<u32> = Queue::with_maxsize(1).unwrap();
    let out: Queue<u32> = Queue::new().unwrap();
    q.put(0).unwrap();
    let (a_count, a_waker) = counting();
    let (b_count, b_waker) = counting();
    let mut a = q.put_async(1);
    let mut b = q.put_async(2);
    assert!(poll_once(&mut a, &a_waker).is_pending(), "full");
    assert!(poll_once(&mut b, &b_waker).is_pending(), "full");
    let mut child = start(
        get_one::call(q.clone(), out.clone()),
        StartMethod::ForkServer,
    );
    assert_eq!(out.get_timeout(LONG).unwrap(), 0);
    child.join_timeout(LONG).unwrap();
    until("the freed place to wake the first putter", || {
        a_count.0.load(SeqCst) == 1
    });
    drop(a); // puts nothing
    until("the place to be passed on", || b_count.0.load(SeqCst) >= 1);
    assert!(matches!(poll_once(&mut b, &b_waker), Poll::Ready(Ok(()))));
    assert_eq!(q.qsize(), 1);
    assert_eq!(q.try_get().unwrap(), 2);
    // Shut down: a waiting putter gets its item back.
    q.put(3).unwrap();
    let mut c = q.put_async(4);
    assert!(poll_once(&mut c, &b_waker).is_pending());
    q.shutdown(false);
    match block_on(c) {
        Err(QueueError::Queue(e)) => assert_eq!(e.into_inner(), 4),
        other => panic!("{other:?}"),
    }
}

/// The item errors of the async faces: a closed queue, a value too large.
#[test]
fn ipc_queue_async_item_errors() {
    let q: Queue<Vec<u8>> = Queue::with_max_item(0, 100).unwrap();
    match block_on(q.put_async(vec![0; 200])) {
        Err(QueueError::Item(e)) => {
            assert!(matches!(
                e.kind(),
                ItemErrorKind::TooLarge { limit: 100, .. }
            ));
            assert_eq!(e.into_inner().len(), 200, "the item is handed back");
        }
        other => panic!("{other:?}"),
    }
    q.close();
    assert!(matches!(
        block_on(q.get_async()),
        Err(QueueError::Item(e)) if matches!(e.kind(), ItemErrorKind::Closed)
    ));
}

/// An unbounded queue's `put_async` completes at its first poll even when
/// the ring is full: the item goes to this process's feeder thread (as
/// `put`), and one producer's items keep their order.
#[test]
fn ipc_queue_unbounded_put_async_never_waits() {
    const PAST_THE_RING: u32 = 16 * 1024 + 100;
    let q: Queue<u32> = Queue::new().unwrap();
    let (_, waker) = counting();
    for i in 0..PAST_THE_RING {
        let mut put = q.put_async(i);
        assert!(
            matches!(poll_once(&mut put, &waker), Poll::Ready(Ok(()))),
            "put {i} waited"
        );
    }
    assert_eq!(q.qsize(), PAST_THE_RING as usize);
    for want in 0..PAST_THE_RING {
        assert_eq!(block_on(q.get_async()).unwrap(), want);
    }
    assert!(q.is_empty());
}
