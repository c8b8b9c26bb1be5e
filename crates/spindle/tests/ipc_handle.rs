//! `Connection::send_handle` / `recv_handle` (Python's
//! `multiprocessing.reduction.send_handle(conn, handle, destination_pid)` /
//! `recv_handle(conn)`): a descriptor through a duplex `Pipe` to a child
//! process and over a Unix-socket `Listener`/`Client` pair, the typed errors
//! of connections that cannot carry one, a message where a descriptor is
//! expected and the other way round, and no descriptor leaked.
//!
//! Every test takes `SERIAL`: the leak checks count this process's open
//! descriptors, which a test running beside them would change.

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use spindle::ipc::{Address, Client, Connection, ConnectionError, Listener, Pipe};
use spindle::process::{Process, StartMethod};

use common::LONG;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// How many descriptors this process has open.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn unix_path() -> PathBuf {
    common::unix_path("spindle-handle")
}

/// A connected pair over a Unix socket: (accepted, client).
fn unix_pair() -> (Connection, Connection) {
    let l = Listener::bind(Address::Unix(unix_path())).unwrap();
    let addr = l.address().clone();
    let t = thread::spawn(move || Client(addr, None).unwrap());
    let server = l.accept().unwrap();
    (server, t.join().unwrap())
}

/// A connected pair over TCP: (accepted, client).
fn tcp_pair() -> (Connection, Connection) {
    let l = Listener::bind("127.0.0.1:0".parse::<Address>().unwrap()).unwrap();
    let addr = l.address().clone();
    let t = thread::spawn(move || Client(addr, None).unwrap());
    let server = l.accept().unwrap();
    (server, t.join().unwrap())
}

