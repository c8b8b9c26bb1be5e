//! The progress bars of `spindle gen-logs` and `spindle robots`: drawn on
//! stderr when it is a terminal (under `script`, which gives the command a
//! pseudo-terminal), never with `--no-progress` or `CI` set, and standard
//! output the same byte for byte with a bar or without (bar the timings,
//! which differ from run to run).

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_spindle");

/// A fresh directory under the temporary dir, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let p =
            std::env::temp_dir().join(format!("spindle-progress-{name}-{}", std::process::id()));
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

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `spindle ARGS` with stderr on a pseudo-terminal (util-linux `script`)
/// and stdout to a file; `ci`: with `CI=true` (else `CI` unset). Returns
/// (stdout, what the terminal got: stderr).
fn on_tty(args: &[&str], ci: bool, out: &Path) -> (String, String) {
    let line = std::iter::once(BIN)
        .chain(args.iter().copied())
        .map(quote)
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmd = Command::new("script");
    cmd.args([
        "-qec",
        &format!("{line} >{}", quote(out.to_str().unwrap())),
        "/dev/null",
    ]);
    // indicatif draws on a terminal whose TERM is not "dumb".
    cmd.env_remove("CI").env("TERM", "xterm");
    if ci {
        cmd.env("CI", "true");
    }
    let run = cmd
        .output()
        .expect("util-linux `script` must be installed (Debian: bsdutils) for this test");
    assert!(run.status.success(), "script {line}: {run:?}");
    let stdout = std::fs::read_to_string(out).unwrap();
    (stdout, String::from_utf8_lossy(&run.stdout).into_owned())
}

/// `spindle ARGS` with stdout and stderr pipes and `CI` unset: (stdout, stderr).
fn piped(args: &[&str]) -> (String, String) {
    let run = Command::new(BIN)
        .args(args)
        .env_remove("CI")
        .env("TERM", "xterm")
        .output()
        .unwrap();
    assert!(run.status.success(), "spindle {args:?}: {run:?}");
    (
        String::from_utf8(run.stdout).unwrap(),
        String::from_utf8(run.stderr).unwrap(),
    )
}

