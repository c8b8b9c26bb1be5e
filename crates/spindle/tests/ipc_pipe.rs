//! Pipe/Connection tests, ported from CPython's
//! `Lib/test/_test_multiprocessing.py` (`_TestConnection`: test_connection,
//! test_duplex_false, test_spawn_close, test_sendbytes, and the poll tests)
//! and manually rewritten in Rust for spindle.

mod common;

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use spindle::ipc::{Connection, ConnectionError, Pipe, RecvTimeoutError, TryRecvError};
use spindle::process::{Process, StartMethod};

use common::LONG;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Msg {
    id: u32,
    text: String,
    data: Vec<u8>,
}

#[spindle::task]
fn echo(conn: Connection) {
    // CPython's `_echo`: send back every message until end of file.
    while let Ok(b) = conn.recv_bytes() {
        conn.send_bytes(&b).unwrap();
    }
}

/// CPython `test_connection`: values and bytes through a child that echoes.
#[test]
fn echo_through_child() {
    for m in StartMethod::all() {
        let (conn, child_conn) = Pipe(true).unwrap();
        let mut p = Process::builder()
            .task(echo::call(child_conn))
            .start_method(m)
            .start()
            .unwrap();
        assert!(!conn.poll().unwrap());

        let msg = Msg {
            id: 7,
            text: "hé".into(),
            data: vec![1, 2, 3],
        };
        conn.send(&msg).unwrap();
        assert_eq!(conn.recv::<Msg>().unwrap(), msg);

        conn.send_bytes(b"abc").unwrap();
        assert_eq!(conn.recv_bytes().unwrap(), b"abc");

        // send_bytes(buf, offset, size)
        let long = b"0123456789abcdef";
        conn.send_bytes_at(long, 4, Some(3)).unwrap();
        assert_eq!(conn.recv_bytes().unwrap(), b"456");
        conn.send_bytes_at(long, 10, None).unwrap();
        assert_eq!(conn.recv_bytes().unwrap(), b"abcdef");

        // recv_bytes_into, and BufferTooShort handing the message back.
        conn.send_bytes(b"hello").unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(conn.recv_bytes_into(&mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"hello");
        conn.send_bytes(&[9u8; 32]).unwrap();
        match conn.recv_bytes_into(&mut buf) {
            Err(ConnectionError::BufferTooShort(whole)) => assert_eq!(whole, vec![9u8; 32]),
            other => panic!("expected BufferTooShort, got {other:?}"),
        }

        // A megabyte round trip.
        let big: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
        conn.send_bytes(&big).unwrap();
        assert!(conn.poll_timeout(LONG).unwrap());
        assert_eq!(conn.recv_bytes().unwrap(), big);

        // Closing our end makes the child see EOF and exit 0.
        drop(conn);
        p.join_timeout(LONG).unwrap();
    }
}

/// CPython `test_sendbytes` value errors.
#[test]
fn send_bytes_range_errors() {
    let (a, _b) = Pipe(true).unwrap();
    let buf = [0u8; 10];
    for (offset, size) in [(11, None), (5, Some(6)), (usize::MAX, Some(2))] {
        assert!(matches!(
            a.send_bytes_at(&buf, offset, size),
            Err(ConnectionError::OutOfRange { .. })
        ));
    }
    a.send_bytes_at(&buf, 10, None).unwrap(); // empty tail is fine
}

/// CPython `test_duplex_false`.
#[test]
fn one_way_pipe_directions() {
    let (reader, writer) = Pipe(false).unwrap();
    assert!(reader.readable() && !reader.writable());
    assert!(writer.writable() && !writer.readable());
    writer.send(&1u32).unwrap();
    assert_eq!(reader.recv::<u32>().unwrap(), 1);
    assert!(matches!(
        reader.send(&1u32),
        Err(ConnectionError::NotWritable)
    ));
    assert!(matches!(
        reader.send_bytes(b"x"),
        Err(ConnectionError::NotWritable)
    ));
    assert!(matches!(
        writer.recv::<u32>(),
        Err(ConnectionError::NotReadable)
    ));
    assert!(matches!(
        writer.recv_bytes(),
        Err(ConnectionError::NotReadable)
    ));
    assert!(matches!(writer.poll(), Err(ConnectionError::NotReadable)));
}

/// CPython `_TestPoll`: a wait nobody signals times out; data makes it true.
#[test]
fn poll_timeouts() {
    let (a, b) = Pipe(true).unwrap();
    assert!(!a.poll().unwrap());
    let t = Instant::now();
    assert!(!a.poll_timeout(Duration::from_millis(50)).unwrap());
    assert!(t.elapsed() >= Duration::from_millis(50));
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        b.send(&5u8).unwrap();
        b
    });
    assert!(a.poll_timeout(LONG).unwrap());
    // Too long to represent: waits forever (here: returns at once).
    assert!(a.poll_timeout(Duration::MAX).unwrap());
    assert!(a.poll_deadline(Instant::now()).unwrap());
    assert_eq!(a.recv::<u8>().unwrap(), 5);
    let b = sender.join().unwrap();
    drop(b);
    // End of file also makes poll true, then recv reports it.
    assert!(a.poll_timeout(LONG).unwrap());
    assert!(a.recv::<u8>().unwrap_err().is_eof());
}

