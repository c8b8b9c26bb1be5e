//! Suite `process`: start+join latency per start method, Pipe round trips and
//! throughput, cross-process Queue throughput, shared Value increments under
//! its lock — beside Python's
//! `multiprocessing` (`bench/python/process.py`) and the Rust crates that do
//! the same jobs: `ipc-channel` (typed channels between processes, set up
//! through an `IpcOneShotServer` as its documentation shows) on the pipe and
//! small-queue cases, `procspawn` (`spawn` + `join`) on `start_spawn`.

use serde_bytes::ByteBuf;
use spindle::ipc::sync::Barrier;
use spindle::ipc::{Connection, Pipe, Queue, Value};
use spindle::process::{Process, StartMethod, TaskCall};

use ipc_channel::ipc::{self, IpcBytesSender, IpcOneShotServer, IpcReceiver, IpcSender};

use super::{Bench, Unit, imp, micros_per, per_sec};

#[spindle::task]
fn bench_noop() {}

#[spindle::task]
fn bench_echo(conn: Connection) {
    // Stops on an empty message (or end of file).
    while let Ok(b) = conn.recv_bytes() {
        if b.is_empty() || conn.send_bytes(&b).is_err() {
            break;
        }
    }
}

#[spindle::task]
fn bench_sink(conn: Connection) {
    // Counts the bytes received, then reports them at end of file.
    let mut total = 0u64;
    while let Ok(b) = conn.recv_bytes() {
        if b.is_empty() {
            break;
        }
        total += b.len() as u64;
    }
    let _ = conn.send(&total);
}

/// What an ipc-channel child hands its parent through the one-shot server:
/// the channels of the case it runs.
#[derive(serde::Serialize, serde::Deserialize)]
enum IpcBoot {
    /// Echo: (parent → child requests, child → parent replies).
    Echo(IpcSender<u64>, IpcReceiver<u64>),
    /// Sink: (parent → child bytes, child → parent total).
    Sink(IpcBytesSender, IpcReceiver<u64>),
    /// Producer: child → parent items.
    Items(IpcReceiver<u64>),
}

/// ipc-channel echo child: sends back every value until the parent drops
/// its sender.
#[spindle::task]
fn ipc_channel_echo(server: String) {
    let boot = IpcSender::<IpcBoot>::connect(server).expect("connect");
    let (req_tx, req_rx) = ipc::channel::<u64>().expect("channel");
    let (rep_tx, rep_rx) = ipc::channel::<u64>().expect("channel");
    boot.send(IpcBoot::Echo(req_tx, rep_rx)).expect("boot");
    while let Ok(v) = req_rx.recv() {
        if rep_tx.send(v).is_err() {
            break;
        }
    }
}

/// ipc-channel sink child: counts the bytes received until an empty
/// message, then reports them.
#[spindle::task]
fn ipc_channel_sink(server: String) {
    let boot = IpcSender::<IpcBoot>::connect(server).expect("connect");
    let (bytes_tx, bytes_rx) = ipc::bytes_channel().expect("channel");
    let (total_tx, total_rx) = ipc::channel::<u64>().expect("channel");
    boot.send(IpcBoot::Sink(bytes_tx, total_rx)).expect("boot");
    let mut total = 0u64;
    while let Ok(b) = bytes_rx.recv() {
        if b.is_empty() {
            break;
        }
        total += b.len() as u64;
    }
    let _ = total_tx.send(total);
}

/// ipc-channel producer child: sends `n` small values.
#[spindle::task]
fn ipc_channel_producer(server: String, n: u64) {
    let boot = IpcSender::<IpcBoot>::connect(server).expect("connect");
    let (tx, rx) = ipc::channel::<u64>().expect("channel");
    boot.send(IpcBoot::Items(rx)).expect("boot");
    for i in 0..n {
        tx.send(i).expect("parent gone");
    }
}

