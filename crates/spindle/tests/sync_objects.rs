//! `Semaphore`, `BoundedSemaphore`, `Event` and `Barrier`: what is
//! particular to the thread scope's constructors and objects. The behaviours
//! of CPython's `Lib/test/lock_tests.py` (`SemaphoreTests`,
//! `BoundedSemaphoreTests`, `EventTests`, `BarrierTests`) are checked on both
//! scopes by the conformance suite (`spindle_conformance::sync`, run by
//! `crates/spindle-conformance/tests/sync.rs` and `ipc_sync.rs`).

use spindle::sync::{CreateError, Semaphore};
use std::sync::{Arc, OnceLock, Weak, mpsc};

type SBarrier = spindle::sync::Barrier;

// SemaphoreTests.test_default_value: `threading.Semaphore()` has one permit.
#[test]
fn semaphore_default_has_one_permit() {
    let sem = Semaphore::default();
    assert_eq!(sem.value(), 1);
    sem.acquire();
    assert!(!sem.try_acquire());
    sem.release();
    assert_eq!(sem.value(), 1);
}

// BarrierTests.test_constructor: no barrier of 0 parties (Python: ValueError).
#[test]
fn barrier_of_zero_parties_is_an_error() {
    assert!(matches!(SBarrier::new(0), Err(CreateError::ZeroParties)));
    assert!(matches!(
        SBarrier::with_action(0, || {}),
        Err(CreateError::ZeroParties)
    ));
}

// While the action runs the round is over: the action sees nobody waiting
// (CPython's `n_waiting` would still count the parties there). That it may
// call back into its barrier at all is in the conformance suite
// (`barrier_action_reentrant`).
#[test]
fn barrier_action_sees_no_waiters() {
    let (tx, rx) = mpsc::channel();
    // The action reaches its barrier through a Weak: an Arc would make a
    // cycle (barrier -> action -> barrier) that is never freed.
    let slot: Arc<OnceLock<Weak<SBarrier>>> = Arc::new(OnceLock::new());
    let s2 = Arc::clone(&slot);
    let barrier = Arc::new(
        SBarrier::with_action(1, move || {
            let b = s2.get().unwrap().upgrade().unwrap();
            tx.send((b.n_waiting(), b.is_broken())).unwrap();
        })
        .unwrap(),
    );
    slot.set(Arc::downgrade(&barrier)).unwrap();
    assert_eq!(barrier.wait(), Ok(0));
    assert_eq!(rx.recv().unwrap(), (0, false));
}

/// CPython `test_default_timeout`: `threading.Barrier(parties, timeout=t)`
/// bounds every plain `wait`; running out breaks the barrier for everyone.
#[test]
fn barrier_default_timeout() {
    use std::time::{Duration, Instant};
    let b = spindle::sync::Barrier::new(2)
        .unwrap()
        .with_timeout(Duration::from_millis(100));
    assert_eq!(b.timeout(), Some(Duration::from_millis(100)));
    let t0 = Instant::now();
    assert_eq!(b.wait(), Err(spindle::sync::BrokenBarrierError));
    assert!(t0.elapsed() >= Duration::from_millis(100));
    assert!(b.is_broken());
    b.reset();
    // A round that completes in time passes; an explicit bound overrides.
    let b = spindle::sync::Barrier::with_action(2, || {})
        .unwrap()
        .with_timeout(Duration::from_secs(60));
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(|| tx.send(b.wait()).unwrap());
        let me = b.wait_timeout(Duration::from_secs(60));
        let other = rx.recv_timeout(Duration::from_secs(60)).unwrap();
        let mut idx = [me.unwrap(), other.unwrap()];
        idx.sort_unstable();
        assert_eq!(idx, [0, 1]);
    });
    assert!(!b.is_broken());
    assert_eq!(spindle::sync::Barrier::new(1).unwrap().timeout(), None);
}
