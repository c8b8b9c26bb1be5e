//! `spindle::manager`: proxies' behaviour, lifetimes and failures.
//!
//! Container checks port CPython's `_TestContainers` (Lib/test/_test_multiprocessing.py)
//! to typed proxies; `_TestMyManager`/`_TestRemoteManager` become the
//! BaseManager tests (a registered queue reached by name over TCP with an
//! authkey).

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{LONG, until};
use spindle::ipc::Pipe;
use spindle::manager::{DictProxy, ListProxy, Manager, ManagerError, QueueProxy, Server, Typeid};
use spindle::process::{Process, StartMethod};
use spindle::queue::{BlockingQueue, GetTimeoutError, TryGetError};
use spindle::sync::{NotOwnedError, OverReleaseError, ReleaseError};

const KEY: &[u8] = b"manager-tests-key-0123456789abcdef";

fn tcp_server() -> Server {
    Manager::builder()
        .bind("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .authkey(KEY)
        .register("tasks", Typeid::queue())
        .register("shared", Typeid::dict())
        .spawn()
        .expect("server")
}

#[test]
fn dict_in_insertion_order_and_its_methods() {
    let m = Manager::start().unwrap();
    let d: DictProxy<String, i64> = m.dict().unwrap();
    assert!(d.is_empty().unwrap());
    for (i, k) in ["b", "a", "c"].iter().enumerate() {
        d.set(&k.to_string(), &(i as i64)).unwrap();
    }
    d.set(&"b".into(), &10).unwrap(); // replacing keeps the place
    assert_eq!(d.keys().unwrap(), ["b", "a", "c"]);
    assert_eq!(d.values().unwrap(), [10, 1, 2]);
    assert_eq!(d.len().unwrap(), 3);
    assert_eq!(d.get(&"a".into()).unwrap(), Some(1));
    assert_eq!(d.get(&"zz".into()).unwrap(), None);
    assert!(d.contains_key(&"c".into()).unwrap());
    assert_eq!(d.setdefault(&"a".into(), &99).unwrap(), 1);
    assert_eq!(d.setdefault(&"d".into(), &4).unwrap(), 4);
    assert_eq!(d.pop(&"a".into()).unwrap(), Some(1));
    assert_eq!(d.pop(&"a".into()).unwrap(), None);
    assert!(d.del(&"b".into()).unwrap());
    assert!(!d.del(&"b".into()).unwrap(), "del of an absent key says so");
    d.update([(&"x".to_string(), &7), (&"c".to_string(), &3)])
        .unwrap();
    assert_eq!(
        d.items().unwrap(),
        [
            ("c".to_string(), 3),
            ("d".to_string(), 4),
            ("x".to_string(), 7)
        ]
    );
    d.clear().unwrap();
    assert_eq!(d.len().unwrap(), 0);
}

#[test]
fn list_methods_follow_python() {
    let m = Manager::start().unwrap();
    let l: ListProxy<i32> = m.list_from(&[5, 6, 7]).unwrap();
    l.append(&8).unwrap();
    l.extend(&[9, 5]).unwrap();
    assert_eq!(l.to_vec().unwrap(), [5, 6, 7, 8, 9, 5]);
    assert_eq!(l.get(-1).unwrap(), Some(5));
    assert_eq!(l.get(6).unwrap(), None, "out of range is None (IndexError)");
    assert!(l.set(0, &50).unwrap());
    assert!(!l.set(60, &1).unwrap());
    l.insert(-100, &1).unwrap(); // clamped to the front, as in Python
    l.insert(100, &2).unwrap(); // clamped to the end
    assert_eq!(l.to_vec().unwrap(), [1, 50, 6, 7, 8, 9, 5, 2]);
    assert_eq!(l.index(&7).unwrap(), Some(3));
    assert_eq!(l.index(&70).unwrap(), None);
    assert_eq!(l.count(&5).unwrap(), 1);
    assert!(l.remove(&50).unwrap());
    assert!(!l.remove(&50).unwrap());
    assert_eq!(l.pop(-1).unwrap(), Some(2));
    assert_eq!(l.pop(0).unwrap(), Some(1));
    assert_eq!(l.len().unwrap(), 5);
    l.reverse().unwrap();
    assert_eq!(l.to_vec().unwrap(), [5, 9, 8, 7, 6]);
    l.clear().unwrap();
    assert!(l.is_empty().unwrap());
}

#[test]
fn namespace_value_and_array() {
    let m = Manager::start().unwrap();
    let ns = m.namespace().unwrap();
    ns.set("x", &1u32).unwrap();
    ns.set("name", "spindle").unwrap();
    assert_eq!(ns.get::<u32>("x").unwrap(), Some(1));
    assert_eq!(
        ns.get::<String>("name").unwrap().as_deref(),
        Some("spindle")
    );
    assert_eq!(ns.get::<u32>("absent").unwrap(), None);
    assert_eq!(ns.names().unwrap(), ["name", "x"]);
    assert!(ns.del("x").unwrap());
    assert!(!ns.del("x").unwrap());

    let v = m.value(&3.5f64).unwrap();
    assert_eq!(v.get().unwrap(), 3.5);
    v.set(&-1.0).unwrap();
    assert_eq!(v.get().unwrap(), -1.0);

    let a = m.array(&[1u8, 2, 3]).unwrap();
    assert_eq!(a.len().unwrap(), 3);
    assert!(a.set(1, &20).unwrap());
    assert!(!a.set(3, &0).unwrap(), "an array does not grow");
    assert_eq!(a.to_vec().unwrap(), [1, 20, 3]);
}

#[test]
fn registered_objects_by_name_over_tcp() {
    let server = tcp_server();
    let a = Manager::connect(server.address().clone(), KEY).unwrap();
    let q: QueueProxy<String> = a.get("tasks").unwrap();
    q.put("job".into()).unwrap();
    // A second client (its own connection, as another host would have).
    let b = Manager::builder()
        .authkey(KEY)
        .connect(server.address().clone())
        .unwrap();
    let q2: QueueProxy<String> = b.get("tasks").unwrap();
    assert_eq!(q2.get_timeout(LONG).unwrap(), "job");
    let err = a.get::<QueueProxy<String>>("nope").unwrap_err();
    assert!(matches!(err, ManagerError::NotFound(_)), "{err}");
}

#[test]
fn wrong_kind_or_item_type_is_wrong_type() {
    let server = tcp_server();
    let m = server.connect().unwrap();
    let err = m.get::<DictProxy<u32, u32>>("tasks").unwrap_err();
    assert!(err.is_wrong_type(), "{err}");
    let _q: QueueProxy<u64> = m.get("tasks").unwrap();
    let err = m.get::<QueueProxy<String>>("tasks").unwrap_err();
    assert!(
        err.is_wrong_type(),
        "item type fixed by the first typed proxy: {err}"
    );
}

#[test]
fn blocked_get_does_not_block_put() {
    let server = tcp_server();
    let m = server.connect().unwrap();
    let q: QueueProxy<u32> = m.queue(0).unwrap();
    let q2 = q.clone();
    let getter = thread::spawn(move || q2.get());
    // The get waits in its channel's server thread.
    until("the get to wait on the server", || {
        server.stats().in_channel == 1
    });
    let start = Instant::now();
    q.put(7).unwrap(); // same connection, another client thread
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(getter.join().unwrap().unwrap(), 7);
}

#[test]
fn rlock_is_owned_by_the_client_thread() {
    let m = Manager::start().unwrap();
    let r = m.rlock().unwrap();
    r.acquire().unwrap();
    r.acquire().unwrap(); // re-entrant
    let r2 = r.clone();
    let other = thread::spawn(move || {
        let took = r2.try_acquire().unwrap();
        let released = r2.release().unwrap();
        (took, released)
    });
    let (took, released) = other.join().unwrap();
    assert!(!took, "another thread cannot take an owned RLock");
    assert_eq!(released, Err(ReleaseError::NotOwner));
    r.release().unwrap().unwrap();
    r.release().unwrap().unwrap();
    assert_eq!(r.release().unwrap(), Err(ReleaseError::NotOwner));

    // A Lock may be released by another thread, as in Python.
    let l = m.lock().unwrap();
    l.acquire().unwrap();
    let l2 = l.clone();
    thread::spawn(move || l2.release().unwrap().unwrap())
        .join()
        .unwrap();
    assert_eq!(l.release().unwrap(), Err(ReleaseError::Unlocked));
    assert!(!l.is_locked().unwrap());
}

/// An acquisition that had to wait takes the object once: the Lock is
/// free after one release, the RLock's depth is one, the semaphore lost no
/// permit.
#[test]
fn a_blocking_acquire_takes_exactly_once() {
    let server = tcp_server();
    let m = server.connect().unwrap();
    let l = m.lock().unwrap();
    let r = m.rlock().unwrap();
    let s = m.semaphore(0).unwrap();
    l.acquire().unwrap();
    r.acquire().unwrap();
    let (l2, r2, s2) = (l.clone(), r.clone(), s.clone());
    let t = thread::spawn(move || {
        l2.acquire_timeout(LONG).unwrap();
        l2.release().unwrap().unwrap();
        r2.acquire_timeout(LONG).unwrap();
        r2.release().unwrap().unwrap();
        let r_free = r2.release().unwrap().is_err();
        s2.acquire_timeout(LONG).unwrap();
        r_free
    });
    until("the lock's waiter", || server.stats().in_channel == 1);
    l.release().unwrap().unwrap();
    // The thread takes the Lock, gives it back, then waits for the RLock.
    until("the rlock's waiter", || {
        server.stats().in_channel == 1 && !l.is_locked().unwrap()
    });
    r.release().unwrap().unwrap();
    s.release().unwrap().unwrap();
    assert!(t.join().unwrap(), "the RLock was taken at depth one");
    assert!(!l.is_locked().unwrap());
    assert_eq!(s.value().unwrap(), 0, "one permit released, one taken");
}

#[test]
fn condition_event_semaphore_barrier() {
    let m = Manager::start().unwrap();
    let c = m.condition().unwrap();
    let ready = Arc::new(AtomicBool::new(false));
    let (c2, ready2) = (c.clone(), ready.clone());
    let waiter = thread::spawn(move || {
        c2.acquire().unwrap();
        ready2.store(true, Ordering::SeqCst);
        let woke = c2.wait_timeout(LONG).unwrap().unwrap();
        c2.release().unwrap().unwrap();
        woke
    });
    // The waiter holds the lock until it waits; taking it means it waits.
    until("the waiter to hold the lock", || {
        ready.load(Ordering::SeqCst)
    });
    c.acquire().unwrap();
    assert_eq!(c.notify(1).unwrap(), Ok(1));
    c.release().unwrap().unwrap();
    assert!(waiter.join().unwrap());
    assert_eq!(c.notify(1).unwrap(), Err(NotOwnedError));

    let e = m.event().unwrap();
    assert!(!e.wait_timeout(Duration::from_millis(10)).unwrap());
    let e2 = e.clone();
    let t = thread::spawn(move || e2.wait_timeout(LONG).unwrap());
    e.set().unwrap();
    assert!(t.join().unwrap());
    assert!(e.is_set().unwrap());

    let s = m.bounded_semaphore(1).unwrap();
    assert!(s.try_acquire().unwrap());
    assert!(!s.try_acquire().unwrap());
    s.release().unwrap().unwrap();
    assert_eq!(
        s.release().unwrap(),
        Err(OverReleaseError),
        "past the bound"
    );
    assert_eq!(s.value().unwrap(), 1);

    let b = m.barrier(2).unwrap();
    let b2 = b.clone();
    let t = thread::spawn(move || b2.wait_timeout(LONG).unwrap().unwrap());
    let mine = b.wait_timeout(LONG).unwrap().unwrap();
    let theirs = t.join().unwrap();
    assert_eq!(mine + theirs, 1, "arrival indexes 0 and 1");
    assert_eq!(b.parties().unwrap(), 2);
    assert!(m.barrier(0).unwrap_err().to_string().contains("Barrier"));
}

/// The child connects on its own, takes the lock, says so, and waits to be
/// killed.
fn hold_lock_until_killed(address: String, key: Vec<u8>, tx: spindle::ipc::Connection) {
    let m = Manager::connect(address.parse::<spindle::ipc::Address>().unwrap(), &key).unwrap();
    let l = m.get::<spindle::manager::LockProxy>("lock").unwrap();
    l.acquire().unwrap();
    tx.send(&1u8).unwrap();
    loop {
        thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn killed_client_releases_its_lock() {
    let server = Manager::builder()
        .bind("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .authkey(KEY)
        .register("lock", Typeid::lock())
        .spawn()
        .unwrap();
    let (rx, tx) = Pipe(false).unwrap();
    let address = server.address().to_string();
    let mut child = Process::builder()
        .closure(move || hold_lock_until_killed(address, KEY.to_vec(), tx))
        .start_method(StartMethod::Fork)
        .start()
        .unwrap();
    assert_eq!(rx.recv_timeout::<u8>(LONG).unwrap(), 1);
    let m = server.connect().unwrap();
    let l = m.get::<spindle::manager::LockProxy>("lock").unwrap();
    assert!(!l.try_acquire().unwrap(), "the child holds it");
    child.kill().unwrap();
    let _ = child.join_timeout(LONG); // Err: killed by signal 9, as meant
    assert!(
        l.acquire_timeout(LONG).unwrap(),
        "released when its holder died"
    );
    until("the death to be counted", || {
        server.stats().owner_deaths == 1
    });
}

#[test]
fn server_gone_is_shutdown() {
    let m = Manager::start().unwrap();
    let q: QueueProxy<u32> = m.queue(0).unwrap();
    let q2 = q.clone();
    let getter = thread::spawn(move || q2.get());
    until("the get to wait", || {
        m.stats().map(|s| s.in_channel == 1).unwrap_or(false)
    });
    m.process().unwrap().kill().unwrap();
    let start = Instant::now();
    assert!(getter.join().unwrap().is_err(), "ShutDown, not a hang");
    assert!(start.elapsed() < LONG);
    assert!(q.get_timeout(Duration::from_millis(10)) == Err(GetTimeoutError::ShutDown));
    assert!(q.put(1).is_err());
    let err = q.check().unwrap_err();
    assert!(err.is_server_gone(), "{err}");
}

fn block_in_get(address: String, key: Vec<u8>, tx: spindle::ipc::Connection) {
    let m = Manager::connect(address.parse::<spindle::ipc::Address>().unwrap(), &key).unwrap();
    let q: QueueProxy<u32> = m.get("tasks").unwrap();
    tx.send(&1u8).unwrap();
    let _ = q.get();
}

/// Python's manager loses an item here: a killed client's pending `get`
/// takes the next item put. spindle's server never takes an item for a
/// client that left.
#[test]
fn killed_blocked_getter_loses_no_item() {
    let server = tcp_server();
    let (rx, tx) = Pipe(false).unwrap();
    let address = server.address().to_string();
    let mut child = Process::builder()
        .closure(move || block_in_get(address, KEY.to_vec(), tx))
        .start_method(StartMethod::Fork)
        .start()
        .unwrap();
    assert_eq!(rx.recv_timeout::<u8>(LONG).unwrap(), 1);
    until("the child's get to wait", || server.stats().in_channel == 1);
    child.kill().unwrap();
    let _ = child.join_timeout(LONG); // Err: killed by signal 9, as meant
    let m = server.connect().unwrap();
    let q: QueueProxy<u32> = m.get("tasks").unwrap();
    q.put(42).unwrap();
    assert_eq!(q.get_timeout(LONG).unwrap(), 42, "the item was not eaten");
}

#[spindle::task]
fn fill_queue_and_dict(q: QueueProxy<String>, d: DictProxy<String, u32>, n: u32) {
    for i in 0..n {
        q.put(format!("item {i}")).unwrap();
    }
    d.set(&"done".to_string(), &n).unwrap();
}

#[test]
fn proxy_as_task_argument() {
    for method in StartMethod::all() {
        let m = Manager::start().unwrap();
        let q: QueueProxy<String> = m.queue(0).unwrap();
        let d: DictProxy<String, u32> = m.dict().unwrap();
        let mut p = common::start(fill_queue_and_dict::call(q.clone(), d.clone(), 3), method);
        p.join_timeout(LONG)
            .unwrap_or_else(|e| panic!("{method:?}: the child did not end: {e}"));
        assert_eq!(p.exitcode(), Some(0), "{method:?}");
        let got: Vec<String> = (0..3).map(|_| q.get_timeout(LONG).unwrap()).collect();
        assert_eq!(got, ["item 0", "item 1", "item 2"], "{method:?}");
        assert_eq!(d.get(&"done".into()).unwrap(), Some(3), "{method:?}");
    }
}

#[test]
fn proxy_inherited_through_fork_works_in_the_child() {
    let m = Manager::start().unwrap();
    let l: ListProxy<u32> = m.list().unwrap();
    let l2 = l.clone();
    let mut p = Process::builder()
        .closure(move || l2.append(&7).unwrap())
        .start_method(StartMethod::Fork)
        .start()
        .unwrap();
    p.join_timeout(LONG).unwrap();
    assert_eq!(p.exitcode(), Some(0));
    assert_eq!(l.to_vec().unwrap(), [7]);
}

/// Python's `BaseProxy._after_fork`: a proxy inherited through fork takes
/// a reference of its own in the child, so the object outlives the
/// parent's proxies while the child's connection lasts.
#[test]
fn a_fork_child_adopts_its_inherited_proxy() {
    let m = Manager::start().unwrap();
    let base = m.stats().unwrap().objects;
    let l: ListProxy<u32> = m.list().unwrap();
    let l2 = l.clone();
    let (up_rx, up_tx) = Pipe(false).unwrap();
    let (down_rx, down_tx) = Pipe(false).unwrap();
    let mut p = Process::builder()
        .closure(move || {
            l2.append(&7).unwrap(); // first use: adopts
            up_tx.send(&1u8).unwrap();
            down_rx.recv_timeout::<u8>(LONG).unwrap();
            l2.append(&8).unwrap(); // the parent holds no proxy now
            assert_eq!(l2.to_vec().unwrap(), [7, 8]);
        })
        .start_method(StartMethod::Fork)
        .start()
        .unwrap();
    assert_eq!(up_rx.recv_timeout::<u8>(LONG).unwrap(), 1);
    drop(l);
    assert_eq!(
        m.stats().unwrap().objects,
        base + 1,
        "the child's reference keeps the list"
    );
    down_tx.send(&1u8).unwrap();
    p.join_timeout(LONG).unwrap();
    assert_eq!(p.exitcode(), Some(0));
    until("the child's connection to close", || {
        m.stats().unwrap().objects == base
    });
}

#[test]
fn references_are_counted_per_connection() {
    let server = tcp_server();
    let base = server.stats().objects; // the registered ones
    let m = server.connect().unwrap();
    let d: DictProxy<u8, u8> = m.dict().unwrap();
    let d2 = d.clone();
    assert_eq!(server.stats().objects, base + 1);
    drop(d);
    d2.set(&1, &1).unwrap(); // a clone keeps it alive
    drop(d2);
    until("the object to be freed", || server.stats().objects == base);
    // Objects of a connection that closes are freed too.
    let m2 = server.connect().unwrap();
    let _l: ListProxy<u8> = m2.list().unwrap();
    assert_eq!(server.stats().objects, base + 1);
    drop(m);
    drop(m2);
    drop(_l);
    until("the connection's objects to be freed", || {
        server.stats().objects == base
    });
}

#[test]
fn caps_are_typed_errors() {
    let server = Manager::builder()
        .bind("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .authkey(KEY)
        .max_objects(2)
        .max_channels(1)
        .spawn()
        .unwrap();
    let m = server.connect().unwrap();
    let q: QueueProxy<u8> = m.queue(0).unwrap();
    let _l: ListProxy<u8> = m.list().unwrap();
    let err = m.dict::<u8, u8>().unwrap_err();
    assert!(err.is_limit(), "{err}");
    // One channel: a second thread's blocking call is refused, typed.
    let q2 = q.clone();
    let t = thread::spawn(move || q2.get());
    until("the first channel", || server.stats().in_channel == 1);
    let q3 = q.clone();
    let refused = thread::spawn(move || q3.get_timeout(Duration::from_millis(50)))
        .join()
        .unwrap();
    assert!(refused.is_err());
    q.put(1).unwrap();
    assert_eq!(t.join().unwrap().unwrap(), 1);
}

#[test]
fn short_authkey_is_refused() {
    let err = Manager::builder()
        .bind("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .authkey(b"short")
        .spawn()
        .unwrap_err();
    assert!(err.is_auth(), "{err}");
    let server = tcp_server();
    let err = Manager::connect(server.address().clone(), b"short").unwrap_err();
    assert!(err.is_auth(), "{err}");
}

#[test]
fn a_second_server_on_a_bound_address_is_an_error() {
    let server = tcp_server();
    let err = Manager::builder()
        .bind(server.address().clone())
        .authkey(KEY)
        .spawn()
        .unwrap_err();
    assert!(matches!(err, ManagerError::Io(_)), "{err}");
}

#[test]
fn shutdown_server_stops_a_started_server() {
    let m = Manager::start().unwrap();
    let pid = m.process().unwrap().pid().unwrap();
    m.shutdown_server().unwrap();
    // The child is reaped: no process of that pid is our child any more.
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}/status")).exists() || {
            let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            !s.contains(&format!("PPid:\t{}", std::process::id()))
        }
    );
}

/// A client thread that ends frees its server thread, and the RLock it
/// held is released (in Python the RLock of a thread that ended stays held
/// for good); a Lock it held stays held: any thread may release a Lock.
#[test]
fn a_client_thread_that_ends_frees_its_server_thread() {
    let server = tcp_server();
    let m = server.connect().unwrap();
    let q: QueueProxy<u8> = m.queue(0).unwrap();
    let r = m.rlock().unwrap();
    // This thread's channel (an acquire runs in the channel's thread).
    assert!(r.try_acquire().unwrap());
    r.release().unwrap().unwrap();
    for _ in 0..3 {
        let (q2, r2) = (q.clone(), r.clone());
        thread::spawn(move || {
            assert!(q2.get_timeout(Duration::from_millis(1)).is_err());
            r2.acquire().unwrap();
        })
        .join()
        .unwrap();
        // This thread's own channel stays.
        until("the channel's thread to end", || {
            server.stats().channels == 1
        });
        assert!(r.try_acquire().unwrap(), "released when its owner ended");
        r.release().unwrap().unwrap();
    }
    assert_eq!(server.stats().owner_deaths, 3);
    let l = m.lock().unwrap();
    let l2 = l.clone();
    thread::spawn(move || l2.acquire().unwrap()).join().unwrap();
    until("the channel's thread to end", || {
        server.stats().channels == 1
    });
    assert!(
        l.is_locked().unwrap(),
        "a Lock outlives the thread that took it"
    );
    l.release().unwrap().unwrap();
}

#[test]
fn a_spawned_server_ends_when_a_client_shuts_it_down() {
    let server = tcp_server();
    assert!(!server.is_finished());
    let stopper = server.stopper();
    server.connect().unwrap().shutdown_server().unwrap();
    server.wait().unwrap();
    stopper.stop(); // stopping a stopped server is harmless

    let err = Manager::builder().authkey(KEY).spawn().unwrap_err();
    assert!(matches!(err, ManagerError::Config(_)), "no address: {err}");
}

#[spindle::task]
fn start_a_manager_and_wait(tx: spindle::ipc::Connection) {
    let m = Manager::start().unwrap();
    tx.send(&m.process().unwrap().pid().unwrap()).unwrap();
    loop {
        thread::sleep(Duration::from_secs(1));
    }
}

/// A started server exits when the process that started it dies, even by
/// SIGKILL (it watches its parent; nothing is left serving).
#[test]
fn a_started_server_exits_when_its_parent_dies() {
    let (rx, tx) = Pipe(false).unwrap();
    let mut parent = common::start(start_a_manager_and_wait::call(tx), StartMethod::Spawn);
    let server_pid: u32 = rx.recv_timeout(LONG).unwrap();
    assert!(!common::gone(server_pid));
    parent.kill().unwrap();
    let _ = parent.join_timeout(LONG); // Err: killed by signal 9, as meant
    until("the server to exit", || common::gone(server_pid));
}

/// Each `connect` is a connection of its own (as Python's); past the
/// server's cap a connection is refused with a typed error, and the others
/// are served on.
#[test]
fn connections_past_the_cap_are_refused() {
    let server = Manager::builder()
        .bind("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .authkey(KEY)
        .register("tasks", Typeid::queue())
        .max_connections(2)
        .spawn()
        .unwrap();
    let a = server.connect().unwrap();
    let b = server.connect().unwrap();
    assert_eq!(server.stats().connections, 2);
    let err = server.connect().unwrap_err();
    assert!(err.is_limit(), "{err}");
    let q: QueueProxy<u8> = a.get("tasks").unwrap();
    q.put(1).unwrap();
    let q2: QueueProxy<u8> = b.get("tasks").unwrap();
    assert_eq!(q2.get_timeout(LONG).unwrap(), 1);
    drop((q, a));
    until("a place to free up", || server.stats().connections == 1);
    server.connect().expect("a place is free again");
}

/// asyncio's `await lock.acquire()`, `await sem.acquire()`, `await
/// event.wait()` on proxies: ready when the server grants them; a future
/// dropped before it is ready holds nothing, whether the server had taken
/// the lock for it or not.
#[test]
fn async_acquire_and_wait_are_cancel_safe() {
    let m = Manager::start().unwrap();
    let l = m.lock().unwrap();
    l.acquire().unwrap();
    let (_, waker) = common::counting();

    // Granted: the future completes once the holder releases.
    let mut f = Box::pin(l.acquire_async());
    assert!(common::poll_once(&mut f, &waker).is_pending());
    l.release().unwrap().unwrap();
    common::block_on(f).unwrap();
    assert!(l.is_locked().unwrap(), "the async acquire holds it");

    // Dropped while waiting, before or after the server took the lock for
    // it: the lock ends up free either way. (This thread holds it at the
    // start of each round.)
    for granted_first in [false, true] {
        let mut f = Box::pin(l.acquire_async());
        assert!(common::poll_once(&mut f, &waker).is_pending());
        if granted_first {
            l.release().unwrap().unwrap();
            until("the server to grant it", || l.is_locked().unwrap());
            drop(f);
        } else {
            drop(f);
            l.release().unwrap().unwrap();
        }
        assert!(
            l.try_acquire().unwrap(),
            "the dropped acquire holds nothing (granted first: {granted_first})"
        );
    }
    l.release().unwrap().unwrap();

    // A semaphore: a dropped acquire takes no permit.
    let s = m.semaphore(0).unwrap();
    let mut f = Box::pin(s.acquire_async());
    assert!(common::poll_once(&mut f, &waker).is_pending());
    s.release().unwrap().unwrap();
    until("the permit to go to the waiting acquire", || {
        s.value().unwrap() == 0
    });
    drop(f);
    assert_eq!(s.value().unwrap(), 1, "the permit came back");

    // An event. (The futures can move to another thread.)
    fn send<T: Send>(t: T) -> T {
        t
    }
    let e = m.event().unwrap();
    let mut f = Box::pin(send(e.wait_async()));
    drop(send(l.acquire_async())); // never polled: nothing sent
    assert!(common::poll_once(&mut f, &waker).is_pending());
    e.set().unwrap();
    common::block_on(f).unwrap();
}

#[test]
fn container_async_faces_match_the_blocking_ones() {
    use common::block_on;
    let m = Manager::start().unwrap();

    let d: DictProxy<String, i64> = m.dict().unwrap();
    block_on(d.set_async(&"a".into(), &1)).unwrap();
    block_on(d.update_async([(&"b".to_string(), &2), (&"c".to_string(), &3)])).unwrap();
    assert_eq!(block_on(d.get_async(&"a".into())).unwrap(), Some(1));
    assert_eq!(block_on(d.get_async(&"zz".into())).unwrap(), None);
    assert!(block_on(d.contains_key_async(&"b".into())).unwrap());
    assert_eq!(block_on(d.setdefault_async(&"a".into(), &9)).unwrap(), 1);
    assert_eq!(block_on(d.pop_async(&"c".into())).unwrap(), Some(3));
    assert!(block_on(d.del_async(&"b".into())).unwrap());
    assert!(!block_on(d.del_async(&"b".into())).unwrap());
    assert_eq!(block_on(d.len_async()).unwrap(), 1);
    assert_eq!(block_on(d.items_async()).unwrap(), d.items().unwrap());
    assert_eq!(block_on(d.keys_async()).unwrap(), ["a"]);
    assert_eq!(block_on(d.values_async()).unwrap(), [1]);
    block_on(d.clear_async()).unwrap();
    assert!(block_on(d.is_empty_async()).unwrap());

    let l: ListProxy<u32> = m.list().unwrap();
    block_on(l.append_async(&1)).unwrap();
    block_on(l.extend_async(&[2, 3, 2])).unwrap();
    block_on(l.insert_async(0, &0)).unwrap();
    assert_eq!(block_on(l.to_vec_async()).unwrap(), [0, 1, 2, 3, 2]);
    assert_eq!(block_on(l.get_async(-1)).unwrap(), Some(2));
    assert_eq!(block_on(l.get_async(9)).unwrap(), None);
    assert!(block_on(l.set_async(0, &10)).unwrap());
    assert_eq!(block_on(l.index_async(&2)).unwrap(), Some(2));
    assert_eq!(block_on(l.count_async(&2)).unwrap(), 2);
    assert!(block_on(l.remove_async(&2)).unwrap());
    assert_eq!(block_on(l.pop_async(0)).unwrap(), Some(10));
    block_on(l.reverse_async()).unwrap();
    assert_eq!(l.to_vec().unwrap(), [2, 3, 1]);
    assert_eq!(block_on(l.len_async()).unwrap(), 3);
    block_on(l.clear_async()).unwrap();
    assert!(block_on(l.is_empty_async()).unwrap());

    let a = m.array(&[1u8, 2, 3]).unwrap();
    assert!(block_on(a.set_async(1, &20)).unwrap());
    assert!(!block_on(a.set_async(3, &1)).unwrap(), "fixed length");
    assert_eq!(block_on(a.to_vec_async()).unwrap(), [1, 20, 3]);

    let v = m.value(&5u64).unwrap();
    block_on(v.set_async(&6)).unwrap();
    assert_eq!(block_on(v.get_async()).unwrap(), 6);

    let ns = m.namespace().unwrap();
    block_on(ns.set_async("x", &"text")).unwrap();
    assert_eq!(
        block_on(ns.get_async::<String>("x")).unwrap().as_deref(),
        Some("text")
    );
    assert_eq!(block_on(ns.get_async::<String>("y")).unwrap(), None);
    assert_eq!(block_on(ns.names_async()).unwrap(), ["x"]);
    assert!(block_on(ns.del_async("x")).unwrap());

    // The futures are Send: they can be awaited on another thread.
    let d2 = d.clone();
    thread::spawn(move || block_on(d2.set_async(&"t".into(), &7)).unwrap())
        .join()
        .unwrap();
    assert_eq!(d.get(&"t".into()).unwrap(), Some(7));
}

#[test]
fn rlock_and_condition_guards_of_async_tasks() {
    use common::block_on;
    use spindle::sync::{BlockingLock, BlockingRLock};
    let m = Manager::start().unwrap();

    // An RLock held by a task's guard: not by this thread, and released
    // from another thread the guard moved to.
    fn send<T: Send>(t: T) -> T {
        t
    }
    let l = m.rlock().unwrap();
    let g = block_on(send(l.acquire_async())).unwrap();
    assert!(l.is_locked().unwrap());
    assert!(!l.is_owned().unwrap(), "the guard owns it, not this thread");
    assert!(!BlockingLock::try_acquire(&l).unwrap());
    thread::spawn(move || block_on(g.release()).unwrap())
        .join()
        .unwrap();
    assert!(!l.is_locked().unwrap());
    // Dropping the guard releases it too.
    let g = block_on(l.acquire_async()).unwrap();
    drop(g);
    until("the dropped guard to release", || !l.is_locked().unwrap());

    // A dropped acquire holds nothing, granted first or not.
    let (_, waker) = common::counting();
    for granted_first in [false, true] {
        assert!(BlockingLock::try_acquire(&l).unwrap());
        let mut f = Box::pin(l.acquire_async());
        assert!(common::poll_once(&mut f, &waker).is_pending());
        if granted_first {
            BlockingLock::release(&l).unwrap().unwrap();
            until("the server to grant it", || l.is_locked().unwrap());
            drop(f);
        } else {
            drop(f);
            BlockingLock::release(&l).unwrap().unwrap();
        }
        until("the lock to be free", || !l.is_locked().unwrap());
        assert!(
            BlockingLock::try_acquire(&l).unwrap(),
            "granted first: {granted_first}"
        );
        BlockingLock::release(&l).unwrap().unwrap();
    }

    // A condition: a task waits for a flag that a thread sets under the
    // lock (the predicate is read with the lock held: nothing is missed).
    let c = m.condition().unwrap();
    let flag = Arc::new(AtomicBool::new(false));
    let waiter = {
        let (c, flag) = (c.clone(), flag.clone());
        thread::spawn(move || {
            block_on(async {
                let mut g = c.acquire_async().await?;
                g.wait_for(|| flag.load(Ordering::SeqCst)).await?;
                g.release().await
            })
        })
    };
    {
        let _held = c.lock().unwrap();
        flag.store(true, Ordering::SeqCst);
        c.notify_all().unwrap().unwrap();
    }
    waiter.join().unwrap().unwrap();

    // A dropped wait leaves the guard holding the lock: its next calls run
    // with the lock held again.
    let mut g = block_on(send(c.acquire_async())).unwrap();
    {
        let mut w = Box::pin(send(g.wait()));
        assert!(common::poll_once(&mut w, &waker).is_pending());
    }
    assert_eq!(block_on(g.notify(1)).unwrap(), 0, "no one waits");
    assert!(!block_on(g.wait_timeout(Duration::from_millis(10))).unwrap());
    block_on(g.release()).unwrap();
    assert!(c.try_acquire().unwrap(), "released: this thread takes it");
    c.release().unwrap().unwrap();
}

#[test]
fn sync_proxies_nonblocking_async_faces() {
    use common::block_on;
    let m = Manager::start().unwrap();
    let e = m.event().unwrap();
    block_on(e.set_async()).unwrap();
    assert!(block_on(e.is_set_async()).unwrap());
    block_on(e.clear_async()).unwrap();
    assert!(!e.is_set().unwrap());

    let l = m.lock().unwrap();
    assert!(block_on(l.release_async()).unwrap().is_err(), "not held");
    block_on(l.acquire_async()).unwrap();
    assert!(block_on(l.is_locked_async()).unwrap());
    block_on(l.release_async()).unwrap().unwrap();

    let s = m.semaphore(1).unwrap();
    block_on(s.release_async()).unwrap();
    assert_eq!(block_on(s.value_async()).unwrap(), 2);
    let b = m.bounded_semaphore(1).unwrap();
    assert_eq!(
        block_on(b.release_async()).unwrap(),
        Err(OverReleaseError),
        "past the bound"
    );
    assert_eq!(block_on(b.value_async()).unwrap(), 1);
}

#[test]
fn barrier_async_faces() {
    use common::block_on;
    use spindle::sync::BlockingBarrier;
    let m = Manager::start().unwrap();
    let b = m.barrier(3).unwrap();

    // Two tasks on one thread and a blocking party: the tasks' waits hold
    // up neither this thread's channel nor each other.
    let (_, waker) = common::counting();
    let mut t1 = Box::pin(b.wait_async());
    let mut t2 = Box::pin(b.wait_async());
    assert!(common::poll_once(&mut t1, &waker).is_pending());
    assert!(common::poll_once(&mut t2, &waker).is_pending());
    until("two parties to wait", || b.n_waiting().unwrap() == 2);
    assert_eq!(block_on(b.n_waiting_async()).unwrap(), 2);
    let third = b.wait().unwrap().unwrap();
    let mut idx = vec![
        third,
        block_on(t1).unwrap().unwrap(),
        block_on(t2).unwrap().unwrap(),
    ];
    idx.sort();
    assert_eq!(idx, [0, 1, 2]);

    // A dropped wait still counts as arrived.
    let mut t = Box::pin(b.wait_async());
    assert!(common::poll_once(&mut t, &waker).is_pending());
    until("the party to wait", || b.n_waiting().unwrap() == 1);
    drop(t);
    let other = thread::spawn({
        let b = b.clone();
        move || b.wait().unwrap()
    });
    until("two parties to wait", || b.n_waiting().unwrap() == 2);
    assert!(
        b.wait().unwrap().is_ok(),
        "the dropped party's arrival stood"
    );
    assert!(other.join().unwrap().is_ok());

    // abort breaks a waiting task's wait; reset mends the barrier.
    let mut t = Box::pin(b.wait_async());
    assert!(common::poll_once(&mut t, &waker).is_pending());
    until("the party to wait", || b.n_waiting().unwrap() == 1);
    block_on(b.abort_async()).unwrap();
    assert!(block_on(t).unwrap().is_err());
    assert!(block_on(b.is_broken_async()).unwrap());
    block_on(b.reset_async()).unwrap();
    assert!(!b.is_broken().unwrap());
    assert_eq!(block_on(b.parties_async()).unwrap(), 3);

    // The queue's other calls.
    let q: QueueProxy<u8> = m.queue(0).unwrap();
    q.put(1).unwrap();
    assert_eq!(block_on(q.qsize_async()), 1);
    assert_eq!(q.get().unwrap(), 1);
    block_on(q.task_done_async()).unwrap();
    assert!(block_on(q.task_done_async()).is_err(), "one too many");
    assert!(!block_on(q.is_shutdown_async()));
    block_on(q.shutdown_async(false));
    assert!(block_on(q.is_shutdown_async()));
}

#[test]
fn put_many_and_get_many_batch_items() {
    let server = tcp_server();
    let m = server.connect().unwrap();
    let q: QueueProxy<u32> = m.queue(0).unwrap();
    q.put_many(0..10).unwrap();
    assert_eq!(q.qsize(), 10);
    assert_eq!(q.get_many(4).unwrap(), [0, 1, 2, 3]);
    assert_eq!(
        q.get_many(100).unwrap(),
        [4, 5, 6, 7, 8, 9],
        "what is there"
    );
    assert_eq!(q.get_many(0).unwrap(), Vec::<u32>::new());
    assert_eq!(q.try_get_many(3), Err(TryGetError::Empty));
    assert_eq!(
        q.get_many_timeout(3, Duration::from_millis(20)),
        Err(GetTimeoutError::Timeout)
    );
    // Each item counts for task_done / join.
    for _ in 0..10 {
        q.task_done().unwrap();
    }
    q.join();

    let lifo = m.lifo_queue::<u32>(0).unwrap();
    lifo.put_many([1, 2, 3]).unwrap();
    assert_eq!(lifo.get_many(2).unwrap(), [3, 2]);

    // A getter waiting in line is owed an item: a batch leaves it one.
    let q2 = q.clone();
    let getter = thread::spawn(move || q2.get());
    until("the get to wait on the server", || {
        server.stats().in_channel == 1
    });
    q.put_many([7, 8, 9]).unwrap();
    let got = getter.join().unwrap().unwrap();
    let mut rest = q.try_get_many(10).unwrap();
    rest.push(got);
    rest.sort();
    assert_eq!(rest, [7, 8, 9]);

    // A bounded queue: the batch waits for room, item by item.
    let b: QueueProxy<u32> = m.queue(2).unwrap();
    let b2 = b.clone();
    let putter = thread::spawn(move || b2.put_many(0..6));
    let mut seen = Vec::new();
    while seen.len() < 6 {
        seen.extend(b.get_many_timeout(6, LONG).unwrap());
    }
    putter.join().unwrap().unwrap();
    assert_eq!(seen, [0, 1, 2, 3, 4, 5]);

    // Shut down midway: the items not put come back, in order.
    let b2 = b.clone();
    let putter = thread::spawn(move || b2.put_many([10, 11, 12, 13]));
    until("the batch to wait for room", || {
        server.stats().in_channel == 1 && b.qsize() == 2
    });
    b.shutdown(false);
    assert_eq!(
        putter.join().unwrap(),
        Err(spindle::queue::PutError(vec![12, 13]))
    );
    assert_eq!(
        b.get_many(10).unwrap(),
        [10, 11],
        "a shut-down queue is drained"
    );
}

#[test]
fn batches_over_the_batch_limit_go_in_several_round_trips() {
    use spindle::manager::GET_MANY_BYTES;
    let m = Manager::start().unwrap();
    // Strings: MessagePack `str`, cheap to encode even in a debug build.
    let q: QueueProxy<String> = m.queue(0).unwrap();
    let item = 1 << 20;
    let n = 10; // 10 MiB: over the 8 MiB a batch carries
    q.put_many((0..n).map(|i| format!("{i:02}{}", "x".repeat(item - 2))))
        .unwrap();
    assert_eq!(q.qsize(), n);
    let mut got = Vec::new();
    while got.len() < n {
        let batch = q.get_many(n).unwrap();
        let bytes: usize = batch.iter().map(String::len).sum();
        assert!(bytes <= GET_MANY_BYTES, "{bytes} bytes in one reply");
        got.extend(batch);
    }
    for (i, v) in got.iter().enumerate() {
        assert_eq!((v.len(), &v[..2]), (item, &*format!("{i:02}")), "in order");
    }
}

#[test]
fn batch_async_faces_are_cancel_safe() {
    use common::block_on;
    let m = Manager::start().unwrap();
    let q: QueueProxy<u32> = m.queue(0).unwrap();
    block_on(q.put_many_async(vec![1, 2, 3])).unwrap();
    assert_eq!(block_on(q.get_many_async(2)).unwrap(), [1, 2]);
    assert_eq!(block_on(q.get_many_async(9)).unwrap(), [3]);

    // A get_many_async dropped after the server took the items for it:
    // they go back to the head, in order.
    let (_, waker) = common::counting();
    let mut f = Box::pin(q.get_many_async(5));
    assert!(common::poll_once(&mut f, &waker).is_pending());
    q.put_many([4, 5]).unwrap();
    until("the server to take them", || q.qsize() == 0);
    drop(f);
    q.put(6).unwrap();
    assert_eq!(q.get_many(10).unwrap(), [4, 5, 6]);
}
