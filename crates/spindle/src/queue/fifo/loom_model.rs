//! Loom models of the lock-free FIFO core (`fifo.rs`): the eventcount
//! between a put's reservation and a sleeping getter, between a get of a
//! bounded queue and a sleeping putter, between `task_done` and a joiner,
//! and the puts in flight across `shutdown` (normal and immediate). The
//! store is a model ring over loom atomics here, with the real ring's
//! shutdown mark in its tail (see `fifo.rs`); spinning is off,
//! so every waiter takes the sleeping path. Run them as `crate::loom` says.
#![forbid(unsafe_code)]

use std::time::Instant;

use ::loom::sync::Arc;
use ::loom::thread;

use super::FifoCore;
use crate::loom::{advance, check};
use crate::queue::backend::Backend;
use crate::queue::core::{GetFail, PutFail};
use crate::util::Wait;

type Q = FifoCore<u32>;

fn queue(maxsize: usize) -> Arc<Q> {
    Arc::new(Q::new(maxsize))
}

fn put(q: &Q, v: u32) -> bool {
    match q.put(v, Wait::Forever) {
        Ok(()) => true,
        Err(PutFail::ShutDown(_)) => false,
        Err(PutFail::Full(_)) => unreachable!("a blocking put is never Full"),
    }
}

/// Gets until `ShutDown`.
fn drain(q: &Q) -> Vec<u32> {
    let mut got = Vec::new();
    loop {
        match q.get(Wait::Forever) {
            Ok(v) => got.push(v),
            Err(GetFail::ShutDown) => return got,
            Err(GetFail::Empty) => unreachable!("a blocking get is never Empty"),
        }
    }
}

/// A getter sleeping on an empty queue is woken by a put at any point of
/// its way to sleep (the getters/tail Dekker pair), and two
/// puts reach two getters.
#[test]
fn loom_model_fifo_put_wakes_sleeping_getters() {
    check("fifo core: puts vs sleeping getters", 2, || {
        let q = queue(0);
        let getters: Vec<_> = (0..2)
            .map(|_| {
                let q = Arc::clone(&q);
                thread::spawn(move || q.get(Wait::Forever).unwrap())
            })
            .collect();
        assert!(put(&q, 1));
        assert!(put(&q, 2));
        let mut got: Vec<u32> = getters.into_iter().map(|g| g.join().unwrap()).collect();
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
        assert_eq!(q.len(), 0);
    });
}

/// A bounded queue of one: a putter sleeping on the full queue is woken by
/// the get that frees the place (the putters/head Dekker pair), and the
/// items come out in order.
#[test]
fn loom_model_fifo_bounded_put_waits_for_get() {
    check("fifo core: bounded put vs get", 3, || {
        let q = queue(1);
        assert!(put(&q, 1));
        let putter = {
            let q = Arc::clone(&q);
            thread::spawn(move || assert!(put(&q, 2)))
        };
        let getter = {
            let q = Arc::clone(&q);
            thread::spawn(move || q.get(Wait::Forever).unwrap())
        };
        assert_eq!(getter.join().unwrap(), 1);
        putter.join().unwrap();
        assert_eq!(q.get(Wait::Never), Ok(2));
    });
}

/// A put racing a shutdown either fails (and hands its item back) or
/// lands before it: then a draining getter gets the item — a getter never
/// reports `ShutDown` while a put let in before the shutdown is still in
/// flight. `join` then returns once the getter marks what it got done.
#[test]
fn loom_model_fifo_put_racing_shutdown_is_got_or_refused() {
    check("fifo core: put vs shutdown vs draining getter", 3, || {
        let q = queue(0);
        let putter = {
            let q = Arc::clone(&q);
            thread::spawn(move || put(&q, 7))
        };
        let getter = {
            let q = Arc::clone(&q);
            thread::spawn(move || {
                let got = drain(&q);
                for _ in &got {
                    assert!(q.task_done());
                }
                got
            })
        };
        q.shutdown(false);
        let put_ok = putter.join().unwrap();
        let got = getter.join().unwrap();
        assert_eq!(got, if put_ok { vec![7] } else { vec![] });
        assert!(q.join(None));
        assert_eq!(q.unfinished(), 0);
        assert!(matches!(q.put(8, Wait::Never), Err(PutFail::ShutDown(8))));
    });
}

