//! The seeds' log workload (seed 000 §7): `spindle gen-logs` writes deterministic
//! Apache combined-log gzip files, `spindle robots` finds every host that asked
//! for `/robots.txt`, as the seed's `find_robots` / `find_all_robots` do.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

/// A small deterministic generator (SplitMix64): the same seed gives the same
/// logs on every machine and every build, which a crate's RNG does not promise
/// across versions.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
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

/// Writes `files` gzip files of `lines` lines each into `dir`, named
/// `YYYYMMDD.log.gz` from 2012-07-10 on; returns their paths.
pub(crate) fn generate(dir: &Path, files: u32, lines: u64, seed: u64) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut rng = SplitMix64::new(seed);
    let hosts: Vec<String> = (0..HOSTS)
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
        .collect();
    let mut paths = Vec::with_capacity(files as usize);
    for day in 0..files {
        let (y, m, d) = date_after(day);
        let path = dir.join(format!("{y:04}{m:02}{d:02}.log.gz"));
        let mut out = BufWriter::new(GzEncoder::new(File::create(&path)?, Compression::default()));
        for i in 0..lines {
            let secs = i * 86_400 / lines.max(1);
            let (hh, mm, ss) = (secs / 3600, secs / 60 % 60, secs % 60);
            let host = &hosts[rng.below(HOSTS) as usize];
            let path = if rng.below(ROBOTS_ONE_IN) == 0 {
                "/robots.txt"
            } else {
                PATHS[rng.below(PATHS.len() as u64) as usize]
            };
            let (status, size) = match rng.below(20) {
                0 => (404, 209),
                1 | 2 => (304, 0),
                _ => (200, 71 + rng.below(40_000)),
            };
            let agent = AGENTS[rng.below(AGENTS.len() as u64) as usize];
            writeln!(
                out,
                "{host} - - [{d:02}/{}/{y}:{hh:02}:{mm:02}:{ss:02} -0500] \"GET {path} HTTP/1.1\" {status} {size} \"-\" \"{agent}\"",
                MONTHS[m as usize - 1]
            )?;
        }
        out.into_inner().map_err(|e| e.into_error())?.finish()?;
        paths.push(path);
    }
    Ok(paths)
}

/// What one file yields: the hosts that asked for `/robots.txt`, and the
/// line counts.
#[derive(Debug, Default)]
pub(crate) struct FileHosts {
    pub(crate) hosts: HashSet<Vec<u8>>,
    pub(crate) lines: u64,
    /// Lines with fewer than 7 whitespace-separated fields: skipped.
    pub(crate) skipped: u64,
}

/// The seed's `find_robots(filename)`: every host (field 1) of a line whose
/// field 7 is `/robots.txt`. Lines that do not parse are skipped and counted.
pub(crate) fn find_robots(path: &Path) -> io::Result<FileHosts> {
    let mut reader = BufReader::with_capacity(1 << 16, MultiGzDecoder::new(File::open(path)?));
    let mut out = FileHosts::default();
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(out);
        }
        out.lines += 1;
        let mut fields = line
            .split(u8::is_ascii_whitespace)
            .filter(|f| !f.is_empty());
        let host = fields.next();
        match (host, fields.nth(5)) {
            (Some(host), Some(path)) => {
                if path == b"/robots.txt" && !out.hosts.contains(host) {
                    out.hosts.insert(host.to_vec());
                }
            }
            _ => out.skipped += 1,
        }
    }
}

/// The `*.log.gz` files of `dir`, sorted by name (the seed's `glob`).
pub(crate) fn log_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_str().is_some_and(|s| s.ends_with(".log.gz")))
        .collect();
    files.sort();
    Ok(files)
}

/// `hosts: N` and `sha256: <first 16 hex digits>` over the sorted hosts joined
/// by "\n": the fingerprint every mode (and the Python program) must agree on.
pub(crate) fn fingerprint(hosts: &HashSet<Vec<u8>>) -> (usize, String) {
    let mut sorted: Vec<&Vec<u8>> = hosts.iter().collect();
    sorted.sort();
    let mut h = Sha256::new();
    for (i, host) in sorted.iter().enumerate() {
        if i > 0 {
            h.update(b"\n");
        }
        h.update(host);
    }
    let hex: String = h
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    (sorted.len(), hex)
}

/// Gunzips `path` and throws the bytes away: the decoder's own speed limit,
/// which bounds how fast `robots` can go.
pub(crate) fn decode_only(path: &Path) -> io::Result<u64> {
    let mut dec = MultiGzDecoder::new(File::open(path)?);
    io::copy(&mut dec, &mut io::sink())
}
