//! `ipc::Listener` / `ipc::Client` tests, after CPython's
//! `Lib/test/_test_multiprocessing.py` (`_TestListener`, `_TestListenerClient`,
//! `_TestAuthentication`), rewritten in Rust for spindle. Every test binds
//! TCP port 0 or a private temporary Unix path, never a fixed port.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use spindle::ipc::{
    Address, AuthenticationError, Client, Connection, ConnectionError, Listener, ListenerError,
    PROTOCOL_VERSION, RecvTimeoutError,
};
use spindle::process::Process;

use common::LONG;

const KEY: &[u8] = b"0123456789abcdef-listener-key";
const OTHER_KEY: &[u8] = b"fedcba9876543210-another-key";

fn tcp_any() -> Address {
    "127.0.0.1:0".parse().unwrap()
}

fn unix_path() -> PathBuf {
    common::unix_path("spindle-listener")
}

fn addresses() -> Vec<Address> {
    vec![tcp_any(), Address::Unix(unix_path())]
}

/// A frame header written by hand: magic, version, kind, length.
fn header(kind: u8, len: u32) -> Vec<u8> {
    let mut h = vec![b'S', b'P', PROTOCOL_VERSION, kind];
    h.extend_from_slice(&len.to_le_bytes());
    h
}

/// Values and a 1 MiB byte string both ways, over TCP and Unix (CPython's
/// `_TestListenerClient.test_listener_client`).
#[test]
fn values_and_a_mebibyte_round_trip_over_tcp_and_unix() {
    let big: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    for addr in addresses() {
        let l = Listener::bind(addr.clone()).unwrap();
        let at = l.address().clone();
        thread::scope(|s| {
            let client = s.spawn(|| {
                let c = Client(at, None).unwrap();
                c.send(&("hello", 7u64)).unwrap();
                let echoed = c.recv_bytes().unwrap();
                c.send_bytes(&echoed).unwrap();
                c.recv::<String>().unwrap()
            });
            let conn = l.accept().unwrap();
            assert_eq!(
                conn.recv::<(String, u64)>().unwrap(),
                ("hello".to_string(), 7)
            );
            conn.send_bytes(&big).unwrap();
            // A bounded receive of a large inline frame works as well.
            assert_eq!(conn.recv_bytes_timeout(LONG).unwrap(), big, "{addr}");
            conn.send(&"bye").unwrap();
            assert_eq!(client.join().unwrap(), "bye");
            drop(conn);
        });
    }
}

/// Port 0 binds a free port, which `address()` reports; a Unix listener
/// reports its path and removes it on close (as Python's `Listener.close`).
#[test]
fn address_reports_the_real_port_and_a_unix_path_goes_on_close() {
    let l = Listener::bind(tcp_any()).unwrap();
    let Address::Tcp(a) = l.address() else {
        panic!("not TCP: {:?}", l.address())
    };
    assert_ne!(a.port(), 0);
    assert!(TcpStream::connect(a).is_ok());

    let p = unix_path();
    let l = Listener::bind(p.clone()).unwrap();
    assert_eq!(l.address(), &Address::Unix(p.clone()));
    assert!(p.exists());
    l.close();
    assert!(!p.exists(), "the socket path was not removed");
}

/// A second listener on an address in use is a typed error, not a panic;
/// the first one is untouched (its Unix path stays).
#[test]
fn binding_an_address_in_use_is_a_typed_error() {
    for addr in addresses() {
        let first = Listener::bind(addr).unwrap();
        let err = Listener::bind(first.address().clone()).unwrap_err();
        assert!(err.is_address_in_use(), "{err:?}");
        assert!(matches!(err, ListenerError::Io(_)));
        if let Address::Unix(p) = first.address() {
            assert!(p.exists());
        }
        let at = first.address().clone();
        let c = thread::spawn(move || Client(at, None).unwrap().send(&1u8).unwrap());
        assert_eq!(first.accept().unwrap().recv::<u8>().unwrap(), 1);
        c.join().unwrap();
    }
}

/// Addresses parse from `"ip:port"` and from paths; anything else is a
/// typed error naming the input.
#[test]
fn addresses_parse() {
    assert_eq!(
        "127.0.0.1:8000".parse::<Address>().unwrap(),
        Address::Tcp("127.0.0.1:8000".parse().unwrap())
    );
    assert_eq!(
        "[::1]:0".parse::<Address>().unwrap(),
        Address::Tcp("[::1]:0".parse().unwrap())
    );
    assert_eq!(
        "/tmp/x.sock".parse::<Address>().unwrap(),
        Address::Unix("/tmp/x.sock".into())
    );
    assert_eq!(
        "./x.sock".parse::<Address>().unwrap(),
        Address::Unix("./x.sock".into())
    );
    let err = "localhost".parse::<Address>().unwrap_err();
    assert!(err.to_string().contains("\"localhost\""), "{err}");
}

