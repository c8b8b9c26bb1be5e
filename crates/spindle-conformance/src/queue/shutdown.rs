//! Shutdown checks: Python 3.13's `test_shutdown_*` in `Lib/test/test_queue.py`.
//! Each runs both the normal and the immediate flavour where Python has both.

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Barrier, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use super::{ExpectedOrder, SETTLE, check};
use spindle::queue::{BlockingQueue, GetTimeoutError, ShutDown, TryGetError, TryPutError};

/// `test_shutdown_empty`: after shutdown, put and get fail.
pub fn shutdown_empty<Q: BlockingQueue<u64>>(_: ExpectedOrder, make: impl Fn(usize) -> Q) {
    let q = make(0);
    q.shutdown(false);
    check(
        q.put(1).map_err(|e| e.into_inner()) == Err(1),
        "put after shutdown hands the item back",
    );
    check(q.get() == Err(ShutDown), "get on a shut down empty queue");
}

/// `test_shutdown_nonempty` and `test_shutdown_immediate`: the remaining
/// item is handed out after a shutdown, but not after an immediate one.
pub fn shutdown_nonempty<Q: BlockingQueue<u64>>(_: ExpectedOrder, make: impl Fn(usize) -> Q) {
    let q = make(0);
    q.put(1).unwrap();
    q.shutdown(false);
    check(q.get() == Ok(1), "the remaining item is still handed out");
    check(q.get() == Err(ShutDown), "then get fails");
    let q = make(0);
    q.put(1).unwrap();
    q.shutdown(true);
    check(
        q.get() == Err(ShutDown),
        "an immediate shutdown drops the items",
    );
}

/// `test_shutdown_allowed_transitions`.
pub fn shutdown_allowed_transitions<Q: BlockingQueue<u64>>(
    _: ExpectedOrder,
    make: impl Fn(usize) -> Q,
) {
    let q = make(0);
    check(!q.is_shutdown(), "a new queue is not shut down");
    q.shutdown(false);
    check(q.is_shutdown(), "shut down");
    q.shutdown(true);
    check(q.is_shutdown(), "still shut down");
    q.shutdown(false);
    check(q.is_shutdown(), "shutting down is final");
}

/// `_shutdown_all_methods_in_one_thread`, both flavours.
pub fn shutdown_all_methods_in_one_thread<Q: BlockingQueue<u64>>(
    _: ExpectedOrder,
    make: impl Fn(usize) -> Q,
) {
    for immediate in [false, true] {
        let q = make(2);
        q.put(1).unwrap();
        q.try_put(2).unwrap();
        q.shutdown(immediate);
        check(q.put(3).is_err(), "put after shutdown");
        check(
            q.try_put(4) == Err(TryPutError::ShutDown(4)),
            "try_put after shutdown",
        );
        if immediate {
            check(q.get() == Err(ShutDown), "get after immediate shutdown");
            check(
                q.try_get() == Err(TryGetError::ShutDown),
                "try_get after immediate shutdown",
            );
            check(q.task_done().is_err(), "dropped items count as done");
            q.join();
        } else {
            for _ in 0..2 {
                check(matches!(q.get(), Ok(1 | 2)), "remaining items handed out");
                q.task_done().unwrap();
            }
            q.join();
            check(q.get() == Err(ShutDown), "get once drained");
            check(
                q.try_get() == Err(TryGetError::ShutDown),
                "try_get once drained",
            );
            check(
                q.get_timeout(Duration::from_secs(1)) == Err(GetTimeoutError::ShutDown),
                "get_timeout once drained",
            );
        }
    }
}

/// `_shutdown_all_methods_in_many_threads`, both flavours: 4 writers, 6
/// readers, a shutdown in the middle; every reader sees `ShutDown`.
pub fn shutdown_all_methods_in_many_threads<Q: BlockingQueue<u64> + Sync>(
    _: ExpectedOrder,
    make: impl Fn(usize) -> Q,
) {
    const WRITERS: usize = 4;
    const READERS: usize = 6;
    const JOINERS: usize = 2;
    let per_writer: u64 = if cfg!(miri) { 64 } else { 4096 };
    let when = per_writer / 2;
    for immediate in [false, true] {
        let q = make(0);
        let parties = WRITERS + READERS + if immediate { JOINERS } else { 0 };
        let start = Barrier::new(parties);
        let (shut_tx, shut_rx) = mpsc::channel::<()>();
        let triggered = AtomicBool::new(false);
        let readers_done = Mutex::new(0);
        let empty_after = Mutex::new(None);
        thread::scope(|s| {
            for _ in 0..WRITERS {
                let shut_tx = shut_tx.clone();
                let (q, start, triggered) = (&q, &start, &triggered);
                s.spawn(move || {
                    for i in 0..when / 2 {
                        q.put(i).unwrap();
                    }
                    start.wait();
                    for i in when / 2..per_writer {
                        if q.put(i).is_err() {
                            break;
                        }
                        if i == when && !triggered.swap(true, SeqCst) {
                            shut_tx.send(()).unwrap();
                        }
                    }
                });
            }
            drop(shut_tx);
            for _ in 0..READERS {
                s.spawn(|| {
                    q.get().unwrap();
                    q.task_done().unwrap();
                    start.wait();
                    loop {
                        match q.try_get() {
                            Ok(_) => q.task_done().unwrap(),
                            Err(TryGetError::ShutDown) => break,
                            Err(TryGetError::Empty) => thread::yield_now(),
                        }
                    }
                    *readers_done.lock().unwrap() += 1;
                });
            }
            let (q, empty_after) = (&q, &empty_after);
            s.spawn(move || {
                shut_rx.recv().unwrap();
                q.shutdown(immediate);
                *empty_after.lock().unwrap() = Some(q.qsize() == 0);
            });
            if immediate {
                for _ in 0..JOINERS {
                    s.spawn(|| {
                        start.wait();
                        q.join();
                    });
                }
            }
        });
        check(triggered.load(SeqCst), "a writer triggered the shutdown");
        check(
            *readers_done.lock().unwrap() == READERS,
            "every reader saw ShutDown",
        );
        if immediate {
            check(
                *empty_after.lock().unwrap() == Some(true),
                "immediate shutdown empties the queue",
            );
            check(q.is_empty(), "queue stays empty");
        }
    }
}

