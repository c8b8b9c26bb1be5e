//! The queue conformance suite (`spindle_conformance::queue`, a port of
//! CPython's `Lib/test/test_queue.py` `BaseQueueTestMixin` with Python 3.13's
//! shutdown tests) run against the thread queues in all three orders, with
//! the async checks (`queue_suite!(async: ..)`: every order has `put_async`,
//! `get_async` and `join_async`).

mod fifo {
    use spindle::queue::Queue;
    use spindle_conformance::queue::ExpectedOrder;
    spindle_conformance::queue_suite!(ExpectedOrder::Fifo, Queue::with_maxsize);
    spindle_conformance::queue_suite!(async: ExpectedOrder::Fifo, Queue::with_maxsize);
}

mod lifo {
    use spindle::queue::LifoQueue;
    use spindle_conformance::queue::ExpectedOrder;
    spindle_conformance::queue_suite!(ExpectedOrder::Lifo, LifoQueue::with_maxsize);
    spindle_conformance::queue_suite!(async: ExpectedOrder::Lifo, LifoQueue::with_maxsize);
}

mod priority {
    use spindle::queue::PriorityQueue;
    use spindle_conformance::queue::ExpectedOrder;
    spindle_conformance::queue_suite!(ExpectedOrder::Priority, PriorityQueue::with_maxsize);
    spindle_conformance::queue_suite!(async: ExpectedOrder::Priority, PriorityQueue::with_maxsize);

    // CPython's FailingQueueTest: an `Ord` that panics loses nothing.
    #[test]
    fn failing_order() {
        spindle_conformance::queue::failing_order(PriorityQueue::with_maxsize);
    }
}
