//! Tour section `lockorder`: a real two-thread deadlock provoked on purpose,
//! found by the detector, reported and broken; the checker's warning for the
//! same inversion; and ordered acquisition that cannot deadlock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant};

use spindle::lockorder::checker::{self, PotentialDeadlock, Sink};
use spindle::lockorder::detector::{self, Deadlock, Recovery};
use spindle::lockorder::{self, AcquireError, DeadlockError, acquire};
use spindle::sync::{Barrier, Lock};

use super::Tour;

const GENEROUS: Duration = Duration::from_secs(10);

pub(crate) fn run(t: &mut Tour) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::<PotentialDeadlock>::new()));
    let s2 = Arc::clone(&seen);
    checker::set_sink(Sink::Custom(Arc::new(move |r| {
        s2.lock().unwrap().push(r.clone())
    })));
    checker::enable();
    detector::enable();
    deadlock(t, &seen);
    ordered(t);
    checker::disable();
    detector::disable();
}

fn deadlock(t: &mut Tour, seen: &std::sync::Mutex<Vec<PotentialDeadlock>>) {
    t.say("Bank transfers a->b and b->a at once, each locking its own account first.");
    let (a, b) = (Arc::new(Lock::new()), Arc::new(Lock::new()));
    lockorder::set_name(&*a, "account a");
    lockorder::set_name(&*b, "account b");
    let meet = Arc::new(Barrier::new(2).expect("2 parties"));
    let spawn = |name: &str, src: &Arc<Lock>, dst: &Arc<Lock>| {
        let (src, dst, meet) = (Arc::clone(src), Arc::clone(dst), Arc::clone(&meet));
        thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                lockorder::recoverable(|| {
                    let _src = src.lock();
                    meet.wait().expect("barrier");
                    let _dst = dst.lock(); // both threads block here for good
                })
            })
            .expect("spawn")
    };
    let t1 = spawn("transfer a->b", &a, &b);
    let t2 = spawn("transfer b->a", &b, &a);

    let start = Instant::now();
    let found: Option<Deadlock> = loop {
        if let Some(d) = detector::detect().into_iter().find(|d| d.involves(a.id())) {
            break Some(d);
        }
        if start.elapsed() > GENEROUS {
            break None;
        }
        thread::sleep(Duration::from_millis(1));
    };
    let Some(d) = found else {
        t.check(
            "the detector finds the deadlock",
            false,
            "nothing found in 10 s",
        );
        return;
    };
    for line in d.to_string().lines() {
        t.say(format!("  {line}"));
    }
    let mut threads = d.threads();
    threads.sort_unstable();
    let mut locks = d.locks();
    locks.sort_unstable();
    let mut want = vec![a.id(), b.id()];
    want.sort_unstable();
    t.check(
        "the detector names both threads and both locks",
        threads == ["transfer a->b", "transfer b->a"] && locks == want,
        format!("found in {:?}", start.elapsed()),
    );
    let inversion = seen
        .lock()
        .unwrap()
        .iter()
        .any(|r| r.involves(a.id()) && r.involves(b.id()));
    t.check(
        "the order checker flagged the a/b inversion before the threads blocked",
        inversion,
        "",
    );

    t.say("Recovery: abort the newest wait; that thread gets a DeadlockError.");
    let aborted = d.recover(Recovery::AbortNewest);
    let r1 = t1.join().expect("no panic");
    let r2 = t2.join().expect("no panic");
    let errors: Vec<&DeadlockError> = [&r1, &r2]
        .into_iter()
        .filter_map(|r| r.as_ref().err())
        .collect();
    t.check(
        "one victim, the other transfer completed, both threads ended",
        aborted == 1 && errors.len() == 1 && !a.is_locked() && !b.is_locked(),
        errors
            .first()
            .map(|e| e.to_string().lines().next().unwrap_or("").to_owned())
            .unwrap_or_default(),
    );
}

fn ordered(t: &mut Tour) {
    t.say(
        "Cookbook 12.5: acquire(x_lock, y_lock) in one thread, acquire(y_lock, x_lock) in another.",
    );
    let (x, y) = (Lock::new(), Lock::new());
    lockorder::set_name(&x, "x_lock");
    lockorder::set_name(&y, "y_lock");
    let rounds: u64 = 20_000;
    let done = AtomicU64::new(0);
    let start = Instant::now();
    thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..rounds {
                let _g = acquire((&x, &y)).expect("in order");
                done.fetch_add(1, Relaxed);
            }
        });
        s.spawn(|| {
            for _ in 0..rounds {
                let _g = acquire((&y, &x)).expect("in order");
                done.fetch_add(1, Relaxed);
            }
        });
    });
    t.check(
        "both threads finish all rounds: the locks are always taken in id order",
        done.load(Relaxed) == 2 * rounds,
        format!("{} rounds in {:?}", done.load(Relaxed), start.elapsed()),
    );
    let (low, high) = if x.id() < y.id() { (&x, &y) } else { (&y, &x) };
    let _outer = acquire(high).expect("free");
    let err = acquire(low).map(drop);
    t.check(
        "asking for a lower lock while holding a higher one is a Lock Order Violation",
        matches!(&err, Err(AcquireError::Violation(v)) if v.requested() == low.id()),
        err.err().map(|e| e.to_string()).unwrap_or_default(),
    );
}
