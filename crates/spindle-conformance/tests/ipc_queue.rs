//! The queue conformance suite (`spindle_conformance::queue`, a port of
//! CPython's `Lib/test/test_queue.py` `BaseQueueTestMixin` with Python
//! 3.13's shutdown tests) run against the cross-process `ipc::Queue` through
//! the `BlockingQueue` trait, within one process (its threads share one
//! mapping of the ring; spindle's `tests/ipc_queue.rs` covers other
//! processes). `ipc::JoinableQueue` is another name of the same type, so this
//! covers it too.

use spindle::ipc::Queue;
use spindle_conformance::queue::{self, ExpectedOrder};

fn make(maxsize: usize) -> Queue<u64> {
    Queue::with_maxsize(maxsize).expect("queue")
}

spindle_conformance::queue_suite!(ExpectedOrder::Fifo, make);

// The async checks: `put_async`, `get_async`, `join_async` (woken by this
// process's waiter thread of the queue); spindle's `tests/ipc_queue_async.rs`
// covers wakes from other processes.
spindle_conformance::queue_suite!(async: ExpectedOrder::Fifo, make);

/// The shutdown races (a shutdown while 4 writers and 6 readers run). Once
/// repeated 20 times because a put racing an immediate shutdown had been
/// seen to land after the drain; that race (and a get saying ShutDown while
/// a put still landed) is now checked in every interleaving by the loom
/// models in spindle's `ipc/queue/ring/loom_model.rs`, so one run here
/// checks the whole queue end to end.
#[test]
fn shutdown_in_many_threads_repeatedly() {
    queue::shutdown_all_methods_in_many_threads(ExpectedOrder::Fifo, make);
}
