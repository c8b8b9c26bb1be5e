//! Shared `Value` / `Array` tests, ported from CPython's
//! `Lib/test/_test_multiprocessing.py` (`_TestValue`: test_value,
//! test_rawvalue, test_getobj_getlock; `_TestArray`: test_array,
//! test_array_from_size, test_rawarray; and the "shared Value incremented
//! under its lock by several processes" case of the issue), manually
//! rewritten in Rust for spindle.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use spindle::ipc::sync::{Event, RLock};
use spindle::ipc::{Array, RawArray, RawValue, Value};
use spindle::process::{Process, StartMethod};

use common::{LONG, start};

#[spindle::task]
fn set_values(i: Value<i32>, d: Value<f64>, h: Value<i16>, q: Value<i64>, c: Value<u8>) {
    i.store(24234);
    d.store(-4.25);
    h.store(234);
    q.store(1 << 34);
    c.store(b'y');
}

/// CPython `test_value`: values set in a child are seen by the parent, for
/// every start method.
#[test]
fn value_set_by_child() {
    for m in StartMethod::all() {
        let i = Value::new(4343i32).unwrap();
        let d = Value::new(3.625f64).unwrap();
        let h = Value::new(-232i16).unwrap();
        let q = Value::new(1i64 << 33).unwrap();
        let c = Value::new(b'x').unwrap();
        assert_eq!((i.load(), d.load(), h.load()), (4343, 3.625, -232));
        assert_eq!((q.load(), c.load()), (1 << 33, b'x'));
        let call = set_values::call(i.clone(), d.clone(), h.clone(), q.clone(), c.clone());
        start(call, m).join_timeout(LONG).unwrap();
        assert_eq!((i.load(), d.load(), h.load()), (24234, -4.25, 234), "{m:?}");
        assert_eq!((q.load(), c.load()), (1 << 34, b'y'), "{m:?}");
    }
}

#[spindle::task]
fn set_raw(v: RawValue<f64>, a: RawArray<u16>) {
    v.store(2.5);
    a.set(2, 9).unwrap();
}

/// CPython `test_rawvalue` (and `RawArray`): no lock, still shared.
#[test]
fn raw_value_and_array() {
    let v = RawValue::new(1.0f64).unwrap();
    let a = RawArray::<u16>::from_slice(&[1, 2, 3]).unwrap();
    assert_eq!((v.load(), a.len(), a.get(3)), (1.0, 3, None));
    start(set_raw::call(v.clone(), a.clone()), StartMethod::ForkServer)
        .join_timeout(LONG)
        .unwrap();
    assert_eq!(v.load(), 2.5);
    assert_eq!(a.to_vec(), [1, 2, 9]);
    assert!(a.set(3, 0).is_err());
    assert!(RawArray::<u8>::zeroed(0).unwrap().is_empty());
}

/// CPython `test_getobj_getlock`: a value has its own lock, or the one it was
/// given (which several values can share).
#[test]
fn get_lock_and_shared_lock() {
    let a = Value::new(5i32).unwrap();
    let b = Value::new(5i32).unwrap();
    assert!(!a.get_lock().is_locked());
    {
        let _g = a.lock();
        assert!(a.get_lock().is_locked() && !b.get_lock().is_locked());
    }
    let shared = RLock::new().unwrap();
    let x = Value::with_lock(1u8, shared.clone()).unwrap();
    let y = Value::with_lock(2u8, shared.clone()).unwrap();
    {
        let _gx = x.lock();
        assert!(shared.is_owned());
        // Another value under the same (re-entrant) lock: no deadlock.
        assert_eq!(y.load(), 2);
    }
    assert!(!shared.is_locked());
}