/// The four forms of `recv`: `try_recv` on an empty pipe is `Empty` at once,
/// `recv_timeout` / `recv_deadline` on a silent pipe are `Timeout` after the
/// wait; both differ from the peer hanging up (`Eof`) and from a message
/// that does not decode, and neither consumes anything.
#[test]
fn try_recv_and_recv_timeout() {
    let (a, b) = Pipe(true).unwrap();
    assert!(matches!(b.try_recv::<u32>(), Err(TryRecvError::Empty)));
    assert!(b.try_recv_bytes().unwrap_err().is_empty());
    for wait in [Duration::from_millis(50), Duration::ZERO] {
        let t = Instant::now();
        let e = b.recv_timeout::<u32>(wait).unwrap_err();
        assert!(matches!(e, RecvTimeoutError::Timeout) && !e.is_eof(), "{e}");
        assert!(t.elapsed() >= wait);
        let t = Instant::now();
        let e = b.recv_deadline::<u32>(t + wait).unwrap_err();
        assert!(e.is_timeout(), "{e}");
        assert!(t.elapsed() >= wait);
        let t = Instant::now();
        assert!(b.recv_bytes_timeout(wait).unwrap_err().is_timeout());
        assert!(t.elapsed() >= wait);
        let t = Instant::now();
        assert!(b.recv_bytes_deadline(t + wait).unwrap_err().is_timeout());
        assert!(t.elapsed() >= wait);
    }
    // Messages come through every form, in order.
    for i in 0..4u32 {
        a.send(&i).unwrap();
    }
    a.send_bytes(b"raw").unwrap();
    assert_eq!(b.try_recv::<u32>().unwrap(), 0);
    assert_eq!(b.recv_timeout::<u32>(LONG).unwrap(), 1);
    assert_eq!(b.recv_deadline::<u32>(Instant::now() + LONG).unwrap(), 2);
    assert_eq!(b.recv_timeout::<u32>(Duration::MAX).unwrap(), 3);
    assert_eq!(b.try_recv_bytes().unwrap(), b"raw");
    // A message that is not a `T` is a decode error, consumed; the next one
    // still comes.
    a.send(&"text").unwrap();
    a.send(&9u32).unwrap();
    assert!(matches!(
        b.try_recv::<Msg>(),
        Err(TryRecvError::Failed(ConnectionError::Decode(_)))
    ));
    assert_eq!(b.recv_timeout::<u32>(LONG).unwrap(), 9);
    // The peer hangs up: end of file, not empty, not a timeout.
    drop(a);
    assert!(b.try_recv::<u32>().unwrap_err().is_eof());
    let e = b.recv_timeout::<u32>(LONG).unwrap_err();
    assert!(e.is_eof() && !e.is_timeout(), "{e}");
    assert!(b.recv_bytes_deadline(Instant::now()).unwrap_err().is_eof());
    // A send-only end cannot receive.
    let (_r, w) = Pipe(false).unwrap();
    assert!(matches!(
        w.try_recv::<u8>(),
        Err(TryRecvError::Failed(ConnectionError::NotReadable))
    ));
}

