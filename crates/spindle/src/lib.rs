//! spindle — Python's concurrency model (`threading`, `queue`, `sched`,
//! `concurrent.futures`, `multiprocessing`) in idiomatic Rust.
//!
//! Every concept keeps its Python name and meaning; blocking calls follow one
//! rule: `get()` blocks, `try_get()` never blocks, `get_timeout(d)` and
//! `get_deadline(t)` bound the wait. Errors are typed, acquired things are RAII
//! guards. See `docs/PYTHON.md` for the full Python → spindle map.
#![deny(missing_docs)]

pub mod futures;
pub mod queue;
pub mod sched;
pub mod sync;
pub mod thread;