/// Python's `with v.get_lock(): v.value += 1` works as is: `load`/`store`
/// re-enter the RLock; a second guard in the same thread is refused.
#[test]
fn reentrant_load_store_and_double_guard() {
    let v = Value::new(10u32).unwrap();
    {
        let _held = v.get_lock().lock();
        v.store(v.load() + 1);
        let mut g = v.lock();
        *g += 1;
        // A guard is out: loading through the handle would alias it.
        let r = catch_unwind(AssertUnwindSafe(|| v.load()));
        assert!(r.is_err());
        assert_eq!(*g, 12);
    }
    assert!(!v.get_lock().is_locked());
    assert_eq!(v.load(), 12);
    assert!(format!("{v:?}").contains("12"));
}

/// `Array` has the four forms of `Value`: `try_lock` never waits,
/// `lock_timeout` / `lock_deadline` give up after the wait, and a guard
/// already held by this thread makes `try_lock` return `None`, not panic.
#[test]
fn array_and_value_try_lock_and_lock_deadline() {
    let a = Array::from_slice(&[1u8, 2, 3]).unwrap();
    let v = Value::new(1u8).unwrap();
    {
        let _g = a.try_lock().expect("free");
        assert!(a.try_lock().is_none(), "this thread's guard is out");
        let _h = v.try_lock().expect("free");
        assert!(v.try_lock().is_none(), "this thread's guard is out");
    }
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|s| {
        let (a2, v2) = (&a, &v);
        s.spawn(move || {
            let mut g = a2.lock();
            let mut h = v2.lock();
            g[0] = 7;
            *h = 7;
            held_tx.send(()).unwrap();
            let _ = done_rx.recv();
        });
        held_rx.recv().unwrap();
        assert!(a.try_lock().is_none());
        assert!(v.try_lock().is_none());
        for wait in [Duration::from_millis(50), Duration::ZERO] {
            let t = Instant::now();
            assert!(a.lock_deadline(t + wait).is_none());
            assert!(t.elapsed() >= wait);
            let t = Instant::now();
            assert!(a.lock_timeout(wait).is_none());
            assert!(t.elapsed() >= wait);
            let t = Instant::now();
            assert!(v.lock_deadline(t + wait).is_none());
            assert!(t.elapsed() >= wait);
        }
        done_tx.send(()).unwrap();
        let g = a.lock_deadline(Instant::now() + LONG).expect("released");
        assert_eq!(&g[..], [7, 2, 3]);
        let h = v.lock_timeout(Duration::MAX).expect("waits forever");
        assert_eq!(*h, 7);
    });
}

#[spindle::task]
fn add_under_lock(counter: Value<u64>, times: u64) {
    for _ in 0..times {
        *counter.lock() += 1;
    }
}

/// The test: a shared Value incremented under its lock by several
/// processes reaches the exact total (CPython `_TestValue` spirit; the
/// `multiprocessing` docs' counter example).
#[test]
fn increments_under_lock_reach_exact_total() {
    const N: u64 = 2_000;
    for m in [StartMethod::ForkServer, StartMethod::Fork] {
        let counter = Value::new(0u64).unwrap();
        let mut ps: Vec<Process> = (0..4)
            .map(|_| start(add_under_lock::call(counter.clone(), N), m))
            .collect();
        // The parent takes part too, through load/store in one section.
        for _ in 0..N {
            let _held = counter.get_lock().lock();
            counter.store(counter.load() + 1);
        }
        for p in &mut ps {
            p.join_timeout(LONG).unwrap();
        }
        assert_eq!(counter.load(), 5 * N, "{m:?}");
    }
}

#[spindle::task]
fn prefix_sums(a: Array<i32>) {
    let mut g = a.lock();
    for i in 1..g.len() {
        g[i] += g[i - 1];
    }
}

