//! `spindle gen-logs`: deterministic Apache combined-log gzip files for the
//! Python Cookbook's log workload (recipe 12.8), one `YYYYMMDD.log.gz` per day from
//! 2012-07-10:
//!
//! ```text
//! 124.115.6.12 - - [10/Jul/2012:00:18:50 -0500] "GET /robots.txt HTTP/1.1" 200 71 "-" "Mozilla/5.0 (...)"
//! ```
//!
//! About 1% of requests are for `/robots.txt`, from 4,000 hosts. Each file
//! also holds up to [`MALFORMED`] malformed lines on purpose, to exercise the
//! "skip and count" rule of `spindle robots`: an empty line, a line cut after
//! the request method (6 fields), and a two-field junk line. They are ASCII,
//! so the Cookbook's Python program (with its `IndexError` guarded) reads them too.
//!
//! The same arguments always write the same bytes: the generator is SplitMix64
//! (written out here, so no crate update can change the stream) and each file
//! has its own stream derived from the seed and its day, so files are written
//! in parallel.

#![forbid(unsafe_code)]

use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::progress::Progress;

/// A small deterministic generator (SplitMix64): the same seed gives the same
/// logs on every machine and every build, which a crate's RNG does not promise
/// across versions.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        // Lemire's multiply-shift; the tiny bias is irrelevant for test data.
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// How many distinct hosts the generated logs draw from.
const HOSTS: u64 = 4000;
/// One request in this many asks for `/robots.txt` (about 1%).
const ROBOTS_ONE_IN: u64 = 100;

const PATHS: &[&str] = &[
    "/",
    "/index.html",
    "/about/",
    "/blog/2012/07/concurrency.html",
    "/static/site.css",
    "/static/app.js",
    "/images/logo.png",
    "/favicon.ico",
    "/feed.xml",
    "/search?q=python+threads",
    "/downloads/spindle-0.1.tar.gz",
];
const AGENTS: &[&str] = &[
    "Mozilla/5.0 (X11; Linux x86_64; rv:13.0) Gecko/20100101 Firefox/13.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/536.11 Chrome/20.0.1132.47",
    "curl/7.22.0 (x86_64-pc-linux-gnu) libcurl/7.22.0",
];
const REFERERS: &[&str] = &[
    "-",
    "-",
    "-",
    "http://www.dabeaz.com/",
    "http://www.google.com/search?q=python+concurrency",
    "http://www.dabeaz.com/blog.html",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The civil date `days` after 2012-07-10 (proleptic Gregorian).
fn date_after(days: u32) -> (i32, u32, u32) {
    // Days from 1970-01-01 to 2012-07-10 is 15531; convert back with the
    // well-known civil-from-days algorithm (H. Hinnant).
    let z = 15531 + i64::from(days) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = (yoe + era * 400 + i64::from(m <= 2)) as i32;
    (y, m, d)
}

/// At most this many malformed lines per file (see the module docs).
pub const MALFORMED: u64 = 3;

/// The 4,000 hosts of a seed.
fn hosts(seed: u64) -> Vec<String> {
    let mut rng = SplitMix64::new(seed);
    (0..HOSTS)
        .map(|_| {
            let v = rng.next_u64();
            format!(
                "{}.{}.{}.{}",
                1 + (v & 0xFF) % 223,
                (v >> 8) & 0xFF,
                (v >> 16) & 0xFF,
                1 + ((v >> 24) & 0xFF) % 254
            )
        })
        .collect()
}

/// At most this many files per call (100 years of days): `spindle gen-logs
/// --files`.
pub const MAX_FILES: u32 = 36_500;

/// At most this many lines per file (about 1.7 GB of text, 200 MB of gzip):
/// `spindle gen-logs --lines`.
pub const MAX_LINES: u64 = 10_000_000;

/// Why [`generate`] failed: the path it was creating or writing (the
/// directory, or the one file whose write failed) and the error.
#[derive(Debug)]
pub struct GenerateError {
    /// The directory (bad arguments, not a directory, cannot be created) or
    /// the file whose creation or write failed (it has been removed).
    pub path: PathBuf,
    /// What went wrong; `InvalidInput` for arguments out of range,
    /// `NotADirectory` for a `dir` that is something else.
    pub error: io::Error,
}

impl fmt::Display for GenerateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.error)
    }
}

