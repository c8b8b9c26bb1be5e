//! `spindle gen-logs`, `spindle robots` and `spindle primes` end to end: the
//! binary is run as a user would run it.

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
        let p = std::env::temp_dir().join(format!("spindle-wl-{name}-{}", std::process::id()));
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
fn gen_logs_is_deterministic_and_looks_like_the_seeds_logs() {
    let (a, b, c) = (Dir::new("det-a"), Dir::new("det-b"), Dir::new("det-c"));
    gen_logs(&a, 3, 10_000, 7);
    gen_logs(&b, 3, 10_000, 7);
    gen_logs(&c, 3, 10_000, 8);
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
    let text = gunzip(&fa[0].1);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 10_000);
    let good = lines
        .iter()
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() >= 10
                && f[0].split('.').count() == 4
                && f[3].starts_with("[10/Jul/2012:")
                && f[4] == "-0500]"
                && (f[5] == "\"GET" || f[5] == "\"HEAD")
                && f[7] == "HTTP/1.1\""
        })
        .count();
    let malformed = lines.len() - good;
    assert!((1..=3).contains(&malformed), "{malformed} malformed lines");
    let robots = lines.iter().filter(|l| l.contains(" /robots.txt ")).count();
    assert!(
        (50..=150).contains(&robots),
        "{robots} of 10000 ask for robots.txt"
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
