//! The few OS facts the thread module needs: the kernel's id of the calling
//! thread, whether it is the process's main thread, and an exit hook.
//!
//! The crate builds on Linux only (see the crate root), so only the Linux
//! branches are compiled and tested. The macOS and fallback branches are
//! not compiled today; they are kept as the starting point of a port of the
//! thread scope to other systems.

/// The kernel's id of the calling thread (Python's `threading.get_native_id()`).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(super) fn native_id() -> u64 {
    // SAFETY: gettid has no preconditions and cannot fail.
    let tid = unsafe { libc::gettid() };
    tid as u64
}

/// The kernel's id of the calling thread (Python's `threading.get_native_id()`).
#[cfg(target_os = "macos")]
pub(super) fn native_id() -> u64 {
    let mut id: u64 = 0;
    // SAFETY: a null pthread_t means the calling thread; `id` is a valid out pointer.
    unsafe { libc::pthread_threadid_np(0, &mut id) };
    id
}

/// The kernel's id of the calling thread; elsewhere the address of a
/// thread-local stands in for it (unique among live threads).
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "macos")))]
pub(super) fn native_id() -> u64 {
    thread_local!(static ANCHOR: u8 = const { 0 });
    ANCHOR.with(|a| a as *const u8 as u64)
}

/// The kernel id the main thread has, when it can be known from another thread.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(super) fn main_native_id() -> Option<u64> {
    // On Linux the main thread's tid is the process id.
    Some(std::process::id() as u64)
}

/// The kernel id the main thread has, when it can be known from another thread.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(super) fn main_native_id() -> Option<u64> {
    None
}

/// Whether the calling thread is the process's main thread.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(super) fn is_main_thread() -> bool {
    Some(native_id()) == main_native_id()
}

/// Whether the calling thread is the process's main thread.
#[cfg(target_os = "macos")]
pub(super) fn is_main_thread() -> bool {
    // SAFETY: pthread_main_np has no preconditions.
    unsafe { libc::pthread_main_np() != 0 }
}

/// Whether the calling thread is the process's main thread (Rust's runtime
/// names it "main").
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "macos")))]
pub(super) fn is_main_thread() -> bool {
    std::thread::current().name() == Some("main")
}

/// Registers `f` to run when the process exits normally: when `main` returns
/// (Rust's runtime then calls the C library's `exit`) or on
/// `std::process::exit`. Returns `false` if it could not be registered.
#[cfg(unix)]
pub(super) fn at_exit(f: extern "C" fn()) -> bool {
    // SAFETY: `f` is a plain `extern "C"` function with no arguments that never
    // unwinds (the caller wraps its body in `catch_unwind`), as atexit requires.
    unsafe { libc::atexit(f) == 0 }
}

/// No exit hook on this platform: non-daemon threads are not waited for.
#[cfg(not(unix))]
pub(super) fn at_exit(_f: extern "C" fn()) -> bool {
    false
}

/// Registers `f` to run in the child after `fork()`. Returns `false` if it
/// could not be registered.
#[cfg(unix)]
pub(super) fn at_fork_child(f: unsafe extern "C" fn()) -> bool {
    // SAFETY: `f` is an `extern "C"` function without arguments that only
    // does async-signal-safe work (getpid and an atomic store) and never
    // unwinds, as pthread_atfork requires of a child handler.
    unsafe { libc::pthread_atfork(None, None, Some(f)) == 0 }
}

/// No fork on this platform.
#[cfg(not(unix))]
pub(super) fn at_fork_child(_f: unsafe extern "C" fn()) -> bool {
    false
}
