//! `spindle-bench` run as a user runs it: the suites it names, its error for
//! an unknown suite, and one real case whose contenders start processes by
//! re-executing this program (spindle's `Spawn` start method, procspawn),
//! printed as JSON lines in the schema tooling compares across versions.

use std::process::{Command, Output};

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spindle-bench"))
        .args(args)
        .output()
        .expect("run spindle-bench")
}

#[test]
fn list_names_every_suite_in_order() {
    let out = bench(&["list"]);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let names: Vec<&str> = stdout
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "thread",
            "sync",
            "sched",
            "lockorder",
            "queue",
            "futures",
            "process",
            "pool",
            "aio",
            "manager",
            "cluster",
            "observe"
        ]
    );
}

#[test]
fn an_unknown_suite_is_exit_status_2_naming_the_suites() {
    let out = bench(&["nosuch", "--quick"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("\"nosuch\""), "{err}");
    assert!(err.contains("thread, sync, sched"), "{err}");
}

#[test]
fn spawned_children_run_and_each_figure_is_one_json_line() {
    // The Python contender is pointed at an empty directory: it fails, is
    // reported on stderr and left out, and the others still run.
    let empty = std::env::temp_dir().join(format!("spindle-bench-nopy-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_spindle-bench"))
        .args(["process", "--quick", "--json", "--case", "start_spawn"])
        .env("SPINDLE_BENCH_PYTHON_DIR", &empty)
        .output()
        .expect("run spindle-bench");
    std::fs::remove_dir_all(&empty).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut impls = Vec::new();
    for line in stdout.lines() {
        // Keys in this order, nothing else: `{"case":..,"higher_is_better":..,
        // "impl":..,"suite":..,"unit":..,"value":..}`.
        let rest = line
            .strip_prefix(r#"{"case":"start_spawn","higher_is_better":false,"impl":""#)
            .unwrap_or_else(|| panic!("not a start_spawn figure: {line}"));
        let (imp, rest) = rest.split_once('"').unwrap();
        let value = rest
            .strip_prefix(r#","suite":"process","unit":"µs","value":"#)
            .and_then(|v| v.strip_suffix('}'))
            .unwrap_or_else(|| panic!("not a figure: {line}"));
        let micros: f64 = value.parse().unwrap();
        assert!(micros > 0.0 && micros < 1e6, "{line}");
        impls.push(imp.to_owned());
    }
    // spindle's Spawn and procspawn both start this program afresh per child.
    // No `python`: its script is not there.
    assert_eq!(impls, ["spindle", "procspawn"], "{stdout}\n{stderr}");
}

#[test]
fn aio_echo_case_drives_every_server_with_one_client() {
    // The Python servers are pointed at an empty directory: they fail to
    // start, are reported and left out; spindle's and tokio's servers give
    // a throughput and a p99 each, from the same runs.
    let empty = std::env::temp_dir().join(format!("spindle-bench-nopy-aio-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_spindle-bench"))
        .args(["aio", "--quick", "--json"])
        .args(["--case", "echo_50conns", "--case", "echo_50conns_p99"])
        .env("SPINDLE_BENCH_PYTHON_DIR", &empty)
        .output()
        .expect("run spindle-bench");
    std::fs::remove_dir_all(&empty).unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let figures: Vec<(String, String, String)> = stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert!(v["value"].as_f64().unwrap() > 0.0, "{l}");
            let s = |k: &str| v[k].as_str().unwrap().to_owned();
            (s("case"), s("impl"), s("unit"))
        })
        .collect();
    let want = |c: &str, i: &str, u: &str| (c.to_owned(), i.to_owned(), u.to_owned());
    assert_eq!(
        figures,
        [
            want("echo_50conns", "spindle", "ops/s"),
            want("echo_50conns", "tokio", "ops/s"),
            want("echo_50conns_p99", "spindle", "µs"),
            want("echo_50conns_p99", "tokio", "µs"),
        ]
    );
}

#[test]
fn manager_cases_measure_spindle_and_the_tcp_floor() {
    // The Python contenders are pointed at an empty directory: they fail,
    // are reported and left out. spindle's servers (a child process, a
    // thread) and task_roundtrip's worker process start, serve and stop;
    // connect_first_call is in ms, a latency.
    let empty = std::env::temp_dir().join(format!("spindle-bench-nopy-mgr-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_spindle-bench"))
        .args(["manager", "--quick", "--json"])
        .args(["--case", "connect_first_call", "--case", "task_roundtrip"])
        .args(["--case", "queue_put_get_nomac"])
        .env("SPINDLE_BENCH_PYTHON_DIR", &empty)
        .output()
        .expect("run spindle-bench");
    std::fs::remove_dir_all(&empty).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let figures: Vec<(String, String, String)> = stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let value = v["value"].as_f64().unwrap();
            assert!(value > 0.0, "{l}");
            if v["unit"] == "ms" {
                // Generous: a loopback connect and three calls.
                assert!(value < 1_000.0, "{l}");
            }
            let s = |k: &str| v[k].as_str().unwrap().to_owned();
            (s("case"), s("impl"), s("unit"))
        })
        .collect();
    let want = |c: &str, i: &str, u: &str| (c.to_owned(), i.to_owned(), u.to_owned());
    assert_eq!(
        figures,
        [
            want("connect_first_call", "spindle", "ms"),
            want("connect_first_call", "tcp_floor", "ms"),
            want("task_roundtrip", "spindle", "tasks/s"),
            want("task_roundtrip", "spindle_batch", "tasks/s"),
            want("queue_put_get_nomac", "spindle", "ops/s"),
            want("queue_put_get_nomac", "spindle_mac", "ops/s"),
            want("queue_put_get_nomac", "tcp_floor", "ops/s"),
        ],
        "{stderr}"
    );
}

