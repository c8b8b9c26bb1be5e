//! Managers: objects that live in one server process and are used from
//! other processes and hosts through proxies (Python's
//! `multiprocessing.managers`).
//!
//! Work in progress: see `docs/NOTES.md`.

// The server and proxies that use all of this land next.
#![allow(dead_code)]

mod error;
pub(crate) mod wire;

pub use error::ManagerError;