impl std::error::Error for GenerateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Writes `files` gzip files of `lines` lines each into `dir`, named
/// `YYYYMMDD.log.gz` from 2012-07-10 on, using every core; returns their
/// paths in day order.
///
/// Stops at the first file that cannot be created or written (a full disk,
/// say): no further file is started, the files being written at that moment
/// are abandoned, and each file that failed or was abandoned is removed, so
/// only complete files remain; the error names the file that failed.
///
/// # Errors
///
/// `files` not in `1..=`[`MAX_FILES`] or `lines` not in `1..=`[`MAX_LINES`]
/// (`InvalidInput`); `dir` exists and is not a directory (`NotADirectory`) or
/// cannot be created; a file cannot be created or written.
pub fn generate(
    dir: &Path,
    files: u32,
    lines: u64,
    seed: u64,
) -> Result<Vec<PathBuf>, GenerateError> {
    generate_with(dir, files, lines, seed, None)
}

/// [`generate`], adding one item to `progress` as each file is complete
/// (written, its gzip stream finished; no bytes are counted).
///
/// # Errors
///
/// As [`generate`].
pub fn generate_with(
    dir: &Path,
    files: u32,
    lines: u64,
    seed: u64,
    progress: Option<&Progress>,
) -> Result<Vec<PathBuf>, GenerateError> {
    let at_dir = |error| GenerateError {
        path: dir.to_path_buf(),
        error,
    };
    if !(1..=MAX_FILES).contains(&files) || !(1..=MAX_LINES).contains(&lines) {
        return Err(at_dir(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{files} files of {lines} lines: between 1 and {MAX_FILES} files of 1 to \
                 {MAX_LINES} lines, please"
            ),
        )));
    }
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => {
            return Err(at_dir(io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory",
            )));
        }
        _ => std::fs::create_dir_all(dir).map_err(at_dir)?,
    }
    let hosts = hosts(seed);
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = AtomicU32::new(0);
    // Set by the first failure: every writer stops at its next check.
    let failed = AtomicBool::new(false);
    let results: Vec<Result<(u32, PathBuf), GenerateError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers.min(files as usize).max(1))
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let day = next.fetch_add(1, Ordering::Relaxed);
                        if day >= files || failed.load(Ordering::Relaxed) {
                            return done;
                        }
                        let r = write_day(dir, day, lines, seed, &hosts, &failed);
                        match (&r, progress) {
                            (Err(_), _) => failed.store(true, Ordering::Relaxed),
                            (Ok(_), Some(p)) => p.add(0),
                            (Ok(_), None) => {}
                        }
                        done.push(r.map(|p| (day, p)));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    // The first real failure, not a writer that stopped because of it.
    let mut first: Option<GenerateError> = None;
    let mut paths = Vec::with_capacity(results.len());
    for r in results {
        match r {
            Ok(p) => paths.push(p),
            Err(e) if e.error.kind() == io::ErrorKind::Interrupted => {
                first.get_or_insert(e);
            }
            Err(e) => {
                if first
                    .as_ref()
                    .is_none_or(|f| f.error.kind() == io::ErrorKind::Interrupted)
                {
                    first = Some(e);
                }
            }
        }
    }
    if let Some(e) = first {
        return Err(e);
    }
    paths.sort();
    Ok(paths.into_iter().map(|(_, p)| p).collect())
}

/// Lines written between two looks at the stop flag.
const CHECK_EVERY: u64 = 4096;

