//! Helpers shared by the integration tests of `spindle`: a test file that
//! uses them says `mod common;` (each test file is its own crate, so each
//! uses only some of them).
#![allow(dead_code)]

use std::future::{Future as StdFuture, IntoFuture};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use spindle::futures::{Future, Promise};
use spindle::process::{Process, StartMethod, TaskCall};

/// The bound of a wait that should end at once: generous, so that a loaded
/// machine does not fail the test; reaching it means a hang.
pub(crate) const LONG: Duration = Duration::from_secs(60);

/// Polls `cond`, yielding the CPU between polls, until it holds; fails,
/// naming `what`, once `limit` has passed without it.
pub(crate) fn until_within(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        thread::yield_now();
    }
}

/// Polls `cond` until it holds; fails after a very generous 20 s.
pub(crate) fn until(what: &str, cond: impl Fn() -> bool) {
    until_within(what, Duration::from_secs(20), cond);
}

/// Wakes the thread parked in [`block_on`].
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs a future to completion on this thread, parking it until woken: the
/// smallest executor, so the tests need no runtime.
pub(crate) fn block_on<F: IntoFuture>(f: F) -> F::Output {
    let mut f = pin!(f.into_future());
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        thread::park();
    }
}

/// A waker that counts its wakes.
#[derive(Default)]
pub(crate) struct Count(pub(crate) AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A [`Count`] and a waker that counts on it.
pub(crate) fn counting() -> (Arc<Count>, Waker) {
    let c = Arc::new(Count::default());
    (c.clone(), Waker::from(c))
}

/// Polls `f` once with `waker`.
pub(crate) fn poll_once<F: StdFuture + Unpin>(f: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(f).poll(&mut Context::from_waker(waker))
}

/// Starts a child process running `call` by start method `m`.
pub(crate) fn start(call: impl Into<TaskCall>, m: StartMethod) -> Process {
    Process::builder()
        .task(call)
        .start_method(m)
        .start()
        .unwrap()
}

// The module-level futures of CPython's test_concurrent_futures
// (PENDING_FUTURE, RUNNING_FUTURE, CANCELLED_FUTURE, EXCEPTION_FUTURE,
// SUCCESSFUL_FUTURE).

/// A pending future and its promise.
pub(crate) fn pending() -> (Promise<u32, String>, Future<u32, String>) {
    Promise::new()
}

/// A running future and its promise.
pub(crate) fn running() -> (Promise<u32, String>, Future<u32, String>) {
    let (p, f) = Promise::new();
    assert!(p.set_running_or_notify_cancel());
    (p, f)
}

/// A cancelled future.
pub(crate) fn cancelled() -> Future<u32, String> {
    let (_p, f) = pending();
    assert!(f.cancel());
    f
}

/// A future failed with `"OSError"`.
pub(crate) fn failed() -> Future<u32, String> {
    let (p, f) = running();
    p.set_error("OSError".to_owned()).unwrap();
    f
}

/// A future finished with 42.
pub(crate) fn successful() -> Future<u32, String> {
    let (p, f) = running();
    p.set_result(42).unwrap();
    f
}

/// A task that sleeps `ms` milliseconds and returns `ms`.
#[spindle::task]
pub(crate) fn sleep_ms(ms: u64) -> u64 {
    thread::sleep(Duration::from_millis(ms));
    ms
}

/// A fresh Unix socket path in the temporary directory, private to this
/// test run (`prefix`, pid and a counter); removed first in case a crashed
/// run left it.
pub(crate) fn unix_path(prefix: &str) -> std::path::PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let p = std::env::temp_dir().join(format!(
        "{prefix}-{}-{}.sock",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&p);
    p
}

/// True once `pid` no longer runs (gone, or a zombie awaiting its reaper).
pub(crate) fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}
