//! The semaphore checks: `BaseSemaphoreTests`, `SemaphoreTests` and
//! `BoundedSemaphoreTests` of CPython's `Lib/test/lock_tests.py`.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::thread;
use std::time::{Duration, Instant};

use spindle::sync::{BlockingBoundedSemaphore, BlockingSemaphore, OverReleaseError, ReleaseNError};

use super::{
    LONG, SHORT, ScopeOk, SemaphoreUnderTest, TIMEOUT, check, timed, until, until_blocked,
};

fn sorted(v: &Mutex<Vec<usize>>) -> Vec<usize> {
    let mut v = v.lock().unwrap_or_else(|e| e.into_inner()).clone();
    v.sort_unstable();
    v
}

fn push(v: &Mutex<Vec<usize>>, x: usize) {
    v.lock().unwrap_or_else(|e| e.into_inner()).push(x);
}

/// `[0] * a + [1] * b + [2] * c`.
fn phases(counts: &[usize]) -> Vec<usize> {
    counts
        .iter()
        .enumerate()
        .flat_map(|(phase, &n)| std::iter::repeat_n(phase, n))
        .collect()
}

/// Gives one permit back, which must be accepted.
#[track_caller]
fn give_back<S: BlockingSemaphore>(sem: &S) {
    check(sem.release().scope_ok() == Ok(()), "release");
}

/// `BaseSemaphoreTests.test_acquire` and `test_acquire_destroy`: permits
/// are taken and given back, by value and as guards; a semaphore dropped
/// with a permit out is no error.
pub fn base_semaphore_acquire<S: SemaphoreUnderTest>() {
    let sem = S::make(1);
    check(sem.value().scope_ok() == 1, "one permit");
    sem.acquire().scope_ok();
    check(sem.value().scope_ok() == 0, "none left after acquire");
    give_back(&sem);
    check(sem.value().scope_ok() == 1, "one after release");

    let sem = S::make(2);
    sem.acquire().scope_ok();
    sem.acquire().scope_ok();
    check(sem.value().scope_ok() == 0, "both taken");
    give_back(&sem);
    give_back(&sem);
    check(sem.value().scope_ok() == 2, "both back");
    {
        let _a = sem.permit().scope_ok();
        let b = sem.try_permit().scope_ok();
        check(b.is_some(), "try_permit with a permit free");
        check(sem.value().scope_ok() == 0, "two guards hold both permits");
    }
    check(
        sem.value().scope_ok() == 2,
        "the guards give the permits back",
    );

    let held = S::make(1);
    held.acquire().scope_ok();
    drop(held);
}

/// `BaseSemaphoreTests.test_acquire_contended`: 10 threads take two
/// permits each from a semaphore of 7 whose first permit is out: exactly 6
/// pass, then each `release` lets exactly one more through (7, then 6);
/// the last one waits until the final release.
pub fn base_semaphore_acquire_contended<S: SemaphoreUnderTest>() {
    contended(S::make(7), |sem, n| {
        for _ in 0..n {
            give_back(sem);
        }
    });
}

/// `BaseSemaphoreTests.test_multirelease`: as `test_acquire_contended`,
/// with `release(n)` letting exactly `n` through.
pub fn base_semaphore_multirelease<S: SemaphoreUnderTest>() {
    contended(S::make(7), |sem, n| {
        check(sem.release_n(n).scope_ok() == Ok(()), "release(n)");
    });
}

/// The body of `test_acquire_contended` and `test_multirelease`:
/// `release(sem, n)` gives `n` permits back. Each thread takes its first
/// permit with `acquire` and its second with a long `acquire_timeout`
/// (Python's `sem.acquire()` returns `True` for both).
fn contended<S: SemaphoreUnderTest>(sem: S, release: impl Fn(&S, usize)) {
    const VALUE: usize = 7;
    const N: usize = 10;
    sem.acquire().scope_ok();
    let phase = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    let passed = || results.lock().unwrap_or_else(|e| e.into_inner()).len();
    thread::scope(|s| {
        for _ in 0..N {
            s.spawn(|| {
                sem.acquire().scope_ok();
                push(&results, phase.load(SeqCst));
                check(
                    sem.acquire_timeout(LONG).scope_ok(),
                    "a long acquire_timeout ends when a permit is released",
                );
                push(&results, phase.load(SeqCst));
            });
        }
        let counts = [VALUE - 1, VALUE, VALUE - 1];
        until("6 acquisitions", || passed() >= counts[0]);
        check(
            sorted(&results) == phases(&counts[..1]),
            format_args!("phase 0: {:?}", sorted(&results)),
        );
        check(sem.value().scope_ok() == 0, "no permit left in phase 0");
        for p in 1..counts.len() {
            phase.store(p, SeqCst);
            release(&sem, counts[p]);
            let want: usize = counts[..=p].iter().sum();
            until("the released permits are taken", || passed() >= want);
            check(
                sorted(&results) == phases(&counts[..=p]),
                format_args!(
                    "phase {p}: {} permits let exactly {} through: {:?}",
                    counts[p],
                    counts[p],
                    sorted(&results)
                ),
            );
            check(
                sem.value().scope_ok() == 0,
                "every released permit was taken",
            );
        }
        check(
            !sem.try_acquire().scope_ok(),
            "the semaphore is still exhausted",
        );
        release(&sem, 1);
    });
    check(passed() == 2 * N, "every thread took two permits");
    check(sem.value().scope_ok() == 0, "none left");
}

