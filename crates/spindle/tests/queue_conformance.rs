//! The queue conformance suite (`spindle::queue::conformance`, a port of
//! CPython's `Lib/test/test_queue.py` `BaseQueueTestMixin` with Python 3.13's
//! shutdown tests) run against the thread queues in all three orders.

mod fifo {
    use spindle::queue::{Queue, conformance::ExpectedOrder};
    spindle::queue_conformance!(ExpectedOrder::Fifo, Queue::with_maxsize);
}

mod lifo {
    use spindle::queue::{LifoQueue, conformance::ExpectedOrder};
    spindle::queue_conformance!(ExpectedOrder::Lifo, LifoQueue::with_maxsize);
}

mod priority {
    use spindle::queue::{PriorityQueue, conformance::ExpectedOrder};
    spindle::queue_conformance!(ExpectedOrder::Priority, PriorityQueue::with_maxsize);
}
