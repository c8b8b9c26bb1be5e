//! Tour section `futures`: Python's `concurrent.futures` — submit, result,
//! callbacks, as_completed, map in order with a timeout, cancel, shutdown with
//! cancel_futures, a broken pool, real parallelism, and `.await`.

use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use spindle::futures::{
    Executor, FutureError, MapOptions, ThreadPoolExecutor, as_completed, fallible,
};

use super::Tour;

/// A one-shot gate for holding tasks until the tour releases them.
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    fn open(&self) {
        *self.0.0.lock().expect("gate lock") = true;
        self.0.1.notify_all();
    }
    fn wait(&self) {
        let mut open = self.0.0.lock().expect("gate lock");
        while !*open {
            open = self.0.1.wait(open).expect("gate lock");
        }
    }
}

fn action(max: u64) -> u64 {
    (0..max).sum()
}

pub(crate) fn run(t: &mut Tour) {
    t.say(
        "ThreadPoolExecutor(max_workers=2): submit action(50) and action(100), block on result()",
    );
    let pool = ThreadPoolExecutor::builder()
        .max_workers(2)
        .build()
        .unwrap();
    let f1 = pool.submit(|| action(50)).expect("open");
    let f2 = pool.submit(|| action(100)).expect("open");
    let (r1, r2) = (f1.result(), f2.result());
    t.check(
        "future.result() gives each task's value",
        r1 == Ok(1225) && r2 == Ok(4950),
        format!("{r1:?} {r2:?}"),
    );

    let (tx, rx) = mpsc::channel();
    f1.add_done_callback(move |f| tx.send(f.result()).expect("receiver alive"));
    let got = rx.try_recv();
    t.check(
        "add_done_callback on a done future runs at once",
        got == Ok(Ok(1225)),
        format!("{got:?}"),
    );

    t.say("as_completed: three tasks released in the order 2, 0, 1");
    let gates: Vec<Gate> = (0..3).map(|_| Gate::default()).collect();
    let pool3 = ThreadPoolExecutor::builder()
        .max_workers(3)
        .build()
        .unwrap();
    let fs: Vec<_> = (0..3usize)
        .map(|i| {
            let g = gates[i].clone();
            pool3
                .submit(move || {
                    g.wait();
                    i
                })
                .expect("open")
        })
        .collect();
    let mut order = Vec::new();
    let mut it = as_completed(&fs);
    for i in [2, 0, 1] {
        gates[i].open();
        order.push(it.next().and_then(|f| f.result().ok()));
    }
    t.check(
        "as_completed yields futures in completion order",
        order == [Some(2), Some(0), Some(1)],
        format!("{order:?}"),
    );

    t.say("map with timeout=50ms over [0, 1, <blocked>, 3]");
    let gate = Gate::default();
    let g = gate.clone();
    let items: Vec<Result<u32, FutureError>> = pool
        .map_with(
            move |i: u32| {
                if i == 2 {
                    g.wait();
                }
                i
            },
            0..4,
            MapOptions::new().timeout(Duration::from_millis(50)),
        )
        .expect("open")
        .collect();
    gate.open();
    t.check(
        "map keeps input order, then raises Timeout and stops",
        items == [Ok(0), Ok(1), Err(FutureError::Timeout)],
        format!("{items:?}"),
    );

    t.say("one worker busy, 50 tasks queued, shutdown(wait=True, cancel_futures=True)");
    let one = ThreadPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let gate = Gate::default();
    let g = gate.clone();
    let (started_tx, started_rx) = mpsc::channel();
    let busy = one
        .submit(move || {
            started_tx.send(()).ok();
            g.wait();
        })
        .expect("open");
    started_rx.recv().ok(); // the worker is busy, not just queued
    let queued: Vec<_> = (0..50)
        .map(|i| one.submit(move || i).expect("open"))
        .collect();
    let cancelled_one = queued[0].cancel();
    let opener = {
        let gate = gate.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            gate.open();
        })
    };
    one.shutdown(true, true);
    opener.join().expect("opener thread");
    let cancelled = queued.iter().filter(|f| f.cancelled()).count();
    t.check(
        "cancel() on a queued future, then cancel_futures cancel the rest",
        cancelled_one && cancelled == 50 && busy.done() && !busy.cancelled(),
        format!("{cancelled} of 50 cancelled; the running task finished"),
    );
    let after = one.submit(|| 1);
    t.check(
        "submit after shutdown is an error that hands the task back",
        after.as_ref().is_err_and(|e| e.is_shut_down()),
        after.err().map(|e| e.to_string()).unwrap_or_default(),
    );

    // The initializer's panic is expected: keep its report off the tour.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let broken = ThreadPoolExecutor::builder()
        .max_workers(1)
        .initializer(|| panic!("no database"))
        .build()
        .unwrap();
    let err = broken.submit(|| 1).expect("open").result();
    drop(broken);
    std::panic::set_hook(hook);
    t.check(
        "a failing initializer breaks the pool (BrokenThreadPool)",
        err.as_ref().is_err_and(FutureError::is_broken),
        format!("{err:?}"),
    );

    let e = pool
        .submit(fallible(|| "x".parse::<u8>()))
        .expect("open")
        .exception();
    t.check(
        "a task's own error comes back typed (exception())",
        e.as_ref().is_some_and(|e| e.task_error().is_some()),
        e.map(|e| e.to_string()).unwrap_or_default(),
    );

    t.say("two tasks that can only finish together: no GIL, they run at the same time");
    let (a_tx, a_rx) = mpsc::channel::<()>();
    let (b_tx, b_rx) = mpsc::channel::<()>();
    let a = pool
        .submit(move || {
            a_tx.send(()).ok();
            b_rx.recv_timeout(Duration::from_secs(5)).is_ok()
        })
        .expect("open");
    let b = pool
        .submit(move || {
            b_tx.send(()).ok();
            a_rx.recv_timeout(Duration::from_secs(5)).is_ok()
        })
        .expect("open");
    t.check(
        "both workers ran concurrently",
        a.result() == Ok(true) && b.result() == Ok(true),
        "",
    );

    let started = Instant::now();
    let v = block_on(pool.submit(|| action(1000)).expect("open"));
    t.check(
        "a Future can be awaited (runtime-agnostic .await)",
        v == Ok(499_500),
        format!("{v:?} in {:.1} ms", started.elapsed().as_secs_f64() * 1e3),
    );
}

/// A minimal `block_on`: polls, parks until woken.
fn block_on<F: std::future::IntoFuture>(fut: F) -> F::Output {
    struct Unpark(thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let mut fut = std::pin::pin!(fut.into_future());
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        thread::park();
    }
}
