//! `#[spindle::remote]`: objects of the user's own types on a manager
//! server, called through generated proxies.
//!
//! CPython's `_TestMyManager` (Lib/test/_test_multiprocessing.py) registers
//! a class `FooBar` with methods `f` (returns `'f()'`), `g` (raises
//! `ValueError`) and `_h` (not exposed) and checks each through the proxy;
//! here the exposed methods are the trait's, a method's own error comes back
//! as its `Result`, and a panic as `ManagerError::Panicked`.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

use common::{LONG, until};
use spindle::manager::{BaseManager, Manager, ManagerError, Server};
use spindle::process::{Process, StartMethod};
use spindle::sync::Event;

const LOCAL: &str = "127.0.0.1:0";
const KEY: &[u8] = b"remote-tests-key-0123456789abcdef";

/// A counter with a method of each kind.
#[spindle::remote]
pub trait Counter {
    /// Adds `by`; returns the new count.
    fn incr(&mut self, by: u64) -> u64;
    fn get(&self) -> u64;
    fn reset(&mut self);
    /// Python's `FooBar.g`: a method that fails in its own way.
    fn checked_sub(&mut self, by: u64) -> Result<u64, String>;
    fn explode(&self, why: String);
    fn describe(&self, label: String, tags: Vec<String>) -> (String, usize);
}

#[derive(Default)]
struct Count {
    n: u64,
    gate: Option<Gate>,
}

/// Lets a test hold the object busy inside a method.
#[derive(Clone)]
struct Gate {
    entered: Arc<Event>,
    release: Arc<Event>,
}

impl Counter for Count {
    fn incr(&mut self, by: u64) -> u64 {
        if let Some(g) = &self.gate
            && by == 0
        {
            g.entered.set();
            g.release.wait();
        }
        self.n += by;
        self.n
    }
    fn get(&self) -> u64 {
        self.n
    }
    fn reset(&mut self) {
        self.n = 0;
    }
    fn checked_sub(&mut self, by: u64) -> Result<u64, String> {
        self.n = self
            .n
            .checked_sub(by)
            .ok_or_else(|| format!("{} - {by} is below zero", self.n))?;
        Ok(self.n)
    }
    fn explode(&self, why: String) {
        panic!("{why}");
    }
    fn describe(&self, label: String, tags: Vec<String>) -> (String, usize) {
        (format!("{label}={}", self.n), tags.len())
    }
}

/// Another version of the `Counter` interface: same typeid, other methods.
#[spindle::remote(name = "Counter")]
pub trait CounterV2 {
    fn incr(&mut self, by: u32) -> u32;
}

fn server_with(count: Count) -> Server {
    BaseManager::builder()
        .register("counter", CounterProxy::typeid(count))
        .bind(LOCAL.parse::<SocketAddr>().unwrap())
        .authkey(KEY)
        .spawn()
        .expect("server")
}

#[test]
fn methods_run_on_the_one_object_behind_every_proxy() {
    let server = server_with(Count::default());
    let a: CounterProxy = server.connect().unwrap().get("counter").unwrap();
    let b: CounterProxy = Manager::connect(server.address().clone(), KEY)
        .unwrap()
        .get("counter")
        .unwrap();
    assert_eq!(a.incr(2).unwrap(), 2);
    assert_eq!(
        b.incr(3).unwrap(),
        5,
        "a second connection sees the same object"
    );
    assert_eq!(a.get().unwrap(), 5);
    assert_eq!(
        a.describe("n".into(), vec!["x".into(), "y".into()])
            .unwrap(),
        ("n=5".to_string(), 2)
    );
    a.reset().unwrap();
    assert_eq!(b.get().unwrap(), 0);
    let c = a.clone();
    drop(a);
    assert_eq!(c.incr(1).unwrap(), 1, "a clone keeps the reference");
}