/// The same key on both ends: both authenticate, and the connection works
/// (CPython's `test_answer_challenge` through `Listener`/`Client`).
#[test]
fn the_right_key_authenticates_both_ways() {
    for addr in addresses() {
        let l = Listener::builder().authkey(KEY).bind(addr).unwrap();
        let at = l.address().clone();
        let c = thread::spawn(move || {
            let c = Client(at, Some(KEY)).unwrap();
            c.send(&"authenticated").unwrap();
            c.recv::<u32>().unwrap()
        });
        let conn = l.accept().unwrap();
        assert_eq!(conn.recv::<String>().unwrap(), "authenticated");
        conn.send(&5u32).unwrap();
        assert_eq!(c.join().unwrap(), 5);
    }
}

/// A client with another key: `accept` fails with a typed wrong-key error,
/// the client is told it was rejected, and the same listener then serves a
/// client with the right key.
#[test]
fn a_wrong_key_fails_both_sides_and_the_listener_goes_on() {
    for addr in addresses() {
        let l = Listener::builder().authkey(KEY).bind(addr).unwrap();
        let at = l.address().clone();
        let at2 = at.clone();
        let bad = thread::spawn(move || Client(at, Some(OTHER_KEY)));
        let err = l.accept().unwrap_err();
        assert!(err.is_wrong_key(), "{err:?}");
        assert!(matches!(
            err,
            ListenerError::Authentication(AuthenticationError::WrongAnswer)
        ));
        let client_err = bad.join().unwrap().unwrap_err();
        assert!(client_err.is_wrong_key(), "{client_err:?}");
        assert!(matches!(
            client_err,
            ListenerError::Authentication(AuthenticationError::Rejected)
        ));

        let good = thread::spawn(move || Client(at2, Some(KEY)).unwrap().recv::<u8>().unwrap());
        l.accept().unwrap().send(&9u8).unwrap();
        assert_eq!(good.join().unwrap(), 9);
    }
}

/// A client without a key, to a listener with one, that goes on as if
/// connected: `accept` fails at once (no hang), and the client then reads
/// the challenge, the verdict and the end of file, never a hang.
#[test]
fn a_client_without_a_key_is_refused_without_a_hang() {
    let l = Listener::builder().authkey(KEY).bind(tcp_any()).unwrap();
    let at = l.address().clone();
    let c = thread::spawn(move || {
        let c = Client(at, None).unwrap();
        c.send(&"let me in").unwrap();
        let mut got = Vec::new();
        loop {
            match c.recv_bytes_timeout(LONG) {
                Ok(m) => got.push(m),
                Err(e) => {
                    assert!(e.is_eof(), "{e}");
                    return got;
                }
            }
        }
    });
    let t = Instant::now();
    let err = l.accept().unwrap_err();
    assert!(err.is_authentication(), "{err:?}");
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    let got = c.join().unwrap();
    assert!(got[0].starts_with(b"#SPINDLE-CHALLENGE#"), "{got:?}");
    assert_eq!(got.last().unwrap(), b"#FAILURE#");
}

/// A client with a key, to a listener without one that speaks first: the
/// client's authentication fails at once with a typed protocol error.
#[test]
fn a_client_with_a_key_to_a_listener_without_one_fails() {
    let l = Listener::bind(Address::Unix(unix_path())).unwrap();
    let at = l.address().clone();
    let c = thread::spawn(move || Client(at, Some(KEY)));
    let conn = l.accept().unwrap();
    conn.send(&"welcome, no questions asked").unwrap();
    let err = c.join().unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            ListenerError::Authentication(AuthenticationError::Protocol(_))
        ),
        "{err:?}"
    );
}

