//! Process pools: [`Pool`](crate::process::Pool) (Python's
//! `multiprocessing.Pool`) and [`ProcessPoolExecutor`] (Python's
//! `concurrent.futures.ProcessPoolExecutor`), on one engine that never hangs.
//!
//! See `README.md` beside this file for the worker life cycle.

// The `Pool` front end (next commit) uses the rest of the engine.
#![allow(dead_code)]

mod call;
mod engine;
mod error;
mod executor;
mod job;
mod slot;
mod wire;

pub use call::{Call, CallChunk, ProcessJob};
pub use error::PoolError;
pub use executor::{ProcessPoolBuilder, ProcessPoolExecutor};