/// CPython `test_array`: len, index, slices, slice assignment, then a child
/// computes prefix sums in place.
#[test]
fn array_written_by_child() {
    let mut seq = vec![680, 626, 934, 821, 150, 233, 548, 982, 714, 831];
    let arr = Array::from_vec(seq.clone()).unwrap();
    assert_eq!(arr.len(), seq.len());
    assert_eq!(arr.get(3), Some(seq[3]));
    assert_eq!(arr.get_slice(2..7).unwrap(), seq[2..7]);
    arr.set_slice(4, &[1, 2, 3, 4]).unwrap();
    seq[4..8].copy_from_slice(&[1, 2, 3, 4]);
    assert_eq!(arr.to_vec(), seq);
    for i in 1..seq.len() {
        seq[i] += seq[i - 1];
    }
    start(prefix_sums::call(arr.clone()), StartMethod::Spawn)
        .join_timeout(LONG)
        .unwrap();
    assert_eq!(arr.to_vec(), seq);
    // Out of range: typed errors, nothing changed.
    assert_eq!(arr.get(10), None);
    assert_eq!(arr.set(10, 0).unwrap_err().index(), 10);
    assert!(arr.get_slice(5..11).is_err());
    assert!(arr.set_slice(8, &[0, 0, 0]).is_err());
    assert_eq!(arr.get_slice(..).unwrap(), seq);
    assert_eq!(arr.get_slice(9..=9).unwrap(), [seq[9]]);
}

/// CPython `test_array_from_size`.
#[test]
fn array_from_size() {
    for _ in 0..3 {
        let arr = Array::<i32>::zeroed(10).unwrap();
        assert_eq!(arr.len(), 10);
        assert_eq!(arr.to_vec(), [0; 10]);
        arr.set_slice(0, &(0..10).collect::<Vec<_>>()).unwrap();
        assert_eq!(arr.to_vec(), (0..10).collect::<Vec<_>>());
    }
    assert!(Array::<u64>::zeroed(0).unwrap().is_empty());
}

/// A fork closure captures the handles: the child writes through them.
#[test]
fn fork_closure_shares_value_and_array() {
    let v = Value::new(0.0f64).unwrap();
    let a = Array::from_slice(&[1i64, 2, 3]).unwrap();
    let (v2, a2) = (v.clone(), a.clone());
    let mut p = Process::builder()
        .closure(move || {
            v2.store(std::f64::consts::PI);
            for x in a2.lock().iter_mut() {
                *x = -*x;
            }
        })
        .start_method(StartMethod::Fork)
        .start()
        .unwrap();
    p.join_timeout(LONG).unwrap();
    assert_eq!(v.load(), std::f64::consts::PI);
    assert_eq!(a.to_vec(), [-1, -2, -3]);
}

#[spindle::task]
fn hold_value_forever(v: Value<u32>, held: Event) {
    let mut g = v.lock();
    *g = 77;
    held.set();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// A child killed while holding a value's lock does not wedge the parent:
/// the lock is taken over and the value keeps what the child wrote.
#[test]
fn killed_holder_does_not_wedge_the_value() {
    let v = Value::new(0u32).unwrap();
    let held = Event::new().unwrap();
    let mut p = start(
        hold_value_forever::call(v.clone(), held.clone()),
        StartMethod::ForkServer,
    );
    assert!(held.wait_timeout(LONG));
    assert!(v.get_lock().is_locked());
    p.kill().unwrap();
    let _ = p.join_timeout(LONG);
    let g = v
        .lock_timeout(LONG)
        .expect("taken over from the dead child");
    assert_eq!(*g, 77);
    drop(g);
    assert_eq!(v.get_lock().owner_deaths(), 1);
    v.store(1);
    assert_eq!(v.load(), 1);
}

/// Handles cross threads of one process too (`Send + Sync`).
#[test]
fn send_sync() {
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<Value<u64>>();
    is_send_sync::<Array<[u8; 3]>>();
    is_send_sync::<RawValue<f32>>();
    is_send_sync::<RawArray<i8>>();
    // Fewer under miri, where every step is interpreted.
    const PER_THREAD: u32 = if cfg!(miri) { 50 } else { 1000 };
    let v = Value::new(0u32).unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..PER_THREAD {
                    *v.lock() += 1;
                }
            });
        }
    });
    assert_eq!(v.load(), 4 * PER_THREAD);
}