/// `_shutdown_get`, both flavours: getters after a shutdown drain what is left.
pub fn shutdown_get<Q: BlockingQueue<u64> + Sync>(_: ExpectedOrder, make: impl Fn(usize) -> Q) {
    for immediate in [false, true] {
        let q = make(2);
        q.put(1).unwrap();
        q.put(2).unwrap();
        let getters = if immediate { 2 } else { 3 };
        let go = Barrier::new(getters + 1);
        let results = Mutex::new(Vec::new());
        thread::scope(|s| {
            for _ in 0..getters {
                s.spawn(|| {
                    go.wait();
                    let ok = q.get().is_ok();
                    results.lock().unwrap().push(ok);
                });
            }
            q.shutdown(immediate);
            go.wait();
        });
        let mut results = results.into_inner().unwrap();
        results.sort();
        let want = if immediate {
            vec![false, false]
        } else {
            vec![false, true, true]
        };
        check(
            results == want,
            &format!("getters after shutdown({immediate}): {results:?}"),
        );
    }
}

/// `_shutdown_put`, both flavours, plus putters already blocked on a full
/// queue: every put fails with `ShutDown` and hands its item back.
pub fn shutdown_put<Q: BlockingQueue<u64> + Sync>(_: ExpectedOrder, make: impl Fn(usize) -> Q) {
    for immediate in [false, true] {
        let q = make(2);
        q.put(1).unwrap();
        q.put(2).unwrap();
        thread::scope(|s| {
            let q = &q;
            let putters: Vec<_> = [3, 4]
                .map(|x| s.spawn(move || q.put(x).map_err(|e| e.into_inner()) == Err(x)))
                .into();
            thread::sleep(SETTLE); // let them block on the full queue
            q.shutdown(immediate);
            for p in putters {
                check(
                    p.join().unwrap(),
                    "a blocked put wakes with ShutDown and its item",
                );
            }
        });
    }
}

/// `_shutdown_join`, both flavours: `join` returns once the remaining item
/// is processed, or at once after an immediate shutdown.
pub fn shutdown_join<Q: BlockingQueue<u64> + Sync>(_: ExpectedOrder, make: impl Fn(usize) -> Q) {
    for immediate in [false, true] {
        let q = make(0);
        q.put(1).unwrap();
        let go = Barrier::new(2);
        thread::scope(|s| {
            let joiners: Vec<_> = (0..2).map(|_| s.spawn(|| q.join())).collect();
            if !immediate {
                s.spawn(|| {
                    go.wait();
                    q.get().unwrap();
                    q.task_done().unwrap();
                });
            }
            q.shutdown(immediate);
            if !immediate {
                go.wait();
            }
            joiners.into_iter().for_each(|j| j.join().unwrap());
        });
        check(q.join_timeout(Duration::ZERO).is_ok(), "all tasks done");
    }
}

/// `_shutdown_put_join`, both flavours.
pub fn shutdown_put_join<Q: BlockingQueue<u64> + Sync>(
    _: ExpectedOrder,
    make: impl Fn(usize) -> Q,
) {
    for immediate in [false, true] {
        let q = make(2);
        q.put(1).unwrap();
        let go = Barrier::new(2);
        thread::scope(|s| {
            let putter = s.spawn(|| {
                go.wait();
                q.put(5).is_err()
            });
            let joiner = s.spawn(|| q.join());
            q.shutdown(immediate);
            go.wait();
            if immediate {
                check(
                    q.try_get() == Err(TryGetError::ShutDown),
                    "nothing left after immediate shutdown",
                );
            } else {
                check(q.get() == Ok(1), "the remaining item");
                q.task_done().unwrap();
            }
            check(putter.join().unwrap(), "put after shutdown fails");
            joiner.join().unwrap();
        });
    }
}

/// `test_shutdown_get_task_done_join`.
pub fn shutdown_get_task_done_join<Q: BlockingQueue<u64> + Sync>(
    _: ExpectedOrder,
    make: impl Fn(usize) -> Q,
) {
    let q = make(2);
    q.put(1).unwrap();
    q.put(2).unwrap();
    let go = Barrier::new(3);
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                go.wait();
                q.get().unwrap();
                q.task_done().unwrap();
            });
        }
        for _ in 0..2 {
            s.spawn(|| q.join());
        }
        go.wait();
        q.shutdown(false);
    });
    check(q.join_timeout(Duration::ZERO).is_ok(), "all tasks done");
}

/// `test_shutdown_pending_get`: a getter blocked on an empty queue wakes
/// with `ShutDown`.
pub fn shutdown_pending_get<Q: BlockingQueue<u64> + Sync>(
    _: ExpectedOrder,
    make: impl Fn(usize) -> Q,
) {
    let q = make(0);
    let (tx, rx) = mpsc::channel();
    thread::scope(|s| {
        s.spawn(|| tx.send(q.get()).unwrap());
        thread::sleep(SETTLE); // let it block
        q.shutdown(false);
        let got = rx.recv_timeout(Duration::from_secs(10));
        check(
            got == Ok(Err(ShutDown)),
            "a blocked get wakes with ShutDown",
        );
    });
}