#[test]
fn a_methods_own_error_is_its_result() {
    let server = server_with(Count::default());
    let c: CounterProxy = server.connect().unwrap().get("counter").unwrap();
    c.incr(1).unwrap();
    assert_eq!(c.checked_sub(1).unwrap(), Ok(0));
    assert_eq!(
        c.checked_sub(4).unwrap(),
        Err("0 - 4 is below zero".to_string())
    );
}

#[test]
fn a_panicking_method_fails_its_call_and_the_object_lives_on() {
    let server = server_with(Count::default());
    let c: CounterProxy = server.connect().unwrap().get("counter").unwrap();
    c.incr(7).unwrap();
    match c.explode("boom".into()) {
        Err(ManagerError::Panicked { method, message }) => {
            assert_eq!(method, "explode");
            assert_eq!(message, "boom");
        }
        other => panic!("expected Panicked, got {other:?}"),
    }
    assert_eq!(c.get().unwrap(), 7, "the object is still there, unchanged");
    assert_eq!(server.stats().connections, 1, "the connection stays open");
}

#[test]
fn another_version_of_the_trait_is_the_wrong_type() {
    let server = server_with(Count::default());
    let m = server.connect().unwrap();
    let e = m.get::<CounterV2Proxy>("counter").unwrap_err();
    assert!(e.is_wrong_type(), "{e}");
    // And a built-in kind is not a remote one, nor the other way round.
    let e = m
        .get::<spindle::manager::QueueProxy<u8>>("counter")
        .unwrap_err();
    assert!(e.is_wrong_type(), "{e}");
    let q = BaseManager::builder()
        .register("q", spindle::manager::Typeid::queue())
        .bind(LOCAL.parse::<SocketAddr>().unwrap())
        .authkey(KEY)
        .spawn()
        .unwrap();
    let e = q.connect().unwrap().get::<CounterProxy>("q").unwrap_err();
    assert!(e.is_wrong_type(), "{e}");
}

#[test]
fn unknown_methods_and_bad_arguments_are_typed() {
    let server = server_with(Count::default());
    let c: CounterProxy = server.connect().unwrap().get("counter").unwrap();
    let h = c.remote_handle();
    let e = h.invoke::<_, ()>("no_such_method", &()).unwrap_err();
    assert!(
        matches!(&e, ManagerError::NotFound(m) if m.contains("no_such_method")),
        "{e}"
    );
    let e = h.invoke::<_, u64>("incr", &("not a number",)).unwrap_err();
    assert!(
        matches!(&e, ManagerError::Codec(m) if m.contains("incr")),
        "{e}"
    );
    let e = h.invoke::<_, String>("get", &()).unwrap_err();
    assert!(
        matches!(e, ManagerError::Codec(_)),
        "a result of another type: {e}"
    );
    assert_eq!(c.incr(1).unwrap(), 1, "the connection still works");
}

#[test]
fn calls_from_many_threads_run_one_at_a_time() {
    let server = server_with(Count::default());
    let c: CounterProxy = server.connect().unwrap().get("counter").unwrap();
    let seen = Arc::new(AtomicU64::new(0));
    thread::scope(|s| {
        for _ in 0..4 {
            let c = c.clone();
            let seen = seen.clone();
            s.spawn(move || {
                for _ in 0..100 {
                    // Each call returns the count just after its own step:
                    // all 400 are different.
                    seen.fetch_max(c.incr(1).unwrap(), Ordering::Relaxed);
                }
            });
        }
    });
    assert_eq!(c.get().unwrap(), 400);
    assert_eq!(seen.load(Ordering::Relaxed), 400);
}

