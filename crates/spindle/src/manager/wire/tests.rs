//! Tests of the manager transport. Hand-written peers (a fake server, raw
//! clients) speak the protocol byte by byte from `docs/PROTOCOL.md`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::mpsc;
use std::thread;

use super::*;

const KEY: &[u8] = b"0123456789abcdef-a-manager-test-key";
const OTHER_KEY: &[u8] = b"another-key-of-sixteen-bytes-or-more";
const WAIT: Duration = Duration::from_secs(20);

fn tcp_any() -> Address {
    Address::Tcp("127.0.0.1:0".parse().unwrap())
}

fn unix_tmp(name: &str) -> Address {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let p: PathBuf = std::env::temp_dir().join(format!(
        "spindle-wire-{}-{name}-{n}.sock",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&p);
    Address::Unix(p)
}

fn cfg(mac: bool) -> WireConfig {
    WireConfig {
        mac,
        ..WireConfig::default()
    }
}

/// An acceptor looping in a thread; each session comes out of `sessions`.
struct Server {
    addr: Address,
    closer: Closer,
    counters: Arc<WireCounters>,
    sessions: mpsc::Receiver<Session>,
    thread: Option<thread::JoinHandle<ManagerError>>,
}

impl Server {
    fn start(addr: &Address, key: &[u8], cfg: WireConfig) -> Server {
        let mut acc = Acceptor::bind(addr, key, cfg).unwrap();
        let (tx, sessions) = mpsc::channel();
        let addr = acc.address().clone();
        let closer = acc.closer();
        let counters = acc.counters();
        let thread = thread::spawn(move || {
            loop {
                match acc.accept() {
                    Ok(sess) => {
                        let _ = tx.send(sess);
                    }
                    Err(e) => return e,
                }
            }
        });
        Server {
            addr,
            closer,
            counters,
            sessions,
            thread: Some(thread),
        }
    }

    fn next(&self) -> Session {
        self.sessions
            .recv_timeout(WAIT)
            .expect("the server handed out a session")
    }

    /// Waits until `f(counters)` holds (the acceptor's own counts).
    fn wait_for(&self, what: &str, f: impl Fn(&WireCounters) -> bool) {
        let t = Instant::now();
        while !f(&self.counters) {
            assert!(
                t.elapsed() < WAIT,
                "timed out waiting for {what}: {:?}",
                self.counters
            );
            thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.closer.close();
        if let Some(t) = self.thread.take() {
            let e = t.join().unwrap();
            assert!(e.is_server_gone(), "{e:?}");
        }
    }
}

/// A client and the server's side of its session.
fn pair(addr: &Address, mac: bool) -> (Server, Session, Session) {
    let server = Server::start(addr, KEY, cfg(mac));
    let client = connect(&server.addr, KEY, &cfg(mac), b"hello").unwrap();
    let s = server.next();
    assert_eq!(s.first, b"hello");
    (server, client, s)
}

fn threads() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Reads one raw frame (a hand-written peer).
fn read_raw(r: &mut impl Read) -> (Kind, Vec<u8>) {
    let mut h = [0u8; HEADER_LEN];
    r.read_exact(&mut h).unwrap();
    let (kind, len) = frame::parse_header(&h).unwrap();
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).unwrap();
    (kind, body)
}

fn raw_frame(kind: Kind, body: &[u8]) -> Vec<u8> {
    let mut v = frame::header(kind, body.len()).unwrap().to_vec();
    v.extend_from_slice(body);
    v
}

/// Reads until the peer closes; the bytes read.
fn read_to_eof(s: &mut impl Read) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return all,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return all,
            Err(e) => panic!("read failed: {e}"),
        }
    }
}

