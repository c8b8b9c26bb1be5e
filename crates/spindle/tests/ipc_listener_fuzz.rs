//! Fuzzing what listens on a socket: arbitrary bytes from a peer that does
//! not hold the key, and arbitrary frames on an accepted connection. Each
//! must end in a typed error (or a value) within a bounded time, never a
//! panic or a hang, and the listener must go on serving a good client.
//! Case counts are bounded so the file runs in seconds.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use spindle::ipc::{Address, Client, Listener, PROTOCOL_VERSION, RecvTimeoutError};

const KEY: &[u8] = b"0123456789abcdef-fuzzing-key";
const AUTH_TIMEOUT: Duration = Duration::from_millis(200);

/// What a hostile or broken peer sends: raw bytes, or something shaped
/// like a spindle frame (right magic and version, any kind and length).
fn peer_bytes() -> impl Strategy<Value = Vec<u8>> {
    let raw = proptest::collection::vec(any::<u8>(), 0..600);
    let framed = (
        0u8..12,
        prop_oneof![0u32..400, any::<u32>()],
        proptest::collection::vec(any::<u8>(), 0..400),
        0usize..3,
    )
        .prop_map(|(kind, len, payload, frames)| {
            let mut out = Vec::new();
            for _ in 0..=frames {
                out.extend_from_slice(b"SP");
                out.push(PROTOCOL_VERSION);
                out.push(kind);
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(&payload);
            }
            out
        });
    prop_oneof![raw, framed]
}

/// Sends `bytes`, then closes its half (or, `hold`, stays silent), and
/// reads until the listener closes the connection (bounded).
fn hostile_client(addr: std::net::SocketAddr, bytes: Vec<u8>, hold: bool) {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return;
    };
    // The listener may close first (a bad frame): a failed write is fine.
    let _ = s.write_all(&bytes);
    if !hold {
        let _ = s.shutdown(Shutdown::Write);
    }
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let mut sink = [0u8; 512];
    while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
}

fn tcp_listener() -> (Listener, std::net::SocketAddr) {
    let l = Listener::builder()
        .authkey(KEY)
        .auth_timeout(AUTH_TIMEOUT)
        .bind("127.0.0.1:0".parse::<Address>().unwrap())
        .unwrap();
    let Address::Tcp(addr) = l.address().clone() else {
        unreachable!("bound a TCP address")
    };
    (l, addr)
}

/// `fuzz_socket`: 300 unauthenticated peers sending anything; every
/// `accept` fails typed within the handshake's deadlines, and a client
/// with the key is served after them.
#[test]
fn fuzz_socket_unauthenticated_peers_then_a_good_client() {
    let (l, addr) = tcp_listener();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(
            &(peer_bytes(), prop::bool::weighted(0.05)),
            |(bytes, hold)| {
                let client = thread::spawn(move || hostile_client(addr, bytes, hold));
                let t = Instant::now();
                let r = l.accept();
                let took = t.elapsed();
                client.join().unwrap();
                prop_assert!(r.is_err(), "a peer without the key was accepted");
                // Two handshake steps, each bounded by AUTH_TIMEOUT; generous.
                prop_assert!(took < Duration::from_secs(5), "accept took {took:?}");
                Ok(())
            },
        )
        .unwrap();
    let good = thread::spawn(move || {
        let c = Client(Address::Tcp(addr), Some(KEY)).unwrap();
        c.send(&"still here").unwrap();
    });
    let conn = l.accept().unwrap();
    assert_eq!(conn.recv::<String>().unwrap(), "still here");
    good.join().unwrap();
}

/// `fuzz_decode`: arbitrary bytes on an accepted connection (a peer that
/// got in but speaks garbage): each receive returns a value or a typed
/// error, never a panic or a hang, and the stream comes to its end.
#[test]
fn fuzz_decode_frames_on_an_accepted_connection() {
    let l = Listener::bind("127.0.0.1:0".parse::<Address>().unwrap()).unwrap();
    let Address::Tcp(addr) = l.address().clone() else {
        unreachable!()
    };
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&peer_bytes(), |bytes| {
            let len = bytes.len();
            let client = thread::spawn(move || hostile_client(addr, bytes, false));
            let conn = l.accept().unwrap();
            conn.set_max_frame(1024);
            let t = Instant::now();
            // The peer wrote everything and closed: no receive may wait
            // (a timeout here is a hang), and the stream must end within
            // one receive per header's worth of bytes: at the peer's end,
            // or at bytes that are no frame, after which the connection
            // keeps failing at once with the same error.
            let mut ended = false;
            let mut last: Option<String> = None;
            let mut same = 0;
            for _ in 0..(len / 8 + 16) {
                match conn.recv_bytes_timeout(Duration::from_secs(5)) {
                    Ok(_) => last = None,
                    Err(RecvTimeoutError::Timeout) => {
                        prop_assert!(false, "a receive waited on a closed peer")
                    }
                    Err(RecvTimeoutError::Failed(e)) if e.is_eof() => {
                        ended = true;
                        break;
                    }
                    Err(RecvTimeoutError::Failed(e)) => {
                        let msg = e.to_string();
                        same = if last.as_deref() == Some(&msg) {
                            same + 1
                        } else {
                            0
                        };
                        last = Some(msg);
                        if same == 2 {
                            ended = true;
                            break;
                        }
                    }
                }
            }
            drop(conn);
            client.join().unwrap();
            prop_assert!(ended, "the stream never reported its end");
            prop_assert!(t.elapsed() < Duration::from_secs(5));
            Ok(())
        })
        .unwrap();
}