/// `BaseSemaphoreTests.test_try_acquire`.
pub fn base_semaphore_try_acquire<S: SemaphoreUnderTest>() {
    let sem = S::make(2);
    check(sem.try_acquire().scope_ok(), "first try_acquire");
    check(sem.try_acquire().scope_ok(), "second try_acquire");
    check(
        !sem.try_acquire().scope_ok(),
        "third try_acquire of 2 permits",
    );
    give_back(&sem);
    check(sem.try_acquire().scope_ok(), "try_acquire after a release");
}

/// `BaseSemaphoreTests.test_try_acquire_contended`: 5 threads try twice
/// each for the 3 permits left of 4: 3 succeed, 7 fail. Regression: on an
/// exhausted semaphore, a failed `try_permit`/`permit_timeout`/
/// `permit_deadline` (and the plain forms) leave the count unchanged, in
/// another thread and in this one (the old process-scope guards gave back
/// a permit they had not taken).
pub fn base_semaphore_try_acquire_contended<S: SemaphoreUnderTest>() {
    let sem = S::make(4);
    sem.acquire().scope_ok();
    let results = Mutex::new(Vec::new());
    thread::scope(|s| {
        for _ in 0..5 {
            s.spawn(|| {
                for _ in 0..2 {
                    let got = sem.try_acquire().scope_ok();
                    push(&results, usize::from(got));
                }
            });
        }
    });
    check(
        sorted(&results) == phases(&[7, 3]),
        format_args!("7 failures and 3 successes: {:?}", sorted(&results)),
    );
    let exhausted = |who: &str| {
        check(
            sem.value().scope_ok() == 0,
            format_args!("{who}: exhausted"),
        );
        check(
            !sem.try_acquire().scope_ok(),
            format_args!("{who}: try_acquire fails"),
        );
        check(
            !sem.acquire_timeout(SHORT).scope_ok(),
            format_args!("{who}: acquire_timeout fails"),
        );
        check(
            !sem.acquire_deadline(Instant::now()).scope_ok(),
            format_args!("{who}: acquire_deadline(now) fails"),
        );
        check(
            sem.try_permit().scope_ok().is_none(),
            format_args!("{who}: try_permit is None"),
        );
        check(
            sem.value().scope_ok() == 0,
            format_args!("{who}: a failed try_permit leaves the count"),
        );
        check(
            sem.permit_timeout(Duration::ZERO).scope_ok().is_none(),
            format_args!("{who}: permit_timeout(0) is None"),
        );
        check(
            sem.permit_timeout(SHORT).scope_ok().is_none(),
            format_args!("{who}: permit_timeout is None"),
        );
        check(
            sem.value().scope_ok() == 0,
            format_args!("{who}: a failed permit_timeout leaves the count"),
        );
        check(
            sem.permit_deadline(Instant::now()).scope_ok().is_none(),
            format_args!("{who}: permit_deadline(now) is None"),
        );
        check(
            sem.value().scope_ok() == 0,
            format_args!("{who}: a failed permit_deadline leaves the count"),
        );
    };
    thread::scope(|s| {
        s.spawn(|| exhausted("another thread"));
    });
    exhausted("this thread");
    give_back(&sem);
    check(
        sem.value().scope_ok() == 1,
        "one release after the failed attempts: exactly one permit",
    );
    let p = sem.try_permit().scope_ok();
    check(p.is_some(), "try_permit takes the released permit");
    check(sem.value().scope_ok() == 0, "taken");
    drop(p);
    check(sem.value().scope_ok() == 1, "the guard gives it back");
}