/// An immediate shutdown racing a put: a put let in before it lands
/// first and is dropped and counted done with the rest, so a joiner is
/// released and nothing is left behind.
#[test]
fn loom_model_fifo_immediate_shutdown_waits_for_puts_in_flight() {
    check("fifo core: put vs immediate shutdown vs join", 3, || {
        let q = queue(0);
        assert!(put(&q, 1));
        let putter = {
            let q = Arc::clone(&q);
            thread::spawn(move || put(&q, 2))
        };
        let joiner = {
            let q = Arc::clone(&q);
            thread::spawn(move || assert!(q.join(None)))
        };
        q.shutdown(true);
        putter.join().unwrap();
        joiner.join().unwrap();
        assert_eq!(q.len(), 0);
        assert_eq!(q.unfinished(), 0);
        assert_eq!(q.get(Wait::Never), Err(GetFail::ShutDown));
    });
}

/// `join` returns only once every put item was marked done, whichever way
/// `task_done` and the joiner's way to sleep interleave (the
/// joiners/`done` Dekker pair); `task_done` once too often is refused.
#[test]
fn loom_model_fifo_join_waits_for_task_done() {
    check("fifo core: join vs get + task_done", 3, || {
        let q = queue(0);
        let done = Arc::new(::loom::sync::atomic::AtomicBool::new(false));
        assert!(put(&q, 1));
        let worker = {
            let (q, done) = (Arc::clone(&q), Arc::clone(&done));
            thread::spawn(move || {
                assert_eq!(q.get(Wait::Forever), Ok(1));
                done.store(true, std::sync::atomic::Ordering::Relaxed);
                assert!(q.task_done());
            })
        };
        assert!(q.join(None));
        assert!(done.load(std::sync::atomic::Ordering::Relaxed));
        worker.join().unwrap();
        assert!(!q.task_done(), "task_done once too often is refused");
    });
}

/// A timed get races a put and the clock: it gets the item or times out,
/// and a timed-out get leaves the item for the next one.
#[test]
fn loom_model_fifo_timed_get_races_put() {
    check("fifo core: timed get vs put vs clock", 3, || {
        let q = queue(0);
        let getter = {
            let q = Arc::clone(&q);
            thread::spawn(move || q.get(Wait::Until(Instant::now())).ok())
        };
        let clock = thread::spawn(advance);
        assert!(put(&q, 7));
        let got = getter.join().unwrap();
        clock.join().unwrap();
        match got {
            Some(v) => assert_eq!(v, 7),
            None => assert_eq!(q.get(Wait::Never), Ok(7)),
        }
    });
}

/// A getter a put has unparked is no longer counted as asleep until it is
/// back (puts in the meantime do not notify again); a timed getter that
/// times out meanwhile takes one such mark with it. Neither may hide a
/// getter still asleep from the next put: the untimed getter always gets
/// an item.
#[test]
fn loom_model_fifo_timed_out_getter_hides_no_sleeper() {
    check("fifo core: timed, untimed getters vs two puts", 2, || {
        let q = queue(0);
        let waiter = {
            let q = Arc::clone(&q);
            thread::spawn(move || q.get(Wait::Forever).unwrap())
        };
        let timed = {
            let q = Arc::clone(&q);
            thread::spawn(move || q.get(Wait::Until(Instant::now())).ok())
        };
        let clock = thread::spawn(advance);
        assert!(put(&q, 1));
        assert!(put(&q, 2));
        let mut got = vec![waiter.join().unwrap()];
        got.extend(timed.join().unwrap());
        clock.join().unwrap();
        got.extend(q.get(Wait::Never).ok());
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
    });
}

/// Wakes the model thread that polls.
struct Unparker(thread::Thread);