#[test]
fn async_faces_complete_and_a_dropped_call_does_not_run() {
    let gate = Gate {
        entered: Arc::new(Event::new()),
        release: Arc::new(Event::new()),
    };
    let server = server_with(Count {
        n: 0,
        gate: Some(gate.clone()),
    });
    let c: CounterProxy = server.connect().unwrap().get("counter").unwrap();
    assert_eq!(common::block_on(c.incr_async(2)).unwrap(), 2);

    // Hold the object inside a method (incr(0) waits at the gate).
    let busy = {
        let c = c.clone();
        thread::spawn(move || c.incr(0).unwrap())
    };
    gate.entered.wait();
    let (_, waker) = common::counting();
    let mut f = Box::pin(c.incr_async(10));
    assert!(common::poll_once(&mut f, &waker).is_pending());
    // Sent, and waiting for the object: dropping it cancels it there.
    drop(f);
    gate.release.set();
    assert_eq!(busy.join().unwrap(), 2);
    assert_eq!(c.get().unwrap(), 2, "the dropped incr_async(10) never ran");

    // A future moves to another thread.
    let c2 = c.clone();
    let got = thread::spawn(move || common::block_on(c2.incr_async(5)).unwrap())
        .join()
        .unwrap();
    assert_eq!(got, 7);
}

#[spindle::task]
fn bump(c: CounterProxy, times: u64) -> u64 {
    for _ in 0..times {
        c.incr(1).unwrap();
    }
    c.get().unwrap()
}

#[test]
fn a_proxy_travels_to_a_child_process() {
    // The process authkey (the default), which children inherit.
    let server = BaseManager::builder()
        .register("counter", CounterProxy::typeid(Count::default()))
        .bind(LOCAL.parse::<SocketAddr>().unwrap())
        .spawn()
        .unwrap();
    let c: CounterProxy = server.connect().unwrap().get("counter").unwrap();
    for method in StartMethod::all() {
        let before = c.get().unwrap();
        let mut p = common::start(bump::call(c.clone(), 3), method);
        p.join_timeout(LONG)
            .unwrap_or_else(|e| panic!("{method:?}: the child did not end: {e}"));
        assert_eq!(p.exitcode(), Some(0), "{method:?}");
        assert_eq!(c.get().unwrap(), before + 3, "{method:?}");
    }
}

#[test]
fn start_serves_remote_objects_in_a_forked_child() {
    let m = BaseManager::builder()
        .register("counter", CounterProxy::typeid(Count { n: 40, gate: None }))
        .start()
        .unwrap();
    let c: CounterProxy = m.get("counter").unwrap();
    assert_eq!(
        c.incr(2).unwrap(),
        42,
        "the child holds the object as registered"
    );
    let pid = m.process().and_then(Process::pid).unwrap();
    assert_ne!(pid, std::process::id());
    drop(c);
    drop(m);

    // Only fork carries a value of this process to the child.
    for method in [StartMethod::Spawn, StartMethod::ForkServer] {
        let e = BaseManager::builder()
            .register("counter", CounterProxy::typeid(Count::default()))
            .start_method(method)
            .start()
            .unwrap_err();
        assert!(
            matches!(&e, ManagerError::Config(m) if m.contains("fork")),
            "{e}"
        );
    }
}

#[test]
fn a_server_gone_is_typed() {
    let server = server_with(Count::default());
    let c: CounterProxy = server.connect().unwrap().get("counter").unwrap();
    server.stop().unwrap();
    until(
        "the call to fail",
        || matches!(c.get(), Err(e) if e.is_server_gone()),
    );
}

#[test]
fn the_signature_is_the_documented_hash() {
    use spindle::manager::{RemoteInterface, signature_of};
    // docs/PROTOCOL.md: each method as `name(&self,T1,T2)->R;`, whitespace
    // removed, FNV-1a 64.
    assert_eq!(
        <CounterV2Proxy as RemoteInterface>::SIGNATURE,
        signature_of("incr(&mut self,u32)->u32;")
    );
    assert_eq!(<CounterV2Proxy as RemoteInterface>::NAME, "remote:Counter");
    assert_eq!(<CounterProxy as RemoteInterface>::NAME, "remote:Counter");
}
