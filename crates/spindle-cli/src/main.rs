//! The `spindle` command: a guided tour of every capability (`spindle tour`) and
//! the side-by-side benchmark runner (`spindle bench SUITE`).

mod bench;
mod tour;
mod workloads;

use std::path::PathBuf;
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
    /// Write deterministic Apache combined-log gzip files (`YYYYMMDD.log.gz`)
    /// for `spindle robots`.
    ///
    /// About 1% of requests are for /robots.txt, from 4,000 hosts; each file
    /// also holds up to 3 malformed lines on purpose (empty, cut short, junk),
    /// which `spindle robots` skips and counts. The same arguments always
    /// write the same bytes.
    GenLogs {
        /// Directory to write into (created if missing).
        dir: PathBuf,
        /// How many files (one per day from 2012-07-10).
        #[arg(long, default_value_t = 8)]
        files: u32,
        /// Lines per file.
        #[arg(long, default_value_t = 100_000)]
        lines: u64,
        /// Seed: the same seed writes the same lines.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// The seed's map-reduce: every host that requested /robots.txt in
    /// DIR/*.log.gz. Prints `hosts:`, `sha256:`, then the time with the
    /// counts of lines read and skipped.
    ///
    /// A line whose 7th whitespace-separated field is /robots.txt gives its
    /// 1st field; lines with fewer than 7 fields or non-ASCII bytes are
    /// skipped and counted.
    Robots {
        /// Directory holding the `*.log.gz` files.
        dir: PathBuf,
        /// serial, threads (ThreadPoolExecutor) or processes
        /// (ProcessPoolExecutor, one file per task).
        #[arg(long, value_enum, default_value_t = workloads::Mode::Processes)]
        mode: workloads::Mode,
        /// Parallel workers (default: the number of cores).
        #[arg(long, default_value_t = workloads::default_workers())]
        workers: usize,
        /// Only gunzip the files (the decoder's speed limit), no parsing.
        #[arg(long)]
        decode_only: bool,
    },
    /// The seed's PRIMES check by trial division; prints each verdict and the time.
    Primes {
        /// serial, threads (ThreadPoolExecutor, one number per task) or
        /// processes (ProcessPoolExecutor, each number's trial divisions in
        /// five tasks, so two workers share the work evenly).
        #[arg(long, value_enum, default_value_t = workloads::Mode::Processes)]
        mode: workloads::Mode,
        /// Parallel workers (default: the number of cores).
        #[arg(long, default_value_t = workloads::default_workers())]
        workers: usize,
        /// Numbers to check, comma-separated (default: the seed's PRIMES).
        #[arg(long, value_delimiter = ',')]
        numbers: Vec<u64>,
    },
}

fn main() -> ExitCode {
    // procspawn (a peer in `bench process`) re-executes this program for its
    // children and takes them over here; in any other run this only checks
    // one environment variable. It must come first: code before it would run
    // again in every procspawn child. spindle's own children never get here
    // (spindle's boot runs them before `main`).
    procspawn::init();
    let cli = Cli::parse();
    match cli.command {
        Command::Tour { sections, list } => tour::main(&sections, list),
        Command::Bench {
            suite,
            quick,
            json,
            cases,
        } => bench::main(&suite, quick, json, cases),
        Command::GenLogs {
            dir,
            files,
            lines,
            seed,
        } => workloads::gen_logs(&dir, files, lines, seed),
        Command::Robots {
            dir,
            mode,
            workers,
            decode_only,
        } => workloads::robots(&dir, mode, workers, decode_only),
        Command::Primes {
            mode,
            workers,
            numbers,
        } => workloads::primes(mode, workers, &numbers),
    }
}