/// A receiver that only ever waits briefly (so its waits keep running out
/// in the middle of frames, small ones on the pipe and large ones on the
/// socket) still gets every message whole and in order.
#[test]
fn bounded_receives_lose_nothing_mid_frame() {
    const N: usize = if cfg!(miri) { 10 } else { 100 };
    let (a, b) = Pipe(true).unwrap();
    let size = |i: usize| match i % 5 {
        0 => 3,
        1 => 20_000,
        2 => 60_000,
        3 => 300_000,
        _ => 1 << 20,
    };
    let writer = std::thread::spawn(move || {
        for i in 0..N {
            let v: Vec<u8> = (0..size(i)).map(|j| (i + j) as u8).collect();
            if i % 2 == 0 {
                a.send_bytes(&v).unwrap();
            } else {
                a.send(&v).unwrap();
            }
        }
    });
    let (mut empties, mut timeouts) = (0u64, 0u64);
    for i in 0..N {
        let v = loop {
            let got = match i % 4 {
                0 => b.try_recv_bytes().map_err(|e| e.is_empty()),
                1 => b.try_recv::<Vec<u8>>().map_err(|e| e.is_empty()),
                2 => b
                    .recv_bytes_timeout(Duration::from_micros(200))
                    .map_err(|e| e.is_timeout()),
                _ => b
                    .recv_timeout::<Vec<u8>>(Duration::from_micros(200))
                    .map_err(|e| e.is_timeout()),
            };
            match got {
                Ok(v) => break v,
                Err(true) if i % 4 < 2 => {
                    empties += 1;
                    std::thread::yield_now();
                }
                Err(true) => timeouts += 1,
                Err(false) => panic!("message {i} failed"),
            }
        };
        assert_eq!(v.len(), size(i), "message {i}");
        assert!(v.iter().enumerate().all(|(j, &x)| x == (i + j) as u8));
    }
    writer.join().unwrap();
    assert!(b.try_recv_bytes().unwrap_err().is_eof());
    eprintln!("{empties} empty tries, {timeouts} timeouts");
}

#[spindle::task]
fn send_and_exit(conn: Connection, n: u32) {
    for i in 0..n {
        conn.send(&i).unwrap();
    }
}

/// CPython `test_spawn_close`: EOF after the peer process exits, with every
/// message before it delivered.
#[test]
fn eof_after_peer_exits() {
    for m in StartMethod::all() {
        let (a, b) = Pipe(true).unwrap();
        let mut p = Process::builder()
            .task(send_and_exit::call(b, 100))
            .start_method(m)
            .start()
            .unwrap();
        p.join_timeout(LONG).unwrap();
        for i in 0..100 {
            assert_eq!(a.recv::<u32>().unwrap(), i);
        }
        assert!(a.recv::<u32>().unwrap_err().is_eof(), "{m:?}");
    }
}

/// Frames over the limit are rejected before allocation and skipped; the
/// connection stays usable.
#[test]
fn frame_limit() {
    let (a, b) = Pipe(true).unwrap();
    b.set_max_frame(100);
    assert_eq!(b.max_frame(), 100);
    a.send_bytes(&[1u8; 1000]).unwrap();
    a.send_bytes(b"small").unwrap();
    assert!(matches!(
        b.recv_bytes(),
        Err(ConnectionError::TooLarge {
            len: 1000,
            limit: 100
        })
    ));
    assert_eq!(b.recv_bytes().unwrap(), b"small");
    a.send_bytes(&[1u8; 50]).unwrap();
    assert!(matches!(
        b.recv_bytes_max(10),
        Err(ConnectionError::TooLarge { len: 50, limit: 10 })
    ));
    a.send_bytes(&[1u8; 1000]).unwrap();
    let mut buf = [0u8; 2000];
    assert!(matches!(
        b.recv_bytes_into(&mut buf),
        Err(ConnectionError::TooLarge { .. })
    ));
    a.send(&"still fine").unwrap();
    assert_eq!(b.recv::<String>().unwrap(), "still fine");
}

