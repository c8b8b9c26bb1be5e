//! Blocking queues for threads and async tasks: Python's `queue` module.
//!
//! # Which one should I use?
//!
//! | you need | use | Python |
//! |---|---|---|
//! | first in, first out, optionally bounded, `task_done`/`join`, `shutdown` | [`Queue`] | `queue.Queue` |
//! | last in, first out (a stack) | [`LifoQueue`] | `queue.LifoQueue` |
//! | smallest item first, equal items in insertion order | [`PriorityQueue`] | `queue.PriorityQueue` |
//! | unbounded FIFO with nothing else | [`SimpleQueue`] | `queue.SimpleQueue` |
//! | code that works with any queue, in any scope | [`BlockingQueue`] | the `Queue` interface |
//!
//! All handles are cheap to [`Clone`] and share one queue. Every blocking
//! operation has four variants — `get()` blocks, `try_get()` never blocks,
//! `get_timeout(d)` and `get_deadline(t)` bound the wait — and an async face
//! (`get_async()`) that works on any executor, so a blocking producer thread
//! can feed an async consumer. Failed puts hand their item back in the error.
//!
//! Shutdown follows Python 3.13: after [`OrderedQueue::shutdown`] puts fail; gets
//! drain what is left and then fail (or fail at once, with the queue emptied,
//! after an immediate shutdown); everybody blocked is woken. A queue's
//! iterator ends on shutdown, which replaces the `None` sentinel of the
//! Python worker loop:
//!
//! ```
//! use spindle::queue::Queue;
//! use std::thread;
//!
//! let q = Queue::with_maxsize(10);
//! let workers: Vec<_> = (0..4)
//!     .map(|_| {
//!         let q = q.clone();
//!         thread::spawn(move || q.iter().map(|n: u64| n * n).sum::<u64>())
//!     })
//!     .collect();
//! for n in 1..=100 {
//!     q.put(n).unwrap(); // blocks while 10 items wait
//! }
//! q.shutdown(false); // workers drain the rest, then their loops end
//! let total: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
//! assert_eq!(total, (1..=100).map(|n| n * n).sum());
//! ```
// No unsafe code but the FIFO core's store (`fifo/store.rs`, which allows
// it with a `// SAFETY:` comment on each block).
#![deny(unsafe_code)]

mod backend;
mod contract;
mod core;
mod error;
mod fifo;
mod future;
mod handle;
mod iter;
mod order;
mod simple;
mod tasks;
pub(crate) mod waiters;

pub use contract::BlockingQueue;
pub use error::{
    GetTimeoutError, JoinTimeoutError, PutError, PutTimeoutError, ShutDown, TaskDoneError,
    TryGetError, TryPutError,
};
pub use future::{GetFuture, JoinFuture, PutFuture};
pub use handle::{LifoQueue, OrderedQueue, PriorityQueue, Queue};
pub use iter::{IntoIter, Iter, TryIter};
pub use order::{Fifo, Lifo, Order, Priority};
pub use simple::{SimpleGetFuture, SimpleQueue};
