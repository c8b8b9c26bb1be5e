//! `spindle status --manager`: a manager server's counters as a table or
//! JSON, once or `--watch`ed; an unreachable server exits 2 with one line.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Command, Output};

use spindle::manager::{BaseManager, QueueProxy, Typeid};

const KEY: &[u8] = b"status-tests-key-0123456789abcdef";

/// A key file in a fresh directory, removed on drop.
struct KeyFile(PathBuf);

impl KeyFile {
    fn new(name: &str, key: &[u8]) -> KeyFile {
        let dir =
            std::env::temp_dir().join(format!("spindle-status-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("key");
        std::fs::write(&p, key).unwrap();
        KeyFile(p)
    }
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        if let Some(d) = self.0.parent() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn status(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spindle"))
        .arg("status")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn status_json_and_table_show_the_servers_counters() {
    let server = BaseManager::builder()
        .register("q", Typeid::queue())
        .register("jobs", Typeid::broker())
        .bind("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .authkey(KEY)
        .spawn()
        .unwrap();
    // A client holding a connection and a new object while we look.
    let m = server.connect().unwrap();
    let _q: QueueProxy<u8> = m.queue(0).unwrap();
    let kf = KeyFile::new("json", KEY);
    let addr = server.address().to_string();
    let base = ["--manager", &addr, "--authkey-file", kf.0.to_str().unwrap()];

    let out = status(&[&base[..], &["--json"]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "one snapshot: {text}");
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(v["source"], "manager");
    assert_eq!(v["address"], addr.as_str());
    assert!(v["unix_ms"].as_u64().unwrap() > 0);
    assert_eq!(v["manager"]["objects"], 3, "two registered, one made");
    // Our connection and the status command's own.
    assert_eq!(v["manager"]["connections"], 2);
    assert!(v["manager"]["handshakes_accepted"].as_u64().unwrap() >= 2);

    let out = status(&base);
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.starts_with(&format!("manager {addr}\n")), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["objects", "3"])
    );

    let out = status(&[&base[..], &["--json", "--watch", "20ms", "--count", "3"]].concat());
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 3);
}

#[test]
fn an_unreachable_or_refusing_server_exits_2_with_one_line() {
    let kf = KeyFile::new("bad", KEY);
    // A port nobody listens on.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let out = status(&["--manager", &addr, "--authkey-file", kf.0.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&addr), "{err}");

    // A server that holds another key.
    let server = BaseManager::builder()
        .bind("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .authkey(b"another key of sixteen bytes or more")
        .spawn()
        .unwrap();
    let addr = server.address().to_string();
    let out = status(&["--manager", &addr, "--authkey-file", kf.0.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("authentication"), "{err}");

    // No key file.
    let out = status(&["--manager", &addr, "--authkey-file", "/nonexistent/key"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("/nonexistent/key")
    );
}