/// A client that connects and says nothing holds `accept` only until the
/// authentication timeout; the next client is then served.
#[test]
fn a_silent_client_does_not_hold_accept() {
    let timeout = Duration::from_millis(300);
    let l = Listener::builder()
        .authkey(KEY)
        .auth_timeout(timeout)
        .bind(tcp_any())
        .unwrap();
    let Address::Tcp(a) = *l.address() else {
        unreachable!()
    };
    let silent = TcpStream::connect(a).unwrap();
    let t = Instant::now();
    let err = l.accept().unwrap_err();
    assert!(
        matches!(
            err,
            ListenerError::Authentication(AuthenticationError::Timeout)
        ),
        "{err:?}"
    );
    assert!(t.elapsed() >= timeout);
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    drop(silent);

    let good = thread::spawn(move || Client(a, Some(KEY)).unwrap().recv::<u8>().unwrap());
    l.accept().unwrap().send(&3u8).unwrap();
    assert_eq!(good.join().unwrap(), 3);
}

/// A client that sends an oversized frame before authenticating: it is
/// refused without being buffered (the limit during the handshake is 256
/// bytes), and in bounded time.
#[test]
fn an_oversized_frame_during_the_handshake_is_refused() {
    let l = Listener::builder()
        .authkey(KEY)
        .auth_timeout(Duration::from_millis(300))
        .bind(tcp_any())
        .unwrap();
    let Address::Tcp(a) = *l.address() else {
        unreachable!()
    };
    let mut raw = TcpStream::connect(a).unwrap();
    // Announces 60 MiB, sends a little of it, then stalls.
    raw.write_all(&header(0, 60 << 20)).unwrap();
    raw.write_all(&[0u8; 4096]).unwrap();
    let t = Instant::now();
    let err = l.accept().unwrap_err();
    assert!(err.is_authentication(), "{err:?}");
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
}

/// Short keys are refused before anything is bound or sent.
#[test]
fn a_short_key_is_refused() {
    let err = Listener::builder()
        .authkey(b"short")
        .bind(tcp_any())
        .unwrap_err();
    assert!(
        matches!(err, ListenerError::KeyTooShort { len: 5 }),
        "{err:?}"
    );
    let l = Listener::bind(tcp_any()).unwrap();
    let err = Client(l.address().clone(), Some(b"short")).unwrap_err();
    assert!(
        matches!(err, ListenerError::KeyTooShort { len: 5 }),
        "{err:?}"
    );
}

/// Nothing listening: `Client` is an I/O error.
#[test]
fn connecting_to_nothing_is_an_io_error() {
    let err = Client(Address::Unix(unix_path()), None).unwrap_err();
    assert!(matches!(err, ListenerError::Io(_)), "{err:?}");
}

/// An accepted connection and its client, over TCP, with a raw socket
/// beside them for hand-written frames.
fn accepted_raw() -> (Listener, Connection, TcpStream) {
    let l = Listener::bind(tcp_any()).unwrap();
    let Address::Tcp(a) = *l.address() else {
        unreachable!()
    };
    let raw = TcpStream::connect(a).unwrap();
    let conn = l.accept().unwrap();
    (l, conn, raw)
}

/// A message past `set_max_frame` is `TooLarge` and skipped, blocking or
/// bounded, and the connection goes on (as pipes behave).
#[test]
fn an_oversized_frame_is_too_large_and_the_connection_goes_on() {
    for addr in addresses() {
        let l = Listener::bind(addr).unwrap();
        let at = l.address().clone();
        let c = thread::spawn(move || {
            let c = Client(at, None).unwrap();
            c.send_bytes(&vec![1u8; 5000]).unwrap();
            c.send(&1u32).unwrap();
            c.send_bytes(&vec![2u8; 300_000]).unwrap();
            c.send(&2u32).unwrap();
            c.recv::<u8>().unwrap()
        });
        let conn = l.accept().unwrap();
        conn.set_max_frame(1000);
        assert!(matches!(
            conn.recv_bytes(),
            Err(ConnectionError::TooLarge {
                len: 5000,
                limit: 1000
            })
        ));
        assert_eq!(conn.recv::<u32>().unwrap(), 1);
        let e = conn.recv_bytes_timeout(LONG).unwrap_err();
        assert!(
            matches!(
                e,
                RecvTimeoutError::Failed(ConnectionError::TooLarge {
                    len: 300_000,
                    limit: 1000
                })
            ),
            "{e}"
        );
        assert_eq!(conn.recv_timeout::<u32>(LONG).unwrap(), 2);
        conn.send(&0u8).unwrap();
        c.join().unwrap();
    }
}

