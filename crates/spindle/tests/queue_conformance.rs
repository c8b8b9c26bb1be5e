//! The queue conformance suite (`spindle::queue::conformance`, a port of
//! CPython's `Lib/test/test_queue.py` `BaseQueueTestMixin` with Python 3.13's
//! shutdown tests) run against the thread queues in all three orders.

mod fifo {
    use spindle::queue::{Queue, conformance::Discipline};
    spindle::queue_conformance!(Discipline::Fifo, Queue::with_maxsize);
}

mod lifo {
    use spindle::queue::{LifoQueue, conformance::Discipline};
    spindle::queue_conformance!(Discipline::Lifo, LifoQueue::with_maxsize);
}

mod priority {
    use spindle::queue::{PriorityQueue, conformance::Discipline};
    spindle::queue_conformance!(Discipline::Priority, PriorityQueue::with_maxsize);
}
