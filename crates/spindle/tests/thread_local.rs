//! `Local<T>` tests, after CPython's `Lib/test/test_threading_local.py`
//! (`_local_refs`, `test_derived`, `test_arguments`, `_test_one_class`),
//! manually rewritten in Rust.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use spindle::thread::{self, Local, Thread};

/// Counts live values so tests can see when they are dropped (CPython's
/// `_local_refs` uses weakrefs for the same purpose).
struct Tracked(Arc<AtomicUsize>);

impl Tracked {
    fn new(live: &Arc<AtomicUsize>) -> Tracked {
        live.fetch_add(1, Ordering::SeqCst);
        Tracked(Arc::clone(live))
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

// Python's `local.student`: each thread sees only what it stored.
#[test]
fn values_are_per_thread() {
    static STUDENT: Local<String> = Local::new(String::new);
    let barrier = Arc::new(Barrier::new(2));
    let handles: Vec<_> = ["Alice", "Bob"]
        .into_iter()
        .map(|name| {
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                STUDENT.set(name.to_owned());
                barrier.wait(); // both have set their value
                STUDENT.get()
            })
            .unwrap()
        })
        .collect();
    let got: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(got, ["Alice", "Bob"]);
    assert_eq!(STUDENT.get(), "", "this thread's own value is untouched");
}

// Several instances of the same type are independent.
#[test]
fn instances_are_independent() {
    let a = Local::new(|| 1u32);
    let b = Local::new(|| 1u32);
    a.with(|v| *v = 10);
    assert_eq!(a.get(), 10);
    assert_eq!(b.get(), 1);
    b.set(20);
    assert_eq!(a.get(), 10);
    assert_eq!(b.get(), 20);
    // A Local used inside another's `with`.
    a.with(|va| b.with(|vb| *va += *vb));
    assert_eq!(a.get(), 30);
}

// Lazy initialisation, once per thread (test_arguments / test_derived: the
// initialiser runs in each thread that uses the local).
#[test]
fn initialiser_runs_once_per_thread() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let local = Arc::new(Local::with_init(move || {
        c.fetch_add(1, Ordering::SeqCst);
        thread::current_thread().name().to_owned()
    }));
    assert_eq!(calls.load(Ordering::SeqCst), 0, "lazy");
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let local = Arc::clone(&local);
            Thread::builder()
                .name(format!("t{i}"))
                .spawn(move || (local.get(), local.get()))
                .unwrap()
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        let (x, y) = h.join().unwrap();
        assert_eq!(x, format!("t{i}"));
        assert_eq!(y, x);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

// Python's `try: local.num += i / except: local.num = i` loop.
#[test]
fn accumulate_per_thread() {
    let local: Arc<Local<Option<u64>>> = Arc::new(Local::default());
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let local = Arc::clone(&local);
            thread::spawn(move || {
                for i in 0..5 {
                    local.with(|n| *n = Some(n.map_or(i, |n| n + i)));
                }
                local.get()
            })
            .unwrap()
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), Some(10));
    }
}

// _local_refs: a thread's value is dropped when the thread ends, before join
// returns.
#[test]
fn value_dropped_when_thread_ends() {
    const N: usize = if cfg!(miri) { 3 } else { 20 };
    let live = Arc::new(AtomicUsize::new(0));
    let local: Arc<Local<Option<Tracked>>> = Arc::new(Local::default());
    let started = Arc::new(Barrier::new(N + 1));
    let release = Arc::new(Barrier::new(N + 1));
    let handles: Vec<_> = (0..N)
        .map(|_| {
            let (local, live) = (Arc::clone(&local), Arc::clone(&live));
            let (started, release) = (Arc::clone(&started), Arc::clone(&release));
            thread::spawn(move || {
                local.set(Some(Tracked::new(&live)));
                started.wait();
                release.wait();
            })
            .unwrap()
        })
        .collect();
    started.wait();
    assert_eq!(live.load(Ordering::SeqCst), N, "one value per thread");
    release.wait();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(
        live.load(Ordering::SeqCst),
        0,
        "all dropped by the time join returns"
    );
}

