//! CPython's `_TestManagerRestart`, alone in its test binary: the test
//! rebinds an address it just freed, and any `fork` made meanwhile by
//! another test of the same process (tests/manager.rs forks children)
//! would hand the child a copy of the listening socket and keep the
//! address in use until that child exits.

use std::net::SocketAddr;

use spindle::manager::{Manager, QueueProxy, Typeid};
use spindle::queue::BlockingQueue;

const KEY: &[u8] = b"manager-tests-key-0123456789abcdef";

/// CPython's `_TestManagerRestart`: a server shut down frees its address at
/// once; a new server binds the same address and serves.
#[test]
fn a_server_restarts_on_the_same_address() {
    let first = Manager::builder()
        .bind("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .authkey(KEY)
        .register("tasks", Typeid::queue())
        .spawn()
        .unwrap();
    let address = first.address().clone();
    {
        let m = first.connect().unwrap();
        let q: QueueProxy<u8> = m.get("tasks").unwrap();
        q.put(1).unwrap();
    }
    first.stop().unwrap();
    let second = Manager::builder()
        .bind(address.clone())
        .authkey(KEY)
        .register("tasks", Typeid::queue())
        .spawn()
        .expect("the address is free again");
    let m = Manager::connect(address, KEY).unwrap();
    let q: QueueProxy<u8> = m.get("tasks").unwrap();
    assert_eq!(q.qsize(), 0, "a new server, a new queue");
    drop(second);
}
