//! Tour section `queue`: Python's `queue` module in spindle — the three
//! orders, blocking with timeouts, task_done/join, 3.13 shutdown, the async
//! face fed by a blocking thread, and many producers and consumers.

use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use spindle::queue::{
    GetTimeoutError, LifoQueue, PriorityQueue, Queue, ShutDown, TryGetError, TryPutError,
};

use super::Tour;

pub(crate) fn run(t: &mut Tour) {
    t.say("queue.Queue, LifoQueue, PriorityQueue: put 111, 333, 222, then get three times");
    let (fifo, lifo, prio) = (Queue::new(), LifoQueue::new(), PriorityQueue::new());
    for n in [111, 333, 222] {
        fifo.put(n).unwrap();
        lifo.put(n).unwrap();
        prio.put(n).unwrap();
    }
    let f: Vec<i32> = fifo.try_iter().collect();
    let l: Vec<i32> = lifo.try_iter().collect();
    let p: Vec<i32> = prio.try_iter().collect();
    t.check("FIFO order", f == [111, 333, 222], format!("{f:?}"));
    t.check("LIFO order", l == [222, 333, 111], format!("{l:?}"));
    t.check("priority order", p == [111, 222, 333], format!("{p:?}"));

    t.say(
        "maxsize=1: put_nowait on a full queue raises Full in Python; spindle hands the item back",
    );
    let q = Queue::with_maxsize(1);
    q.put("first").unwrap();
    let full = q.try_put("second");
    t.check(
        "try_put on a full queue -> Full(item)",
        full == Err(TryPutError::Full("second")),
        format!("{full:?}"),
    );
    let start = Instant::now();
    let timed = q.put_timeout("third", Duration::from_millis(20));
    t.check(
        "put_timeout waits, then gives the item back",
        timed.as_ref().is_err_and(|e| e.is_timeout())
            && start.elapsed() >= Duration::from_millis(20),
        format!("after {:.0?}", start.elapsed()),
    );
    q.get().unwrap();
    let got = q.get_timeout(Duration::from_millis(5));
    t.check(
        "get_timeout on an empty queue -> Empty",
        got == Err(GetTimeoutError::Timeout),
        format!("{got:?}"),
    );

    t.say("5 workers call task_done(); the main thread waits in join() for 100 items");
    let q = Queue::new();
    let workers: Vec<_> = (0..5)
        .map(|_| {
            let q = q.clone();
            thread::spawn(move || {
                let mut sum = 0u64;
                for n in &q {
                    sum += n;
                    q.task_done().unwrap();
                }
                sum
            })
        })
        .collect();
    for n in 1..=100u64 {
        q.put(n).unwrap();
    }
    q.join();
    let unfinished = q.unfinished_tasks();
    q.shutdown(false); // ends the workers' `for` loops
    let sum: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    t.check(
        "join() returned with every task done",
        unfinished == 0,
        format!("unfinished_tasks = {unfinished}"),
    );
    t.check(
        "the iterator ended on shutdown; nothing lost",
        sum == 5050,
        format!("sum = {sum}"),
    );
    let extra = q.task_done();
    t.check(
        "task_done() once too often is an error (ValueError)",
        extra.is_err(),
        "",
    );

    t.say("Python 3.13 shutdown: gets drain what is left, then fail; immediate drops the rest");
    let q = Queue::new();
    q.put(1).unwrap();
    q.put(2).unwrap();
    q.shutdown(false);
    let put = q.put(3).map_err(|e| e.into_inner());
    let drained = [q.get(), q.get(), q.get()];
    t.check(
        "put after shutdown -> ShutDown(item)",
        put == Err(3),
        format!("{put:?}"),
    );
    t.check(
        "get drains, then ShutDown",
        drained == [Ok(1), Ok(2), Err(ShutDown)],
        format!("{drained:?}"),
    );
    let q = Queue::new();
    q.put(1).unwrap();
    let blocked = {
        let q = Queue::<u8>::new();
        let q2 = q.clone();
        let h = thread::spawn(move || q2.get());
        thread::sleep(Duration::from_millis(10));
        q.shutdown(false);
        h.join().unwrap()
    };
    q.shutdown(true);
    t.check(
        "a blocked get() is woken by shutdown",
        blocked == Err(ShutDown),
        format!("{blocked:?}"),
    );
    t.check(
        "immediate shutdown empties the queue and releases join()",
        q.try_get() == Err(TryGetError::ShutDown) && q.join_timeout(Duration::ZERO).is_ok(),
        "",
    );

    t.say("a blocking producer thread feeds an async consumer (no runtime needed)");
    let q = Queue::with_maxsize(8);
    let producer = {
        let q = q.clone();
        thread::spawn(move || {
            for n in 0..1000u64 {
                q.put(n).unwrap();
            }
            q.shutdown(false);
        })
    };
    let total = block_on(async {
        let mut total = 0;
        while let Ok(n) = q.get_async().await {
            total += n;
        }
        total
    });
    producer.join().unwrap();
    t.check(
        "async consumer got every item",
        total == 499_500,
        format!("sum = {total}"),
    );

    t.say("4 producers x 4 consumers through a bounded(16) queue, 40 000 items");
    let q = Queue::with_maxsize(16);
    let start = Instant::now();
    let consumers: Vec<_> = (0..4)
        .map(|_| {
            let q = q.clone();
            thread::spawn(move || q.iter().fold((0u64, 0u64), |(c, s), x| (c + 1, s + x)))
        })
        .collect();
    let producers: Vec<_> = (0..4u64)
        .map(|p| {
            let q = q.clone();
            thread::spawn(move || (0..10_000u64).for_each(|i| q.put(p * 10_000 + i).unwrap()))
        })
        .collect();
    producers.into_iter().for_each(|p| p.join().unwrap());
    q.shutdown(false);
    let (count, sum) = consumers
        .into_iter()
        .map(|c| c.join().unwrap())
        .fold((0, 0), |(c, s), (c2, s2)| (c + c2, s + s2));
    t.check(
        "no item lost or duplicated",
        count == 40_000 && sum == (0..40_000u64).sum::<u64>(),
        format!("{count} items in {:.1?}", start.elapsed()),
    );
}

/// The smallest executor: polls on this thread, parks between polls.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    struct Unpark(thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let mut f = std::pin::pin!(f);
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        thread::park();
    }
}