/// Whether every write end of the pipe `r` reads from is closed (never
/// waits).
fn hung_up(r: &std::io::PipeReader) -> bool {
    let mut p = libc::pollfd {
        fd: r.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid `pollfd` for the duration of the call.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    assert!(n >= 0, "poll failed");
    p.revents & libc::POLLHUP != 0
}

/// Reads `r` to its end (every write end closed).
fn read_all(mut r: impl Read) -> String {
    let mut s = String::new();
    r.read_to_string(&mut s).unwrap();
    s
}

#[spindle::task]
fn write_through_handle(conn: Connection) {
    let fd = conn.recv_handle().unwrap();
    let mut w = File::from(fd);
    write!(w, "written by {}", std::process::id()).unwrap();
    drop(w);
    conn.send(&std::process::id()).unwrap();
}

/// CPython `_TestPicklingConnections` / `test_fd_transfer`: the write end
/// of a pipe goes to a child over a connection; the child writes into it and
/// the parent reads what it wrote from the read end.
#[test]
fn a_pipe_write_end_goes_to_a_child() {
    let _s = serial();
    for m in StartMethod::all() {
        let (conn, child_conn) = Pipe(true).unwrap();
        let mut p = Process::builder()
            .task(write_through_handle::call(child_conn))
            .start_method(m)
            .start()
            .unwrap();
        let (r, w) = std::io::pipe().unwrap();
        conn.send_handle(&w).unwrap();
        // Only the child's copy keeps the pipe open now.
        drop(w);
        let pid: u32 = conn.recv_timeout(LONG).unwrap();
        assert_eq!(read_all(r), format!("written by {pid}"), "{m:?}");
        p.join_timeout(LONG).unwrap();
        assert_eq!(p.exitcode(), Some(0), "{m:?}");
    }
}

/// Over a Listener/Client pair on a Unix socket, both ways, in order with
/// the messages around it.
#[test]
fn over_a_unix_listener_and_client() {
    let _s = serial();
    let before = open_fds();
    {
        let (server, client) = unix_pair();
        for (from, to) in [(&client, &server), (&server, &client)] {
            let (r, w) = std::io::pipe().unwrap();
            from.send(&"before").unwrap();
            from.send_handle(&w).unwrap();
            from.send_bytes(b"after").unwrap();
            drop(w);
            assert_eq!(to.recv::<String>().unwrap(), "before");
            let mut w = File::from(to.recv_handle().unwrap());
            assert_eq!(to.recv_bytes().unwrap(), b"after");
            w.write_all(b"passed").unwrap();
            drop(w);
            assert_eq!(read_all(r), "passed");
        }
        // Several queued at once, taken in order.
        let files: Vec<_> = (0..5).map(|_| std::io::pipe().unwrap()).collect();
        for (_, w) in &files {
            client.send_handle(w).unwrap();
        }
        for (r, w) in files {
            let mut got = File::from(server.recv_handle().unwrap());
            drop(w);
            got.write_all(&[r.as_raw_fd() as u8]).unwrap();
            drop(got);
            let mut b = Vec::new();
            let mut r = r;
            r.read_to_end(&mut b).unwrap();
            assert_eq!(b, [r.as_raw_fd() as u8]);
        }
    }
    assert_eq!(open_fds(), before, "descriptors leaked");
}

/// A one-way pipe and a TCP connection cannot carry a descriptor: typed
/// errors, nothing sent or read.
#[test]
fn connections_that_cannot_carry_one_are_typed_errors() {
    let _s = serial();
    let (r, w) = std::io::pipe().unwrap();
    let (rx, tx) = Pipe(false).unwrap();
    assert!(matches!(
        tx.send_handle(&w),
        Err(ConnectionError::HandlesUnsupported)
    ));
    assert!(matches!(
        rx.recv_handle(),
        Err(ConnectionError::HandlesUnsupported)
    ));
    assert!(matches!(
        rx.send_handle(&w),
        Err(ConnectionError::NotWritable)
    ));
    assert!(matches!(
        tx.recv_handle(),
        Err(ConnectionError::NotReadable)
    ));
    // Nothing was sent: the receiving end has nothing waiting.
    assert!(!rx.poll().unwrap());

    let (server, client) = tcp_pair();
    assert!(matches!(
        client.send_handle(&w),
        Err(ConnectionError::HandlesUnsupported)
    ));
    assert!(matches!(
        server.recv_handle_timeout(Duration::from_millis(1)),
        Err(spindle::ipc::RecvTimeoutError::Failed(
            ConnectionError::HandlesUnsupported
        ))
    ));
    assert!(!server.poll().unwrap());
    client.send(&1u8).unwrap();
    assert_eq!(server.recv::<u8>().unwrap(), 1);
    drop((r, w));
}

/// The connections that can carry a descriptor: a duplex pipe and a Unix
/// socket pair, each as (sender, receiver).
fn carriers() -> Vec<(&'static str, Connection, Connection)> {
    let (a, b) = Pipe(true).unwrap();
    let (s, c) = unix_pair();
    vec![("pipe", a, b), ("unix", c, s)]
}

/// `recv_handle` facing a message fails typed and leaves the message
/// whole for the next receive, small or large (a pipe's large messages go
/// on its side socket), blocking or bounded.
#[test]
fn recv_handle_on_a_message_leaves_it_in_place() {
    let _s = serial();
    let before = open_fds();
    for (name, tx, rx) in carriers() {
        let big: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        let (r, w) = std::io::pipe().unwrap();
        // More than a socket holds: sent while we read.
        let sender = thread::spawn({
            let big = big.clone();
            move || {
                tx.send(&"small").unwrap();
                tx.send_bytes(&big).unwrap();
                tx.send_handle(&w).unwrap();
                tx
            }
        });

        assert!(
            matches!(rx.recv_handle(), Err(ConnectionError::NotAHandle)),
            "{name}"
        );
        assert!(matches!(
            rx.recv_handle_timeout(LONG),
            Err(spindle::ipc::RecvTimeoutError::Failed(
                ConnectionError::NotAHandle
            ))
        ));
        assert_eq!(rx.recv::<String>().unwrap(), "small", "{name}");
        assert!(matches!(rx.recv_handle(), Err(ConnectionError::NotAHandle)));
        assert_eq!(rx.recv_bytes().unwrap(), big, "{name}");
        let fd = rx.recv_handle_timeout(LONG).unwrap();
        File::from(fd).write_all(b"ok").unwrap();
        let tx = sender.join().unwrap();
        assert_eq!(read_all(r), "ok", "{name}");

        // Nothing waiting: a bounded wait times out, consuming nothing.
        let t = Instant::now();
        assert!(
            rx.recv_handle_timeout(Duration::from_millis(20))
                .unwrap_err()
                .is_timeout()
        );
        assert!(t.elapsed() >= Duration::from_millis(20));
        tx.send(&9u32).unwrap();
        assert!(matches!(rx.recv_handle(), Err(ConnectionError::NotAHandle)));
        assert_eq!(rx.try_recv::<u32>().unwrap(), 9);
        drop(tx);
        assert!(rx.recv_handle().unwrap_err().is_eof(), "{name}");
    }
    assert_eq!(open_fds(), before, "descriptors leaked");
}

/// A message receive facing a descriptor closes it, fails typed, and the
/// next receive gets the message after it; blocking, bounded, or polled.
#[test]
fn a_descriptor_where_a_message_is_expected_is_closed() {
    let _s = serial();
    let before = open_fds();
    for (name, tx, rx) in carriers() {
        for how in 0..4 {
            let (r, w) = std::io::pipe().unwrap();
            tx.send_handle(&w).unwrap();
            drop(w);
            tx.send(&how).unwrap();
            let err = match how {
                0 => rx.recv::<i32>().unwrap_err(),
                1 => rx.recv_bytes().unwrap_err(),
                // Both sends are done: all of it is in the kernel already.
                2 => match rx.try_recv::<i32>() {
                    Err(spindle::ipc::TryRecvError::Failed(e)) => e,
                    other => panic!("{other:?}"),
                },
                _ => match rx.recv_bytes_timeout(LONG) {
                    Err(spindle::ipc::RecvTimeoutError::Failed(e)) => e,
                    other => panic!("{other:?}"),
                },
            };
            assert!(
                matches!(err, ConnectionError::UnexpectedHandle),
                "{name} {how}: {err}"
            );
            // Closed: every write end of the pipe is gone.
            assert!(hung_up(&r), "{name} {how}: the descriptor was kept");
            assert_eq!(rx.recv::<i32>().unwrap(), how, "{name} {how}");
        }
    }
    assert_eq!(open_fds(), before, "descriptors leaked");
}

/// Many descriptors through both kinds of connection, some received and
/// some refused as messages: the process ends with the descriptors it
/// began with.
#[test]
fn no_descriptor_leaks() {
    let _s = serial();
    let before = open_fds();
    for (_, tx, rx) in carriers() {
        let f: OwnedFd = File::open("/proc/self/status").unwrap().into();
        for i in 0..50 {
            tx.send_handle(&f).unwrap();
            if i % 2 == 0 {
                drop(rx.recv_handle().unwrap());
            } else {
                assert!(matches!(
                    rx.recv_bytes(),
                    Err(ConnectionError::UnexpectedHandle)
                ));
            }
        }
        // Sent, never received: closed with the connection.
        for _ in 0..10 {
            tx.send_handle(&f).unwrap();
        }
    }
    assert_eq!(open_fds(), before, "descriptors leaked");
}
