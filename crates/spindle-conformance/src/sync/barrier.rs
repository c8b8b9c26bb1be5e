//! The barrier checks: `BarrierTests` of CPython's `Lib/test/lock_tests.py`
//! (5 parties, as there).

use std::any::Any;
use std::panic::resume_unwind;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::thread;
use std::time::Instant;

use spindle::sync::{BarrierWaitError, BrokenBarrierError};

use super::{
    BarrierActionUnderTest, BarrierUnderTest, LONG, SHORT, ScopeOk, TIMEOUT, check, timed, until,
};

/// `BarrierTests.N`.
const N: usize = 5;

/// Runs `f` in `n` threads at once (CPython's `run_threads`, a `Bunch` of
/// `N`), returning their values in spawning order.
fn run_threads<R: Send>(n: usize, f: impl Fn() -> R + Sync) -> Vec<R> {
    thread::scope(|s| {
        let hs: Vec<_> = (0..n).map(|_| s.spawn(&f)).collect();
        hs.into_iter()
            .map(|h| h.join().unwrap_or_else(|p| resume_unwind(p)))
            .collect()
    })
}

/// `BarrierTests.multipass`: `n` passes in lockstep; `results[0]` counts
/// arrivals at the first wait of a pass, `results[1]` at the second.
fn multipass<B: BarrierUnderTest>(barrier: &B, results: &[AtomicUsize; 2], n: usize) {
    let m = barrier.parties().scope_ok();
    check(m == N, "parties");
    for i in 0..n {
        results[0].fetch_add(1, SeqCst);
        check(
            results[1].load(SeqCst) == i * m,
            "nobody runs ahead into the next pass",
        );
        check(barrier.wait().scope_ok().is_ok(), "wait");
        results[1].fetch_add(1, SeqCst);
        check(
            results[0].load(SeqCst) == (i + 1) * m,
            "everyone arrived before anyone passed",
        );
        check(barrier.wait().scope_ok().is_ok(), "wait");
    }
    check(
        barrier.n_waiting().scope_ok() == 0,
        "nobody waits at the end",
    );
    check(!barrier.is_broken().scope_ok(), "not broken");
}

/// `BarrierTests.test_barrier` and `test_barrier_10`: 5 threads pass the
/// barrier in lockstep, once, then 10 times more.
pub fn barrier_lockstep<B: BarrierUnderTest>() {
    let barrier = B::make(N);
    for passes in [1, 10] {
        let results = [AtomicUsize::new(0), AtomicUsize::new(0)];
        run_threads(N, || multipass(&barrier, &results, passes));
    }
}

/// `BarrierTests.test_wait_return`: in each of 3 passes the 5 threads get
/// the arrival indices 0 to 4, each once (Python checks their sum).
pub fn barrier_wait_return<B: BarrierUnderTest>() {
    const PASSES: usize = 3;
    let barrier = B::make(N);
    let all = run_threads(N, || {
        (0..PASSES)
            .map(|_| match barrier.wait().scope_ok() {
                Ok(i) => i,
                Err(BrokenBarrierError) => panic!("sync conformance: a free barrier broke"),
            })
            .collect::<Vec<_>>()
    });
    for pass in 0..PASSES {
        let mut indices: Vec<usize> = all.iter().map(|v| v[pass]).collect();
        indices.sort_unstable();
        check(
            indices == (0..N).collect::<Vec<_>>(),
            format_args!("pass {pass}: indices {indices:?}"),
        );
    }
    check(
        barrier.n_waiting().scope_ok() == 0,
        "nobody waits at the end",
    );
}

