//! `spindle serve` end to end: the binary serves named queues, dicts and
//! lists; clients connect with `spindle::manager::Manager::connect` and the
//! key; SIGTERM / SIGINT / a client's `shutdown_server` stop it with exit
//! code 0; bad arguments fail with a message naming the cause (exit 2 for
//! usage errors, 1 for runtime errors).

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use spindle::ipc::Address;
use spindle::manager::{DictProxy, ListProxy, Manager, QueueProxy};
use spindle::queue::BlockingQueue;

/// A fresh directory of the temporary dir, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let p =
            std::env::temp_dir().join(format!("spindle-serve-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A key file holding `key`.
fn key_file(dir: &Dir, key: &[u8]) -> PathBuf {
    let p = dir.0.join("key");
    std::fs::write(&p, key).unwrap();
    p
}

/// A running `spindle serve`, killed on drop if still running.
struct Serve {
    child: Child,
    lines: BufReader<ChildStdout>,
    address: Address,
}

impl Serve {
    fn start(args: &[&str]) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_spindle"))
            .arg("serve")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run spindle serve");
        let mut lines = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        lines.read_line(&mut first).unwrap();
        let address = first
            .strip_suffix('\n')
            .and_then(|l| l.strip_prefix("listening on "))
            .unwrap_or_else(|| panic!("first line {first:?}"))
            .parse()
            .unwrap();
        Serve {
            child,
            lines,
            address,
        }
    }

    fn next_line(&mut self) -> String {
        let mut l = String::new();
        self.lines.read_line(&mut l).unwrap();
        l
    }

    fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), sig).unwrap();
    }

    /// Waits (up to 30 s) for the command to exit.
    fn wait(&mut self) -> ExitStatus {
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < end, "spindle serve did not exit in 30 s");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn spindle_serve(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spindle"))
        .arg("serve")
        .args(args)
        .output()
        .expect("run spindle serve")
}

#[test]
fn serve_on_port_0_queues_reach_clients_and_sigterm_exits_0() {
    let dir = Dir::new("tcp");
    let key = b"a key of twenty-four by";
    let kf = key_file(&dir, key);
    let mut s = Serve::start(&[
        "--bind",
        "127.0.0.1:0",
        "--authkey-file",
        kf.to_str().unwrap(),
        "--queue",
        "get_task_queue",
        "--queue",
        "get_result_queue",
    ]);
    let Address::Tcp(a) = &s.address else {
        panic!("not a TCP address: {}", s.address)
    };
    assert_eq!(a.ip().to_string(), "127.0.0.1");
    assert_ne!(a.port(), 0, "the real port is printed");

    // Two clients: one puts tasks, the other takes them and puts results.
    let boss = Manager::connect(s.address.clone(), key).unwrap();
    let worker = Manager::connect(s.address.clone(), key).unwrap();
    let tasks: QueueProxy<String> = boss.get("get_task_queue").unwrap();
    let results: QueueProxy<String> = boss.get("get_result_queue").unwrap();
    for i in 0..3 {
        tasks.put(format!("task {i}")).unwrap();
    }
    let wtasks: QueueProxy<String> = worker.get("get_task_queue").unwrap();
    let wresults: QueueProxy<String> = worker.get("get_result_queue").unwrap();
    for _ in 0..3 {
        let t = wtasks.get_timeout(Duration::from_secs(10)).unwrap();
        wresults.put(format!("{t} done")).unwrap();
    }
    let got: Vec<String> = (0..3)
        .map(|_| results.get_timeout(Duration::from_secs(10)).unwrap())
        .collect();
    assert_eq!(got, ["task 0 done", "task 1 done", "task 2 done"]);
    // A client with another key is refused, and the server serves on.
    let e = Manager::connect(s.address.clone(), b"not the server's key at all").unwrap_err();
    assert!(e.is_auth(), "{e}");
    assert_eq!(tasks.qsize(), 0, "still serving the others");
    // An unregistered name is an error naming it.
    let e = boss.get::<QueueProxy<String>>("nope").unwrap_err();
    assert!(e.to_string().contains("nope"), "{e}");
    drop((tasks, results, wtasks, wresults, worker));

    // A client blocked in `get` when the server stops sees the queue shut
    // down (a server that is gone reads as a shut-down queue).
    let before = boss.stats().unwrap().channels;
    let waiter = {
        let q: QueueProxy<String> = boss.get("get_task_queue").unwrap();
        std::thread::spawn(move || q.get())
    };
    // Its blocking call runs in a channel thread of its own on the server.
    let end = Instant::now() + Duration::from_secs(10);
    while boss.stats().unwrap().channels <= before {
        assert!(
            Instant::now() < end,
            "the blocked get never reached the server"
        );
        std::thread::sleep(Duration::from_millis(5));
    }

    s.signal(Signal::SIGTERM);
    let status = s.wait();
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert!(waiter.join().unwrap().is_err(), "the blocked get ends");
    drop(boss);
    // The server is gone: connecting fails.
    assert!(Manager::connect(s.address.clone(), key).is_err());
}