/// Garbage on the wire is a typed error, never a panic or a huge allocation.
#[test]
fn decode_errors_are_typed() {
    let (a, b) = Pipe(true).unwrap();
    a.send(&"text").unwrap();
    assert!(matches!(b.recv::<Msg>(), Err(ConnectionError::Decode(_))));
    // A Connection cannot be sent as a plain value.
    let (c, _d) = Pipe(true).unwrap();
    assert!(matches!(a.send(&c), Err(ConnectionError::Encode(_))));
}

/// Several threads share one end without interleaving frames.
#[test]
fn threads_share_a_connection() {
    const PER: u32 = if cfg!(miri) { 10 } else { 2000 };
    let (a, b) = Pipe(true).unwrap();
    let a = std::sync::Arc::new(a);
    let senders: Vec<_> = (0..4u32)
        .map(|t| {
            let a = a.clone();
            std::thread::spawn(move || {
                for i in 0..PER {
                    a.send(&(t, i, vec![t as u8; (i % 300) as usize])).unwrap();
                }
            })
        })
        .collect();
    let mut next = [0u32; 4];
    for _ in 0..4 * PER {
        let (t, i, v): (u32, u32, Vec<u8>) = b.recv().unwrap();
        assert_eq!(i, next[t as usize]);
        assert_eq!(v.len(), (i % 300) as usize);
        next[t as usize] += 1;
    }
    for s in senders {
        s.join().unwrap();
    }
}

/// Many frames sent before the reader wakes arrive in one read of the
/// receive buffer and come out one by one; mixed sizes straddle the buffer's
/// edges (the 16 KiB buffer, direct reads of large remainders).
#[test]
fn buffered_frames_of_mixed_sizes() {
    let (a, b) = Pipe(true).unwrap();
    let sizes: Vec<usize> = vec![
        0, 1, 7, 8, 9, 100, 8191, 8192, 16383, 16384, 16385, 40000, 3, 200_000, 5,
    ];
    let writer = std::thread::spawn(move || {
        for (i, &n) in sizes.iter().enumerate() {
            let v: Vec<u8> = (0..n).map(|j| (i + j) as u8).collect();
            if i % 2 == 0 {
                a.send_bytes(&v).unwrap();
            } else {
                a.send(&v).unwrap();
            }
        }
        sizes
    });
    // Let the writer run ahead so that several frames wait in the pipe.
    std::thread::sleep(Duration::from_millis(50));
    let mut i = 0;
    let mut got = Vec::new();
    loop {
        let v = if i % 2 == 0 {
            match b.recv_bytes() {
                Ok(v) => v,
                Err(e) if e.is_eof() => break,
                Err(e) => panic!("{e}"),
            }
        } else {
            match b.recv::<Vec<u8>>() {
                Ok(v) => v,
                Err(e) if e.is_eof() => break,
                Err(e) => panic!("{e}"),
            }
        };
        assert!(v.iter().enumerate().all(|(j, &x)| x == (i + j) as u8));
        got.push(v.len());
        i += 1;
        // A waiting frame keeps poll true even when its bytes are buffered.
        if i == 3 {
            assert!(b.poll().unwrap());
        }
    }
    assert_eq!(got, writer.join().unwrap());
}

/// recv_bytes_into with frames already buffered, including one too long for
/// the buffer given.
#[test]
fn recv_bytes_into_from_buffer() {
    let (a, b) = Pipe(true).unwrap();
    a.send_bytes(b"one").unwrap();
    a.send_bytes(&[5u8; 40]).unwrap();
    a.send_bytes(b"three").unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(b.recv_bytes_into(&mut buf).unwrap(), 3);
    assert_eq!(&buf[..3], b"one");
    match b.recv_bytes_into(&mut buf) {
        Err(ConnectionError::BufferTooShort(whole)) => assert_eq!(whole, vec![5u8; 40]),
        other => panic!("expected BufferTooShort, got {other:?}"),
    }
    assert_eq!(b.recv_bytes_into(&mut buf).unwrap(), 5);
    assert_eq!(&buf[..5], b"three");
}