/// An oversized frame still arriving: a bounded receive drops what came
/// and gives up in time, without buffering the frame; the next receive
/// finishes dropping it and reports `TooLarge`; the next message is whole.
#[test]
fn a_partial_oversized_frame_is_dropped_as_it_arrives() {
    let (_l, conn, mut raw) = accepted_raw();
    conn.set_max_frame(100_000);
    raw.write_all(&header(0, 300_000)).unwrap();
    raw.write_all(&vec![7u8; 50_000]).unwrap();
    let t = Instant::now();
    assert!(
        conn.recv_bytes_timeout(Duration::from_millis(50))
            .unwrap_err()
            .is_timeout()
    );
    assert!(t.elapsed() >= Duration::from_millis(50));
    assert!(!conn.poll().unwrap());
    thread::scope(|s| {
        s.spawn(|| {
            raw.write_all(&vec![7u8; 250_000]).unwrap();
            raw.write_all(&header(0, 2)).unwrap();
            raw.write_all(b"ok").unwrap();
        });
        assert!(matches!(
            conn.recv_bytes(),
            Err(ConnectionError::TooLarge {
                len: 300_000,
                limit: 100_000
            })
        ));
    });
    assert_eq!(conn.recv_bytes_timeout(LONG).unwrap(), b"ok");
}

/// A `Bulk` frame cannot arrive on a socket connection (it has no bulk
/// channel): it is a protocol error at once, not a wait for a socket that
/// does not exist, and the frames after it are read.
#[test]
fn a_bulk_frame_on_a_socket_connection_is_a_protocol_error() {
    let (_l, conn, mut raw) = accepted_raw();
    raw.write_all(&header(6, 100_000)).unwrap();
    raw.write_all(&header(0, 2)).unwrap();
    raw.write_all(b"ok").unwrap();
    let e = conn.recv_bytes_timeout(LONG).unwrap_err();
    assert!(
        matches!(e, RecvTimeoutError::Failed(ConnectionError::Protocol(_))),
        "{e}"
    );
    assert_eq!(conn.recv_bytes().unwrap(), b"ok");
    raw.write_all(&header(6, 10)).unwrap();
    assert!(matches!(
        conn.recv_bytes(),
        Err(ConnectionError::Protocol(_))
    ));
}

#[spindle::task]
fn echo_once(conn: Connection) {
    let b = conn.recv_bytes().unwrap();
    conn.send_bytes(&b).unwrap();
}

/// An accepted connection passes to a child process as a task argument,
/// as a pipe's end does, and the child talks to the client through it.
#[test]
fn an_accepted_connection_passes_to_a_child() {
    let l = Listener::bind(Address::Unix(unix_path())).unwrap();
    let at = l.address().clone();
    let c = thread::spawn(move || {
        let c = Client(at, None).unwrap();
        let big = vec![5u8; 200_000];
        c.send_bytes(&big).unwrap();
        assert_eq!(c.recv_bytes_timeout(LONG).unwrap(), big);
    });
    let conn = l.accept().unwrap();
    let mut p = Process::builder()
        .task(echo_once::call(conn))
        .start()
        .unwrap();
    p.join_timeout(LONG).unwrap();
    assert_eq!(p.exitcode(), Some(0));
    c.join().unwrap();
}

/// `getsockopt(fd, level, name)` as an `i32`, and whether `fd` is
/// close-on-exec.
fn sockopt_and_cloexec(fd: i32, level: i32, name: i32) -> (i32, bool) {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `fd` is an open descriptor owned by a live `Connection` for
    // the whole call; `v` and `len` are valid for writes of the sizes given.
    let rc = unsafe { libc::getsockopt(fd, level, name, (&raw mut v).cast(), &mut len) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    // SAFETY: as above; F_GETFD reads the descriptor's flags only.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    assert!(flags >= 0);
    (v, flags & libc::FD_CLOEXEC != 0)
}

/// Both ends of a TCP connection have `TCP_NODELAY`, and every socket
/// descriptor is close-on-exec (TCP and Unix).
#[test]
fn tcp_sockets_have_nodelay_and_descriptors_are_close_on_exec() {
    for addr in addresses() {
        let l = Listener::bind(addr.clone()).unwrap();
        let at = l.address().clone();
        let c = thread::spawn(move || Client(at, None).unwrap());
        let server = l.accept().unwrap();
        let client = c.join().unwrap();
        for conn in [&server, &client] {
            let fd = conn.fileno();
            let (nodelay, cloexec) = match addr {
                Address::Tcp(_) => sockopt_and_cloexec(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY),
                Address::Unix(_) => {
                    let (_, c) = sockopt_and_cloexec(fd, libc::SOL_SOCKET, libc::SO_TYPE);
                    (1, c)
                }
            };
            assert_eq!(nodelay, 1, "TCP_NODELAY not set");
            assert!(cloexec, "not close-on-exec");
        }
    }
}
