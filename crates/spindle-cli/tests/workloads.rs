//! `spindle gen-logs`, `spindle robots`, `spindle primes` and `spindle bench`
//! end to end: the binary is run as a user would run it. (The workloads
//! themselves are tested through their API in crates/spindle-workloads.)

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

fn spindle(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spindle"))
        .args(args)
        .output()
        .expect("run spindle")
}

fn stdout_ok(args: &[&str]) -> String {
    let out = spindle(args);
    assert!(
        out.status.success(),
        "spindle {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// A fresh directory under the target's temporary dir, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        Dir::new_in(&std::env::temp_dir(), name)
    }
    /// A fresh directory on a tmpfs (`/dev/shm`) where there is one: file
    /// leases work there, as on ext4 or xfs, whatever filesystem the
    /// temporary directory is on (an overlayfs in a container may refuse them).
    fn on_tmpfs(name: &str) -> Dir {
        let shm = Path::new("/dev/shm");
        if shm.is_dir() {
            Dir::new_in(shm, name)
        } else {
            Dir::new(name)
        }
    }
    fn new_in(base: &Path, name: &str) -> Dir {
        let p = base.join(format!("spindle-wl-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
    fn s(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn gen_logs(dir: &Dir, files: u32, lines: u64, seed: u64) {
    stdout_ok(&[
        "gen-logs",
        dir.s(),
        "--files",
        &files.to_string(),
        "--lines",
        &lines.to_string(),
        "--seed",
        &seed.to_string(),
    ]);
}

fn files_of(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn gunzip(bytes: &[u8]) -> String {
    let mut s = String::new();
    MultiGzDecoder::new(bytes).read_to_string(&mut s).unwrap();
    s
}

/// The answer computed independently: flate2 + `str::split_whitespace`.
fn independent(dir: &Path) -> (usize, String, u64, u64) {
    let (mut hosts, mut lines, mut skipped) = (HashSet::new(), 0, 0);
    for (_, gz) in files_of(dir) {
        for line in gunzip(&gz).lines() {
            lines += 1;
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 7 || !line.is_ascii() {
                skipped += 1;
            } else if f[6] == "/robots.txt" {
                hosts.insert(f[0].to_owned());
            }
        }
    }
    let mut sorted: Vec<_> = hosts.into_iter().collect();
    sorted.sort();
    let digest = Sha256::digest(sorted.join("\n").as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    (sorted.len(), hex, lines, skipped)
}

/// The `hosts:` and `sha256:` lines of a robots run (its first two), and the
/// line counts of its `time:` line.
fn answer(out: &str) -> (usize, String, u64, u64) {
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "two answer lines and the time: {out}");
    let hosts = lines[0].strip_prefix("hosts: ").expect("hosts first");
    let sha = lines[1].strip_prefix("sha256: ").expect("sha256 second");
    let time = lines[2].strip_prefix("time: ").expect("time last");
    // "time: 0.001 s (Serial, 1 workers, 1 files, 7 lines, 5 skipped)"
    let counts: Vec<u64> = time
        .split([' ', '(', ')', ','])
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[1] == "lines" || w[1] == "skipped")
        .map(|w| w[0].parse().unwrap())
        .collect();
    assert_eq!(counts.len(), 2, "{time}");
    (hosts.parse().unwrap(), sha.to_owned(), counts[0], counts[1])
}

#[test]
fn gen_logs_writes_the_days_named_deterministically_from_its_arguments() {
    let (a, b, c) = (Dir::new("det-a"), Dir::new("det-b"), Dir::new("det-c"));
    let out = stdout_ok(&[
        "gen-logs",
        a.s(),
        "--files",
        "3",
        "--lines",
        "2000",
        "--seed",
        "7",
    ]);
    let want = format!("wrote 3 files of 2000 lines to {} in ", a.s());
    assert!(out.starts_with(&want) && out.ends_with(" s\n"), "{out}");
    gen_logs(&b, 3, 2000, 7);
    gen_logs(&c, 3, 2000, 8);
    let (fa, fb, fc) = (files_of(&a.0), files_of(&b.0), files_of(&c.0));
    let names: Vec<_> = fa.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["20120710.log.gz", "20120711.log.gz", "20120712.log.gz"]
    );
    assert_eq!(fa, fb, "same seed, same bytes");
    for ((_, x), (_, y)) in fa.iter().zip(&fc) {
        assert_ne!(x, y, "another seed, other bytes");
    }
    for (name, gz) in &fa {
        assert_eq!(gunzip(gz).lines().count(), 2000, "{name}");
    }
    // The defaults: 8 files (of 100,000 lines, not checked here).
    let d = Dir::new("det-default");
    assert!(
        stdout_ok(&["gen-logs", d.s(), "--lines", "10"]).starts_with("wrote 8 files of 10 lines")
    );
    assert_eq!(files_of(&d.0).len(), 8);
    // A directory that cannot be created: an error naming it.
    let file = a.0.join("20120710.log.gz");
    let out = spindle(&["gen-logs", file.join("sub").to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.starts_with("spindle gen-logs: ") && err.contains("sub"),
        "{err}"
    );
}

#[test]
fn robots_agrees_across_modes_and_with_an_independent_count() {
    let d = Dir::new("modes");
    gen_logs(&d, 4, 8_000, 3);
    let want = independent(&d.0);
    assert!(want.0 > 200, "{} hosts", want.0);
    assert!(want.3 >= 1, "the generator writes malformed lines");
    for mode in ["serial", "threads", "processes"] {
        let out = stdout_ok(&["robots", d.s(), "--mode", mode, "--workers", "2"]);
        assert_eq!(answer(&out), want, "mode {mode}: {out}");
    }
}

#[test]
fn robots_decode_only_prints_the_decoded_size_in_every_mode() {
    let d = Dir::new("decode");
    gen_logs(&d, 3, 3000, 5);
    let total: usize = files_of(&d.0).iter().map(|(_, gz)| gunzip(gz).len()).sum();
    for mode in ["serial", "threads", "processes"] {
        let out = stdout_ok(&["robots", d.s(), "--decode-only", "--mode", mode]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert_eq!(lines[0], format!("decoded: {total} bytes"), "mode {mode}");
        assert!(
            lines[1].starts_with("time: ") && lines[1].contains(" MB/s, "),
            "{out}"
        );
    }
}

#[test]
fn malformed_lines_are_counted_and_bad_files_are_errors() {
    let d = Dir::new("bad");
    let good = "1.2.3.4 - - [10/Jul/2012:00:18:50 -0500] \"GET /robots.txt HTTP/1.1\" 200 71";
    let mut text = Vec::new();
    for line in [
        good,
        "",
        "only three fields",
        "9.9.9.9 - - [10/Jul/2012:00:18:50 -0500] \"GET",
        "8.8.8.8 - - [10/Jul/2012:00:18:50 -0500] \"GET /robots.txt \u{e9}",
    ] {
        text.extend_from_slice(line.as_bytes());
        text.push(b'\n');
    }
    text.extend_from_slice(b"\x00\x01\xff\xfe binary junk\r\n");
    text.extend_from_slice(b"5.5.5.5 - - [d z] \"GET /robots.txt"); // no newline
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(&text).unwrap();
    std::fs::write(d.0.join("20120710.log.gz"), e.finish().unwrap()).unwrap();
    for mode in ["serial", "threads", "processes"] {
        let out = stdout_ok(&["robots", d.s(), "--mode", mode]);
        let (hosts, _, lines, skipped) = answer(&out);
        assert_eq!((hosts, lines, skipped), (2, 7, 5), "mode {mode}: {out}");
    }
    // A corrupt file: a clear error naming it, in every mode, no panic.
    std::fs::write(
        d.0.join("20120711.log.gz"),
        b"\x1f\x8b\x08\x00 not really gzip",
    )
    .unwrap();
    for mode in ["serial", "threads", "processes"] {
        let out = spindle(&["robots", d.s(), "--mode", mode]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "mode {mode}");
        assert!(err.contains("20120711.log.gz"), "mode {mode}: {err}");
        assert!(!err.contains("panicked"), "mode {mode}: {err}");
    }
    // An empty directory is an error too.
    let empty = Dir::new("empty");
    assert!(!spindle(&["robots", empty.s()]).status.success());
}

#[test]
fn primes_answers_are_right_in_every_mode() {
    // Known answers, including a Carmichael number (561) and the largest
    // 12-digit prime.
    let known: &[(u64, bool)] = &[
        (0, false),
        (1, false),
        (2, true),
        (3, true),
        (4, false),
        (561, false),
        (7919, true),
        (1_000_000_007, true),
        (999_999_999_989, true),
        (999_999_999_991, false),
        // 999983 × 1000003: its only factors are in the last part of the
        // range (the process mode splits each number's trial divisions).
        (999_985_999_949, false),
        (1_000_000_000_000, false),
    ];
    let list: Vec<String> = known.iter().map(|(n, _)| n.to_string()).collect();
    let list = list.join(",");
    for mode in ["serial", "threads", "processes"] {
        let out = stdout_ok(&["primes", "--mode", mode, "--numbers", &list]);
        let got: Vec<String> = out
            .lines()
            .filter(|l| l.contains(" is prime? "))
            .map(str::to_owned)
            .collect();
        let want: Vec<String> = known
            .iter()
            .map(|(n, p)| format!("{n} is prime? {p}"))
            .collect();
        assert_eq!(got, want, "mode {mode}");
        assert!(out.lines().last().unwrap().starts_with("time: "), "{out}");
    }
}

/// `spindle` copied into a fresh directory, so what lies beside it is known.
/// A `spindle` alone in `dir`. A hard link where possible: a copy is open
/// for writing while it is made, and a child forked meanwhile by another
/// test's `Command` inherits that descriptor until it execs, which makes
/// running the copy fail with "Text file busy" (ETXTBSY). For a copy (another
/// filesystem), [`output`] retries that error.
fn lone_spindle(dir: &Dir) -> PathBuf {
    let exe = dir.0.join("spindle");
    if std::fs::hard_link(env!("CARGO_BIN_EXE_spindle"), &exe).is_err() {
        std::fs::copy(env!("CARGO_BIN_EXE_spindle"), &exe).unwrap();
    }
    exe
}

/// `cmd.output()`, retrying while the executable is busy (see
/// [`lone_spindle`]).
fn output(cmd: &mut Command) -> std::process::Output {
    for _ in 0..100 {
        match cmd.output() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            r => return r.unwrap(),
        }
    }
    panic!("the executable stayed busy for a second")
}

#[test]
fn bench_without_spindle_bench_beside_it_names_the_build_command() {
    let d = Dir::new("bench-absent");
    let out = output(Command::new(lone_spindle(&d)).args(["bench", "sync", "--quick"]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(out.stdout.is_empty());
    assert!(err.starts_with("spindle bench: "), "{err}");
    assert!(
        err.contains(d.0.join("spindle-bench").to_str().unwrap()),
        "{err}"
    );
    assert!(
        err.contains("cargo build") && err.contains("-p spindle-bench"),
        "{err}"
    );
}

#[test]
fn bench_runs_spindle_bench_beside_it_with_its_arguments_verbatim() {
    // `spindle-bench` here is a link to the shell, so that what it is given
    // shows: `sh -c SCRIPT ARG0 ARGS..` prints its arguments and exits 7.
    let d = Dir::new("bench-present");
    let exe = lone_spindle(&d);
    std::os::unix::fs::symlink("/bin/sh", d.0.join("spindle-bench")).unwrap();
    let script = r#"printf '%s\n' "$0" "$@"; exit 7"#;
    let out = output(Command::new(&exe).args([
        "bench",
        "-c",
        script,
        "sync",
        "--quick",
        "--json",
        "--case",
        "two words",
    ]));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "sync\n--quick\n--json\n--case\ntwo words\n"
    );
    assert_eq!(
        out.status.code(),
        Some(7),
        "its exit status is the command's"
    );
    // `--help` after `bench` is the benchmark program's too.
    let out = output(Command::new(&exe).args(["bench", "-c", script, "--help"]));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "--help\n");
}

/// Write leases (`fcntl(F_SETLEASE, F_WRLCK)`) on files: while they are
/// held, any other process that opens one of the files blocks in `open`
/// until they are released — so a worker given such a file is certainly in
/// the middle of its task, whenever it is killed. Released on drop.
struct Leases {
    _held: Vec<std::fs::File>,
}

impl Leases {
    fn hold(files: &[PathBuf]) -> Leases {
        static IGNORE_SIGIO: std::sync::Once = std::sync::Once::new();
        IGNORE_SIGIO.call_once(|| {
            // SAFETY: SIG_IGN installs no handler; the kernel tells a lease
            // holder that someone is waiting with SIGIO, whose default action
            // would end this test process.
            unsafe { libc::signal(libc::SIGIO, libc::SIG_IGN) };
        });
        let held = files
            .iter()
            .map(|p| {
                let f = std::fs::File::open(p).unwrap();
                use std::os::fd::AsRawFd;
                // SAFETY: fcntl on a descriptor this `File` owns, with an
                // integer argument; it changes only the file's lease.
                let r = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETLEASE, libc::F_WRLCK) };
                assert_eq!(
                    r,
                    0,
                    "lease on {}: {}",
                    p.display(),
                    std::io::Error::last_os_error()
                );
                f
            })
            .collect();
        Leases { _held: held }
    }
}

/// Runs `spindle ARGS --verbose`, kills the worker process of the first task
/// the pool reports started (with `leases` held until then, when given),
/// and returns the run's status, stdout and stderr.
fn kill_first_worker(
    args: &[&str],
    leases: Option<Leases>,
) -> (std::process::ExitStatus, String, String) {
    use std::io::BufRead;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_spindle"))
        .args(args)
        .arg("--verbose")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).unwrap();
        s
    });
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let pid: i32 = loop {
        let mut line = String::new();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "no task started: {seen}"
        );
        seen += &line;
        if let Some((_, pid)) = line
            .trim_end()
            .split_once("a task started on worker process ")
        {
            break pid.parse().unwrap();
        }
    };
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    drop(leases);
    err.read_to_string(&mut seen).unwrap();
    let status = child.wait().unwrap();
    (status, out.join().unwrap(), seen)
}