#[test]
fn round_trip_tcp_and_unix_mac_on_and_off() {
    for addr in [tcp_any(), unix_tmp("rt")] {
        for mac in [true, false] {
            let (_server, mut c, mut s) = pair(&addr, mac);
            let mut buf = Vec::new();
            for i in 0..20u8 {
                c.sink.send(&[i; 3]).unwrap();
                // One frame: header, payload and (with MAC) a 16-byte tag.
                assert_eq!(c.sink.buf.len(), HEADER_LEN + 3 + if mac { 16 } else { 0 });
                s.source.recv(&mut buf).unwrap();
                assert_eq!(buf, [i; 3]);
                s.sink.send(&[i + 1; 5]).unwrap();
                c.source.recv(&mut buf).unwrap();
                assert_eq!(buf, [i + 1; 5]);
            }
            // Empty, and large (the vectored path) both ways.
            let big: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
            // (The sender on its own thread: a payload larger than the
            // socket's buffer is only sent while the other end reads.)
            for payload in [&[][..], &big[..]] {
                thread::scope(|t| {
                    t.spawn(|| c.sink.send(payload).unwrap());
                    s.source.recv(&mut buf).unwrap();
                });
                assert_eq!(buf, payload);
                thread::scope(|t| {
                    t.spawn(|| s.sink.send(payload).unwrap());
                    c.source.recv(&mut buf).unwrap();
                });
                assert_eq!(buf, payload);
            }
            // A clean close is ServerGone, and stays so.
            drop(s);
            for _ in 0..2 {
                let e = c.source.recv(&mut buf).unwrap_err();
                assert!(e.is_server_gone(), "{e:?}");
            }
        }
    }
}

#[test]
fn nodelay_on_both_sides() {
    let (_server, c, s) = pair(&tcp_any(), true);
    for sess in [&c, &s] {
        let Stream::Tcp(t) = &sess.stream else {
            panic!("not TCP")
        };
        assert!(t.nodelay().unwrap());
    }
}

#[test]
fn mac_setting_mismatch_fails_the_handshake() {
    for server_mac in [true, false] {
        let server = Server::start(&tcp_any(), KEY, cfg(server_mac));
        let e = connect(&server.addr, KEY, &cfg(!server_mac), b"x").unwrap_err();
        assert!(e.is_protocol(), "{e:?}");
        assert!(e.to_string().contains("both ends must agree"), "{e}");
        // The server checks too, for a client that sends it anyway.
        let ch = Challenge {
            versions: vec![1],
            nonce: vec![7; 32],
            mac: server_mac,
        };
        let resp = Response {
            version: 1,
            nonce: vec![8; 32],
            mac: !server_mac,
            digest: client_digest(KEY, 1, &ch.nonce, &[8; 32])
                .finalize()
                .into_bytes()
                .to_vec(),
        };
        let r = verify_response(KEY, &ch, &encode(&resp).unwrap()).unwrap_err();
        assert_eq!(r.code, "mac");
        // And a good client of the same setting is served.
        let _c = connect(&server.addr, KEY, &cfg(server_mac), b"x").unwrap();
        assert_eq!(server.next().first, b"x");
    }
}

#[test]
fn wrong_authkey_rejected() {
    // A client with another key: the server refuses it with a Failure.
    let server = Server::start(&tcp_any(), KEY, WireConfig::default());
    let e = connect(&server.addr, OTHER_KEY, &WireConfig::default(), b"x").unwrap_err();
    assert!(e.is_auth(), "{e:?}");
    assert!(e.to_string().contains("refused"), "{e}");
    server.wait_for("the failure counted", |c| c.failed() == 1);
    assert_eq!(server.counters.accepted(), 0);
    let _c = connect(&server.addr, KEY, &WireConfig::default(), b"ok").unwrap();
    assert_eq!(server.next().first, b"ok");

    // A fake server that does not hold the key: it follows the protocol
    // but can only guess the welcome. The client refuses it in `connect`.
    for fake_key in [Some(OTHER_KEY), None] {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = Address::Tcp(l.local_addr().unwrap());
        let fake = thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let ch = Challenge {
                versions: vec![WIRE_VERSION],
                nonce: vec![3; NONCE_LEN],
                mac: true,
            };
            s.write_all(&raw_frame(Kind::NetChallenge, &encode(&ch).unwrap()))
                .unwrap();
            let (kind, body) = read_raw(&mut s);
            assert_eq!(kind, Kind::NetResponse);
            let resp = decode_response(&body).unwrap();
            let digest = match fake_key {
                Some(k) => server_digest(k, &ch, &resp)
                    .finalize()
                    .into_bytes()
                    .to_vec(),
                None => resp.digest.clone(), // echo the client's own proof
            };
            let w = Welcome { digest };
            s.write_all(&raw_frame(Kind::NetWelcome, &encode(&w).unwrap()))
                .unwrap();
            // The first message came in the same write as the response.
            let (kind, _) = read_raw(&mut s);
            assert_eq!(kind, Kind::NetMessage);
            read_to_eof(&mut s);
        });
        let e = connect(&addr, KEY, &WireConfig::default(), b"x").unwrap_err();
        assert!(e.is_auth(), "{e:?}");
        assert!(e.to_string().contains("welcome"), "{e}");
        fake.join().unwrap();
    }
}

