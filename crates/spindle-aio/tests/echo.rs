//! The echo servers (`spindle_aio::echo`), both shapes: answers, the
//! overlong-line limit, a reset mid-line, 1,000 connect/disconnects, and
//! the load client. Every wait is on the server's live-connection count.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use spindle_aio::echo::{EchoServer, LOAD_LINE, LoadError, MAX_LINE, load};

fn servers(prefix: &[u8]) -> Vec<(&'static str, EchoServer)> {
    vec![
        (
            "aio",
            EchoServer::bind_aio("127.0.0.1:0", prefix, 2).expect("bind aio"),
        ),
        (
            "threads",
            EchoServer::bind_threads("127.0.0.1:0", prefix).expect("bind threads"),
        ),
    ]
}

/// Waits (up to 10 s) until `server.live() == n`.
fn wait_live(name: &str, server: &EchoServer, n: usize) {
    let end = Instant::now() + Duration::from_secs(10);
    while server.live() != n {
        assert!(
            Instant::now() < end,
            "{name}: live connections stayed {} (want {n})",
            server.live()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn round_trip(s: &mut TcpStream, line: &[u8]) -> Vec<u8> {
    s.write_all(line).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut got = Vec::new();
    r.read_until(b'\n', &mut got).unwrap();
    got
}

#[test]
fn echo_answers_each_line_with_the_prefix() {
    for (name, server) in servers(b"GOT:") {
        let mut s = TcpStream::connect(server.local_addr()).unwrap();
        assert_eq!(round_trip(&mut s, b"hello\n"), b"GOT:hello\n", "{name}");
        assert_eq!(round_trip(&mut s, b"\n"), b"GOT:\n", "{name}");
        // Two lines in one write: two answers, in order.
        s.write_all(b"a\nb\n").unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut got = String::new();
        r.read_line(&mut got).unwrap();
        r.read_line(&mut got).unwrap();
        assert_eq!(got, "GOT:a\nGOT:b\n", "{name}");
        // A last line cut by end of stream is answered, then closed.
        s.write_all(b"tail").unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"GOT:tail", "{name}");
        wait_live(name, &server, 0);
    }
}

#[test]
fn echo_overlong_line_closes() {
    for (name, server) in servers(b"") {
        // Exactly MAX_LINE bytes, '\n' included, is answered.
        let mut ok = vec![b'x'; MAX_LINE - 1];
        ok.push(b'\n');
        let mut s = TcpStream::connect(server.local_addr()).unwrap();
        assert_eq!(round_trip(&mut s, &ok), ok, "{name}");
        // One byte more closes the connection, unanswered.
        let mut long = TcpStream::connect(server.local_addr()).unwrap();
        let mut bad = vec![b'y'; MAX_LINE];
        bad.push(b'\n');
        // The server may close (even reset) before taking it all.
        let _ = long.write_all(&bad);
        long.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut got = Vec::new();
        match long.read_to_end(&mut got) {
            Ok(_) => assert!(got.is_empty(), "{name}: answered an overlong line"),
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{name}: {e}"),
        }
        assert_eq!(server.overlong(), 1, "{name}");
        // The other connection still works.
        assert_eq!(round_trip(&mut s, b"still\n"), b"still\n", "{name}");
        drop(s);
        drop(long);
        wait_live(name, &server, 0);
    }
}

/// Resets `s` (SO_LINGER 0, then close: the peer sees ECONNRESET).
fn reset(s: TcpStream) {
    let linger = nix::libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::Linger, &linger).unwrap();
    drop(s);
}

#[test]
fn echo_reset_mid_line_ends_only_its_task() {
    for (name, server) in servers(b"") {
        let mut a = TcpStream::connect(server.local_addr()).unwrap();
        assert_eq!(round_trip(&mut a, b"one\n"), b"one\n", "{name}");
        let mut b = TcpStream::connect(server.local_addr()).unwrap();
        assert_eq!(round_trip(&mut b, b"two\n"), b"two\n", "{name}");
        wait_live(name, &server, 2);
        b.write_all(b"half a li").unwrap();
        reset(b);
        wait_live(name, &server, 1);
        assert_eq!(round_trip(&mut a, b"three\n"), b"three\n", "{name}");
        let mut c = TcpStream::connect(server.local_addr()).unwrap();
        assert_eq!(round_trip(&mut c, b"four\n"), b"four\n", "{name}");
        drop((a, c));
        wait_live(name, &server, 0);
    }
}

#[test]
fn echo_1000_connects_leave_no_task() {
    for (name, server) in servers(b"") {
        for i in 0..1000 {
            let mut s = TcpStream::connect(server.local_addr()).unwrap();
            match i % 3 {
                0 => {} // connect, close
                1 => assert_eq!(round_trip(&mut s, b"x\n"), b"x\n", "{name}"),
                _ => s.write_all(b"partial").unwrap(),
            }
        }
        // Every connection accepted, then every one's task ended.
        let end = Instant::now() + Duration::from_secs(10);
        while server.accepted() < 1000 {
            assert!(
                Instant::now() < end,
                "{name}: {} accepted",
                server.accepted()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        wait_live(name, &server, 0);
        assert_eq!(server.accepted(), 1000, "{name}");
    }
}

#[test]
fn load_checks_every_reply() {
    for (name, server) in servers(b"") {
        let r = load(server.local_addr(), 4, 50).expect(name);
        assert_eq!(r.round_trips, 200, "{name}");
        assert!(r.p50_us > 0.0 && r.p50_us <= r.p99_us, "{name}: {r:?}");
        assert!(r.throughput() > 0.0, "{name}");
        wait_live(name, &server, 0);
    }
    // A prefixing server's replies are not the line sent.
    let server = EchoServer::bind_aio("127.0.0.1:0", b"GOT:", 1).unwrap();
    match load(server.local_addr(), 2, 3) {
        Err(LoadError::WrongReply { round: 0, got, .. }) => {
            assert_eq!(got, [b"GOT:".as_slice(), LOAD_LINE].concat());
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        load(server.local_addr(), 0, 3),
        Err(LoadError::Empty)
    ));
    // Over the limit: refused before connecting (no 400 GB of latencies).
    assert!(matches!(
        load(server.local_addr(), 10_000, 10_000_000),
        Err(LoadError::TooMany {
            conns: 10_000,
            rounds: 10_000_000
        })
    ));
    assert_eq!(server.accepted(), 2);
}
