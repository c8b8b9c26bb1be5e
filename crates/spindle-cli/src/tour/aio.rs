//! Tour section `aio`: spindle-aio (asyncio's `gather` and `TaskGroup`, an
//! actor's `ask`, the echo server and its load client), every claim checked.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};

use spindle::queue::Queue;
use spindle_aio::actor::{self, Actor, Reply};
use spindle_aio::echo::{EchoServer, load};
use spindle_aio::{GroupError, TaskGroup, gather, spawn};

use super::Tour;

pub(crate) fn run(t: &mut Tour) {
    gather_order(t);
    task_group(t);
    actor_ask(t);
    echo(t);
}

fn gather_order(t: &mut Tour) {
    t.say("asyncio.gather: task 0 waits for task 1, which waits for task 2,");
    t.say("so they finish 2, 1, 0; gather still answers in the order given.");
    let finished = Arc::new(Mutex::new(Vec::new()));
    let out = spindle_aio::run(async {
        let q01: Queue<()> = Queue::new();
        let q12: Queue<()> = Queue::new();
        let mut tasks = Vec::new();
        for i in 0..3u32 {
            let (wait, done) = match i {
                0 => (Some(q01.clone()), None),
                1 => (Some(q12.clone()), Some(q01.clone())),
                _ => (None, Some(q12.clone())),
            };
            let finished = finished.clone();
            tasks.push(spawn(async move {
                if let Some(w) = wait {
                    w.get_async().await.expect("not shut down");
                }
                finished.lock().unwrap().push(i);
                if let Some(d) = done {
                    d.put_async(()).await.expect("not shut down");
                }
                i * 10
            }));
        }
        gather(tasks).await
    });
    let values: Vec<u32> = out.into_iter().flatten().filter_map(Result::ok).collect();
    let finished = finished.lock().unwrap().clone();
    t.check(
        "gather returns results in input order, whatever order the tasks end in",
        values == [0, 10, 20] && finished == [2, 1, 0],
        format!("finished {finished:?}, gathered {values:?}"),
    );
}

fn task_group(t: &mut Tour) {
    t.say("asyncio.TaskGroup: three tasks; task 1 fails, task 0 and 2 would wait forever.");
    let r = spindle_aio::run(async {
        let never: Queue<()> = Queue::new();
        let mut tg: TaskGroup<u32, &'static str> = TaskGroup::new();
        for i in 0..3u32 {
            let never = never.clone();
            tg.spawn(async move {
                if i == 1 {
                    return Err("boom");
                }
                never.get_async().await.expect("never shut down");
                Ok(i)
            });
        }
        let failed = tg.join().await;
        let mut ok: TaskGroup<u32, &'static str> = TaskGroup::new();
        for i in 0..3u32 {
            ok.spawn(async move { Ok(i + 1) });
        }
        (failed, ok.join().await)
    });
    let ok = matches!(
        &r,
        Ok((Err(GroupError::Failed { index: 1, error: "boom" }), Ok(v))) if v == &[1, 2, 3]
    );
    t.check(
        "the first failure cancels the rest and is returned; a clean group gives values in spawn order",
        ok,
        format!("{r:?}"),
    );
}

struct Doubler;

impl Actor for Doubler {
    type Msg = (u64, Reply<u64>);
    async fn handle(&mut self, (x, reply): (u64, Reply<u64>)) {
        reply.send(2 * x);
    }
}

fn actor_ask(t: &mut Tour) {
    t.say("An actor (Pykka's ask): a doubler asked 21 from this plain thread.");
    let a = actor::spawn(|| Doubler, 8);
    let got = a.ask(|r| (21, r));
    a.shutdown(false);
    let joined = a.join();
    t.check(
        "ask sends the request and blocks for the answer; shutdown + join stop it",
        got == Ok(42) && joined,
        format!("{got:?}, joined: {joined}"),
    );
}

fn echo(t: &mut Tour) {
    t.say(
        "Python's classic echo server (`spindle echo serve --prefix GOT:`): a task per connection.",
    );
    let server = match EchoServer::bind_aio("127.0.0.1:0", b"GOT:", 2) {
        Ok(s) => s,
        Err(e) => {
            t.check("an echo server listens on 127.0.0.1", false, e.to_string());
            return;
        }
    };
    let reply = (|| -> std::io::Result<String> {
        let mut s = TcpStream::connect(server.local_addr())?;
        s.write_all(b"hello\n")?;
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line)?;
        Ok(line)
    })();
    t.check(
        "a line comes back after the prefix",
        matches!(&reply, Ok(l) if l == "GOT:hello\n"),
        format!("{reply:?}"),
    );
    let plain = EchoServer::bind_aio("127.0.0.1:0", b"", 2);
    let report = plain
        .as_ref()
        .map_err(ToString::to_string)
        .and_then(|p| load(p.local_addr(), 5, 40).map_err(|e| e.to_string()));
    t.check(
        "`spindle echo load`'s client: 5 connections × 40 checked round trips",
        matches!(&report, Ok(r) if r.round_trips == 200),
        match &report {
            Ok(r) => format!("{:.0} rt/s, p99 {:.0} µs", r.throughput(), r.p99_us),
            Err(e) => e.clone(),
        },
    );
}
