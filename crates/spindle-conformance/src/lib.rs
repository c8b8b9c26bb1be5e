//! Conformance suites: the generic checks every implementation of a spindle
//! contract must pass, whatever its scope (threads, processes, an async
//! runtime, a cluster).
//!
//! - [`queue`]: every [`BlockingQueue`](spindle::queue::BlockingQueue), a
//!   port of CPython's `Lib/test/test_queue.py`; [`queue_suite!`] expands to
//!   one `#[test]` per check, and `queue_suite!(async: ..)` to the async
//!   checks of a queue with async faces ([`queue::AsyncQueue`]: the thread
//!   queues and `ipc::Queue`).
//! - [`executor`]: every [`Executor`](spindle::futures::Executor), a port of
//!   CPython's `Lib/test/test_concurrent_futures/`; an executor implements
//!   [`executor::ExecutorUnderTest`] and [`executor_suite!`] expands to one
//!   `#[test]` per check.
//! - [`sync`]: every implementation of the synchronisation contracts of
//!   [`spindle::sync::contract`] (`BlockingLock`, `BlockingRLock`,
//!   `BlockingCondition`, `BlockingSemaphore`, `BlockingBoundedSemaphore`,
//!   `BlockingEvent`, `BlockingBarrier`), a port of CPython's
//!   `Lib/test/lock_tests.py`; an object implements its
//!   [`sync::LockUnderTest`], [`sync::ConditionUnderTest`],
//!   [`sync::SemaphoreUnderTest`], [`sync::EventUnderTest`],
//!   [`sync::BarrierUnderTest`] or [`sync::BarrierActionUnderTest`] (a
//!   fresh object, and how many threads are blocked in it where it can
//!   tell), and [`sync_suite!`] expands to one `#[test]` per check, in a
//!   module per kind of object. The thread objects of `spindle::sync` and
//!   the process-shared ones of `spindle::ipc::sync` implement them here.
//!
//! The suites live in their own crate, outside spindle's public API: the
//! checks are assert-laden test code, and the tasks the executor suite
//! registers (`#[spindle::task]`) must not be linked into production
//! workers. Each check panics (a test failure)
//! with a message naming the broken rule; nothing else in this crate panics
//! on purpose.
//!
//! ```
//! // In a test file of any crate that implements the contract:
//! mod fifo {
//!     use spindle::queue::Queue;
//!     use spindle_conformance::queue::ExpectedOrder;
//!     spindle_conformance::queue_suite!(ExpectedOrder::Fifo, Queue::with_maxsize);
//! }
//! mod threads {
//!     spindle_conformance::executor_suite!(spindle::futures::ThreadPoolExecutor);
//! }
//! mod process_locks {
//!     spindle_conformance::sync_suite! {
//!         lock: spindle::ipc::sync::Lock,
//!         rlock: spindle::ipc::sync::RLock,
//!     }
//! }
//! # fn main() {}
//! ```

pub mod executor;
pub mod queue;
pub mod sync;