/// `s` with each number (a digit, then digits, `.`, `e`, signs) made `#`:
/// the figures differ from run to run.
fn digitless(s: &str) -> String {
    let mut out = String::new();
    let mut in_number = false;
    for c in s.chars() {
        if c.is_ascii_digit() || (in_number && matches!(c, '.' | 'e' | 'E' | '+' | '-')) {
            if !in_number {
                out.push('#');
            }
            in_number = true;
        } else {
            in_number = false;
            out.push(c);
        }
    }
    out
}

#[test]
fn a_bar_per_case_on_a_terminal_stderr_only_and_stdout_is_unchanged() {
    let dir = std::env::temp_dir().join(format!("spindle-bench-bar-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("stdout");
    let bin = env!("CARGO_BIN_EXE_spindle-bench");
    let args = ["sched", "--quick", "--json", "--case", "enter_run"];
    // stderr on a pseudo-terminal (util-linux `script`), stdout to a file.
    let on_tty = |extra: &[&str], ci: bool| {
        let line = format!(
            "{bin} {} {} >{}",
            args.join(" "),
            extra.join(" "),
            out.display()
        );
        let mut cmd = Command::new("script");
        cmd.args(["-qec", &line, "/dev/null"])
            .env_remove("CI")
            .env("TERM", "xterm")
            .env("SPINDLE_BENCH_PYTHON_DIR", &dir);
        if ci {
            cmd.env("CI", "1");
        }
        let run = cmd
            .output()
            .expect("util-linux `script` must be installed (Debian: bsdutils)");
        assert!(run.status.success(), "{line}: {run:?}");
        let tty = String::from_utf8_lossy(&run.stdout).into_owned();
        (std::fs::read_to_string(&out).unwrap(), tty)
    };
    let bar = "sched case 1 of 1: enter_run";
    let (tty_out, tty) = on_tty(&[], false);
    assert!(tty.contains(bar), "no bar on the terminal: {tty:?}");
    assert!(tty.contains("sample "), "{tty:?}");
    let piped = Command::new(bin)
        .args(args)
        .env_remove("CI")
        .env("TERM", "xterm")
        .env("SPINDLE_BENCH_PYTHON_DIR", &dir)
        .output()
        .unwrap();
    assert!(piped.status.success());
    let pipe_err = String::from_utf8_lossy(&piped.stderr);
    assert!(!pipe_err.contains(bar), "a bar on a pipe: {pipe_err}");
    let pipe_out = String::from_utf8(piped.stdout).unwrap();
    assert!(pipe_out.contains("\"case\":\"enter_run\""), "{pipe_out}");
    assert_eq!(digitless(&tty_out), digitless(&pipe_out));
    for (extra, ci) in [(&["--no-progress"][..], false), (&[][..], true)] {
        let (o, tty) = on_tty(extra, ci);
        assert!(!tty.contains(bar), "{extra:?} CI {ci}: a bar: {tty:?}");
        assert_eq!(digitless(&o), digitless(&pipe_out));
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn observe_progress_overhead_measures_the_pool_with_a_bar_and_without() {
    let out = bench(&[
        "observe",
        "--quick",
        "--json",
        "--case",
        "progress_overhead",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let figures: Vec<(String, String, String)> = stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert!(v["value"].as_f64().unwrap() > 0.0, "{l}");
            assert_eq!(v["higher_is_better"], true, "{l}");
            let s = |k: &str| v[k].as_str().unwrap().to_owned();
            (s("suite"), s("impl"), s("unit"))
        })
        .collect();
    let want = |imp: &str| ("observe".to_owned(), imp.to_owned(), "tasks/s".to_owned());
    // `spindle` and `indicatif-iter` (with a bar, which must have drawn:
    // each sample asserts it) and `none`.
    assert_eq!(
        figures,
        [want("spindle"), want("indicatif-iter"), want("none")],
        "{stderr}"
    );
}

#[test]
fn observe_dashboard_cases_measure_polled_and_unpolled() {
    let out = bench(&[
        "observe",
        "--quick",
        "--json",
        "--case",
        "stats_overhead",
        "--case",
        "dashboard_api_latency",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let figures: Vec<(String, String, bool)> = stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert!(v["value"].as_f64().unwrap() > 0.0, "{l}");
            let s = |k: &str| v[k].as_str().unwrap().to_owned();
            (
                s("case"),
                s("impl"),
                v["higher_is_better"].as_bool().unwrap(),
            )
        })
        .collect();
    let f = |case: &str, imp: &str, higher: bool| (case.to_owned(), imp.to_owned(), higher);
    // `spindle` polls the dashboard (each sample asserts it did) or has 50
    // SSE clients on it; `none` does not.
    assert_eq!(
        figures,
        [
            f("stats_overhead", "spindle", true),
            f("stats_overhead", "none", true),
            f("dashboard_api_latency", "spindle", false),
            f("dashboard_api_latency", "none", false),
        ],
        "{stderr}"
    );
}