/// `BaseSemaphoreTests.test_acquire_timeout`: short bounded acquisitions
/// succeed while permits are free and fail once none is; a bounded wait
/// nobody ends fails, not before its timeout; a long one ends when another
/// thread releases a permit.
pub fn base_semaphore_acquire_timeout<S: SemaphoreUnderTest>() {
    let sem = S::make(2);
    check(sem.acquire_timeout(SHORT).scope_ok(), "first of 2");
    check(sem.acquire_timeout(SHORT).scope_ok(), "second of 2");
    check(!sem.acquire_timeout(SHORT).scope_ok(), "third of 2 fails");
    give_back(&sem);
    check(sem.acquire_timeout(SHORT).scope_ok(), "after a release");
    let (r, took) = timed(|| sem.acquire_timeout(TIMEOUT).scope_ok());
    check(!r, "acquire_timeout of an exhausted semaphore fails");
    check(
        took >= TIMEOUT,
        format_args!("acquire_timeout({TIMEOUT:?}) gave up after {took:?}"),
    );
    let (p, took) = timed(|| sem.permit_timeout(TIMEOUT).scope_ok());
    check(
        p.is_none(),
        "permit_timeout of an exhausted semaphore is None",
    );
    check(
        took >= TIMEOUT,
        format_args!("permit_timeout({TIMEOUT:?}) gave up after {took:?}"),
    );
    let deadline = Instant::now() + TIMEOUT;
    check(
        !sem.acquire_deadline(deadline).scope_ok(),
        "acquire_deadline of an exhausted semaphore fails",
    );
    check(
        Instant::now() >= deadline,
        "acquire_deadline gave up before its deadline",
    );
    check(sem.value().scope_ok() == 0, "failed waits take nothing");

    let entered = AtomicUsize::new(0);
    thread::scope(|s| {
        s.spawn(|| {
            entered.fetch_add(1, SeqCst);
            check(
                sem.acquire_timeout(LONG).scope_ok(),
                "a long acquire_timeout ends when a permit is released",
            );
        });
        until_blocked("a thread blocks taking a permit", &entered, 1, || {
            sem.blocked()
        });
        give_back(&sem);
    });
    check(sem.value().scope_ok() == 0, "the waiter took the permit");
}

/// `BaseSemaphoreTests.test_default_value`: with Python's default value 1
/// (the default is each scope's constructor's), a second acquirer blocks
/// until the first releases.
pub fn base_semaphore_default_value<S: SemaphoreUnderTest>() {
    let sem = S::make(1);
    sem.acquire().scope_ok();
    let entered = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    thread::scope(|s| {
        s.spawn(|| {
            entered.fetch_add(1, SeqCst);
            sem.acquire().scope_ok();
            finished.fetch_add(1, SeqCst);
            give_back(&sem);
        });
        until_blocked("a thread blocks taking a permit", &entered, 1, || {
            sem.blocked()
        });
        check(
            finished.load(SeqCst) == 0,
            "no permit for the second acquirer",
        );
        give_back(&sem);
    });
    check(finished.load(SeqCst) == 1, "it got the released permit");
    check(sem.value().scope_ok() == 1, "and gave it back");
}

/// `BaseSemaphoreTests.test_with`: `with sem:` is the guard of `permit()`,
/// which gives the permit back when dropped, also while unwinding
/// (Python: on an exception).
pub fn base_semaphore_with<S: SemaphoreUnderTest>() {
    let sem = S::make(2);
    let with = |raise: bool| {
        let _a = sem.permit().scope_ok();
        check(sem.try_acquire().scope_ok(), "a second permit is free");
        give_back(&sem);
        let _b = sem.permit().scope_ok();
        check(
            !sem.try_acquire().scope_ok(),
            "no third permit inside two `with sem:`",
        );
        if raise {
            resume_unwind(Box::new("raised inside with sem:"));
        }
    };
    with(false);
    check(sem.value().scope_ok() == 2, "the guards gave both back");
    check(sem.try_acquire().scope_ok(), "try_acquire after `with`");
    give_back(&sem);
    let unwound = catch_unwind(AssertUnwindSafe(|| with(true)));
    check(unwound.is_err(), "the panic went on");
    check(
        sem.value().scope_ok() == 2,
        "the guards gave both back while unwinding",
    );
    check(sem.try_acquire().scope_ok(), "try_acquire after the panic");
    give_back(&sem);
}

