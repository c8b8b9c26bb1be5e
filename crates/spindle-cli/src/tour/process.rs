//! Tour section `process`: Python's `multiprocessing` — a child per start
//! method with its exit code, a Pipe round trip, an ipc Queue fed by two
//! producer processes, and a shared Value incremented under its lock by four
//! processes.

use std::time::Duration;

use spindle::ipc::{Connection, Pipe, Queue, Value};
use spindle::process::{Process, StartMethod};

use super::Tour;

const LONG: Duration = Duration::from_secs(30);

#[spindle::task]
fn tour_exit(code: i32) {
    if code != 0 {
        std::process::exit(code);
    }
}

#[spindle::task]
fn tour_double(conn: Connection) {
    while let Ok(v) = conn.recv::<u64>() {
        if conn.send(&(v * 2)).is_err() {
            break;
        }
    }
}

#[spindle::task]
fn tour_produce(q: Queue<u64>, from: u64, to: u64) {
    for i in from..to {
        q.put(i).expect("queue open");
    }
}

#[spindle::task]
fn tour_increment(v: Value<u64>, times: u64) {
    for _ in 0..times {
        *v.lock() += 1;
    }
}

pub(crate) fn run(t: &mut Tour) {
    t.say("Process(target=..., args=(code,)) with each start method; exitcode after join()");
    for m in StartMethod::all() {
        let code = 3 + m as i32;
        let ok = Process::builder()
            .task(tour_exit::call(code))
            .start_method(m)
            .start()
            .map(|mut p| {
                let _ = p.join_timeout(LONG);
                p.exitcode()
            });
        t.check(
            &format!("{} child ends with exitcode {code}", m.name()),
            matches!(ok, Ok(Some(c)) if c == code),
            format!("{ok:?}"),
        );
    }

    t.say("Pipe(): the parent sends 21 to an echo child that doubles it");
    let (conn, child) = Pipe(true).expect("pipe");
    let mut p = Process::new(tour_double::call(child));
    p.start().expect("start");
    let back = conn.send(&21u64).and_then(|_| conn.recv::<u64>());
    conn.close();
    let joined = p.join_timeout(LONG);
    t.check(
        "send/recv round trip through a child, then EOF ends it",
        matches!(back, Ok(42)) && joined.is_ok(),
        format!("{back:?}"),
    );

    t.say("ipc::Queue: two producer processes put 0..5000 and 5000..10000; the parent sums");
    let q: Queue<u64> = Queue::new().expect("queue");
    let mut ps: Vec<Process> = [(0, 5_000), (5_000, 10_000)]
        .into_iter()
        .map(|(a, b)| Process::new(tour_produce::call(q.clone(), a, b)))
        .collect();
    for p in &mut ps {
        p.start().expect("start");
    }
    let (mut n, mut sum) = (0u64, 0u64);
    while n < 10_000 {
        match q.get_timeout(LONG) {
            Ok(v) => {
                n += 1;
                sum += v;
            }
            Err(_) => break,
        }
    }
    for p in &mut ps {
        let _ = p.join_timeout(LONG);
    }
    t.check(
        "10000 items, none lost or duplicated",
        n == 10_000 && sum == 10_000 * 9_999 / 2,
        format!("{n} items, sum {sum}"),
    );

    t.say("Value('Q', 0): four processes do `with v.get_lock(): v.value += 1` 10000 times each");
    let v = Value::new(0u64).expect("value");
    let mut ps: Vec<Process> = (0..4)
        .map(|_| Process::new(tour_increment::call(v.clone(), 10_000)))
        .collect();
    for p in &mut ps {
        p.start().expect("start");
    }
    for p in &mut ps {
        let _ = p.join_timeout(LONG);
    }
    let total = v.load();
    t.check(
        "the shared counter reaches exactly 40000",
        total == 40_000,
        format!("{total}"),
    );
}
