//! Python's three queue classes — `queue.Queue` (FIFO), `queue.LifoQueue`
//! (LIFO) and `queue.PriorityQueue` (smallest first) — side by side, with the
//! methods Python tutorials list: qsize, empty, full, put, put_nowait, get,
//! get_nowait. Plus `SimpleQueue`.

use spindle::queue::{LifoQueue, PriorityQueue, Queue, SimpleQueue, TryGetError, TryPutError};

fn main() {
    // The order test of CPython's test_queue.py: put 111, 333, 222.
    let fifo = Queue::with_maxsize(3);
    let lifo = LifoQueue::with_maxsize(3);
    let prio = PriorityQueue::with_maxsize(3);
    for n in [111, 333, 222] {
        fifo.put(n).unwrap();
        lifo.put(n).unwrap();
        prio.put(n).unwrap();
    }
    println!(
        "qsize = {}, empty = {}, full = {} (maxsize {})",
        fifo.qsize(),
        fifo.is_empty(),
        fifo.is_full(),
        fifo.maxsize()
    );
    // put_nowait on a full queue: Python raises queue.Full; spindle hands the item back.
    match fifo.try_put(444) {
        Err(TryPutError::Full(item)) => println!("put_nowait({item}) -> Full, item handed back"),
        other => panic!("expected Full, got {other:?}"),
    }
    let fifo_order: Vec<i32> = fifo.try_iter().collect();
    let lifo_order: Vec<i32> = lifo.try_iter().collect();
    let prio_order: Vec<i32> = prio.try_iter().collect();
    println!("Queue         (FIFO)           -> {fifo_order:?}");
    println!("LifoQueue     (LIFO)           -> {lifo_order:?}");
    println!("PriorityQueue (smallest first) -> {prio_order:?}");
    assert_eq!(fifo_order, [111, 333, 222]);
    assert_eq!(lifo_order, [222, 333, 111]);
    assert_eq!(prio_order, [111, 222, 333]);
    // get_nowait on an empty queue: Python raises queue.Empty.
    assert_eq!(fifo.try_get(), Err(TryGetError::Empty));
    println!("get_nowait() on the empty queue -> Empty");

    // (priority, payload) tuples, as in Python.
    let jobs = PriorityQueue::new();
    for job in [(3, "low"), (1, "urgent"), (2, "normal")] {
        jobs.put(job).unwrap();
    }
    let by_priority: Vec<_> = jobs.try_iter().collect();
    println!("PriorityQueue of (priority, job) -> {by_priority:?}");
    assert_eq!(by_priority, [(1, "urgent"), (2, "normal"), (3, "low")]);

    // SimpleQueue: unbounded FIFO, no task tracking; put never fails.
    let simple = SimpleQueue::new();
    simple.put("x");
    simple.put("y");
    println!(
        "SimpleQueue -> {:?}, {:?}, {:?}",
        simple.get(),
        simple.get(),
        simple.try_get()
    );
}
