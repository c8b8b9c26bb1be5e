//! Python Cookbook recipe 12.10, "Defining an Actor Task": a `PrintActor`
//! that prints what it is sent, a `TaggedActor` dispatching on the
//! message's tag, and a `Worker` whose `submit` returns a `Result` the
//! caller waits on — here actors on tokio, with a supervisor restarting one
//! whose handler panics, and a registry finding them by name.
//!
//! Python: `p = PrintActor(); p.start(); p.send('Hello'); p.close();
//! p.join()`; `a.send(('A', 1))`; `r = worker.submit(pow, 2, 3);
//! r.result()`.
//!
//! spindle: `spindle_aio::actor`: `actor::spawn(factory, capacity)` gives an
//! `ActorRef`; `send` blocks this plain thread while the bounded mailbox is
//! full; `ask` is `submit(...).result()`; `shutdown(false)` is `close()`
//! (the actor drains its mailbox), `join()` waits for it. Tags are enum
//! variants, so a wrong tag is a compile error instead of a runtime one.

use std::time::Duration;

use spindle_aio::actor::{self, Actor, Registry, Reply, RestartPolicy, Supervisor};

struct PrintActor;

impl Actor for PrintActor {
    type Msg = String;
    async fn handle(&mut self, msg: String) {
        println!("Got: {msg}");
    }
}

enum Tagged {
    A(i64),
    B(i64, i64),
}

struct TaggedActor;

impl Actor for TaggedActor {
    type Msg = Tagged;
    async fn handle(&mut self, msg: Tagged) {
        match msg {
            Tagged::A(x) => println!("Running A {x}"),
            Tagged::B(x, y) => println!("Running B {x} {y}"),
        }
    }
}

/// `Worker.submit(func, *args)`: the work and where to put its result.
struct Job {
    base: u64,
    exp: u32,
    reply: Reply<u64>,
}

struct Worker {
    done: u32,
}

impl Actor for Worker {
    type Msg = Job;
    async fn handle(&mut self, job: Job) {
        self.done += 1;
        // The recipe's worker would die with the exception; this one panics
        // on overflow and its supervisor starts a fresh one.
        let r = job.base.checked_pow(job.exp).expect("pow overflowed");
        job.reply.send(r);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let p = actor::spawn(|| PrintActor, 16);
    p.send("Hello".to_owned())?;
    p.send("World".to_owned())?;
    p.shutdown(false); // close(): the actor drains its mailbox, then stops
    p.join();

    let a = actor::spawn(|| TaggedActor, 16);
    a.send(Tagged::A(1))?;
    a.send(Tagged::B(2, 3))?;
    a.shutdown(false);
    a.join();

    let supervisor = Supervisor::new(RestartPolicy {
        max_restarts: 3,
        within: Duration::from_secs(10),
        backoff: Duration::from_millis(10),
    });
    let worker = supervisor.spawn_named("worker", || Worker { done: 0 }, 8);
    let registry = Registry::new();
    registry.register("worker", worker);

    let worker = registry.get::<Job>("worker")?;
    let r = worker.ask(|reply| Job {
        base: 2,
        exp: 3,
        reply,
    })?;
    println!("2 ** 3 = {r}");
    // A failing job: the handler panics, the asker hears NoReply, and the
    // supervisor restarts the worker.
    let err = worker.ask(|reply| Job {
        base: 10,
        exp: 40,
        reply,
    });
    println!("10 ** 40: {err:?}");
    let r = worker.ask(|reply| Job {
        base: 3,
        exp: 4,
        reply,
    })?;
    println!(
        "3 ** 4 = {r} (after {} restart, last panic: {:?})",
        worker.restarts(),
        worker.last_panic().unwrap_or_default()
    );
    // Asking for a worker of the wrong message type is a typed error.
    if let Err(e) = registry.get::<String>("worker") {
        println!("registry: {e}");
    }
    worker.shutdown(false);
    worker.join();
    Ok(())
}
