//! Process pools: [`Pool`](crate::process::Pool) (Python's
//! `multiprocessing.Pool`) and [`ProcessPoolExecutor`] (Python's
//! `concurrent.futures.ProcessPoolExecutor`), on one engine that never hangs.
//!
//! See `README.md` beside this file for the worker life cycle.

mod async_result;
mod call;
mod engine;
mod error;
mod executor;
mod imap;
mod job;
mod link;
#[allow(clippy::module_inception)]
mod pool;
mod slot;
mod star;
mod wire;

pub use async_result::{AsyncResult, Callbacks};
pub use call::{Call, CallChunk, CallJob, ProcessJob, RemoteExecutor, WireFormat};
pub use engine::TaskStart;
pub use error::PoolError;
pub use executor::{ProcessPoolBuilder, ProcessPoolExecutor};
pub use imap::IMapUnordered;
pub use pool::{Pool, PoolBuilder};
pub use star::StarFn;
