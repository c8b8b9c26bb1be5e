//! The `spindle` command: a guided tour of every capability (`spindle tour`) and
//! the side-by-side benchmark runner (`spindle bench SUITE`).

// The frameworks are used as soon as the first suite / section is registered.
#[allow(dead_code)]
mod bench;
#[allow(dead_code)]
mod tour;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// spindle — Python's concurrency model in Rust.
#[derive(Debug, Parser)]
#[command(name = "spindle", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a short guided demo of every capability, checking each result.
    ///
    /// Prints a ✓ or ✗ for every check; exits non-zero if any check fails.
    Tour {
        /// Run only these sections (default: all). `spindle tour --list` names them.
        sections: Vec<String>,
        /// List the sections and exit.
        #[arg(long)]
        list: bool,
    },
    /// Run a benchmark suite side by side: spindle, the best Rust crates, Python.
    ///
    /// Contenders are interleaved over several rounds; medians and ratios are
    /// reported. `spindle bench list` names the suites.
    Bench {
        /// The suite to run (`list` to name them, `all` for every suite).
        suite: String,
        /// Fewer, shorter rounds: a suite stays under about a minute.
        #[arg(long)]
        quick: bool,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        /// Run only these cases of the suite (default: all).
        #[arg(long = "case")]
        cases: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Tour { sections, list } => tour::main(&sections, list),
        Command::Bench {
            suite,
            quick,
            json,
            cases,
        } => bench::main(&suite, quick, json, cases),
    }
}