/// Starts `call` (which connects to the one-shot server it was given) and
/// returns the process and what it handed over.
fn ipc_channel_child<C: Into<TaskCall>>(call: impl FnOnce(String) -> C) -> (Process, IpcBoot) {
    let (server, name) = IpcOneShotServer::<IpcBoot>::new().expect("one-shot server");
    let mut p = Process::new(call(name));
    p.start().expect("start ipc-channel child");
    let (_rx, boot) = server.accept().expect("child connects");
    (p, boot)
}

/// Byte payloads as `serde_bytes::ByteBuf`, the serde form of Python's
/// `bytes` (a `Vec<u8>` would be encoded byte by byte).
#[spindle::task]
fn bench_producer(q: Queue<ByteBuf>, n: u64, size: usize) {
    let item = ByteBuf::from(vec![7u8; size]);
    for _ in 0..n {
        q.put(item.clone()).expect("queue open");
    }
}

#[spindle::task]
fn bench_small_producer(q: Queue<u64>, n: u64) {
    for i in 0..n {
        q.put(i).expect("queue open");
    }
}

#[spindle::task]
fn bench_value_incr(v: Value<u64>, go: Barrier, n: u64) {
    go.wait().expect("barrier");
    for _ in 0..n {
        *v.lock() += 1;
    }
}

/// `procs` children each add 1 to one shared Value `n` times under its lock,
/// after meeting the parent at a barrier; increments per second from the
/// barrier until every child is joined.
fn value_incr(procs: u64, n: u64) -> f64 {
    let v = Value::new(0u64).expect("value");
    let go = Barrier::new(procs as usize + 1).expect("barrier");
    let mut ps: Vec<Process> = (0..procs)
        .map(|_| Process::new(bench_value_incr::call(v.clone(), go.clone(), n)))
        .collect();
    for p in &mut ps {
        p.start().expect("start child");
    }
    go.wait().expect("barrier");
    let rate = per_sec(procs * n, |_| {
        for p in &mut ps {
            p.join().expect("child");
        }
    });
    assert_eq!(v.load(), procs * n, "lost increments");
    rate
}

fn start_join(m: StartMethod, n: u64) {
    for _ in 0..n {
        let mut p = Process::builder()
            .task(bench_noop::call())
            .start_method(m)
            .start()
            .expect("start");
        p.join().expect("child ran");
    }
}

