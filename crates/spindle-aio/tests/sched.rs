//! The Cookbook's generator schedulers (recipe 12.12) with futures:
//! `TaskScheduler` and `ActorScheduler`.

use std::cell::RefCell;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::thread;

use spindle_aio::sched::{ActorScheduler, Stalled, TaskScheduler, UnknownActor, yield_now};

/// The Python program's `countdown(n)`: prints `T-minus n`, yields, counts down, and
/// prints `Blastoff!` at the end.
async fn countdown(n: u32, out: &RefCell<Vec<String>>) {
    let mut n = n;
    while n > 0 {
        out.borrow_mut().push(format!("T-minus {n}"));
        yield_now().await;
        n -= 1;
    }
    out.borrow_mut().push("Blastoff!".to_owned());
}

/// The Python program's `countup(n)`: prints `Counting up x`, yields, counts up.
async fn countup(n: u32, out: &RefCell<Vec<String>>) {
    let mut x = 0;
    while x < n {
        out.borrow_mut().push(format!("Counting up {x}"));
        yield_now().await;
        x += 1;
    }
}

/// The generator scheduler runs `countdown(10)` and `countup(5)`: each
/// `next(task)` runs a task to its next `yield` and puts it at the back of
/// the deque, so the two alternate until `countup` ends (after `Counting up
/// 4` its next step finishes it), then `countdown` runs alone.
#[test]
fn task_scheduler_seed_transcript() {
    let out = RefCell::new(Vec::new());
    let mut sched = TaskScheduler::new();
    sched.new_task(countdown(10, &out));
    sched.new_task(countup(5, &out));
    sched.run().unwrap();
    assert!(sched.is_empty());
    let expected = [
        "T-minus 10",
        "Counting up 0",
        "T-minus 9",
        "Counting up 1",
        "T-minus 8",
        "Counting up 2",
        "T-minus 7",
        "Counting up 3",
        "T-minus 6",
        "Counting up 4",
        "T-minus 5",
        "T-minus 4",
        "T-minus 3",
        "T-minus 2",
        "T-minus 1",
        "Blastoff!",
    ];
    assert_eq!(*out.borrow(), expected);
}

/// Pending forever and keeps no waker.
struct Forgetful;

impl Future for Forgetful {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

#[test]
fn scheduler_stalled_is_error() {
    let out = RefCell::new(Vec::new());
    let mut sched = TaskScheduler::new();
    sched.new_task(countup(3, &out));
    sched.new_task(Forgetful);
    sched.new_task(async {
        Forgetful.await;
    });
    assert_eq!(sched.run(), Err(Stalled { tasks: 2 }));
    assert_eq!(out.borrow().len(), 3, "the live task ran to its end first");
    assert_eq!(sched.len(), 2, "the stalled tasks stay");
}

/// A task whose waker is held by another thread is not stalled: `run`
/// waits for the wake-up and finishes it.
#[test]
fn a_waker_on_another_thread_is_waited_for() {
    let (tx, rx) = std::sync::mpsc::channel::<Waker>();
    let waker_thread = thread::spawn(move || {
        let waker = rx.recv().unwrap();
        waker.wake();
    });
    let mut woken = false;
    let mut sched = TaskScheduler::new();
    sched.new_task(async {
        let mut sent = false;
        poll_fn(|cx| {
            if sent {
                Poll::Ready(())
            } else {
                sent = true;
                tx.send(cx.waker().clone()).unwrap();
                Poll::Pending
            }
        })
        .await;
        woken = true;
    });
    sched.run().unwrap();
    drop(sched);
    assert!(woken);
    waker_thread.join().unwrap();
}

/// The Python program's actors: `counter` sends `n` to `printer` and `n - 1` to
/// itself until 0 — 10,000 messages, on a thread with a 256 KiB stack: a
/// scheduler that delivered by calling the receiver would nest 10,000
/// deep; this one never grows the stack.
#[test]
fn actor_counter_10000() {
    let handle = thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            let got = RefCell::new(Vec::new());
            let mut sched = ActorScheduler::new();
            sched.new_actor("printer", |inbox, _| {
                let got = &got;
                async move {
                    loop {
                        let n: u32 = inbox.recv().await;
                        got.borrow_mut().push(n);
                    }
                }
            });
            sched.new_actor("counter", |inbox, actors| async move {
                loop {
                    let n = inbox.recv().await;
                    if n == 0 {
                        break;
                    }
                    actors.send("printer", n).unwrap();
                    actors.send("counter", n - 1).unwrap();
                }
            });
            sched.send("counter", 10_000).unwrap();
            sched.run().unwrap();
            // `counter` has ended: it is no longer a name.
            assert_eq!(
                sched.send("counter", 1),
                Err(UnknownActor("counter".into()))
            );
            drop(sched);
            got.into_inner()
        })
        .unwrap();
    let got = handle.join().unwrap();
    assert_eq!(got.len(), 10_000);
    assert!(got.iter().copied().eq((1..=10_000).rev()));
}