/// `BarrierTests.test_abort`: the thread with index `N / 2` aborts instead
/// of waiting a second time (here once the others wait, so that the abort
/// certainly breaks waits in progress); their waits fail, and later waits
/// fail at once until a reset, after which the barrier works again.
pub fn barrier_abort<B: BarrierUnderTest>() {
    let barrier = B::make(N);
    let (results1, results2) = (AtomicUsize::new(0), AtomicUsize::new(0));
    run_threads(N, || match barrier.wait().scope_ok() {
        Ok(i) if i == N / 2 => {
            until("the others wait again", || {
                barrier.n_waiting().scope_ok() >= N - 1
            });
            barrier.abort().scope_ok();
        }
        Ok(_) => match barrier.wait().scope_ok() {
            Ok(_) => drop(results1.fetch_add(1, SeqCst)),
            Err(BrokenBarrierError) => drop(results2.fetch_add(1, SeqCst)),
        },
        Err(BrokenBarrierError) => drop(results2.fetch_add(1, SeqCst)),
    });
    check(
        results1.load(SeqCst) == 0,
        "nobody passed an aborted barrier",
    );
    check(
        results2.load(SeqCst) == N - 1,
        "every other thread saw it broken",
    );
    check(barrier.is_broken().scope_ok(), "broken after abort");
    check(
        barrier.wait().scope_ok() == Err(BrokenBarrierError),
        "a later wait fails at once",
    );
    check(
        barrier.wait_deadline(Instant::now()).scope_ok() == Err(BarrierWaitError::Broken),
        "a later bounded wait reports the break, not a timeout",
    );
    barrier.reset().scope_ok();
    check(!barrier.is_broken().scope_ok(), "reset repairs it");
    let passed = run_threads(N, || barrier.wait().scope_ok().is_ok());
    check(passed == [true; N], "the barrier works again after reset");
}

/// `BarrierTests.test_reset`: the thread with index `N / 2` resets the
/// barrier once the others wait a second time; their waits fail, the
/// barrier is not left broken, and all pass it again.
pub fn barrier_reset<B: BarrierUnderTest>() {
    let barrier = B::make(N);
    let (results1, results2, results3) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    );
    run_threads(N, || {
        let i = barrier.wait().scope_ok();
        if i == Ok(N / 2) {
            until("the others wait again", || {
                barrier.n_waiting().scope_ok() >= N - 1
            });
            barrier.reset().scope_ok();
        } else {
            match barrier.wait().scope_ok() {
                Ok(_) => results1.fetch_add(1, SeqCst),
                Err(BrokenBarrierError) => results2.fetch_add(1, SeqCst),
            };
        }
        check(
            barrier.wait().scope_ok().is_ok(),
            "the barrier is passed again after the reset",
        );
        results3.fetch_add(1, SeqCst);
    });
    check(results1.load(SeqCst) == 0, "nobody passed the reset round");
    check(
        results2.load(SeqCst) == N - 1,
        "a reset breaks the waits in progress",
    );
    check(results3.load(SeqCst) == N, "all passed afterwards");
    check(!barrier.is_broken().scope_ok(), "a reset leaves it usable");
}

/// `BarrierTests.test_abort_and_reset`: a barrier broken by an abort is
/// reset (between two waits on a second barrier, so that nobody is inside)
/// and passed again.
pub fn barrier_abort_and_reset<B: BarrierUnderTest>() {
    let barrier = B::make(N);
    let barrier2 = B::make(N);
    let (results1, results2, results3) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    );
    run_threads(N, || {
        match barrier.wait().scope_ok() {
            Ok(i) if i == N / 2 => barrier.abort().scope_ok(),
            Ok(_) => match barrier.wait().scope_ok() {
                Ok(_) => drop(results1.fetch_add(1, SeqCst)),
                Err(BrokenBarrierError) => drop(results2.fetch_add(1, SeqCst)),
            },
            Err(BrokenBarrierError) => drop(results2.fetch_add(1, SeqCst)),
        }
        if barrier2.wait().scope_ok() == Ok(N / 2) {
            barrier.reset().scope_ok();
        }
        check(
            barrier2.wait().scope_ok().is_ok(),
            "wait on the second barrier",
        );
        check(
            barrier.wait().scope_ok().is_ok(),
            "the reset barrier is passed again",
        );
        results3.fetch_add(1, SeqCst);
    });
    check(
        results1.load(SeqCst) == 0,
        "nobody passed the aborted round",
    );
    check(results2.load(SeqCst) == N - 1, "the others saw it broken");
    check(results3.load(SeqCst) == N, "all passed after the reset");
}