#[test]
fn short_keys_are_refused_on_both_sides() {
    let short = &KEY[..MIN_AUTHKEY - 1];
    let e = Acceptor::bind(&tcp_any(), short, WireConfig::default()).unwrap_err();
    assert!(e.is_auth(), "{e:?}");
    let server = Server::start(&tcp_any(), KEY, WireConfig::default());
    let e = connect(&server.addr, short, &WireConfig::default(), b"x").unwrap_err();
    assert!(e.is_auth(), "{e:?}");
    assert_eq!(server.counters.pending() + server.counters.failed(), 0);
}

#[test]
fn md5_reply_rejected() {
    let server = Server::start(&tcp_any(), KEY, WireConfig::default());
    let Address::Tcp(a) = &server.addr else {
        unreachable!()
    };
    let mut s = TcpStream::connect(a).unwrap();
    let (kind, body) = read_raw(&mut s);
    assert_eq!(kind, Kind::NetChallenge);
    let ch = decode_challenge(&body).unwrap();
    // The length of an MD5 digest (what Python accepted before 3.12),
    // even made of the right HMAC's first bytes.
    let full = client_digest(KEY, 1, &ch.nonce, &[5; 32])
        .finalize()
        .into_bytes();
    let resp = Response {
        version: 1,
        nonce: vec![5; 32],
        mac: true,
        digest: full[..16].to_vec(),
    };
    let body = encode(&resp).unwrap();
    assert!(decode_response(&body).unwrap_err().is_auth());
    s.write_all(&raw_frame(Kind::NetResponse, &body)).unwrap();
    let (kind, body) = read_raw(&mut s);
    assert_eq!(kind, Kind::NetFailure);
    let f = decode_failure(&body).unwrap();
    assert_eq!(f.code, "auth");
    assert!(f.reason.contains("16 bytes"), "{f:?}");
    assert!(read_to_eof(&mut s).is_empty(), "closed after the failure");
    server.wait_for("the failure counted", |c| c.failed() == 1);
    assert_eq!(server.counters.accepted(), 0);
}

/// A session over a Unix socket with MACs on, for the integrity tests.
fn mac_pair() -> (Server, Session, Session) {
    pair(&unix_tmp("mac"), true)
}

fn assert_broken(s: &mut Session, what: &str) {
    let mut buf = Vec::new();
    let e = s.source.recv(&mut buf).unwrap_err();
    assert!(e.is_protocol(), "{what}: {e:?}");
    assert!(buf.is_empty(), "{what}: no unverified bytes handed out");
    // The reader stops: even a good frame after it is refused.
    let e = s.source.recv(&mut buf).unwrap_err();
    assert!(e.is_protocol(), "{what}: {e:?}");
}

#[test]
fn replayed_frame_rejected() {
    let (_server, mut c, mut s) = mac_pair();
    c.sink.send(b"pay 100").unwrap();
    let captured = c.sink.buf.clone();
    let mut buf = Vec::new();
    s.source.recv(&mut buf).unwrap();
    assert_eq!(buf, b"pay 100");
    c.stream.write_all(&captured).unwrap();
    c.sink.send(b"a good frame after the replay").unwrap();
    assert_broken(&mut s, "replay");
}

#[test]
fn reordered_frame_rejected() {
    let (_server, mut c, mut s) = mac_pair();
    c.sink.seal_into_buf(b"first").unwrap();
    let a = c.sink.buf.clone();
    c.sink.seal_into_buf(b"second").unwrap();
    let b = c.sink.buf.clone();
    c.stream.write_all(&b).unwrap();
    c.stream.write_all(&a).unwrap();
    assert_broken(&mut s, "reorder");
}