fn log_paths(dir: &Dir) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[test]
fn robots_survives_a_worker_killed_mid_task() {
    let d = Dir::on_tmpfs("lost-worker");
    gen_logs(&d, 3, 5000, 11);
    let args = ["robots", d.s(), "--mode", "processes", "--workers", "2"];
    let want = answer(&stdout_ok(&args));
    let leases = Leases::hold(&log_paths(&d));
    let (status, out, err) = kill_first_worker(&args, Some(leases));
    assert!(status.success(), "{err}");
    assert_eq!(answer(&out), want, "{err}");
    assert!(
        err.contains("spindle robots: 1 worker process lost, 1 task retried"),
        "{err}"
    );
    // Without retries, the lost task fails the run, naming its file and why.
    let leases = Leases::hold(&log_paths(&d));
    let (status, out, err) = kill_first_worker(
        &[
            "robots",
            d.s(),
            "--mode",
            "processes",
            "--workers",
            "2",
            "--retries",
            "0",
        ],
        Some(leases),
    );
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains(".log.gz: process pool: worker process ")
            && err.contains("died while running the task (killed by signal 9)")
            && err.contains("lost its worker 1 time (retries: 0)"),
        "{err}"
    );
}

#[test]
fn primes_survives_a_worker_killed_mid_task() {
    // 349999999 × 22400000969: its smallest factor is found at the very end
    // of its first task (the first eighth of the trial divisions, 1.75e8 of
    // them: 0.8 s here), and the rest is never submitted. The test reads the
    // pool's report and kills the worker within microseconds of it, so the
    // worker is killed while it computes, with a wide margin.
    let n = "7840000316749999031";
    let args = [
        "primes",
        "--mode",
        "processes",
        "--workers",
        "1",
        "--numbers",
        n,
    ];
    let want: Vec<String> = stdout_ok(&args)
        .lines()
        .filter(|l| l.contains(" is prime? "))
        .map(str::to_owned)
        .collect();
    assert_eq!(want, [format!("{n} is prime? false")]);
    let (status, out, err) = kill_first_worker(&args, None);
    assert!(status.success(), "{err}");
    let got: Vec<String> = out
        .lines()
        .filter(|l| l.contains(" is prime? "))
        .map(str::to_owned)
        .collect();
    assert_eq!(got, want, "{err}");
    assert!(
        err.contains("spindle primes: 1 worker process lost, 1 task retried"),
        "{err}"
    );
}