// _local_refs, other half: dropping the Local drops every thread's value,
// including those of threads still running.
#[test]
fn values_dropped_when_local_dropped() {
    let live = Arc::new(AtomicUsize::new(0));
    let local: Arc<Local<Option<Tracked>>> = Arc::new(Local::default());
    let stored = Arc::new(Barrier::new(2));
    let dropped = Arc::new(Barrier::new(2));
    let h = {
        let (local, live) = (Arc::clone(&local), Arc::clone(&live));
        let (stored, dropped) = (Arc::clone(&stored), Arc::clone(&dropped));
        thread::spawn(move || {
            local.set(Some(Tracked::new(&live)));
            drop(local);
            stored.wait();
            dropped.wait(); // the Local is gone; this thread still runs
        })
        .unwrap()
    };
    local.set(Some(Tracked::new(&live)));
    stored.wait();
    assert_eq!(live.load(Ordering::SeqCst), 2);
    drop(local); // the last reference
    assert_eq!(live.load(Ordering::SeqCst), 0, "dropped in both threads");
    dropped.wait();
    h.join().unwrap();
}

// A value is also dropped when a foreign (std) thread exits.
#[test]
fn value_dropped_when_foreign_thread_ends() {
    let live = Arc::new(AtomicUsize::new(0));
    let local: Arc<Local<Option<Tracked>>> = Arc::new(Local::default());
    let (l, lv) = (Arc::clone(&local), Arc::clone(&live));
    std::thread::spawn(move || l.set(Some(Tracked::new(&lv))))
        .join()
        .unwrap();
    assert_eq!(live.load(Ordering::SeqCst), 0);
}

// `del local.attr` / `hasattr`: take, is_set, replace.
#[test]
fn take_replace_is_set() {
    let l = Local::new(|| 5);
    assert!(!l.is_set());
    assert_eq!(l.take(), None);
    assert_eq!(l.get(), 5);
    assert!(l.is_set());
    assert_eq!(l.replace(6), Some(5));
    assert_eq!(l.take(), Some(6));
    assert!(!l.is_set());
    assert_eq!(l.replace(7), None);
    assert_eq!(l.get(), 7);
}

// A panicking initialiser leaves nothing behind; the next access retries.
#[test]
fn panicking_initialiser() {
    let tries = Arc::new(AtomicUsize::new(0));
    let t = Arc::clone(&tries);
    let l = Local::with_init(move || {
        if t.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("first init fails");
        }
        9
    });
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| l.get()));
    assert!(r.is_err());
    assert!(!l.is_set());
    assert_eq!(l.get(), 9);
}

// Using the same Local inside its own `with` is refused (like RefCell).
#[test]
fn reentrant_with_panics() {
    let l = Local::new(|| 0);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| l.with(|_| l.get())));
    assert!(r.is_err());
    assert_eq!(l.get(), 0, "the value survives the refused borrow");
}

// Stress: many threads, many locals, many accesses; totals add up.
#[test]
fn stress_many_threads_and_locals() {
    const THREADS: usize = if cfg!(miri) { 2 } else { 8 };
    const ITERS: u64 = if cfg!(miri) { 50 } else { 20_000 };
    let locals: Arc<Vec<Local<u64>>> = Arc::new((0..4).map(|_| Local::new(|| 0)).collect());
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let locals = Arc::clone(&locals);
            thread::spawn(move || {
                for i in 0..ITERS {
                    locals[(i % 4) as usize].with(|v| *v += 1);
                }
                locals.iter().map(Local::get).sum::<u64>()
            })
            .unwrap()
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), ITERS);
    }
    assert_eq!(locals.iter().map(Local::get).sum::<u64>(), 0);
}