/// `BarrierTests.test_timeout`: waits that cannot be met (4 of 5 parties:
/// 2 plain waits and 2 bounded ones) break the barrier when a bounded one
/// times out. spindle reports [`BarrierWaitError::Timeout`] to the one
/// thread whose wait timed out, not before its timeout, and `Broken` to the
/// others (Python raises `BrokenBarrierError` in all); the barrier stays
/// broken until reset.
pub fn barrier_timeout<B: BarrierUnderTest>() {
    let barrier = B::make(N);
    let next = AtomicUsize::new(0);
    let outcomes = run_threads(N - 1, || {
        if next.fetch_add(1, SeqCst).is_multiple_of(2) {
            let r = barrier.wait().scope_ok();
            check(
                r == Err(BrokenBarrierError),
                "a plain wait sees the barrier broken by another's timeout",
            );
            None
        } else {
            Some(timed(|| barrier.wait_timeout(TIMEOUT).scope_ok()))
        }
    });
    let timed_out: Vec<_> = outcomes.iter().flatten().collect();
    let timeouts: Vec<_> = timed_out
        .iter()
        .filter(|(r, _)| *r == Err(BarrierWaitError::Timeout))
        .collect();
    check(
        timeouts.len() == 1,
        format_args!("exactly one wait timed out: {timed_out:?}"),
    );
    check(
        timeouts[0].1 >= TIMEOUT,
        format_args!(
            "wait_timeout({TIMEOUT:?}) timed out after {:?}",
            timeouts[0].1
        ),
    );
    check(
        timed_out
            .iter()
            .all(|(r, _)| matches!(r, Err(BarrierWaitError::Timeout | BarrierWaitError::Broken))),
        format_args!("the other bounded wait saw it broken: {timed_out:?}"),
    );
    check(
        barrier.is_broken().scope_ok(),
        "a timeout breaks the barrier",
    );
    check(
        barrier.wait_deadline(Instant::now()).scope_ok() == Err(BarrierWaitError::Broken),
        "a later bounded wait reports the break, not a timeout",
    );
    check(
        barrier.wait().scope_ok() == Err(BrokenBarrierError),
        "a later wait fails",
    );
    barrier.reset().scope_ok();
    check(!barrier.is_broken().scope_ok(), "reset repairs it");
    check(barrier.n_waiting().scope_ok() == 0, "nobody waits");
}

/// `BarrierTests.test_single_thread`: a barrier of one party never blocks
/// (nor times out).
pub fn barrier_single_thread<B: BarrierUnderTest>() {
    let barrier = B::make(1);
    check(barrier.wait().scope_ok() == Ok(0), "first wait");
    check(barrier.wait().scope_ok() == Ok(0), "second wait");
    check(
        barrier.wait_timeout(SHORT).scope_ok() == Ok(0),
        "a bounded wait of a single party",
    );
}

/// `BarrierTests.test_repr`: the state Python's `repr` shows
/// (`waiters=0/3`, `2/3`, `0/3`, then `broken`), read through `n_waiting()`,
/// `parties()` and `is_broken()`.
pub fn barrier_repr<B: BarrierUnderTest>() {
    let barrier = B::make(3);
    let state = || {
        (
            barrier.n_waiting().scope_ok(),
            barrier.parties().scope_ok(),
            barrier.is_broken().scope_ok(),
        )
    };
    check(state() == (0, 3, false), "waiters=0/3");
    thread::scope(|s| {
        let waiters: Vec<_> = (0..2)
            .map(|_| s.spawn(|| barrier.wait_timeout(LONG).scope_ok()))
            .collect();
        until("2 threads wait", || barrier.n_waiting().scope_ok() >= 2);
        check(state() == (2, 3, false), "waiters=2/3");
        check(
            barrier.wait_timeout(LONG).scope_ok().is_ok(),
            "the third party passes",
        );
        for w in waiters {
            check(
                w.join().unwrap_or_else(|p| resume_unwind(p)).is_ok(),
                "the waiters pass",
            );
        }
    });
    check(state() == (0, 3, false), "waiters=0/3 after the pass");
    barrier.abort().scope_ok();
    check(state().2, "broken after abort");
}

