//! Tasks, gather, wait, TaskGroup and Pool: asyncio's and gevent's
//! behaviours on tokio. Time-dependent tests run on tokio's paused clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use spindle_aio::{
    GroupError, InvalidSize, Pool, ReturnWhen, TaskError, TaskGroup, Timeout, as_completed, gather,
    join_all, spawn, wait, wait_for, wait_timeout,
};
use tokio::time::sleep;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Counts how many live futures hold one, and the most at once.
#[derive(Default)]
struct InFlight {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl InFlight {
    fn enter(self: &Arc<Self>) -> Guard {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(n, Ordering::SeqCst);
        Guard(self.clone())
    }
}

struct Guard(Arc<InFlight>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

#[tokio::test(start_paused = true)]
async fn gather_keeps_input_order() {
    let finished = Arc::new(std::sync::Mutex::new(Vec::new()));
    let tasks: Vec<_> = (0..5u64)
        .map(|i| {
            let finished = finished.clone();
            spawn(async move {
                sleep(ms(50 - 10 * i)).await; // the last finishes first
                finished.lock().unwrap().push(i);
                i * 100
            })
        })
        .collect();
    let out = gather(tasks).await;
    assert_eq!(*finished.lock().unwrap(), [4, 3, 2, 1, 0]);
    assert_eq!(out, [Ok(0), Ok(100), Ok(200), Ok(300), Ok(400)]);
}

#[tokio::test(start_paused = true)]
async fn gather_reports_a_panic_in_its_place() {
    let tasks = vec![
        spawn(async {
            sleep(ms(20)).await;
            1
        }),
        spawn(async {
            sleep(ms(10)).await;
            panic!("task two failed")
        }),
        spawn(async {
            sleep(ms(30)).await;
            3
        }),
    ];
    let out = gather(tasks).await;
    assert_eq!(out[0], Ok(1));
    assert_eq!(out[1], Err(TaskError::Panicked("task two failed".into())));
    assert_eq!(out[2], Ok(3));
}

#[tokio::test(start_paused = true)]
async fn cancel_and_ready() {
    let t = spawn(std::future::pending::<()>());
    assert!(!t.ready());
    assert!(t.cancel());
    assert_eq!(t.await, Err(TaskError::Cancelled));

    let mut t = spawn(async { 5 });
    sleep(ms(1)).await;
    assert!(t.ready());
    assert!(
        !t.cancel(),
        "cancel of a finished task is false, as in Python"
    );
    assert_eq!((&mut t).await, Ok(5));
    assert_eq!(t.await, Err(TaskError::Joined));
}

#[tokio::test(start_paused = true)]
async fn wait_for_times_out_and_cancels() {
    let dropped = Arc::new(InFlight::default());
    let d = dropped.clone();
    let slow = async move {
        let _g = d.enter();
        sleep(ms(1000)).await;
        7
    };
    assert_eq!(wait_for(slow, ms(100)).await, Err(Timeout));
    assert_eq!(
        dropped.now.load(Ordering::SeqCst),
        0,
        "the future was dropped"
    );
    assert_eq!(dropped.max.load(Ordering::SeqCst), 1, "and it had started");
    assert_eq!(wait_for(async { 7 }, ms(100)).await, Ok(7));
}

#[tokio::test(start_paused = true)]
async fn wait_first_completed_first_exception_all() {
    let tasks = vec![
        spawn(async {
            sleep(ms(10)).await;
            1
        }),
        spawn(async {
            sleep(ms(1000)).await;
            2
        }),
    ];
    let d = wait(tasks, ReturnWhen::FirstCompleted).await;
    assert_eq!((d.done.len(), d.pending.len()), (1, 1));
    let mut done = d.done;
    assert_eq!(done.pop().unwrap().await, Ok(1));

    let tasks = vec![
        spawn(async {
            sleep(ms(10)).await;
            panic!("boom")
        }),
        spawn(async {
            sleep(ms(1000)).await;
            2
        }),
        spawn(async { 3 }),
    ];
    let d = wait(tasks, ReturnWhen::FirstException).await;
    assert_eq!((d.done.len(), d.pending.len()), (2, 1));
    let pending = d.pending;
    let d = wait_timeout(pending, ms(10), ReturnWhen::AllCompleted).await;
    assert_eq!((d.done.len(), d.pending.len()), (0, 1), "timed out");
    let d = wait(d.pending, ReturnWhen::AllCompleted).await;
    assert_eq!(d.done.len(), 1);
    assert_eq!(d.done.into_iter().next().unwrap().await, Ok(2));
}

#[tokio::test(start_paused = true)]
async fn as_completed_yields_in_finishing_order() {
    let tasks: Vec<_> = [30u64, 10, 20]
        .into_iter()
        .map(|t| {
            spawn(async move {
                sleep(ms(t)).await;
                t
            })
        })
        .collect();
    let mut stream = as_completed(tasks);
    let mut order = Vec::new();
    while let Some((i, out)) = stream.next().await {
        order.push((i, out.unwrap()));
    }
    assert_eq!(order, [(1, 10), (2, 20), (0, 30)]);
}

#[test]
fn join_from_a_plain_thread() {
    let t = spawn(async { "greenlet" });
    assert_eq!(t.join(), Ok("greenlet"));

    let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
    let mut t = spawn(async move { rx.await.unwrap() });
    assert_eq!(t.join_timeout(ms(20)), Err(TaskError::Timeout));
    tx.send(9).unwrap();
    assert_eq!(t.join_timeout(Duration::from_secs(30)), Ok(9));
    assert_eq!(t.join_timeout(ms(1)), Err(TaskError::Joined));

    let mut tasks = vec![spawn(async { 1 }), spawn(async { panic!("two") })];
    assert_eq!(
        join_all(&mut tasks, None),
        [Ok(1), Err(TaskError::Panicked("two".into()))]
    );
}

#[tokio::test]
async fn blocking_join_on_a_runtime_thread_is_an_error() {
    let (_tx, rx) = tokio::sync::oneshot::channel::<u32>();
    let mut t = spawn(async move { rx.await.unwrap_or(0) });
    assert_eq!(t.join_timeout(ms(1)), Err(TaskError::InRuntime));
    assert_eq!(
        join_all(std::slice::from_mut(&mut t), None),
        [Err(TaskError::InRuntime)]
    );
    t.cancel();
}

#[test]
fn run_inside_a_runtime_is_an_error() {
    let out = spindle_aio::run(async { spindle_aio::run(async { 1 }) }).unwrap();
    assert_eq!(out, Err(spindle_aio::InRuntime));
}

#[tokio::test(start_paused = true)]
async fn taskgroup_first_failure_cancels_rest() {
    let start = tokio::time::Instant::now();
    let live = Arc::new(InFlight::default());
    let finished = Arc::new(AtomicUsize::new(0));
    let mut tg = TaskGroup::new();
    tg.spawn(async { Ok::<u32, String>(1) });
    for _ in 0..3 {
        let (live, finished) = (live.clone(), finished.clone());
        tg.spawn(async move {
            let _g = live.enter();
            sleep(ms(10_000)).await;
            finished.fetch_add(1, Ordering::SeqCst);
            Ok(2)
        });
    }
    tg.spawn(async {
        sleep(ms(10)).await;
        Err("bad input".to_string())
    });
    let err = tg.join().await.unwrap_err();
    assert_eq!(
        err,
        GroupError::Failed {
            index: 4,
            error: "bad input".into()
        }
    );
    assert_eq!(live.max.load(Ordering::SeqCst), 3, "all three had started");
    assert_eq!(live.now.load(Ordering::SeqCst), 0, "all three were dropped");
    assert_eq!(finished.load(Ordering::SeqCst), 0, "none ran to its end");
    assert!(
        start.elapsed() < ms(10_000),
        "join waited for the tasks instead of cancelling them"
    );
}

#[tokio::test(start_paused = true)]
async fn taskgroup_panic_is_a_failure_and_success_keeps_order() {
    let mut tg = TaskGroup::<u32, String>::new();
    tg.spawn(async { panic!("oops") });
    tg.spawn(std::future::pending());
    let err = tg.join().await.unwrap_err();
    assert_eq!(
        err,
        GroupError::Task {
            index: 0,
            error: TaskError::Panicked("oops".into())
        }
    );

    let mut tg = TaskGroup::<u64, String>::new();
    for i in 0..5u64 {
        tg.spawn(async move {
            sleep(ms(50 - 10 * i)).await;
            Ok(i)
        });
    }
    assert_eq!(tg.join().await, Ok(vec![0, 1, 2, 3, 4]));
}

#[tokio::test(start_paused = true)]
async fn pool_limits_concurrency_to_n() {
    let pool = Pool::new(3).unwrap();
    let live = Arc::new(InFlight::default());
    let out = pool
        .map(
            |i: u64| {
                let live = live.clone();
                async move {
                    let _g = live.enter();
                    sleep(ms(10 + i % 4)).await;
                    i
                }
            },
            0..12,
        )
        .await;
    assert_eq!(out, (0..12).map(Ok).collect::<Vec<_>>(), "map keeps order");
    assert_eq!(live.max.load(Ordering::SeqCst), 3, "at most 3 in flight");
    pool.join().await;
    assert_eq!(pool.free_count(), 3);
}

#[tokio::test(start_paused = true)]
async fn pool_spawn_waits_for_a_slot() {
    let pool = Pool::new(2).unwrap();
    let a = pool.spawn(sleep(ms(100))).await;
    let _b = pool.spawn(sleep(ms(100))).await;
    assert_eq!(pool.free_count(), 0);
    let start = tokio::time::Instant::now();
    let c = pool.spawn(async { 3 }).await; // waits for a slot
    assert!(
        start.elapsed() >= ms(100),
        "spawn returned before a slot freed"
    );
    assert!(a.ready());
    assert_eq!(c.await, Ok(3));
}

#[tokio::test(start_paused = true)]
async fn pool_reports_a_panic_in_its_place() {
    let pool = Pool::new(2).unwrap();
    let out = pool
        .map(
            |i: u32| async move {
                sleep(ms(u64::from(i))).await;
                assert!(i != 2, "item {i} is bad");
                i
            },
            0..5,
        )
        .await;
    assert_eq!(out[..2], [Ok(0), Ok(1)]);
    assert_eq!(out[2], Err(TaskError::Panicked("item 2 is bad".into())));
    assert_eq!(out[3..], [Ok(3), Ok(4)]);
    assert_eq!(pool.free_count(), 2, "the panicking task freed its slot");

    let mut results = pool.imap_unordered(
        |i: u32| async move {
            sleep(ms(u64::from(10 - i))).await;
            assert!(i != 3, "item {i} is bad");
            i
        },
        0..6,
    );
    let mut got = Vec::new();
    let mut panics = 0;
    while let Some(out) = results.next().await {
        match out {
            Ok(i) => got.push(i),
            Err(e) => {
                assert_eq!(e.panic_message(), Some("item 3 is bad"));
                panics += 1;
            }
        }
    }
    got.sort_unstable();
    assert_eq!((got, panics), (vec![0, 1, 2, 4, 5], 1));
}

#[test]
fn pool_size_zero_is_an_error() {
    assert_eq!(Pool::new(0).unwrap_err(), InvalidSize(0));
    assert_eq!(
        spindle_aio::AioExecutor::new(0).unwrap_err(),
        InvalidSize(0)
    );
}

/// `run` returns when its future does; tasks still running are dropped
/// with the runtime (asyncio.run cancels them).
#[test]
fn run_drops_leftover_tasks() {
    let live = Arc::new(InFlight::default());
    let l = live.clone();
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let out = spindle_aio::run(async move {
        let _t = spawn(async move {
            let _g = l.enter();
            started_tx.send(()).unwrap();
            std::future::pending::<()>().await;
        });
        tokio::task::spawn_blocking(move || started_rx.recv().unwrap())
            .await
            .unwrap();
        "main done"
    })
    .unwrap();
    assert_eq!(out, "main done");
    assert_eq!(live.max.load(Ordering::SeqCst), 1, "the task had started");
    assert_eq!(live.now.load(Ordering::SeqCst), 0, "and was dropped");
}

/// Dropping the `imap_unordered` stream stops the feeding: items not yet
/// started are never started.
#[tokio::test(start_paused = true)]
async fn dropping_imap_unordered_stops_feeding() {
    let pool = Pool::new(1).unwrap();
    let started = Arc::new(AtomicUsize::new(0));
    let s = started.clone();
    let mut results = pool.imap_unordered(
        move |i: u32| {
            s.fetch_add(1, Ordering::SeqCst);
            async move {
                sleep(ms(10)).await;
                i
            }
        },
        0..100,
    );
    assert_eq!(results.next().await, Some(Ok(0)));
    drop(results);
    sleep(ms(1000)).await; // paused clock: every sleep that would run, runs
    pool.join().await;
    let n = started.load(Ordering::SeqCst);
    assert!(n < 10, "{n} items started after the stream was dropped");
}
