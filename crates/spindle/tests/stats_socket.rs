//! The stats socket (`spindle::stats::serve`): one JSON line per
//! connection, written by the crate's own JSON writer and read back by
//! serde_json byte for byte; the socket's mode 0600; a path in use; a
//! peer that sends bytes or does not read; closing removes the socket.

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;

use spindle::futures::{Executor, ThreadPoolExecutor, fallible};
use spindle::queue::Queue;
use spindle::stats::{self, Sources, Status};

/// A fresh directory, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let d =
            std::env::temp_dir().join(format!("spindle-stats-sock-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn read(path: &std::path::Path) -> String {
    let mut s = String::new();
    UnixStream::connect(path)
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    s
}

#[test]
fn one_json_line_per_connection_that_serde_json_reads_back_exactly() {
    let dir = Dir::new("line");
    let pool = Arc::new(
        ThreadPoolExecutor::builder()
            .max_workers(2)
            .build()
            .unwrap(),
    );
    pool.submit(|| 1).unwrap().result().unwrap();
    pool.submit(fallible(|| Err::<u8, _>("no")))
        .unwrap()
        .exception();
    let q: Arc<Queue<u32>> = Arc::new(Queue::new());
    q.put(1).unwrap();
    q.put(2).unwrap();
    let sources = Sources::new()
        .pool("work \"quoted\"\nname", {
            let p = pool.clone();
            move || p.stats()
        })
        .queue("jobs", {
            let q = q.clone();
            move || q.stats()
        });
    let server = stats::serve(dir.0.join("s.sock"), sources).unwrap();
    let line = read(server.path());
    assert!(line.ends_with('\n'));
    assert_eq!(line.matches('\n').count(), 1, "one line: {line:?}");
    let status: Status = serde_json::from_str(&line).unwrap();
    // The crate's writer and serde_json agree byte for byte.
    assert_eq!(serde_json::to_string(&status).unwrap(), line.trim_end());
    assert_eq!(status.pid, std::process::id());
    assert!(status.unix_ms >= status.started_unix_ms);
    assert_eq!(status.uptime_ms, status.unix_ms - status.started_unix_ms);
    let p = &status.pools["work \"quoted\"\nname"];
    assert_eq!(
        (p.tasks_submitted, p.tasks_completed, p.tasks_failed),
        (2, 1, 1)
    );
    let qs = &status.queues["jobs"];
    assert_eq!((qs.qsize, qs.puts, qs.gets), (2, 2, 0));
    // Each connection gets its own snapshot.
    q.get().unwrap();
    let again: Status = serde_json::from_str(&read(server.path())).unwrap();
    assert_eq!(again.queues["jobs"].gets, 1);
    assert_eq!(server.served(), 2);
}

#[test]
fn the_socket_is_mode_0600_and_removed_when_closed() {
    let dir = Dir::new("mode");
    let path = dir.0.join("s.sock");
    let server = stats::serve(&path, Sources::new()).unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    server.close();
    assert!(!path.exists());
    assert!(UnixStream::connect(&path).is_err());
}

#[test]
fn a_path_in_use_is_refused_and_left_alone() {
    let dir = Dir::new("inuse");
    let path = dir.0.join("s.sock");
    std::fs::write(&path, b"mine").unwrap();
    let e = stats::serve(&path, Sources::new()).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
    assert!(e.to_string().contains(path.to_str().unwrap()), "{e}");
    assert_eq!(std::fs::read(&path).unwrap(), b"mine");
    let e = stats::serve(dir.0.join("missing/s.sock"), Sources::new()).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{e}");
    let long = dir.0.join("x".repeat(120));
    let e = stats::serve(long, Sources::new()).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}");
}

#[test]
fn peers_that_talk_or_do_not_read_hold_nobody_up() {
    let dir = Dir::new("peers");
    let server = stats::serve(dir.0.join("s.sock"), Sources::new()).unwrap();
    // Sends a lot and never reads: its bytes are not read.
    let mut chatty = UnixStream::connect(server.path()).unwrap();
    chatty
        .set_write_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let _ = chatty.write_all(&vec![b'x'; 1 << 20]);
    // Holds a connection open without reading.
    let _silent = UnixStream::connect(server.path()).unwrap();
    for _ in 0..3 {
        let s: Status = serde_json::from_str(&read(server.path())).unwrap();
        assert!(s.pools.is_empty());
    }
}

#[test]
fn a_panicking_source_closes_its_connection_and_the_server_goes_on() {
    let dir = Dir::new("panic");
    let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let sources = Sources::new().queue("q", {
        let calls = calls.clone();
        move || {
            if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                panic!("first snapshot fails");
            }
            Queue::<u8>::new().stats()
        }
    });
    let server = stats::serve(dir.0.join("s.sock"), sources).unwrap();
    assert_eq!(read(server.path()), "");
    let s: Status = serde_json::from_str(&read(server.path())).unwrap();
    assert_eq!(s.queues["q"].puts, 0);
}