/// `SemaphoreTests.test_release_unacquired`: an unbounded semaphore may be
/// released more than acquired; each release adds a permit.
pub fn semaphore_release_unacquired<S: SemaphoreUnderTest>() {
    let sem = S::make(1);
    give_back(&sem);
    check(
        sem.value().scope_ok() == 2,
        "a release above the initial value",
    );
    sem.acquire().scope_ok();
    sem.acquire().scope_ok();
    check(sem.value().scope_ok() == 0, "both taken");
    give_back(&sem);
    check(sem.value().scope_ok() == 1, "one back");
    check(sem.release_n(3).scope_ok() == Ok(()), "release(3)");
    check(sem.value().scope_ok() == 4, "release(3) adds 3");
}

/// `release(n)` with `n` = 0: `threading.Semaphore.release` raises
/// `ValueError('n must be one or more')` (`if n < 1`), here
/// [`ReleaseNError::Zero`], and nothing changes.
pub fn base_semaphore_release_zero<S: SemaphoreUnderTest>() {
    let sem = S::make(2);
    check(
        sem.release_n(0).scope_ok() == Err(ReleaseNError::Zero),
        "release(0) of a semaphore of 2",
    );
    check(
        sem.value().scope_ok() == 2,
        "a refused release(0) changes nothing",
    );
    sem.acquire().scope_ok();
    sem.acquire().scope_ok();
    check(
        sem.release_n(0).scope_ok() == Err(ReleaseNError::Zero),
        "release(0) with every permit out",
    );
    check(sem.value().scope_ok() == 0, "still none free");
    check(sem.release_n(2).scope_ok() == Ok(()), "release(2)");
    check(sem.value().scope_ok() == 2, "release(2) adds 2");
}

/// `SemaphoreTests.test_repr`: the value Python's `repr` shows (3, 2,
/// then 4), read through `value()`.
pub fn semaphore_repr<S: SemaphoreUnderTest>() {
    let sem = S::make(3);
    check(sem.value().scope_ok() == 3, "value=3");
    sem.acquire().scope_ok();
    check(sem.value().scope_ok() == 2, "value=2");
    give_back(&sem);
    give_back(&sem);
    check(sem.value().scope_ok() == 4, "value=4");
}

/// `BoundedSemaphoreTests.test_release_unacquired`: releasing past the
/// initial value is an [`OverReleaseError`] (Python: `ValueError:
/// Semaphore released too many times`) that changes nothing, also for a
/// `release(n)` that would pass it.
pub fn bounded_semaphore_release_unacquired<S>()
where
    S: SemaphoreUnderTest + BlockingBoundedSemaphore,
{
    let sem = S::make(1);
    check(
        sem.release().scope_ok() == Err(OverReleaseError),
        "release of a full bounded semaphore",
    );
    check(
        sem.value().scope_ok() == 1,
        "a refused release changes nothing",
    );
    sem.acquire().scope_ok();
    give_back(&sem);
    check(
        sem.release().scope_ok() == Err(OverReleaseError),
        "one release too many",
    );
    check(sem.value().scope_ok() == 1, "still 1");

    let sem = S::make(2);
    sem.acquire().scope_ok();
    sem.acquire().scope_ok();
    check(
        sem.release_n(3).scope_ok() == Err(ReleaseNError::OverRelease),
        "release(3) of 2 taken",
    );
    check(
        sem.value().scope_ok() == 0,
        "a refused release(n) changes nothing",
    );
    check(
        sem.release_n(2).scope_ok() == Ok(()),
        "release(2) of 2 taken",
    );
    check(
        sem.release().scope_ok() == Err(OverReleaseError),
        "full again",
    );
    check(
        sem.bound().scope_ok() == 2,
        "the bound is the initial value",
    );
    {
        let _p = sem.permit().scope_ok();
        check(sem.value().scope_ok() == 1, "a guard holds one");
    }
    check(sem.value().scope_ok() == 2, "the guard gave it back");
}

/// `BoundedSemaphoreTests.test_repr`: the value and bound Python's `repr`
/// shows (`value=3/3`, then `2/3`), read through `value()` and `bound()`.
pub fn bounded_semaphore_repr<S>()
where
    S: SemaphoreUnderTest + BlockingBoundedSemaphore,
{
    let sem = S::make(3);
    check(
        sem.value().scope_ok() == 3 && sem.bound().scope_ok() == 3,
        "value=3/3",
    );
    sem.acquire().scope_ok();
    check(
        sem.value().scope_ok() == 2 && sem.bound().scope_ok() == 3,
        "value=2/3",
    );
}