/// `s` with every decimal figure (`0.499`) made `#`: the timings.
fn untimed(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        let mut j = i;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j > i && j + 1 < b.len() && b[j] == b'.' && b[j + 1].is_ascii_digit() {
            j += 1;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            out.push('#');
            i = j;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

#[test]
fn bars_go_to_a_terminal_stderr_only_and_stdout_is_unchanged() {
    let d = Dir::new("bars");
    let logs = d.0.join("logs");
    let logs = logs.to_str().unwrap();
    let out = d.0.join("stdout");
    let cases: [(&[&str], &str); 5] = [
        (
            &["gen-logs", logs, "--files", "6", "--lines", "20000"],
            "/6 files written",
        ),
        (&["robots", logs, "--mode", "serial"], "/6 files, "),
        (
            &["robots", logs, "--mode", "threads", "--workers", "2"],
            "/6 files, ",
        ),
        (
            &["robots", logs, "--mode", "processes", "--workers", "2"],
            "/6 files, ",
        ),
        (
            &["robots", logs, "--decode-only", "--workers", "2"],
            "/6 files, ",
        ),
    ];
    for (args, bar) in cases {
        let (tty_out, tty) = on_tty(args, false, &out);
        assert!(
            tty.contains(bar),
            "spindle {args:?}: no bar {bar:?} on the terminal: {tty:?}"
        );
        assert!(
            tty.contains("6/6 "),
            "spindle {args:?}: the bar never reached 6/6: {tty:?}"
        );
        let (pipe_out, pipe_err) = piped(args);
        assert!(
            !pipe_err.contains(bar),
            "spindle {args:?}: a bar on a pipe: {pipe_err:?}"
        );
        assert!(!tty_out.is_empty());
        assert_eq!(
            untimed(&tty_out),
            untimed(&pipe_out),
            "spindle {args:?}: stdout differs"
        );
        assert!(
            !tty_out.contains('\r') && !tty_out.contains('\x1b'),
            "{tty_out:?}"
        );
        // `--no-progress` (before or after the command), or `CI`, hides it
        // on a terminal too.
        let mut before = vec!["--no-progress"];
        before.extend_from_slice(args);
        let mut after = args.to_vec();
        after.push("--no-progress");
        for (args, ci) in [(&before, false), (&after, false), (&args.to_vec(), true)] {
            let (o, tty) = on_tty(args, ci, &out);
            assert!(
                !tty.contains(bar),
                "spindle {args:?} (CI: {ci}): a bar: {tty:?}"
            );
            assert_eq!(
                untimed(&o),
                untimed(&pipe_out),
                "spindle {args:?}: stdout differs"
            );
        }
    }
}

#[test]
fn untimed_masks_only_decimal_figures() {
    assert_eq!(
        untimed("time: 0.499 s (Threads, 2 workers, 6 files, 120000 lines)\nhosts: 10\n"),
        "time: # s (Threads, 2 workers, 6 files, 120000 lines)\nhosts: 10\n"
    );
}

/// `spindle worker`'s bar: tasks done, on a terminal's stderr only (never
/// with `CI` set), stdout untouched. The worker serves 3 tasks put before
/// it starts and is stopped with SIGTERM once the broker has their results
/// (its pid from its heartbeat).
#[test]
fn spindle_worker_draws_tasks_done_on_a_terminal_only() {
    use std::net::SocketAddr;
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    use serde_bytes::ByteBuf;
    use spindle::manager::{BaseManager, BrokerProxy, Typeid};
    use spindle_cluster::{ClusterStatus, EmbeddedBroker};

    #[derive(serde::Serialize)]
    struct RawJob {
        client: String,
        job: u64,
        calls: Vec<spindle::process::EncodedCall>,
    }

    const KEY: &[u8] = b"progress-worker-key-0123456789abcdef";
    let d = Dir::new("worker");
    let kf = d.0.join("key");
    std::fs::write(&kf, KEY).unwrap();
    let out = d.0.join("stdout");
    let server = BaseManager::builder()
        .register("tasks", Typeid::broker())
        .bind("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .authkey(KEY)
        .spawn()
        .unwrap();
    let m = server.connect().unwrap();
    let proxy: BrokerProxy<ByteBuf> = m.get("tasks").unwrap();
    let broker = EmbeddedBroker::connect(server.address().clone(), KEY, "tasks").unwrap();
    let listed = Command::new(BIN)
        .args(["worker", "--list"])
        .output()
        .unwrap();
    let name = "spindle_workloads::processes::has_odd_divisor";
    let sig = String::from_utf8(listed.stdout)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")).map(str::to_owned))
        .map(|s| u64::from_str_radix(&s, 16).unwrap())
        .expect("spindle worker --list names has_odd_divisor");
    let line = [
        BIN,
        "worker",
        "--broker",
        &server.address().to_string(),
        "--authkey-file",
        kf.to_str().unwrap(),
        "--concurrency",
        "1",
    ]
    .map(quote)
    .join(" ");

    for ci in [false, true] {
        for job in 0..3 {
            let call = spindle::process::EncodedCall {
                name: name.into(),
                signature: sig,
                args: rmp_serde::to_vec(&(15u64, 3u64, 3u64)).unwrap(),
            };
            let raw = RawJob {
                client: "test".into(),
                job,
                calls: vec![call],
            };
            proxy
                .put(&ByteBuf::from(rmp_serde::to_vec_named(&raw).unwrap()))
                .unwrap();
        }
        let mut cmd = Command::new("script");
        cmd.args([
            "-qec",
            &format!("{line} >{}", quote(out.to_str().unwrap())),
            "/dev/null",
        ])
        .env_remove("CI")
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
        if ci {
            cmd.env("CI", "true");
        }
        let script = cmd.spawn().expect("util-linux `script` must be installed");
        // Done: the 3 results are in, and the worker's heartbeat names it.
        let since = Instant::now();
        let pid = loop {
            let s = ClusterStatus::of("tasks", &broker).unwrap();
            if s.queues[0].unfinished == 0
                && let Some(w) = s.workers.first()
            {
                break w.pid;
            }
            assert!(since.elapsed() < Duration::from_secs(60), "{s:?}");
            std::thread::sleep(Duration::from_millis(10));
        };
        kill(Pid::from_raw(pid as i32), Signal::SIGTERM).unwrap();
        let run = script.wait_with_output().unwrap();
        assert!(run.status.success(), "{run:?}");
        let tty = String::from_utf8_lossy(&run.stdout);
        assert!(
            tty.contains("stopped: 3 done"),
            "the worker did not stop after 3 tasks: {tty:?}"
        );
        assert_eq!(
            tty.contains("3 tasks done"),
            !ci,
            "CI: {ci}: the bar's final count on the terminal: {tty:?}"
        );
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "", "stdout");
    }
}
