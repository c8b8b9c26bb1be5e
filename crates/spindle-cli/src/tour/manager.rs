//! Tour section `manager`: Python's `multiprocessing.Manager()` — a server
//! process holding a dict and a queue; a child process gets their proxies
//! as task arguments and fills them; a thread drains the queue; the
//! server's counters (`Manager::stats`) show the objects and connections,
//! and the objects go away when the last proxy is dropped.

use std::time::{Duration, Instant};

use spindle::manager::{DictProxy, Manager, QueueProxy, Stats};
use spindle::process::Process;
use spindle::queue::BlockingQueue;

use super::Tour;

const LONG: Duration = Duration::from_secs(30);

/// In the child: `d[i] = i * i` and `q.put(i)` for `i` in `0..n`, then a
/// `None`-like end marker.
#[spindle::task]
fn tour_mgr_fill(d: DictProxy<u32, u32>, q: QueueProxy<Option<u32>>, n: u32) {
    for i in 0..n {
        d.set(&i, &(i * i)).expect("d[i] = i * i");
        q.put(Some(i)).expect("q.put(i)");
    }
    q.put(None).expect("q.put(None)");
}

/// Polls the server's counters until `ok` holds (the server drops an
/// object when the decref of its last proxy arrives), up to 10 s.
fn stats_until(m: &Manager, ok: impl Fn(&Stats) -> bool) -> Option<Stats> {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let s = m.stats().ok()?;
        if ok(&s) || Instant::now() >= end {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub(crate) fn run(t: &mut Tour) {
    t.say("with Manager() as m: the objects live in a server process, used through proxies");
    let m = match Manager::start() {
        Ok(m) => m,
        Err(e) => {
            t.check(
                "Manager::start() runs a server process",
                false,
                e.to_string(),
            );
            return;
        }
    };
    let server_pid = m.process().and_then(|p| p.pid());
    t.check(
        "Manager::start() runs a server process",
        server_pid.is_some_and(|p| p != std::process::id()),
        format!("server pid {server_pid:?}, address {}", m.address()),
    );

    let (d, q) = match (m.dict::<u32, u32>(), m.queue::<Option<u32>>(0)) {
        (Ok(d), Ok(q)) => (d, q),
        (d, q) => {
            t.check(
                "m.dict() and m.Queue()",
                false,
                format!("{:?} / {:?}", d.err(), q.err()),
            );
            return;
        }
    };

    t.say("Process(target=fill, args=(d, q, 100)): the proxies travel as task arguments");
    t.say("a thread of this process takes the child's items off the queue as they come");
    let drain = {
        let q = q.clone();
        std::thread::spawn(move || {
            let mut sum = 0u64;
            let mut n = 0u32;
            while let Ok(Some(i)) = q.get_timeout(LONG) {
                sum += u64::from(i);
                n += 1;
            }
            (n, sum)
        })
    };
    let joined = Process::builder()
        .task(tour_mgr_fill::call(d.clone(), q.clone(), 100))
        .start()
        .and_then(|mut p| {
            p.join_timeout(LONG)?;
            Ok(p.exitcode())
        });
    t.check(
        "the child ran on the proxies and exited 0",
        matches!(joined, Ok(Some(0))),
        format!("{joined:?}"),
    );
    let drained = drain.join();
    t.check(
        "the thread got all 100 of the child's queue items (sum 4950)",
        matches!(drained, Ok((100, 4950))),
        format!("{drained:?}"),
    );
    let len = d.len();
    let d99 = d.get(&99);
    t.check(
        "the parent sees the child's 100 dict entries (d[99] == 9801)",
        matches!(len, Ok(100)) && matches!(d99, Ok(Some(9801))),
        format!("len {len:?}, d[99] {d99:?}"),
    );

    t.say("m.stats(): the server's counters");
    let s = stats_until(&m, |s| s.objects == 2);
    t.check(
        "two live objects (the dict and the queue), at least one connection",
        s.as_ref()
            .is_some_and(|s| s.objects == 2 && s.connections >= 1),
        format!("{s:?}"),
    );
    drop((d, q));
    let s = stats_until(&m, |s| s.objects == 0);
    t.check(
        "dropping the last proxies frees the objects on the server",
        s.as_ref().is_some_and(|s| s.objects == 0),
        format!("{s:?}"),
    );

    let stopped = m.shutdown_server();
    t.check(
        "m.shutdown(): the server process stops",
        stopped.is_ok(),
        format!("{stopped:?}"),
    );
}
