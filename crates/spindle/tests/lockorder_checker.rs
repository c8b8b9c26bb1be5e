//! The lock-order checker (`spindle::lockorder::checker`, lockdep-style): an
//! inverted pair of acquisitions is reported as a potential deadlock in a run
//! that never deadlocked; consistent orders are never reported.

use spindle::lockorder::checker::{self, PotentialDeadlock, Sink};
use spindle::lockorder::{self, acquire};
use spindle::sync::{Lock, LockId, RLock};
use std::sync::{Arc, Mutex, Once};

/// Every report, collected by a custom sink (tests run in parallel: each one
/// looks only at reports naming its own locks).
static SEEN: Mutex<Vec<PotentialDeadlock>> = Mutex::new(Vec::new());

fn setup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        checker::set_sink(Sink::Custom(Arc::new(|r| {
            SEEN.lock().unwrap().push(r.clone())
        })));
        checker::enable();
    });
}

fn reports_about(ids: &[LockId]) -> Vec<PotentialDeadlock> {
    SEEN.lock()
        .unwrap()
        .iter()
        .filter(|r| ids.iter().any(|&id| r.involves(id)))
        .cloned()
        .collect()
}

/// Runs `f` on a new thread named `name` and waits for it.
fn on_thread(name: &str, f: impl FnOnce() + Send) {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name(name.into())
            .spawn_scoped(s, f)
            .unwrap()
            .join()
            .unwrap();
    });
}

#[test]
fn inverted_pair_is_reported_without_deadlocking() {
    setup();
    let (a, b) = (Lock::new(), Lock::new());
    lockorder::set_name(&a, "a.lock");
    lockorder::set_name(&b, "b.lock");
    let ab_line = line!() + 2;
    on_thread("transfer a->b", || {
        let _src = a.lock();
        let _dst = b.lock();
    });
    assert!(
        reports_about(&[a.id(), b.id()]).is_empty(),
        "one order alone is fine"
    );
    let ba_line = line!() + 2;
    on_thread("transfer b->a", || {
        let _src = b.lock();
        let _dst = a.lock();
    });
    // The run is over and never deadlocked: the threads took turns.
    let found = reports_about(&[a.id(), b.id()]);
    assert_eq!(found.len(), 1, "exactly one report: {found:?}");
    let r = &found[0];
    assert_eq!(r.locks(), vec![b.id(), a.id()]);
    let closing = &r.edges()[0];
    assert_eq!(closing.thread(), "transfer b->a");
    assert_eq!((closing.held(), closing.acquired()), (b.id(), a.id()));
    assert_eq!(closing.held_site().line(), ba_line);
    assert_eq!(closing.acquire_site().line(), ba_line + 1);
    assert!(
        closing
            .acquire_site()
            .file()
            .ends_with("lockorder_checker.rs")
    );
    let earlier = &r.edges()[1];
    assert_eq!(earlier.thread(), "transfer a->b");
    assert_eq!((earlier.held(), earlier.acquired()), (a.id(), b.id()));
    assert_eq!(earlier.held_site().line(), ab_line);
    assert_eq!(earlier.acquire_site().line(), ab_line + 1);
    let text = r.to_string();
    assert!(
        text.contains("potential deadlock") && text.contains("\"a.lock\""),
        "{text}"
    );
    // Once per cycle: doing it again adds nothing.
    on_thread("again", || {
        let _src = b.lock();
        let _dst = a.lock();
    });
    assert_eq!(reports_about(&[a.id(), b.id()]).len(), 1);
    assert!(checker::reports().iter().any(|r| r.involves(a.id())));
}

#[test]
fn consistent_orders_are_never_reported() {
    setup();
    let locks: Vec<Lock> = (0..4).map(|_| Lock::new()).collect();
    let r = RLock::new();
    std::thread::scope(|s| {
        for t in 0..4 {
            let (locks, r) = (&locks, &r);
            s.spawn(move || {
                for i in 0..200 {
                    // Always in index order, sometimes skipping some.
                    let guards: Vec<_> = locks
                        .iter()
                        .enumerate()
                        .filter(|(k, _)| (i + t + k) % 3 != 0)
                        .map(|(_, l)| l.lock())
                        .collect();
                    let _inner = r.lock();
                    let _again = r.lock(); // re-entry is not an edge
                    drop(guards);
                }
            });
        }
    });
    let mut ids: Vec<LockId> = locks.iter().map(|l| l.id()).collect();
    ids.push(r.id());
    assert!(reports_about(&ids).is_empty());
}

#[test]
fn ordered_acquire_in_any_listed_order_is_consistent() {
    setup();
    let (x, y) = (Lock::new(), Lock::new());
    on_thread("thread_1", || drop(acquire((&x, &y)).unwrap()));
    on_thread("thread_2", || drop(acquire((&y, &x)).unwrap()));
    assert!(reports_about(&[x.id(), y.id()]).is_empty());
}

#[test]
fn three_lock_cycle_is_reported_with_all_edges() {
    setup();
    let l: Vec<Lock> = (0..3).map(|_| Lock::new()).collect();
    for i in 0..3 {
        on_thread(&format!("edge-{i}"), || {
            let _first = l[i].lock();
            let _second = l[(i + 1) % 3].lock();
        });
    }
    let ids: Vec<LockId> = l.iter().map(|x| x.id()).collect();
    let found = reports_about(&ids);
    assert_eq!(found.len(), 1, "{found:?}");
    let r = &found[0];
    assert_eq!(r.edges().len(), 3);
    assert_eq!(r.edges()[0].thread(), "edge-2");
    for (k, e) in r.edges().iter().enumerate() {
        let next = &r.edges()[(k + 1) % 3];
        assert_eq!(e.acquired(), next.held(), "edges chain into a cycle");
    }
}

#[test]
fn try_and_timed_acquisitions_add_no_edges() {
    setup();
    let (a, b) = (Lock::new(), Lock::new());
    on_thread("forever", || {
        let _a = a.lock();
        let _b = b.lock();
    });
    on_thread("bounded", || {
        let _b = b.lock();
        let _a = a.try_lock().expect("free");
        drop(_a);
        let _a = a
            .lock_timeout(std::time::Duration::from_secs(5))
            .expect("free");
    });
    assert!(reports_about(&[a.id(), b.id()]).is_empty());
}
