//! The process id the thread module compares with, read cheaply: a forked
//! child recognises the threads it inherited from its parent by it (they
//! ran in another process). registry.rs keeps it current.
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicU32, Ordering};

/// The process id, kept current in a forked child by the fork hook; 0 until
/// the hooks are installed.
static PID: AtomicU32 = AtomicU32::new(0);

/// The current process id, cheaply (no system call once the hooks are in).
pub(super) fn current_pid() -> u32 {
    match PID.load(Ordering::Relaxed) {
        0 => std::process::id(),
        pid => pid,
    }
}

/// Records the process id (when the hooks are installed, and in a forked
/// child).
pub(super) fn refresh() {
    PID.store(std::process::id(), Ordering::Relaxed);
}