#[test]
fn send_to_an_unknown_actor_is_an_error() {
    let mut sched = ActorScheduler::<u32>::new();
    sched.new_actor("echo", |inbox, _| async move {
        let _ = inbox.recv().await;
    });
    assert_eq!(sched.send("nobody", 1), Err(UnknownActor("nobody".into())));
    sched.send("echo", 1).unwrap();
    sched.run().unwrap();
    assert_eq!(sched.send("echo", 2), Err(UnknownActor("echo".into())));
}

/// An actor waiting on an empty mailbox is idle, not stalled: `run`
/// returns, as the Cookbook's does when its message queue is empty; one
/// waiting on something nothing can wake is stalled.
#[test]
fn idle_actors_end_run_stalled_ones_do_not() {
    let mut sched = ActorScheduler::<u32>::new();
    sched.new_actor("idle", |inbox, _| async move {
        loop {
            inbox.recv().await;
        }
    });
    sched.run().unwrap();
    sched.new_actor("stuck", |_, _| Forgetful);
    assert_eq!(sched.run(), Err(Stalled { tasks: 1 }));
}

/// A scheduler run inside a task of another (same thread): each one's
/// same-thread wake-ups stay its own, and both keep round-robin order.
#[test]
fn nested_schedulers_keep_their_own_wakeups() {
    let out = RefCell::new(Vec::new());
    let mut outer = TaskScheduler::new();
    let o = &out;
    outer.new_task(async move {
        o.borrow_mut().push("a0".to_owned());
        yield_now().await;
        let mut inner = TaskScheduler::new();
        for name in ["x", "y"] {
            inner.new_task(async move {
                for i in 0..2 {
                    o.borrow_mut().push(format!("{name}{i}"));
                    yield_now().await;
                }
            });
        }
        inner.run().unwrap();
        o.borrow_mut().push("a1".to_owned());
        yield_now().await;
        o.borrow_mut().push("a2".to_owned());
    });
    outer.new_task(async move {
        for i in 0..3 {
            o.borrow_mut().push(format!("b{i}"));
            yield_now().await;
        }
    });
    outer.run().unwrap();
    assert_eq!(
        *out.borrow(),
        ["a0", "b0", "x0", "y0", "x1", "y1", "a1", "b1", "a2", "b2"]
    );
}

/// A task that panics mid-run: the tasks woken before are still queued,
/// and a second `run` finishes them in order (the panicked task, never
/// woken again, is reported stalled).
#[test]
fn a_panicking_task_loses_no_wakeup() {
    let out = RefCell::new(Vec::new());
    let mut sched = TaskScheduler::new();
    let o = &out;
    for name in ["a", "b"] {
        sched.new_task(async move {
            for i in 0..3 {
                o.borrow_mut().push(format!("{name}{i}"));
                yield_now().await;
            }
        });
    }
    sched.new_task(async move {
        yield_now().await;
        panic!("boom");
    });
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sched.run()));
    assert!(r.is_err());
    assert_eq!(sched.run(), Err(Stalled { tasks: 1 }));
    assert_eq!(*out.borrow(), ["a0", "b0", "a1", "b1", "a2", "b2"]);
}

/// The wake-ups one poll makes run in the order they were made (the
/// first one and the rest take different paths inside the scheduler), and
/// a task woken twice before it runs again runs once.
#[test]
fn wakeups_of_one_poll_keep_their_order_and_do_not_repeat() {
    let out = RefCell::new(Vec::new());
    let wakers: RefCell<Vec<Option<Waker>>> = RefCell::new(vec![None, None]);
    let mut sched = TaskScheduler::new();
    let (o, w) = (&out, &wakers);
    for (slot, name) in ["b", "c"].into_iter().enumerate() {
        sched.new_task(async move {
            let mut parked = false;
            poll_fn(|cx| {
                if parked {
                    return Poll::Ready(());
                }
                parked = true;
                w.borrow_mut()[slot] = Some(cx.waker().clone());
                Poll::Pending
            })
            .await;
            o.borrow_mut().push(name.to_owned());
        });
    }
    sched.new_task(async move {
        // b and c are parked by now (they ran first).
        let mut woke = false;
        poll_fn(|cx| {
            if woke {
                return Poll::Ready(());
            }
            woke = true;
            cx.waker().wake_by_ref();
            let (b, c) = {
                let mut w = w.borrow_mut();
                (w[0].take().unwrap(), w[1].take().unwrap())
            };
            c.wake_by_ref();
            cx.waker().wake_by_ref(); // already queued: no second run
            b.wake_by_ref();
            c.wake();
            Poll::Pending
        })
        .await;
        o.borrow_mut().push("a".to_owned());
        yield_now().await;
        o.borrow_mut().push("a-again".to_owned());
    });
    sched.run().unwrap();
    assert_eq!(*out.borrow(), ["a", "c", "b", "a-again"]);
}
