//! Loom models of the queue core (one mutex, three condition variables,
//! counted waiters): put/get/task_done/join/shutdown races. Run them as
//! `crate::loom` says; spinning is off under loom, so every waiter takes
//! the condition-variable path.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::time::Instant;

use ::loom::sync::Arc;
use ::loom::thread;

use super::{Core, GetFail, PutFail};
use crate::loom::{advance, check};
use crate::util::Wait;

type Fifo = Core<VecDeque<u32>>;

fn core(maxsize: usize) -> Arc<Fifo> {
    Arc::new(Core::new::<u32>(maxsize))
}

fn put(q: &Fifo, v: u32) -> bool {
    match q.put(v, Wait::Forever) {
        Ok(()) => true,
        Err(PutFail::ShutDown(_)) => false,
        Err(PutFail::Full(_)) => unreachable!("a blocking put is never Full"),
    }
}

/// A bounded queue of one: a putter blocks on the full queue until a getter
/// frees the place, and the items come out in order (no lost
/// `not_full`/`not_empty` notification between the counted waiters).
#[test]
fn loom_model_queue_bounded_put_blocks_until_get() {
    check("queue core: bounded put waits for a get", 3, || {
        let q = core(1);
        assert!(put(&q, 1));
        let putter = {
            let q = Arc::clone(&q);
            thread::spawn(move || assert!(put(&q, 2)))
        };
        let getter = {
            let q = Arc::clone(&q);
            thread::spawn(move || q.get::<u32>(Wait::Forever).unwrap())
        };
        assert_eq!(getter.join().unwrap(), 1);
        assert_eq!(q.get::<u32>(Wait::Forever).unwrap(), 2);
        putter.join().unwrap();
    });
}

/// `join` returns only once every put item was marked done, whichever
/// order the worker's `get`/`task_done` and the joiner interleave in.
#[test]
fn loom_model_queue_join_waits_for_task_done() {
    check("queue core: join vs get + task_done", 3, || {
        let q = core(0);
        let done = Arc::new(::loom::sync::atomic::AtomicBool::new(false));
        assert!(put(&q, 1));
        let worker = {
            let (q, done) = (Arc::clone(&q), Arc::clone(&done));
            thread::spawn(move || {
                assert_eq!(q.get::<u32>(Wait::Forever).unwrap(), 1);
                done.store(true, std::sync::atomic::Ordering::Relaxed);
                assert!(q.task_done());
            })
        };
        let joiner = {
            let (q, done) = (Arc::clone(&q), Arc::clone(&done));
            thread::spawn(move || {
                assert!(q.join(None));
                // The worker's work happened before its task_done.
                assert!(done.load(std::sync::atomic::Ordering::Relaxed));
            })
        };
        worker.join().unwrap();
        joiner.join().unwrap();
        assert!(!q.task_done(), "task_done once too often is refused");
    });
}

/// A blocked put (full queue) and a blocked get (queue emptied first) race a
/// shutdown: both end (the shutdown wakes every counted waiter), a refused
/// put hands its item back, and every item put is got or still there.
#[test]
fn loom_model_queue_shutdown_wakes_blocked_put_and_get() {
    check("queue core: blocked put and get vs shutdown", 3, || {
        let q = core(1);
        assert!(put(&q, 1));
        let putter = {
            let q = Arc::clone(&q);
            thread::spawn(move || put(&q, 2))
        };
        let getter = {
            let q = Arc::clone(&q);
            thread::spawn(move || {
                let mut got = Vec::new();
                loop {
                    match q.get::<u32>(Wait::Forever) {
                        Ok(v) => got.push(v),
                        Err(GetFail::ShutDown) => return got,
                        Err(GetFail::Empty) => unreachable!("a blocking get is never Empty"),
                    }
                }
            })
        };
        q.shutdown::<u32>(false);
        let second_put = putter.join().unwrap();
        let got = getter.join().unwrap();
        assert_eq!(
            got.first(),
            Some(&1),
            "items put before the shutdown are got"
        );
        assert_eq!(got.len(), 1 + usize::from(second_put), "a put item is got");
        assert!(matches!(q.put(3, Wait::Never), Err(PutFail::ShutDown(3))));
    });
}

/// `shutdown(immediate)` releases a joiner: the queued items are dropped and
/// counted as done.
#[test]
fn loom_model_queue_immediate_shutdown_releases_join() {
    check("queue core: join vs immediate shutdown", 3, || {
        let q = core(0);
        assert!(put(&q, 1));
        assert!(put(&q, 2));
        let joiner = {
            let q = Arc::clone(&q);
            thread::spawn(move || assert!(q.join(None)))
        };
        let getter = {
            let q = Arc::clone(&q);
            thread::spawn(move || {
                if q.get::<u32>(Wait::Forever).is_ok() {
                    assert!(q.task_done());
                }
            })
        };
        q.shutdown::<u32>(true);
        joiner.join().unwrap();
        getter.join().unwrap();
        assert_eq!(q.state.lock().unfinished, 0);
    });
}

/// A timed get races a put and the clock: it gets the item or times out,
/// and a timed-out get leaves the item for the next one.
#[test]
fn loom_model_queue_timed_get_races_put() {
    check("queue core: timed get vs put vs clock", 3, || {
        let q = core(0);
        let getter = {
            let q = Arc::clone(&q);
            thread::spawn(move || q.get::<u32>(Wait::Until(Instant::now())).ok())
        };
        let clock = thread::spawn(advance);
        assert!(put(&q, 7));
        let got = getter.join().unwrap();
        clock.join().unwrap();
        match got {
            Some(v) => assert_eq!(v, 7),
            None => assert_eq!(q.get::<u32>(Wait::Never), Ok(7)),
        }
    });
}