#[test]
fn serve_without_a_key_file_writes_a_private_generated_key() {
    let mut s = Serve::start(&["--queue", "q"]);
    let second = s.next_line();
    let path = PathBuf::from(
        second
            .strip_suffix('\n')
            .filter(|l| l.starts_with('/'))
            .unwrap_or_else(|| panic!("second line {second:?}: not the key file's path")),
    );
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.len(), 32);
    let dir = path.parent().unwrap().to_path_buf();
    let dmeta = std::fs::metadata(&dir).unwrap();
    assert_eq!(dmeta.permissions().mode() & 0o777, 0o700);
    assert!(dir.starts_with(std::env::temp_dir()), "{}", dir.display());

    // The file's bytes are the key.
    let key = std::fs::read(&path).unwrap();
    let m = Manager::connect(s.address.clone(), &key).unwrap();
    let q: QueueProxy<String> = m.get("q").unwrap();
    q.put("hello".into()).unwrap();
    assert_eq!(q.get().unwrap(), "hello");
    drop((q, m));

    s.signal(Signal::SIGINT);
    assert_eq!(s.wait().code(), Some(0));
    // The key file and its directory are removed at exit.
    assert!(!path.exists() && !dir.exists(), "{}", dir.display());
}

#[test]
fn serve_a_broker() {
    use spindle::manager::BrokerProxy;
    let dir = Dir::new("broker");
    let key = b"sixteen bytes ok";
    let kf = key_file(&dir, key);
    let mut s = Serve::start(&["--authkey-file", kf.to_str().unwrap(), "--broker", "jobs"]);
    let m = Manager::connect(s.address.clone(), key).unwrap();
    let b: BrokerProxy<String> = m.get("jobs").unwrap();
    b.put(&"job".to_string()).unwrap();
    let d = b.fetch(1, Duration::from_secs(60)).unwrap().remove(0);
    assert_eq!(d.item, "job");
    assert_eq!(b.ack(&[d.id]).unwrap(), 1);
    assert!(b.join_timeout(Duration::from_secs(10)).unwrap());
    drop((b, m));
    s.signal(Signal::SIGTERM);
    assert_eq!(s.wait().code(), Some(0));
}

#[test]
fn serve_on_a_unix_path_with_a_dict_and_a_list_until_a_client_shuts_it_down() {
    let dir = Dir::new("unix");
    let key = b"sixteen bytes ok";
    let kf = key_file(&dir, key);
    let sock = dir.0.join("mgr.sock");
    let mut s = Serve::start(&[
        "--bind",
        sock.to_str().unwrap(),
        "--authkey-file",
        kf.to_str().unwrap(),
        "--dict",
        "d",
        "--list",
        "l",
    ]);
    assert_eq!(s.address, Address::Unix(sock.clone()));
    let m = Manager::connect(s.address.clone(), key).unwrap();
    let d: DictProxy<String, u32> = m.get("d").unwrap();
    let l: ListProxy<u32> = m.get("l").unwrap();
    d.set(&"one".into(), &1).unwrap();
    l.extend(&[1, 2, 3]).unwrap();
    // A second client sees the same objects.
    let m2 = Manager::connect(s.address.clone(), key).unwrap();
    let d2: DictProxy<String, u32> = m2.get("d").unwrap();
    let l2: ListProxy<u32> = m2.get("l").unwrap();
    assert_eq!(d2.get(&"one".into()).unwrap(), Some(1));
    assert_eq!(l2.to_vec().unwrap(), [1, 2, 3]);
    drop((d, l, d2, l2, m2));

    m.shutdown_server().unwrap();
    assert_eq!(s.wait().code(), Some(0));
    assert!(!sock.exists(), "the socket file is removed");
}

#[test]
fn serve_refuses_bad_key_files_naming_the_cause() {
    let dir = Dir::new("keys");
    // Unreadable: a runtime error, exit 1, naming the file.
    let missing = dir.0.join("missing-key");
    let out = spindle_serve(&["--authkey-file", missing.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot read the authkey file") && err.contains("missing-key"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    // Too short: a usage error, exit 2.
    let short = key_file(&dir, b"fifteen bytes!!");
    let out = spindle_serve(&["--authkey-file", short.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("holds 15 bytes") && err.contains("at least 16"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn serve_refuses_bad_addresses_and_repeated_names() {
    let dir = Dir::new("addrs");
    let kf = key_file(&dir, b"a perfectly fine key");
    let kf = kf.to_str().unwrap();
    // Not an address: usage error.
    let out = spindle_serve(&["--bind", "localhost", "--authkey-file", kf]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("\"localhost\" is neither IP:PORT"), "{err}");
    // In use: runtime error.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = spindle_serve(&["--bind", &addr, "--authkey-file", kf]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("cannot listen on {addr}: address in use")),
        "{err}"
    );
    // A Unix path in a directory that does not exist: runtime error.
    let nowhere = Path::new("/nonexistent-spindle-dir/mgr.sock");
    let out = spindle_serve(&["--bind", nowhere.to_str().unwrap(), "--authkey-file", kf]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot listen on /nonexistent-spindle-dir/mgr.sock"),
        "{err}"
    );
    // One name for two objects: usage error.
    let out = spindle_serve(&["--queue", "x", "--list", "x", "--authkey-file", kf]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("\"x\" is given twice"), "{err}");
}

#[test]
fn tour_manager_section_passes_every_check() {
    let out = Command::new(env!("CARGO_BIN_EXE_spindle"))
        .args(["tour", "manager"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert_eq!(text.matches("  ✓ ").count(), 7, "{text}");
    assert!(text.contains("7 checks passed, 0 failed"), "{text}");
    // Listed under its key.
    let out = Command::new(env!("CARGO_BIN_EXE_spindle"))
        .args(["tour", "--list"])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(list.lines().any(|l| l.starts_with("manager ")), "{list}");
}