pub(crate) fn run(b: &mut Bench) {
    let q = b.quick();
    for (case, m, n) in [
        ("start_fork", StartMethod::Fork, if q { 50 } else { 200 }),
        ("start_spawn", StartMethod::Spawn, if q { 20 } else { 50 }),
        (
            "start_forkserver",
            StartMethod::ForkServer,
            if q { 50 } else { 200 },
        ),
    ] {
        let mut impls = vec![imp("spindle", || micros_per(n, |n| start_join(m, n)))];
        if m == StartMethod::Spawn {
            // procspawn: a fresh exec of this program per call, like Spawn.
            impls.push(imp("procspawn", || {
                micros_per(n, |n| {
                    for _ in 0..n {
                        procspawn::spawn((), |()| {})
                            .join()
                            .expect("procspawn child");
                    }
                })
            }));
        }
        impls.push(b.python("process.py", case));
        b.case(case, Unit::Micros, impls);
    }

    // One echo child for all round-trip samples.
    let (conn, child) = Pipe(true).expect("pipe");
    let mut echo = Process::new(bench_echo::call(child));
    echo.start().expect("start echo");
    let trips: u64 = if q { 5_000 } else { 20_000 };
    b.case(
        "pipe_roundtrip",
        Unit::Micros,
        vec![
            imp("spindle", || {
                micros_per(trips, |n| {
                    for i in 0..n {
                        conn.send(&i).expect("send");
                        let back: u64 = conn.recv().expect("recv");
                        assert_eq!(back, i);
                    }
                })
            }),
            imp("ipc-channel", || {
                let (mut p, boot) = ipc_channel_child(ipc_channel_echo::call);
                let IpcBoot::Echo(req, rep) = boot else {
                    panic!("echo child sent another boot")
                };
                let us = micros_per(trips, |n| {
                    for i in 0..n {
                        req.send(i).expect("send");
                        assert_eq!(rep.recv().expect("recv"), i);
                    }
                });
                drop(req);
                p.join().expect("ipc-channel echo child");
                us
            }),
            b.python("process.py", "pipe_roundtrip"),
        ],
    );
    conn.send_bytes(&[]).expect("stop echo");
    echo.join().expect("echo child");

    let mib: u64 = if q { 64 } else { 256 };
    b.case(
        "pipe_1mib",
        Unit::BytesPerSec,
        vec![
            imp("spindle", || {
                let (conn, child) = Pipe(true).expect("pipe");
                let mut p = Process::new(bench_sink::call(child));
                p.start().expect("start sink");
                let block = vec![1u8; 1 << 20];
                let bytes = per_sec(mib << 20, |_| {
                    for _ in 0..mib {
                        conn.send_bytes(&block).expect("send");
                    }
                    conn.send_bytes(&[]).expect("send end");
                    let got: u64 = conn.recv().expect("total");
                    assert_eq!(got, mib << 20);
                });
                p.join().expect("sink");
                bytes
            }),
            imp("ipc-channel", || {
                let (mut p, boot) = ipc_channel_child(ipc_channel_sink::call);
                let IpcBoot::Sink(bytes, total) = boot else {
                    panic!("sink child sent another boot")
                };
                let block = vec![1u8; 1 << 20];
                let rate = per_sec(mib << 20, |_| {
                    for _ in 0..mib {
                        bytes.send(&block).expect("send");
                    }
                    bytes.send(&[]).expect("send end");
                    assert_eq!(total.recv().expect("total"), mib << 20);
                });
                p.join().expect("ipc-channel sink child");
                rate
            }),
            b.python("process.py", "pipe_1mib"),
        ],
    );

    let items: u64 = if q { 100_000 } else { 400_000 };
    b.case(
        "queue_small",
        Unit::ItemsPerSec,
        vec![
            imp("spindle", || {
                let queue: Queue<u64> = Queue::new().expect("queue");
                let mut p = Process::new(bench_small_producer::call(queue.clone(), items));
                let rate = per_sec(items, |n| {
                    p.start().expect("start producer");
                    for _ in 0..n {
                        queue.get().expect("item");
                    }
                });
                p.join().expect("producer");
                rate
            }),
            imp("ipc-channel", || {
                // As spindle's: the child's start is inside the timing.
                let (server, name) = IpcOneShotServer::<IpcBoot>::new().expect("one-shot server");
                let mut p = Process::new(ipc_channel_producer::call(name, items));
                let rate = per_sec(items, |n| {
                    p.start().expect("start producer");
                    let (_rx, boot) = server.accept().expect("child connects");
                    let IpcBoot::Items(rx) = boot else {
                        panic!("producer child sent another boot")
                    };
                    for _ in 0..n {
                        rx.recv().expect("item");
                    }
                });
                p.join().expect("producer");
                rate
            }),
            b.python("process.py", "queue_small"),
        ],
    );

    let big: u64 = if q { 2_000 } else { 8_000 };
    b.case(
        "queue_64kib",
        Unit::BytesPerSec,
        vec![
            imp("spindle", || {
                let queue: Queue<ByteBuf> = Queue::new().expect("queue");
                let mut p = Process::new(bench_producer::call(queue.clone(), big, 64 << 10));
                let rate = per_sec(big << 16, |_| {
                    p.start().expect("start producer");
                    for _ in 0..big {
                        let item = queue.get().expect("item");
                        assert_eq!(item.len(), 64 << 10);
                    }
                });
                p.join().expect("producer");
                rate
            }),
            b.python("process.py", "queue_64kib"),
        ],
    );

    // 4 processes x n increments of one shared Value under its lock.
    let incs: u64 = if q { 100_000 } else { 400_000 };
    b.case(
        "value_incr",
        Unit::OpsPerSec,
        vec![
            imp("spindle", || value_incr(4, incs)),
            b.python("process.py", "value_incr"),
        ],
    );
}