#[test]
fn dropped_frame_rejected() {
    let (_server, mut c, mut s) = mac_pair();
    c.sink.seal_into_buf(b"lost").unwrap();
    c.sink.send(b"after the lost one").unwrap();
    assert_broken(&mut s, "drop");
}

#[test]
fn altered_byte_rejected() {
    // Bytes of the frame "pay 100": the kind, the version, a payload byte,
    // a MAC byte. (Altering the length would make the reader wait for
    // bytes that never come; the MAC covers it all the same.)
    for (at, what) in [
        (3, "kind"),
        (2, "version"),
        (8 + 4, "payload"),
        (8 + 7 + 3, "mac"),
    ] {
        let (_server, mut c, mut s) = mac_pair();
        c.sink.seal_into_buf(b"pay 100").unwrap();
        let mut f = c.sink.buf.clone();
        f[at] ^= 0x01;
        c.stream.write_all(&f).unwrap();
        assert_broken(&mut s, what);
    }
    // A frame made whole with another session's key fails too.
    let (_server, mut c, mut s) = mac_pair();
    let (_server2, mut c2, _s2) = mac_pair();
    c2.sink.seal_into_buf(b"forged").unwrap();
    c.stream.write_all(&c2.sink.buf).unwrap();
    assert_broken(&mut s, "another session's key");
}

#[test]
fn oversized_frame_after_auth_is_too_large_and_stops() {
    let server = Server::start(
        &unix_tmp("big"),
        KEY,
        WireConfig {
            max_frame: 1000,
            ..WireConfig::default()
        },
    );
    let mut c = connect(&server.addr, KEY, &WireConfig::default(), b"x").unwrap();
    let mut s = server.next();
    // The sender refuses what is over its own limit, and sends nothing.
    let small = WireConfig {
        max_frame: 10,
        ..WireConfig::default()
    };
    let mut c2 = connect(&server.addr, KEY, &small, b"y").unwrap();
    let e = c2.sink.send(&[0; 11]).unwrap_err();
    assert!(e.is_too_large(), "{e:?}");
    c2.sink.send(&[0; 10]).unwrap();
    let mut buf = Vec::new();
    let mut s2 = server.next();
    s2.source.recv(&mut buf).unwrap();
    assert_eq!(buf, [0; 10]);
    // The receiver: TooLarge, and no frame after it.
    c.sink.send(&[1; 1001]).unwrap();
    c.sink.send(&[1; 10]).unwrap();
    let e = s.source.recv(&mut buf).unwrap_err();
    assert!(
        matches!(
            e,
            ManagerError::TooLarge {
                size: 1001,
                limit: 1000
            }
        ),
        "{e:?}"
    );
    assert!(s.source.recv(&mut buf).is_err());
}

#[test]
fn a_first_message_over_the_limit_closes_the_socket() {
    let server = Server::start(
        &unix_tmp("bigfirst"),
        KEY,
        WireConfig {
            max_frame: 100,
            ..WireConfig::default()
        },
    );
    // The client's welcome comes before the server reads the first
    // message; the server then closes without handing the session out.
    let mut c = connect(&server.addr, KEY, &WireConfig::default(), &[0; 101]).unwrap();
    server.wait_for("the failure counted", |c| c.failed() == 1);
    let mut buf = Vec::new();
    assert!(c.source.recv(&mut buf).unwrap_err().is_server_gone());
    assert_eq!(server.counters.accepted(), 0);
}

#[test]
fn oversized_preauth_frame_closes() {
    let server = Server::start(&tcp_any(), KEY, WireConfig::default());
    let Address::Tcp(a) = &server.addr else {
        unreachable!()
    };
    // A header announcing 257 bytes (or 4 GiB) and only a few of them:
    // the server refuses it on the header, without waiting for the rest.
    for len in [PREAUTH_MAX_FRAME as u32 + 1, u32::MAX] {
        let mut s = TcpStream::connect(a).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let (kind, _) = read_raw(&mut s);
        assert_eq!(kind, Kind::NetChallenge);
        let mut f = raw_frame(Kind::NetResponse, &[0x80; 10]);
        f[4..8].copy_from_slice(&len.to_le_bytes());
        s.write_all(&f).unwrap();
        let rest = read_to_eof(&mut s);
        // A Failure naming the size, then the close.
        let (kind, body) = read_raw(&mut &rest[..]);
        assert_eq!(kind, Kind::NetFailure);
        let f = decode_failure(&body).unwrap();
        assert!(f.reason.contains(&len.to_string()), "{f:?}");
    }
    server.wait_for("the failures counted", |c| c.failed() == 2);
    // The next good client is served.
    let _c = connect(&server.addr, KEY, &WireConfig::default(), b"next").unwrap();
    assert_eq!(server.next().first, b"next");
}

