//! Loom models of the `ipc::Queue` ring's publish and shutdown protocol
//! (run them as `crate::loom` says). The ring's words are loom atomics, its
//! futexes and its producer/consumer futex mutexes sleep in the model's
//! parking table, and no clock thread runs, so the ring's sleep slices (500
//! ms for a getter, 2–200 ms for a lock waiter) never end by themselves: a
//! lost wake-up is a deadlock loom reports, not a delay.
//!
//! The shutdown models replace the 20-fold repetition of the conformance
//! test `shutdown_in_many_threads_repeatedly`, which was there because a
//! put racing an immediate shutdown once landed after the drain (the
//! queue was not empty after `shutdown(immediate=True)` returned). Here
//! every interleaving of a put, a get and a shutdown is checked instead.
#![forbid(unsafe_code)]

use std::sync::atomic::Ordering::SeqCst;

use ::loom::sync::Arc;
use ::loom::thread;

use super::{Item, Popped, Push, Ring, W_TAIL};
use crate::loom::check;

fn ring(cap: u32, maxsize: u32) -> Arc<Ring> {
    Arc::new(Ring::new(cap, maxsize).expect("ring"))
}

/// A getter as `ipc::Queue::get` (`get_into`) uses the ring: take an item;
/// with nothing there, read the state and report the shutdown if the ring
/// is still empty (an immediate one also makes `try_pop` say so; no
/// feeder buffers here), or sleep until an item may be there.
fn get(ring: &Ring) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        match ring.try_pop(&mut out) {
            Popped::Item(_) => return Some(out),
            Popped::ShutDown => return None,
            Popped::Corrupt => panic!("a published slot is corrupt"),
            Popped::Empty => {}
        }
        let shut = ring.shutdown_state();
        if shut != 0 {
            if !ring.has_items() {
                return None;
            }
            continue;
        }
        ring.wait_items(shut, None);
    }
}

/// Takes whatever is left, without waiting.
fn leftovers(ring: &Ring) -> u32 {
    let mut out = Vec::new();
    let mut n = 0;
    while let Popped::Item(_) = ring.try_pop(&mut out) {
        n += 1;
    }
    n
}

/// A put and a get race `shutdown(immediate)`: when `shutdown` returns the
/// ring is empty and stays empty (the conformance suite's "immediate
/// shutdown empties the queue"), the getter ends, and the item is counted
/// exactly once — got, dropped by the shutdown, or refused.
#[test]
fn loom_model_ring_put_get_race_immediate_shutdown() {
    check("ring: put vs get vs shutdown(immediate)", 3, || {
        let r = ring(2, 0);
        let putter = {
            let r = Arc::clone(&r);
            thread::spawn(move || r.push(Item::Slot(b"a"), 1))
        };
        let getter = {
            let r = Arc::clone(&r);
            thread::spawn(move || get(&r))
        };
        let dropped = r.shutdown(true, || {});
        assert_eq!(r.qsize(), 0, "immediate shutdown empties the ring");
        let pushed = putter.join().unwrap();
        let got = getter.join().unwrap();
        assert_eq!(r.qsize(), 0, "the ring stays empty");
        assert_eq!(
            u32::from(pushed == Push::Done),
            u32::from(got.is_some()) + dropped,
            "a put item is got or dropped, once"
        );
        if let Some(item) = got {
            assert_eq!(item, b"a");
        }
    });
}

/// A put and a get race a normal shutdown: once `shutdown` has returned
/// nothing more is published (a put lands before it or is refused), the
/// getter ends, and a put item is got — a getter that says `ShutDown` has
/// seen the ring empty after every successful put. (This model found that
/// the state used to change before the producer lock was passed: a put
/// already past its check published after a getter had read "shut down,
/// empty"; the state now changes under that lock and the getter looks
/// again after reading it.)
#[test]
fn loom_model_ring_put_get_race_shutdown() {
    check("ring: put vs get vs shutdown", 3, || {
        let r = ring(2, 0);
        let putter = {
            let r = Arc::clone(&r);
            thread::spawn(move || r.push(Item::Slot(b"a"), 1))
        };
        let getter = {
            let r = Arc::clone(&r);
            thread::spawn(move || get(&r))
        };
        assert_eq!(r.shutdown(false, || {}), 0);
        let published = r.w(W_TAIL).load(SeqCst);
        let pushed = putter.join().unwrap();
        let got = getter.join().unwrap();
        assert_eq!(
            r.w(W_TAIL).load(SeqCst),
            published,
            "nothing is published after shutdown returned"
        );
        let left = leftovers(&r);
        assert_eq!(
            u32::from(pushed == Push::Done),
            u32::from(got.is_some()) + left,
            "a put item is got or left, once"
        );
        // Python: `get` raises ShutDown only once the queue is shut down
        // *and empty*; an item put before the shutdown is handed out.
        assert!(
            got.is_some() || left == 0,
            "a get said ShutDown while an item put before the shutdown was still to come"
        );
        assert_eq!(r.push(Item::Slot(b"b"), 1), Push::ShutDown);
    });
}