/// `cmd`'s output, or a panic (after killing it) if it has not ended within
/// `limit`: a command that hangs fails the test instead of stalling it.
fn output_within(cmd: &mut Command, limit: std::time::Duration) -> Output {
    use std::process::Stdio;
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output().unwrap()).ok());
    match rx.recv_timeout(limit) {
        Ok(out) => out,
        Err(_) => {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            )
            .ok();
            panic!("{cmd:?} still running after {limit:?}");
        }
    }
}

const LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

#[test]
fn gen_logs_on_a_full_disk_stops_at_the_first_failed_file_and_removes_it() {
    // A 1 MiB tmpfs in a private mount namespace (root only) fills after
    // about ten files of 5,000 lines: the real "No space left on device".
    // Where it cannot be mounted, RLIMIT_FSIZE makes every write past
    // 25 KiB fail with EFBIG instead (SIGXFSZ ignored), which exercises the
    // same path: each file is bigger than that.
    const SCRIPT: &str = r#"
        d=$1 exe=$2
        if [ "$3" = tmpfs ]; then
            mount -t tmpfs -o size=1m tmpfs "$d" || exit 99
        else
            trap '' XFSZ
            ulimit -S -f 50
        fi
        "$exe" gen-logs "$d/out" --files 36500 --lines 5000 2>&1 >/dev/null
        echo "exit $?"
        ulimit -S -f unlimited
        echo "files:" $(ls "$d/out")
        "$exe" robots "$d/out" --mode serial --strict 2>&1
        echo "robots exit $?"
    "#;
    let d = Dir::new("full-disk");
    let exe = env!("CARGO_BIN_EXE_spindle");
    let run = |mode: &str, via: &[&str]| {
        let t = std::time::Instant::now();
        let mut cmd = Command::new(via[0]);
        cmd.args(&via[1..])
            .args(["sh", "-c", SCRIPT, "sh", d.s(), exe, mode]);
        let out = output_within(&mut cmd, LIMIT);
        (out, t.elapsed())
    };
    let mut tmpfs = true;
    let (mut out, mut took) = run("tmpfs", &["unshare", "-m"]);
    if out.status.code() != Some(0) {
        // No mount namespace or no tmpfs here (not root): the file-size limit.
        eprintln!("tmpfs not available ({out:?}): using RLIMIT_FSIZE");
        tmpfs = false;
        (out, took) = run("rlimit", &["env"]);
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    // One error line naming the file, then the exit status 1, quickly.
    let err = lines[0];
    let prefix = format!("spindle gen-logs: {}/out/", d.s());
    assert!(err.starts_with(&prefix), "{text}");
    let failed = &err[prefix.len()..err.find(".log.gz: ").expect(err) + 7];
    let why = if tmpfs {
        "No space left on device"
    } else {
        "File too large"
    };
    assert!(
        err.ends_with(&format!(
            ".log.gz: {why} (os error {})",
            if tmpfs { 28 } else { 27 }
        )),
        "{text}"
    );
    assert_eq!(lines[1], "exit 1", "{text}");
    assert!(took < std::time::Duration::from_secs(60), "took {took:?}");
    // Only complete files remain: not the one that failed, and every one
    // left reads to the end with all its lines (--strict: no warning).
    let files: Vec<&str> = lines[2]
        .strip_prefix("files:")
        .unwrap()
        .split_whitespace()
        .collect();
    assert!(!files.contains(&failed), "{failed} left behind: {text}");
    if tmpfs {
        assert!(files.len() >= 2, "{text}");
        let rest = lines[3..].join("\n");
        let (_, _, read, _) = answer(&rest.replace("\nrobots exit 0", ""));
        assert_eq!(read, files.len() as u64 * 5000, "{text}");
        assert_eq!(lines.last(), Some(&"robots exit 0"), "{text}");
    } else {
        // Every file is over the limit: none is left at all.
        assert!(files.is_empty(), "{text}");
    }
}

#[test]
fn gen_logs_refuses_a_file_as_its_directory_and_arguments_out_of_range() {
    let d = Dir::new("not-dir");
    let file = d.0.join("plain");
    std::fs::write(&file, b"x").unwrap();
    let out = spindle(&["gen-logs", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("spindle gen-logs: {}: not a directory\n", file.display())
    );
    for (flag, bad, range) in [
        ("--files", "0", "1..=36500"),
        ("--files", "36501", "1..=36500"),
        ("--lines", "0", "1..=10000000"),
        ("--lines", "10000001", "1..=10000000"),
    ] {
        let out = spindle(&["gen-logs", d.s(), flag, bad]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(&format!("{bad} is not in {range}")), "{err}");
    }
    assert_eq!(
        std::fs::read_dir(&d.0).unwrap().count(),
        1,
        "nothing written"
    );
}

#[test]
fn robots_skips_a_fifo_with_a_warning_naming_it() {
    let d = Dir::new("fifo");
    gen_logs(&d, 2, 3000, 4);
    let want = independent(&d.0);
    let fifo = d.0.join("x.log.gz");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    // A link to the FIFO is skipped too; a link to a log is read.
    std::os::unix::fs::symlink(&fifo, d.0.join("y.log.gz")).unwrap();
    let warning = |p: &Path| {
        format!(
            "spindle robots: warning: {}: skipped, not a regular file: a FIFO\n",
            p.display()
        )
    };
    for mode in ["serial", "threads", "processes"] {
        let out = output_within(
            Command::new(env!("CARGO_BIN_EXE_spindle")).args(["robots", d.s(), "--mode", mode]),
            LIMIT,
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{mode}: {err}");
        assert_eq!(
            answer(&String::from_utf8_lossy(&out.stdout)),
            want,
            "{mode}"
        );
        assert_eq!(
            err,
            warning(&fifo) + &warning(&d.0.join("y.log.gz")),
            "{mode}"
        );
    }
    let out = spindle(&["robots", d.s(), "--strict"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(out.stdout.is_empty());
    assert!(
        err.contains(&format!(
            "spindle robots: {}: skipped, not a regular file: a FIFO",
            fifo.display()
        )),
        "{err}"
    );
}

#[test]
fn robots_warns_about_a_file_of_garbage_and_strict_makes_it_an_error() {
    let d = Dir::new("garbage");
    gen_logs(&d, 1, 3000, 4);
    let (hosts, sha, _, _) = independent(&d.0);
    // 64 KiB of random bytes, gzip'ed: valid gzip, no log lines.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let junk: Vec<u8> = (0..1 << 16)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(&junk).unwrap();
    let garbage = d.0.join("garbage.log.gz");
    std::fs::write(&garbage, e.finish().unwrap()).unwrap();
    for mode in ["serial", "threads", "processes"] {
        let out = spindle(&["robots", d.s(), "--mode", mode]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{mode}: {err}");
        // The garbage adds no host.
        let (h, s, _, _) = answer(&String::from_utf8_lossy(&out.stdout));
        assert_eq!((h, s), (hosts, sha.clone()), "{mode}");
        // Named once, with its counts; the generated log (3 malformed lines
        // of 3,000) is not.
        let prefix = format!("spindle robots: warning: {}: ", garbage.display());
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with(&prefix) && err.contains(" lines skipped ("),
            "{err}"
        );
    }
    let out = spindle(&["robots", d.s(), "--strict"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(out.stdout.is_empty(), "no answer");
    assert!(
        err.starts_with(&format!("spindle robots: {}: ", garbage.display())),
        "{err}"
    );
}