#[test]
fn slowloris_does_not_block_clients() {
    let timeout = Duration::from_secs(3);
    let server = Server::start(
        &tcp_any(),
        KEY,
        WireConfig {
            preauth_timeout: timeout,
            ..WireConfig::default()
        },
    );
    let Address::Tcp(a) = server.addr.clone() else {
        unreachable!()
    };
    let before = threads();
    // 63 slow sockets: half send nothing, half a byte at a time.
    let mut slow: Vec<(TcpStream, Instant)> = Vec::new();
    let dribble = |s: &TcpStream| s.try_clone().unwrap();
    let mut dribblers = Vec::new();
    for i in 0..MAX_PREAUTH - 1 {
        let s = TcpStream::connect(a).unwrap();
        if i % 2 == 1 {
            dribblers.push(dribble(&s));
        }
        slow.push((s, Instant::now()));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let dribbler = thread::spawn(move || {
        // A valid start of a response frame, one byte per round.
        let bytes = raw_frame(Kind::NetResponse, &[0x80; 200]);
        let mut at = 0;
        while !stop2.load(Ordering::SeqCst) && at < bytes.len() {
            for s in &mut dribblers {
                let _ = s.write(&bytes[at..at + 1]);
            }
            at += 1;
            thread::sleep(Duration::from_millis(50));
        }
    });
    server.wait_for("63 sockets authenticating", |c| c.pending() == 63);
    // No thread per socket.
    assert!(
        threads() <= before + 8,
        "threads grew from {before} to {}",
        threads()
    );
    // A good client is served promptly, long before the deadline.
    let t = Instant::now();
    let _c = connect(&server.addr, KEY, &WireConfig::default(), b"good").unwrap();
    assert_eq!(server.next().first, b"good");
    assert!(t.elapsed() < timeout / 2, "{:?}", t.elapsed());
    // One more slow socket fills the 64; the 65th is closed at once.
    slow.push((TcpStream::connect(a).unwrap(), Instant::now()));
    server.wait_for("64 sockets authenticating", |c| c.pending() == 64);
    let t = Instant::now();
    let mut extra = TcpStream::connect(a).unwrap();
    extra.set_read_timeout(Some(WAIT)).unwrap();
    assert!(read_to_eof(&mut extra).is_empty(), "no challenge for it");
    assert!(t.elapsed() < timeout / 2, "{:?}", t.elapsed());
    server.wait_for("the refusal counted", |c| c.refused() == 1);
    // The slow ones are closed at their deadline, not before.
    for (s, since) in &mut slow {
        s.set_read_timeout(Some(WAIT)).unwrap();
        let (kind, _) = read_raw(s);
        assert_eq!(kind, Kind::NetChallenge);
        read_to_eof(s);
        let waited = since.elapsed();
        assert!(
            waited + Duration::from_millis(20) >= timeout,
            "closed after {waited:?}"
        );
    }
    server.wait_for("the deadlines counted", |c| c.timed_out() == 64);
    assert_eq!(server.counters.pending(), 0);
    stop.store(true, Ordering::SeqCst);
    dribbler.join().unwrap();
}

#[test]
fn closer_wakes_a_blocked_accept() {
    for addr in [tcp_any(), unix_tmp("close")] {
        let mut acc = Acceptor::bind(&addr, KEY, WireConfig::default()).unwrap();
        let closer = acc.closer();
        let (tx, rx) = mpsc::channel();
        let t = thread::spawn(move || {
            let r = acc.accept();
            tx.send(()).unwrap();
            (r, acc)
        });
        // Blocked: nothing comes out before the close.
        assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
        let at = Instant::now();
        closer.close();
        rx.recv_timeout(WAIT).unwrap();
        assert!(at.elapsed() < Duration::from_secs(2), "{:?}", at.elapsed());
        let (r, mut acc) = t.join().unwrap();
        assert!(r.unwrap_err().is_server_gone());
        // And every later call, at once.
        assert!(acc.accept().unwrap_err().is_server_gone());
    }
}

#[test]
fn close_drops_the_handshakes_under_way() {
    let server = Server::start(&tcp_any(), KEY, WireConfig::default());
    let Address::Tcp(a) = server.addr.clone() else {
        unreachable!()
    };
    let mut s = TcpStream::connect(a).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    server.wait_for("one pending", |c| c.pending() == 1);
    drop(server);
    let (kind, _) = read_raw(&mut s);
    assert_eq!(kind, Kind::NetChallenge);
    read_to_eof(&mut s);
}

#[test]
fn binding_a_bound_address_is_an_error_and_unix_path_is_removed() {
    let a = Acceptor::bind(&tcp_any(), KEY, WireConfig::default()).unwrap();
    let e = Acceptor::bind(a.address(), KEY, WireConfig::default()).unwrap_err();
    assert!(
        matches!(&e, ManagerError::Io(io) if io.kind() == io::ErrorKind::AddrInUse),
        "{e:?}"
    );
    let addr = unix_tmp("twice");
    let Address::Unix(p) = &addr else {
        unreachable!()
    };
    let u = Acceptor::bind(&addr, KEY, WireConfig::default()).unwrap();
    let e = Acceptor::bind(&addr, KEY, WireConfig::default()).unwrap_err();
    assert!(
        matches!(&e, ManagerError::Io(io) if io.kind() == io::ErrorKind::AddrInUse),
        "{e:?}"
    );
    assert!(p.exists(), "a failed bind leaves the first one's path");
    drop(u);
    assert!(!p.exists(), "the path goes with the acceptor");
}

#[test]
fn a_silent_server_times_the_client_out() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = Address::Tcp(l.local_addr().unwrap());
    let cfg = WireConfig {
        preauth_timeout: Duration::from_millis(200),
        ..WireConfig::default()
    };
    let t = Instant::now();
    let e = connect(&addr, KEY, &cfg, b"x").unwrap_err();
    assert!(
        matches!(&e, ManagerError::Io(io) if io.kind() == io::ErrorKind::TimedOut),
        "{e:?}"
    );
    assert!(t.elapsed() >= Duration::from_millis(200));
    drop(l);
}