impl std::task::Wake for Unparker {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `f` on this model thread, parking while it is pending.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let waker = std::task::Waker::from(std::sync::Arc::new(Unparker(thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        thread::park();
    }
}

/// An async getter (its waker list and the same Dekker pair) is woken by
/// a put from a thread.
#[test]
fn loom_model_fifo_async_get_woken_by_put() {
    check("fifo core: async get vs put", 3, || {
        let q = queue(0);
        let putter = {
            let q = Arc::clone(&q);
            thread::spawn(move || assert!(put(&q, 5)))
        };
        // As `GetFuture` does: one key kept across polls.
        let mut key = None;
        let got = block_on(std::future::poll_fn(|cx| q.poll_get(&mut key, cx)));
        assert!(key.is_none(), "a ready poll keeps no registration");
        assert_eq!(got, Ok(5));
        putter.join().unwrap();
    });
}

/// An async getter that was listed (and perhaps notified) is dropped
/// without polling again: its notification passes on, so another async
/// getter listed behind it still gets the item (`cancel_get`), unless the
/// first took it in its one poll.
#[test]
fn loom_model_fifo_cancelled_async_get_passes_the_wakeup_on() {
    check(
        "fifo core: cancelled async get vs async get vs put",
        3,
        || {
            let q = queue(0);
            // Async too: a sleeping thread would be woken before any async
            // getter, and the pass-on would not matter.
            let sleeper = {
                let q = Arc::clone(&q);
                thread::spawn(move || {
                    let mut key = None;
                    block_on(std::future::poll_fn(|cx| q.poll_get(&mut key, cx))).ok()
                })
            };
            let cancelled = {
                let q = Arc::clone(&q);
                thread::spawn(move || {
                    let mut key = None;
                    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
                    let poll = q.poll_get(&mut key, &mut cx);
                    if let Some(k) = key {
                        q.cancel_get(k);
                    }
                    match poll {
                        std::task::Poll::Ready(r) => r.ok(),
                        std::task::Poll::Pending => None,
                    }
                })
            };
            assert!(put(&q, 9));
            let by_async = cancelled.join().unwrap();
            if by_async.is_some() {
                // The sleeper has nothing to get: end it.
                q.shutdown(false);
            }
            let by_sleeper = sleeper.join().unwrap();
            assert_eq!(
                by_sleeper.is_some(),
                by_async.is_none(),
                "the item went to exactly one getter"
            );
        },
    );
}

/// A bounded queue of one, an async putter listed on the full queue: the
/// get that frees the place wakes it (the putters/head pair through the
/// waker list), and its item follows the first.
#[test]
fn loom_model_fifo_async_put_woken_by_get() {
    check("fifo core: async put vs get", 3, || {
        let q = queue(1);
        assert!(put(&q, 1));
        let getter = {
            let q = Arc::clone(&q);
            thread::spawn(move || q.get(Wait::Forever).unwrap())
        };
        let mut item = Some(2);
        let mut key = None;
        block_on(std::future::poll_fn(|cx| {
            q.poll_put(&mut item, &mut key, cx)
        }))
        .unwrap();
        assert!(key.is_none() && item.is_none());
        assert_eq!(getter.join().unwrap(), 1);
        assert_eq!(q.get(Wait::Never), Ok(2));
    });
}

/// A bounded queue of one, full: a blocked put races a shutdown and a
/// draining getter. The put is refused (the mark in the ring's tail) or
/// its item is got; `join` returns once the getter marks what it got
/// done, and the stats count each put and get once.
#[test]
fn loom_model_fifo_bounded_put_racing_shutdown_is_got_or_refused() {
    check(
        "fifo core: bounded put vs shutdown vs draining getter",
        3,
        || {
            let q = queue(1);
            assert!(put(&q, 1));
            let putter = {
                let q = Arc::clone(&q);
                thread::spawn(move || put(&q, 2))
            };
            let getter = {
                let q = Arc::clone(&q);
                thread::spawn(move || {
                    let got = drain(&q);
                    for _ in &got {
                        assert!(q.task_done());
                    }
                    got
                })
            };
            q.shutdown(false);
            let put_ok = putter.join().unwrap();
            let got = getter.join().unwrap();
            assert_eq!(got, if put_ok { vec![1, 2] } else { vec![1] });
            assert!(q.join(None));
            assert!(!q.task_done(), "task_done never runs ahead of the puts");
            let stats = q.stats();
            assert_eq!(
                (stats.puts, stats.gets, stats.qsize),
                (got.len() as u64, got.len() as u64, 0)
            );
        },
    );
}
