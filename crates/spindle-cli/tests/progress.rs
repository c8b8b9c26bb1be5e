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