#[test]
fn the_handshake_digests_follow_the_spec() {
    // Client digest: HMAC-SHA256(k, "spindle-c" ‖ v ‖ Ns ‖ Nc).
    let mut m = hmac_key(KEY);
    m.update(b"spindle-c\x01");
    m.update(&[1; 32]);
    m.update(&[2; 32]);
    assert_eq!(
        m.finalize().into_bytes(),
        client_digest(KEY, 1, &[1; 32], &[2; 32])
            .finalize()
            .into_bytes()
    );
    // Session keys: HKDF-SHA256, salt Ns ‖ Nc, one info per direction.
    let hk = Hkdf::<Sha256>::new(Some(&[[1u8; 32], [2u8; 32]].concat()), KEY);
    let mut c2s = [0u8; 32];
    hk.expand(b"spindle-c2s", &mut c2s).unwrap();
    let keys = session_keys(KEY, &[1; 32], &[2; 32]);
    let mut m = hmac_key(&c2s);
    m.update(b"x");
    let mut n = keys.c2s.clone();
    n.update(b"x");
    assert_eq!(m.finalize().into_bytes(), n.finalize().into_bytes());
    let mut n = keys.s2c.clone();
    n.update(b"x");
    let mut m = hmac_key(&c2s);
    m.update(b"x");
    assert_ne!(m.finalize().into_bytes(), n.finalize().into_bytes());
}

/// A tiny deterministic generator (splitmix64) for the decode fuzzing.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }
    /// A valid encoding with a few random changes (flips, cuts, growth).
    fn mutate(&mut self, valid: &[u8]) -> Vec<u8> {
        let mut v = valid.to_vec();
        for _ in 0..1 + self.below(3) {
            match self.below(4) {
                0 if !v.is_empty() => {
                    let i = self.below(v.len());
                    v[i] = self.next() as u8;
                }
                1 => v.truncate(self.below(v.len() + 1)),
                2 => {
                    let i = self.below(v.len() + 1);
                    v.insert(i, self.next() as u8);
                }
                _ if !v.is_empty() => {
                    let i = self.below(v.len());
                    v[i] ^= 1 << self.below(8);
                }
                _ => {}
            }
        }
        v
    }
}