#[spindle::task]
fn recv_one(conn: Connection) -> u32 {
    conn.recv().unwrap()
}

/// An end holding received but unread bytes cannot be passed to a child
/// (they would be lost to it): a typed error at start. Once they are read it
/// can, and the child reads what follows.
#[test]
fn passing_an_end_with_unread_bytes_is_refused() {
    let (a, b) = Pipe(true).unwrap();
    a.send(&1u32).unwrap();
    a.send(&2u32).unwrap();
    // One read takes both frames from the pipe; the second stays buffered.
    assert_eq!(b.recv::<u32>().unwrap(), 1);
    let err = Process::builder()
        .task(recv_one::call(b))
        .start()
        .unwrap_err();
    assert!(err.to_string().contains("cannot encode"), "{err}");

    let (a, b) = Pipe(true).unwrap();
    a.send(&1u32).unwrap();
    assert_eq!(b.recv::<u32>().unwrap(), 1);
    let mut p = Process::builder().task(recv_one::call(b)).start().unwrap();
    a.send(&7u32).unwrap();
    p.join_timeout(LONG).unwrap();
}

/// A one-way pipe also crosses into a child, and the child's end of file
/// reaches the reader.
#[test]
fn one_way_pipe_to_child() {
    for m in StartMethod::all() {
        let (r, w) = Pipe(false).unwrap();
        let mut p = Process::builder()
            .task(send_and_exit::call(w, 3))
            .start_method(m)
            .start()
            .unwrap();
        for i in 0..3 {
            assert_eq!(r.recv::<u32>().unwrap(), i);
        }
        assert!(r.recv::<u32>().unwrap_err().is_eof(), "{m:?}");
        p.join_timeout(LONG).unwrap();
    }
}

/// Large payloads (64 KiB and more) travel beside the pipe; the limit, the
/// skip, recv_bytes_into and BufferTooShort behave the same for them, and
/// order with small frames is kept.
#[test]
fn large_frames_limits_and_order() {
    let (a, b) = Pipe(true).unwrap();
    let big: Vec<u8> = (0..300_000).map(|i| (i % 253) as u8).collect();
    let writer = {
        let big = big.clone();
        std::thread::spawn(move || {
            a.send_bytes(&big).unwrap(); // over the limit below: skipped
            a.send_bytes(b"after").unwrap();
            a.send_bytes(&big[..70_000]).unwrap();
            a.send_bytes(&big[..65_536]).unwrap(); // into a short buffer
            a.send(&big).unwrap(); // a large serde value
            a.send_bytes(&big[..65_535]).unwrap(); // just under: in the pipe
            a
        })
    };
    b.set_max_frame(100_000);
    assert!(matches!(
        b.recv_bytes(),
        Err(ConnectionError::TooLarge {
            len: 300_000,
            limit: 100_000
        })
    ));
    assert_eq!(b.recv_bytes().unwrap(), b"after");
    let mut buf = vec![0u8; 80_000];
    assert_eq!(b.recv_bytes_into(&mut buf).unwrap(), 70_000);
    assert_eq!(&buf[..70_000], &big[..70_000]);
    let mut short = [0u8; 10];
    match b.recv_bytes_into(&mut short) {
        Err(ConnectionError::BufferTooShort(whole)) => assert_eq!(whole, &big[..65_536]),
        other => panic!("expected BufferTooShort, got {other:?}"),
    }
    b.set_max_frame(1 << 20);
    assert_eq!(b.recv::<Vec<u8>>().unwrap(), big);
    assert_eq!(b.recv_bytes().unwrap(), &big[..65_535]);
    drop(writer.join().unwrap());
    assert!(b.recv_bytes().unwrap_err().is_eof());
}
