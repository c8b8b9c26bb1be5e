//! `ipc::wait` (`multiprocessing.connection.wait`), after CPython's
//! `_TestWait` (`Lib/test/_test_multiprocessing.py`): connections,
//! listeners and process sentinels, with and without a timeout.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use spindle::ipc::{Client, Connection, Listener, Pipe, Waitable, wait, wait_timeout};
use spindle::process::Process;

use common::LONG;

#[test]
fn a_zero_timeout_returns_at_once_with_nothing_ready() {
    let (a, _b) = Pipe(true).unwrap();
    let (c, _d) = Pipe(true).unwrap();
    let t = Instant::now();
    let ready = wait_timeout(&[&a, &c], Duration::ZERO).unwrap();
    assert!(ready.is_empty());
    assert!(t.elapsed() < LONG);
}

#[test]
fn only_the_connections_with_input_are_ready_in_order() {
    let (a, a_peer) = Pipe(true).unwrap();
    let (b, _b_peer) = Pipe(true).unwrap();
    let (c, c_peer) = Pipe(true).unwrap();
    c_peer.send(&3u32).unwrap();
    a_peer.send(&1u32).unwrap();
    let ready = wait_timeout(&[&a, &b, &c], LONG).unwrap();
    assert_eq!(ready, [0, 2]);
    assert_eq!(a.recv::<u32>().unwrap(), 1);
    assert_eq!(c.recv::<u32>().unwrap(), 3);
    assert!(
        wait_timeout(&[&a, &b, &c], Duration::ZERO)
            .unwrap()
            .is_empty()
    );
}

/// Two messages read from the OS in one go: after the first is received
/// the second waits in the connection's buffer, not in the pipe, and
/// `wait` still reports it.
#[test]
fn a_message_already_buffered_is_ready() {
    let (a, peer) = Pipe(true).unwrap();
    peer.send(&1u32).unwrap();
    peer.send(&2u32).unwrap();
    assert_eq!(a.recv::<u32>().unwrap(), 1);
    assert_eq!(wait_timeout(&[&a], Duration::ZERO).unwrap(), [0]);
    assert_eq!(a.recv::<u32>().unwrap(), 2);
    assert!(wait_timeout(&[&a], Duration::ZERO).unwrap().is_empty());
}

#[test]
fn a_closed_peer_makes_a_connection_ready() {
    let (a, peer) = Pipe(true).unwrap();
    drop(peer);
    assert_eq!(wait_timeout(&[&a], LONG).unwrap(), [0]);
    assert!(a.recv::<u32>().unwrap_err().is_eof());
}

#[test]
fn a_blocking_wait_wakes_on_a_message_from_another_thread() {
    let (a, peer) = Pipe(true).unwrap();
    let (b, _b_peer) = Pipe(true).unwrap();
    let sender = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        peer.send(&7u32).unwrap();
        peer
    });
    assert_eq!(wait(&[&b, &a]).unwrap(), [1]);
    assert_eq!(a.recv::<u32>().unwrap(), 7);
    drop(sender.join().unwrap());
}

#[test]
fn a_listener_is_ready_when_a_client_waits() {
    let l = Listener::bind("127.0.0.1:0".parse::<spindle::ipc::Address>().unwrap()).unwrap();
    assert!(wait_timeout(&[&l], Duration::ZERO).unwrap().is_empty());
    let addr = l.address().clone();
    let client = thread::spawn(move || Client(addr, None).unwrap());
    assert_eq!(wait_timeout(&[&l], LONG).unwrap(), [0]);
    let conn = l.accept().unwrap();
    let c = client.join().unwrap();
    c.send(&5u8).unwrap();
    assert_eq!(conn.recv::<u8>().unwrap(), 5);
}

#[spindle::task]
fn wait_for_word(conn: Connection) {
    let _: u8 = conn.recv().unwrap();
}

/// A sentinel is ready once its process has ended, and mixes with
/// connections in one call.
#[test]
fn a_process_sentinel_is_ready_when_the_process_ends() {
    let (ours, theirs) = Pipe(true).unwrap();
    let (idle, _idle_peer) = Pipe(true).unwrap();
    let mut p = Process::new(wait_for_word::call(theirs));
    p.start().unwrap();
    let sentinel = p.sentinel().unwrap();
    assert!(
        wait_timeout(&[&sentinel, &idle], Duration::from_millis(50))
            .unwrap()
            .is_empty(),
        "the child is still waiting for its word"
    );
    ours.send(&1u8).unwrap();
    assert_eq!(wait_timeout(&[&idle, &sentinel], LONG).unwrap(), [1]);
    p.join_timeout(LONG).unwrap();
}

#[test]
fn nothing_to_wait_on_is_an_error_without_a_timeout() {
    let e = wait(&[]).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    let t = Instant::now();
    assert!(
        wait_timeout(&[], Duration::from_millis(30))
            .unwrap()
            .is_empty()
    );
    assert!(t.elapsed() >= Duration::from_millis(30));
}

#[test]
fn a_send_only_connection_cannot_be_waited_on() {
    let (r, w) = Pipe(false).unwrap();
    let e = wait_timeout(&[&w], Duration::ZERO).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    let dyn_r: &dyn Waitable = &r;
    assert!(dyn_r.wait_fd().is_ok());
}