#[test]
fn fuzz_decode_1m() {
    let ch = Challenge {
        versions: vec![1],
        nonce: vec![4; 32],
        mac: true,
    };
    let resp = Response {
        version: 1,
        nonce: vec![6; 32],
        mac: true,
        digest: client_digest(KEY, 1, &[4; 32], &[6; 32])
            .finalize()
            .into_bytes()
            .to_vec(),
    };
    let valid_ch = encode(&ch).unwrap();
    let valid_resp = encode(&resp).unwrap();
    let valid_w = encode(&Welcome {
        digest: vec![9; 32],
    })
    .unwrap();
    let valid_f = encode(&Failure {
        code: "auth".into(),
        reason: "no".into(),
    })
    .unwrap();
    // The decoders accept their valid inputs.
    assert_eq!(decode_challenge(&valid_ch).unwrap(), ch);
    verify_response(KEY, &ch, &valid_resp).unwrap();
    decode_welcome(&valid_w).unwrap();
    decode_failure(&valid_f).unwrap();
    let keys = session_keys(KEY, &[4; 32], &[6; 32]);
    let mut sink = FrameSink {
        stream: Stream::Unix(UnixStream::pair().unwrap().0),
        buf: Vec::new(),
        key: Some(keys.c2s.clone()),
        seq: 0,
        max_frame: 1 << 10,
    };
    sink.seal_into_buf(b"a valid frame").unwrap();
    let valid_frame = sink.buf.clone();
    assert_eq!(
        open_frame(Some(&keys.c2s), 0, 1 << 10, &valid_frame).unwrap(),
        b"a valid frame"
    );

    let mut rng = Rng(0x5EED_0F5B_1DD1);
    let n = 1_000_000;
    for i in 0..n {
        let valid: &[u8] = match i % 5 {
            0 => &valid_ch,
            1 => &valid_resp,
            2 => &valid_w,
            3 => &valid_f,
            _ => &valid_frame,
        };
        let input = if i % 2 == 0 {
            rng.bytes(300)
        } else {
            rng.mutate(valid)
        };
        // Every outcome is a value or a typed error; a panic fails the
        // test. A changed response or frame never verifies.
        match i % 5 {
            0 => drop(decode_challenge(&input)),
            1 => {
                // (MessagePack may spell a value several ways: the
                // digest covers the values, which must be the same.)
                if let Ok(r) = verify_response(KEY, &ch, &input) {
                    assert_eq!(r, resp, "{input:?}");
                }
            }
            2 => drop(decode_welcome(&input)),
            3 => drop(decode_failure(&input)),
            _ => {
                let r = open_frame(Some(&keys.c2s), 0, 1 << 10, &input);
                assert!(r.is_err() || input == valid, "{input:?}");
            }
        }
    }
}

#[test]
fn fuzz_socket_10k() {
    use proptest::collection::vec;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let server = Server::start(&unix_tmp("fuzz"), KEY, WireConfig::default());
    let Address::Unix(path) = server.addr.clone() else {
        unreachable!()
    };
    let before = threads();
    // Random bytes, or a spindle header of a Net kind and a random length
    // followed by random bytes.
    let one = prop_oneof![
        vec(any::<u8>(), 0..300),
        (16u8..=20, 0u32..400, vec(any::<u8>(), 0..300)).prop_map(|(k, len, body)| {
            let mut v = vec![b'S', b'P', frame::PROTOCOL_VERSION, k];
            v.extend_from_slice(&len.to_le_bytes());
            v.extend_from_slice(&body);
            v
        }),
    ];
    let mut runner = TestRunner::new(Config {
        cases: 100,
        failure_persistence: None,
        ..Config::default()
    });
    let sent = std::cell::Cell::new(0u64);
    runner
        .run(&vec(one, 100), |strings| {
            for bytes in &strings {
                let mut s = UnixStream::connect(&path).unwrap();
                s.set_read_timeout(Some(WAIT)).unwrap();
                let _ = s.write_all(bytes);
                let _ = s.shutdown(Shutdown::Write);
                // The server closes it: a challenge, maybe a failure, EOF.
                read_to_eof(&mut s);
                sent.set(sent.get() + 1);
            }
            // A good client is still served.
            let _c = connect(&server.addr, KEY, &WireConfig::default(), b"good").unwrap();
            prop_assert_eq!(server.next().first, b"good".to_vec());
            Ok(())
        })
        .unwrap();
    let sent = sent.get();
    assert!(sent >= 10_000);
    server.wait_for("every socket settled", |c| {
        c.failed() + c.accepted() == sent + 100 && c.pending() == 0
    });
    assert_eq!(server.counters.accepted(), 100);
    assert!(
        threads() <= before + 8,
        "threads grew from {before} to {}",
        threads()
    );
}

