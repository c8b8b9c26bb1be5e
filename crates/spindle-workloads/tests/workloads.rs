//! The workloads through the library's API, in every mode: generated logs,
//! the robots answer, decode-only and the PRIMES check, each compared with
//! an answer computed independently. (The `spindle` command's own tests, in
//! crates/spindle-cli, check what it prints.)

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};
use spindle_workloads::{Mode, check_primes, decode_all, find_all_robots, logs, robots};

const MODES: [Mode; 3] = [Mode::Serial, Mode::Threads, Mode::Processes];

/// A fresh directory under the temporary dir, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let p = std::env::temp_dir().join(format!("spindle-wlib-{name}-{}", std::process::id()));
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

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    MultiGzDecoder::new(bytes).read_to_end(&mut v).unwrap();
    v
}

/// The answer computed independently: flate2 + `str::split_whitespace`
/// (hosts, the first 16 hex digits of their sha256, lines, skipped).
fn independent(dir: &Path) -> (usize, String, u64, u64) {
    let (mut hosts, mut lines, mut skipped) = (HashSet::new(), 0, 0);
    for (_, gz) in files_of(dir) {
        let text = String::from_utf8(gunzip(&gz)).unwrap();
        for line in text.lines() {
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

#[test]
fn generated_logs_are_deterministic_and_look_like_the_cookbooks_logs() {
    let (a, b, c) = (Dir::new("det-a"), Dir::new("det-b"), Dir::new("det-c"));
    let paths = logs::generate(&a.0, 3, 10_000, 7).unwrap();
    logs::generate(&b.0, 3, 10_000, 7).unwrap();
    logs::generate(&c.0, 3, 10_000, 8).unwrap();
    let names: Vec<_> = paths
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["20120710.log.gz", "20120711.log.gz", "20120712.log.gz"],
        "one file per day, in day order"
    );
    let (fa, fb, fc) = (files_of(&a.0), files_of(&b.0), files_of(&c.0));
    assert_eq!(fa, fb, "same seed, same bytes");
    for ((_, x), (_, y)) in fa.iter().zip(&fc) {
        assert_ne!(x, y, "another seed, other bytes");
    }
    let text = String::from_utf8(gunzip(&fa[0].1)).unwrap();
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
    let malformed = (lines.len() - good) as u64;
    assert!(
        (1..=logs::MALFORMED).contains(&malformed),
        "{malformed} malformed lines"
    );
    let robots = lines.iter().filter(|l| l.contains(" /robots.txt ")).count();
    assert!(
        (50..=150).contains(&robots),
        "{robots} of 10000 ask for robots.txt"
    );
}

#[test]
fn robots_and_decode_only_agree_across_modes_and_with_an_independent_count() {
    let d = Dir::new("modes");
    let paths = logs::generate(&d.0, 4, 8_000, 3).unwrap();
    assert_eq!(robots::log_files(&d.0).unwrap(), paths);
    let want = independent(&d.0);
    assert!(want.0 > 200, "{} hosts", want.0);
    assert!(want.3 >= 1, "the generator writes malformed lines");
    let sizes: Vec<u64> = files_of(&d.0)
        .iter()
        .map(|(_, gz)| gunzip(gz).len() as u64)
        .collect();
    for mode in MODES {
        let all = find_all_robots(&paths, mode, 2).unwrap();
        let (count, sha) = robots::fingerprint(&all.hosts);
        assert_eq!((count, sha, all.lines, all.skipped), want, "{mode:?}");
        assert_eq!(decode_all(&paths, mode, 2).unwrap(), sizes, "{mode:?}");
    }
}

#[test]
fn malformed_lines_are_counted_and_a_bad_file_is_an_error_naming_it() {
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
    let first = d.0.join("20120710.log.gz");
    std::fs::write(&first, e.finish().unwrap()).unwrap();
    for mode in MODES {
        let all = find_all_robots(std::slice::from_ref(&first), mode, 2).unwrap();
        let mut hosts: Vec<_> = all.hosts.iter().map(String::as_str).collect();
        hosts.sort();
        assert_eq!(
            (hosts, all.lines, all.skipped),
            (vec!["1.2.3.4", "5.5.5.5"], 7, 5),
            "{mode:?}"
        );
    }
    let bad = d.0.join("20120711.log.gz");
    std::fs::write(&bad, b"\x1f\x8b\x08\x00 not really gzip").unwrap();
    let both = [first, bad];
    for mode in MODES {
        let e = find_all_robots(&both, mode, 2).unwrap_err();
        assert!(e.contains("20120711.log.gz"), "{mode:?}: {e}");
        let e = decode_all(&both, mode, 2).unwrap_err();
        assert!(e.contains("20120711.log.gz"), "{mode:?}: {e}");
    }
}

#[test]
fn check_primes_is_right_in_every_mode() {
    // Known answers, including a Carmichael number (561), a product of two
    // primes whose only factors are in the last part of the range (the
    // process mode splits each number's trial divisions), and numbers small
    // enough to be checked without a task.
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
        (999_985_999_949, false),
        (1_000_000_000_000, false),
    ];
    let numbers: Vec<u64> = known.iter().map(|&(n, _)| n).collect();
    let want: Vec<bool> = known.iter().map(|&(_, p)| p).collect();
    for mode in MODES {
        assert_eq!(check_primes(&numbers, mode, 2).unwrap(), want, "{mode:?}");
    }
}

#[test]
fn generate_checks_its_arguments_and_its_directory_and_names_them() {
    let d = Dir::new("gen-args");
    for (files, lines) in [
        (0, 10),
        (logs::MAX_FILES + 1, 10),
        (1, 0),
        (1, logs::MAX_LINES + 1),
    ] {
        let e = logs::generate(&d.0, files, lines, 1).unwrap_err();
        assert_eq!(e.error.kind(), std::io::ErrorKind::InvalidInput, "{e}");
        assert_eq!(e.path, d.0);
    }
    let file = d.0.join("plain");
    std::fs::write(&file, b"x").unwrap();
    let e = logs::generate(&file, 1, 10, 1).unwrap_err();
    assert_eq!(e.error.kind(), std::io::ErrorKind::NotADirectory);
    assert_eq!(
        e.to_string(),
        format!("{}: not a directory", file.display())
    );
    // A file that cannot be created: an error naming it, nothing left.
    let day = d.0.join("out");
    std::fs::create_dir_all(day.join("20120710.log.gz")).unwrap();
    let e = logs::generate(&day, 3, 10, 1).unwrap_err();
    assert_eq!(e.path, day.join("20120710.log.gz"), "{e}");
    // Another writer may have finished its file before the failure: what
    // is left is complete.
    for p in robots::log_files(&day).unwrap() {
        assert_eq!(
            robots::find_robots(&p).unwrap().lines,
            10,
            "{}",
            p.display()
        );
    }
}

#[test]
fn scan_dir_keeps_regular_files_and_links_to_them_and_names_the_rest() {
    let d = Dir::new("scan");
    let log = d.0.join("a.log.gz");
    std::fs::write(&log, b"").unwrap();
    std::fs::write(d.0.join("other.txt"), b"").unwrap();
    std::os::unix::fs::symlink(&log, d.0.join("b.log.gz")).unwrap();
    std::os::unix::fs::symlink(d.0.join("gone"), d.0.join("c.log.gz")).unwrap();
    std::fs::create_dir(d.0.join("d.log.gz")).unwrap();
    let found = robots::scan_dir(&d.0).unwrap();
    assert_eq!(found.files, [log.clone(), d.0.join("b.log.gz")]);
    let skipped: Vec<(PathBuf, &str)> = found
        .skipped
        .iter()
        .map(|(p, w)| (p.clone(), w.split(':').next().unwrap()))
        .collect();
    assert_eq!(
        skipped,
        [
            (d.0.join("c.log.gz"), "cannot be read"),
            (d.0.join("d.log.gz"), "a directory")
        ]
    );
    assert_eq!(robots::log_files(&d.0).unwrap(), found.files);
}

#[test]
fn progress_counts_every_file_and_its_decoded_bytes_in_every_mode() {
    use spindle_workloads::{PoolOptions, Progress, decode_all_with, run_robots};
    use std::sync::Arc;
    let d = Dir::new("progress");
    let written = Progress::new();
    let paths = logs::generate_with(&d.0, 5, 3_000, 11, Some(&written)).unwrap();
    assert_eq!((written.items(), written.bytes()), (5, 0));
    let decoded: u64 = files_of(&d.0)
        .iter()
        .map(|(_, gz)| gunzip(gz).len() as u64)
        .sum();
    for mode in MODES {
        let p = Arc::new(Progress::new());
        let opts = PoolOptions {
            progress: Some(p.clone()),
            ..PoolOptions::default()
        };
        run_robots(&paths, mode, 2, &opts).unwrap();
        assert_eq!((p.items(), p.bytes()), (5, decoded), "robots {mode:?}");
        let p = Arc::new(Progress::new());
        let opts = PoolOptions {
            progress: Some(p.clone()),
            ..PoolOptions::default()
        };
        decode_all_with(&paths, mode, 2, &opts).unwrap();
        assert_eq!((p.items(), p.bytes()), (5, decoded), "decode {mode:?}");
    }
}