/// Two getters sleep for items while two are put: both get one. Puts wake
/// a getter only when no wake-up is already on its way (`W_WOKEN`), and a
/// getter leaving `wait_items` passes the wake-up on while items wait: no
/// wake-up is lost (nothing times out here, so a lost one hangs).
#[test]
fn loom_model_ring_two_getters_two_puts() {
    check("ring: two sleeping getters, two puts", 3, || {
        let r = ring(2, 0);
        let getters: Vec<_> = (0..2)
            .map(|_| {
                let r = Arc::clone(&r);
                thread::spawn(move || get(&r))
            })
            .collect();
        assert_eq!(r.push(Item::Slot(b"a"), 1), Push::Done);
        assert_eq!(r.push(Item::Slot(b"b"), 1), Push::Done);
        let mut got: Vec<_> = getters
            .into_iter()
            .map(|g| g.join().unwrap().expect("an item"))
            .collect();
        got.sort();
        assert_eq!(got, [b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(r.qsize(), 0);
    });
}

/// A bounded ring of one place: a second putter waits for the place
/// (`take_place`) while a getter frees it and a shutdown races both: the
/// waiting putter either gets the place or sees the shutdown, never sleeps
/// forever.
#[test]
fn loom_model_ring_bounded_place_vs_get_vs_shutdown() {
    check(
        "ring: bounded put waits for a place vs get vs shutdown",
        3,
        || {
            let r = ring(2, 1);
            assert_eq!(r.take_place(None), Push::Done);
            assert_eq!(r.push(Item::Slot(b"a"), 1), Push::Done);
            let putter = {
                let r = Arc::clone(&r);
                thread::spawn(move || match r.take_place(None) {
                    Push::Done => r.push(Item::Slot(b"b"), 1),
                    other => other,
                })
            };
            let getter = {
                let r = Arc::clone(&r);
                thread::spawn(move || get(&r))
            };
            r.shutdown(false, || {});
            let second = putter.join().unwrap();
            let first = getter.join().unwrap();
            assert_eq!(
                first.as_deref(),
                Some(&b"a"[..]),
                "items before the shutdown are got"
            );
            assert_eq!(
                u32::from(second == Push::Done),
                leftovers(&r),
                "the second item is there iff its put succeeded"
            );
        },
    );
}

/// A put blocked on a full bounded ring (`take_place`) and nothing else but
/// a shutdown: the shutdown alone must release it with `ShutDown`. (Found by
/// `.ci/valgrind`, whose slow scheduling hung `shutdown_wakes_other_processes`:
/// the putter checked the state, the shutdown changed it and woke `W_FREE`,
/// then the putter slept on the unchanged `W_FREE` for good. The shutdown
/// now bumps `W_FREE` too, so that sleep returns at once; a putter that
/// takes the extra place is refused by `push`.)
#[test]
fn loom_model_ring_blocked_put_vs_shutdown() {
    check(
        "ring: put blocked on a full bounded ring vs shutdown",
        3,
        || {
            let r = ring(2, 1);
            assert_eq!(r.take_place(None), Push::Done);
            assert_eq!(r.push(Item::Slot(b"a"), 1), Push::Done);
            // `ipc::Queue::put` on a bounded queue: a place, then the push.
            let putter = {
                let r = Arc::clone(&r);
                thread::spawn(move || match r.take_place(None) {
                    Push::Done => r.push(Item::Slot(b"b"), 1),
                    other => other,
                })
            };
            r.shutdown(false, || {});
            assert_eq!(putter.join().unwrap(), Push::ShutDown);
            assert_eq!(leftovers(&r), 1, "only the item put before the shutdown");
        },
    );
}

/// An async waiter thread as `ipc::Queue`'s (`super::super::future`) uses
/// the ring: counted in `W_ASYNC` first (`async_enter`, done before the
/// thread starts), then it reads the doorbell, checks what its tasks wait
/// for, and sleeps on the doorbell while it still reads the same. No clock
/// runs, so its sleep slice never ends by itself: a change that does not
/// ring the doorbell is a deadlock.
fn await_bell(ring: &Ring, ready: impl Fn(&Ring) -> bool) {
    loop {
        let seen = ring.bell();
        if ready(ring) {
            return;
        }
        ring.wait_bell(seen, std::time::Instant::now());
    }
}

/// The doorbell's Dekker pairs. A getter task finds the ring empty, counts
/// a waiter thread in (`async_enter`, under the waiters' mutex before the
/// thread starts) and tries again; if that finds nothing, the thread waits
/// on the doorbell. Against it, a put (`announce`): either the retry sees
/// the item or the put sees the thread counted and rings. Then a putter
/// task's waiter thread waits for a place of the full bounded ring, freed
/// by a get (`give_places`). Checked to fail (deadlock) without `ring_bell`
/// in `announce`, without it in `give_places`, with `ring_bell` reading
/// `W_ASYNC` `Relaxed`, and with the waiter reading the doorbell after its
/// check instead of before.
#[test]
fn loom_model_ring_doorbell_wakes_async_waiters() {
    check("ring: async waiter threads vs put and get", 3, || {
        let r = ring(2, 1);
        let getter_task = {
            let r = Arc::clone(&r);
            thread::spawn(move || {
                r.async_enter();
                if !r.has_items() {
                    let waiter = {
                        let r = Arc::clone(&r);
                        thread::spawn(move || await_bell(&r, Ring::has_items))
                    };
                    waiter.join().unwrap();
                }
                r.async_leave();
            })
        };
        assert_eq!(r.take_place(None), Push::Done);
        assert_eq!(r.push(Item::Slot(b"a"), 1), Push::Done);
        getter_task.join().unwrap();
        // The ring is full (maxsize 1): a putter task waits for a place.
        r.async_enter();
        let putter_thread = {
            let r = Arc::clone(&r);
            thread::spawn(move || {
                await_bell(&r, |r| r.free_places() > 0);
                r.async_leave();
            })
        };
        assert!(matches!(r.try_pop(&mut Vec::new()), Popped::Item(_)));
        putter_thread.join().unwrap();
        assert_eq!(r.async_threads(), 0);
    });
}