/// The encodings docs/PROTOCOL.md shows, byte for byte where it does.
#[test]
fn handshake_messages_are_as_documented() {
    let ch = encode(&Challenge {
        versions: vec![1],
        nonce: vec![0xAA; 32],
        mac: true,
    })
    .unwrap();
    assert_eq!(ch.len(), 57);
    let mut want = vec![0x83, 0xa8];
    want.extend_from_slice(b"versions");
    want.extend_from_slice(&[0x91, 0x01, 0xa5]);
    want.extend_from_slice(b"nonce");
    want.extend_from_slice(&[0xc4, 0x20]);
    want.extend_from_slice(&[0xAA; 32]);
    want.push(0xa3);
    want.extend_from_slice(b"mac");
    want.push(0xc3);
    assert_eq!(ch, want);
    let resp = encode(&Response {
        version: 1,
        nonce: vec![1; 32],
        mac: false,
        digest: vec![2; 32],
    })
    .unwrap();
    assert_eq!(resp.len(), 96);
    let w = encode(&Welcome {
        digest: vec![3; 32],
    })
    .unwrap();
    assert_eq!(w.len(), 42);
    assert!(ch.len().max(resp.len()).max(w.len()) <= PREAUTH_MAX_FRAME);
    // The longest failure fits a handshake frame too.
    let f = failure_frame("protocol", &"x".repeat(1000));
    assert!(f.len() - HEADER_LEN <= PREAUTH_MAX_FRAME, "{}", f.len());
    // The transcript of the welcome, field by field.
    let chv = Challenge {
        versions: vec![1, 7],
        nonce: vec![4; 32],
        mac: true,
    };
    let r = Response {
        version: 1,
        nonce: vec![5; 32],
        mac: true,
        digest: vec![6; 32],
    };
    let mut m = hmac_key(KEY);
    m.update(b"spindle-s");
    m.update(&[2, 1, 7, 1]);
    m.update(&[4; 32]);
    m.update(&[1, 1]);
    m.update(&[5; 32]);
    m.update(&[6; 32]);
    assert_eq!(
        m.finalize().into_bytes(),
        server_digest(KEY, &chv, &r).finalize().into_bytes()
    );
}

/// A frame after the handshake: header (len = payload + 16), payload, and
/// the first 16 bytes of HMAC-SHA256(K_dir, seq ‖ header ‖ payload).
#[test]
fn frames_are_as_documented() {
    let keys = session_keys(KEY, &[1; 32], &[2; 32]);
    let mut sink = FrameSink {
        stream: Stream::Unix(UnixStream::pair().unwrap().0),
        buf: Vec::new(),
        key: Some(keys.c2s.clone()),
        seq: 0,
        max_frame: MAX_FRAME,
    };
    for seq in 0..3u64 {
        sink.seal_into_buf(b"abc").unwrap();
        let f = &sink.buf;
        assert_eq!(&f[..8], &[b'S', b'P', 2, 20, 19, 0, 0, 0]);
        assert_eq!(&f[8..11], b"abc");
        let mut m = keys.c2s.clone();
        m.update(&seq.to_le_bytes());
        m.update(&f[..11]);
        assert_eq!(&f[11..], &m.finalize().into_bytes()[..16]);
        assert_eq!(
            open_frame(Some(&keys.c2s), seq, MAX_FRAME, f).unwrap(),
            b"abc"
        );
        assert!(open_frame(Some(&keys.s2c), seq, MAX_FRAME, f).is_err());
    }
}