/// `BarrierTests.test_action`: the action runs once per pass, after
/// everyone arrived and before anyone is released (2 passes, kept apart by
/// a second wait).
pub fn barrier_action<B: BarrierActionUnderTest>() {
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&runs);
    let barrier = B::with_action(N, move || {
        counter.fetch_add(1, SeqCst);
    });
    run_threads(N, || {
        for pass in 1..=2 {
            check(barrier.wait().scope_ok().is_ok(), "wait");
            check(
                runs.load(SeqCst) == 2 * pass - 1,
                "the action ran once, before anyone was released",
            );
            check(barrier.wait().scope_ok().is_ok(), "wait");
        }
    });
    check(runs.load(SeqCst) == 4, "once per wait of all parties");
}

/// Not in `lock_tests.py` (spindle's documented behaviour; Python lets the
/// exception propagate): an action that panics breaks the barrier, the
/// other parties' waits fail, and the panic goes on in the thread that ran
/// it.
pub fn barrier_action_panic<B: BarrierActionUnderTest>() {
    let barrier = B::with_action(2, || resume_unwind(Box::new("the action failed")));
    thread::scope(|s| {
        let first = s.spawn(|| barrier.wait().scope_ok());
        until("one party waits", || barrier.n_waiting().scope_ok() == 1);
        let last = s.spawn(|| barrier.wait().scope_ok());
        let panic: Box<dyn Any + Send> = match last.join() {
            Ok(r) => panic!("sync conformance: the action's panic went missing ({r:?})"),
            Err(p) => p,
        };
        check(
            panic.downcast_ref::<&str>() == Some(&"the action failed"),
            "the action's own panic resumes in the last party",
        );
        check(
            first.join().unwrap_or_else(|p| resume_unwind(p)) == Err(BrokenBarrierError),
            "the waiting party sees the barrier broken",
        );
    });
    check(
        barrier.is_broken().scope_ok(),
        "a panicking action breaks it",
    );
}

/// Not in `lock_tests.py` (CPython's barrier runs the action under an
/// `RLock`'s condition, so it may use the barrier): the action calls back
/// into its own barrier without deadlock.
pub fn barrier_action_reentrant<B: BarrierActionUnderTest>() {
    // A Weak in the slot: an Arc would be a cycle (barrier -> action ->
    // barrier), never freed.
    let slot: Arc<OnceLock<Weak<B>>> = Arc::new(OnceLock::new());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (s2, seen2) = (Arc::clone(&slot), Arc::clone(&seen));
    let barrier = Arc::new(B::with_action(2, move || {
        let b = s2
            .get()
            .and_then(Weak::upgrade)
            .expect("sync conformance: the barrier is in its slot");
        let _ = b.n_waiting().scope_ok();
        let state = (b.parties().scope_ok(), b.is_broken().scope_ok());
        seen2.lock().unwrap_or_else(|e| e.into_inner()).push(state);
    }));
    if slot.set(Arc::downgrade(&barrier)).is_err() {
        unreachable!("the slot is set once");
    }
    let passed = run_threads(2, || barrier.wait().scope_ok().is_ok());
    check(passed == [true, true], "both parties pass");
    let seen = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
    check(
        seen == [(2, false)],
        format_args!("the action saw its barrier: {seen:?}"),
    );
}
