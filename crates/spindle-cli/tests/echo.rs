//! `spindle echo serve` and `spindle echo load` end to end. Servers bind
//! port 0 on 127.0.0.1, report the port on their first line, and are
//! stopped by pid (SIGTERM). Connection tasks ending is seen from outside
//! through the server's open file descriptors (`/proc/PID/fd`): a
//! connection's socket is closed when its task ends.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

struct Server {
    child: Child,
    addr: SocketAddr,
    first_line: String,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_spindle"))
            .args(["echo", "serve", "--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("run spindle echo serve");
        let mut first_line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first_line)
            .unwrap();
        let addr = first_line
            .trim_end()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("first line {first_line:?}"))
            .parse()
            .unwrap();
        Server {
            child,
            addr,
            first_line,
        }
    }

    /// The server's open sockets.
    fn sockets(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter(|p| p.to_string_lossy().starts_with("socket:"))
            .count()
    }

    /// Waits (up to 10 s) until the server holds `n` sockets.
    fn wait_sockets(&self, n: usize) {
        let end = Instant::now() + Duration::from_secs(10);
        while self.sockets() != n {
            assert!(
                Instant::now() < end,
                "the server holds {} sockets, not {n}",
                self.sockets()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

fn round_trip(s: &mut TcpStream, line: &[u8]) -> Vec<u8> {
    s.write_all(line).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut got = Vec::new();
    r.read_until(b'\n', &mut got).unwrap();
    got
}

const MODES: [&str; 2] = ["--aio", "--threads"];

#[test]
fn echo_serve_prints_listening_on_first() {
    for mode in MODES {
        let s = Server::start(&[mode]);
        assert!(
            s.first_line.starts_with("listening on 127.0.0.1:"),
            "{mode}"
        );
        assert_ne!(s.addr.port(), 0, "{mode}");
        assert!(s.first_line.ends_with('\n'));
    }
}

#[test]
fn echo_serve_prefix_and_plain() {
    for mode in MODES {
        let plain = Server::start(&[mode]);
        let mut c = TcpStream::connect(plain.addr).unwrap();
        assert_eq!(round_trip(&mut c, b"same line\n"), b"same line\n", "{mode}");
        let got = Server::start(&[mode, "--prefix", "GOT:"]);
        let mut c = TcpStream::connect(got.addr).unwrap();
        assert_eq!(round_trip(&mut c, b"hello\n"), b"GOT:hello\n", "{mode}");
    }
}

#[test]
fn echo_overlong_line_closes() {
    for mode in MODES {
        let s = Server::start(&[mode]);
        let mut ok = TcpStream::connect(s.addr).unwrap();
        assert_eq!(round_trip(&mut ok, b"first\n"), b"first\n", "{mode}");
        // (The threads server holds two descriptors per connection.)
        let with_ok = s.sockets();
        let mut long = TcpStream::connect(s.addr).unwrap();
        let mut bad = vec![b'y'; 64 * 1024];
        bad.push(b'\n');
        let _ = long.write_all(&bad);
        long.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut got = Vec::new();
        match long.read_to_end(&mut got) {
            Ok(_) => assert!(got.is_empty(), "{mode}: answered an overlong line"),
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{mode}"),
        }
        assert_eq!(round_trip(&mut ok, b"fine\n"), b"fine\n", "{mode}");
        s.wait_sockets(with_ok);
    }
}

#[test]
fn echo_reset_mid_line_ends_only_its_connection() {
    for mode in MODES {
        let s = Server::start(&[mode]);
        let base = s.sockets();
        let mut a = TcpStream::connect(s.addr).unwrap();
        assert_eq!(round_trip(&mut a, b"a\n"), b"a\n", "{mode}");
        let with_a = s.sockets();
        assert!(with_a > base, "{mode}");
        let mut b = TcpStream::connect(s.addr).unwrap();
        assert_eq!(round_trip(&mut b, b"b\n"), b"b\n", "{mode}");
        assert!(s.sockets() > with_a, "{mode}");
        b.write_all(b"half a li").unwrap();
        let linger = nix::libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        nix::sys::socket::setsockopt(&b, nix::sys::socket::sockopt::Linger, &linger).unwrap();
        drop(b);
        s.wait_sockets(with_a);
        assert_eq!(round_trip(&mut a, b"again\n"), b"again\n", "{mode}");
    }
}

#[test]
fn echo_1000_connects_leave_no_connection() {
    for mode in MODES {
        let s = Server::start(&[mode]);
        let base = s.sockets();
        for i in 0..1000 {
            let mut c = TcpStream::connect(s.addr).unwrap();
            if i % 2 == 1 {
                assert_eq!(round_trip(&mut c, b"x\n"), b"x\n", "{mode}");
            }
        }
        // The last one answered: the server has accepted every connection.
        let mut last = TcpStream::connect(s.addr).unwrap();
        assert_eq!(round_trip(&mut last, b"last\n"), b"last\n", "{mode}");
        drop(last);
        s.wait_sockets(base);
    }
}

#[test]
fn echo_load_against_serve() {
    for mode in MODES {
        let s = Server::start(&[mode]);
        let out = Command::new(env!("CARGO_BIN_EXE_spindle"))
            .args(["echo", "load", "--connect", &s.addr.to_string()])
            .args(["--conns", "3", "--rounds", "20"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        let num = |line: &str, key: &str, unit: &str| -> f64 {
            line.strip_prefix(key)
                .and_then(|r| r.strip_suffix(unit))
                .unwrap_or_else(|| panic!("{line:?}"))
                .trim()
                .parse()
                .unwrap()
        };
        assert!(num(lines[0], "echo.throughput:", "rt/s") > 0.0);
        let p50 = num(lines[1], "echo.p50_us:", "");
        let p99 = num(lines[2], "echo.p99_us:", "");
        assert!(p50 <= p99, "{text}");
    }
    // A server that prefixes its replies fails the load's check, by name.
    let s = Server::start(&["--prefix", "GOT:"]);
    let out = Command::new(env!("CARGO_BIN_EXE_spindle"))
        .args(["echo", "load", "--connect", &s.addr.to_string()])
        .args(["--conns", "1", "--rounds", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not the line sent"), "{err}");
}

#[test]
fn tour_aio_section_passes_every_check() {
    let out = Command::new(env!("CARGO_BIN_EXE_spindle"))
        .args(["tour", "aio"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert_eq!(text.matches("  ✓ ").count(), 5, "{text}");
    assert!(text.contains("5 checks passed, 0 failed"), "{text}");
}

#[test]
fn echo_bad_addresses_are_errors_naming_them() {
    // A port in use: serve fails, naming the address.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_spindle"))
        .args(["echo", "serve", "--port", &port])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{err}"
    );
    // Nothing listening: load fails at connection 0's connect.
    let addr = taken.local_addr().unwrap();
    drop(taken);
    let out = Command::new(env!("CARGO_BIN_EXE_spindle"))
        .args(["echo", "load", "--connect", &addr.to_string()])
        .args(["--conns", "2", "--rounds", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("connection 0: connect:"), "{err}");
    // Not an address at all.
    let out = Command::new(env!("CARGO_BIN_EXE_spindle"))
        .args(["echo", "load", "--connect", "no-port-here"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--connect no-port-here"), "{err}");
}
