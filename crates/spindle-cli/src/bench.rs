//! `spindle bench ARGS..`: runs `spindle-bench ARGS..`, the benchmark program,
//! from the directory this program is in (`target/release/spindle-bench`
//! beside `target/release/spindle`). The benchmarks, and the crates they
//! compare spindle with, are a program of their own so that `spindle` links
//! none of them; this keeps the old command working.
//!
//! It runs whatever `spindle-bench` is there: `cargo build -p spindle-cli`
//! does not rebuild it (`cargo build --release --workspace` builds both).

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

/// The benchmark program's file name.
const RUNNER: &str = "spindle-bench";

/// The command that builds [`RUNNER`] beside this program.
const BUILD: &str = if cfg!(debug_assertions) {
    "cargo build -p spindle-bench"
} else {
    "cargo build --release -p spindle-bench"
};

/// Replaces this process with `spindle-bench ARGS..` (same standard streams,
/// so its exit status is the command's); returns only when that cannot be
/// done, with an error naming the build command.
pub(crate) fn main(args: &[OsString]) -> ExitCode {
    let runner = match runner() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("spindle bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let err = Command::new(&runner).args(args).exec();
    eprintln!("spindle bench: cannot run {}: {err}", runner.display());
    ExitCode::FAILURE
}

/// [`RUNNER`] in this program's directory, if it is there.
fn runner() -> Result<PathBuf, String> {
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot find this program's own path: {e}"))?;
    let runner = exe.with_file_name(RUNNER);
    if runner.is_file() {
        Ok(runner)
    } else {
        Err(format!(
            "the benchmarks are a separate program, and {} is not built; \
             build it with `{BUILD}` (or build and run it in one step: \
             `cargo run --release -p spindle-bench -- SUITE`)",
            runner.display()
        ))
    }
}