/// [`write_lines`] into a new file for day `day`; the file is removed if
/// that fails or `stop` is raised meanwhile (then the error is
/// `Interrupted`).
fn write_day(
    dir: &Path,
    day: u32,
    lines: u64,
    seed: u64,
    hosts: &[String],
    stop: &AtomicBool,
) -> Result<PathBuf, GenerateError> {
    let (y, m, d) = date_after(day);
    let path = dir.join(format!("{y:04}{m:02}{d:02}.log.gz"));
    let written = File::create(&path).and_then(|file| {
        let out = BufWriter::with_capacity(1 << 16, GzEncoder::new(file, Compression::default()));
        write_lines(out, day, lines, seed, hosts, stop)
    });
    match written {
        Ok(()) => Ok(path),
        Err(error) => {
            // Nothing partial is left behind (a file never created is
            // not there to remove).
            std::fs::remove_file(&path).ok();
            Err(GenerateError { path, error })
        }
    }
}

/// Writes the lines of day `day` (its own stream, so days are independent)
/// to `out` and finishes the gzip stream.
fn write_lines(
    mut out: BufWriter<GzEncoder<File>>,
    day: u32,
    lines: u64,
    seed: u64,
    hosts: &[String],
    stop: &AtomicBool,
) -> io::Result<()> {
    let mut rng = SplitMix64::new(seed ^ u64::from(day + 1).wrapping_mul(0xA24B_AED4_963E_E407));
    let bad: Vec<u64> = (0..MALFORMED.min(lines))
        .map(|_| rng.below(lines))
        .collect();
    let (y, m, d) = date_after(day);
    let month = MONTHS[m as usize - 1];
    let mut stamp = String::with_capacity(32);
    for i in 0..lines {
        if i % CHECK_EVERY == 0 && stop.load(Ordering::Relaxed) {
            return Err(io::Error::new(
                io::ErrorKind::Interrupted,
                "abandoned: another file failed",
            ));
        }
        let secs = i * 86_400 / lines;
        let (hh, mm, ss) = (secs / 3600, secs / 60 % 60, secs % 60);
        let host = &hosts[rng.below(HOSTS) as usize];
        stamp.clear();
        fmt::Write::write_fmt(
            &mut stamp,
            format_args!("[{d:02}/{month}/{y}:{hh:02}:{mm:02}:{ss:02} -0500]"),
        )
        .expect("writing to a String cannot fail");
        if let Some(k) = bad.iter().position(|&b| b == i) {
            match k % 3 {
                0 => writeln!(out)?,
                1 => writeln!(out, "{host} - - {stamp} \"GET")?,
                _ => writeln!(out, "#truncated {host}")?,
            }
            continue;
        }
        let target = if rng.below(ROBOTS_ONE_IN) == 0 {
            "/robots.txt"
        } else {
            PATHS[rng.below(PATHS.len() as u64) as usize]
        };
        let method = if rng.below(50) == 0 { "HEAD" } else { "GET" };
        let agent = AGENTS[rng.below(AGENTS.len() as u64) as usize];
        let referer = REFERERS[rng.below(REFERERS.len() as u64) as usize];
        // Apache's %b prints "-" for an empty body.
        match rng.below(20) {
            0 => writeln!(
                out,
                "{host} - - {stamp} \"{method} {target} HTTP/1.1\" 404 209 \"{referer}\" \"{agent}\""
            )?,
            1 | 2 => writeln!(
                out,
                "{host} - - {stamp} \"{method} {target} HTTP/1.1\" 304 - \"{referer}\" \"{agent}\""
            )?,
            _ => writeln!(
                out,
                "{host} - - {stamp} \"{method} {target} HTTP/1.1\" 200 {} \"{referer}\" \"{agent}\"",
                71 + rng.below(40_000)
            )?,
        }
    }
    out.into_inner().map_err(|e| e.into_error())?.finish()?;
    Ok(())
}
