//! The seed's `find_robots` (seed 000 §7): every host (field 1) of a log line
//! whose field 7 is `/robots.txt`, over whole gzip files.
//!
//! Python semantics, byte for byte, without a per-line allocation:
//! - lines end at `\n`, `\r` or `\r\n` (the universal newlines of
//!   `io.TextIOWrapper`); a last line without a newline still counts;
//! - fields are split as `str.split()` splits ASCII text: on runs of
//!   `\t \n \x0b \x0c \r \x1c \x1d \x1e \x1f` and space;
//! - a line with fewer than 7 fields, or with a byte that is not ASCII (the
//!   seed decodes with `encoding='ascii'`), is *skipped and counted*. The seed
//!   itself would stop with `IndexError` / `UnicodeDecodeError`; one bad line
//!   should not lose the whole answer.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::gz::{self, Inflater};

/// Byte classes: 0 a field byte, 1 whitespace inside a line, 2 a line end.
const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let ws: [u8; 8] = [b' ', b'\t', 0x0b, 0x0c, 0x1c, 0x1d, 0x1e, 0x1f];
    let mut i = 0;
    while i < ws.len() {
        t[ws[i] as usize] = 1;
        i += 1;
    }
    t[b'\n' as usize] = 2;
    t[b'\r' as usize] = 2;
    t
};

/// The end of the field that goes on at `j`: the first whitespace or line
/// end at or after `j`, or `buf.len()`.
///
/// Eight bytes at a time: every separator is a byte <= 0x20, so a word is
/// tested for such a byte with the "has less than" bit trick (exact for the
/// lowest flagged byte, which is the one taken); the rare control byte that
/// is not a separator (class 0) is stepped over.
#[inline(always)]
fn field_end(buf: &[u8], mut j: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    loop {
        while let Some(word) = buf.get(j..j + 8) {
            let w = u64::from_le_bytes(word.try_into().expect("8 bytes"));
            let m = w.wrapping_sub(ONES * 0x21) & !w & (ONES * 0x80);
            if m != 0 {
                j += (m.trailing_zeros() / 8) as usize;
                break;
            }
            j += 8;
        }
        while j < buf.len() && buf[j] > 0x20 {
            j += 1;
        }
        if j >= buf.len() || CLASS[buf[j] as usize] != 0 {
            return j;
        }
        j += 1;
    }
}

/// What one file (or several, merged) yields.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Robots {
    /// The hosts that asked for `/robots.txt`.
    pub(crate) hosts: HashSet<String>,
    /// Lines read.
    pub(crate) lines: u64,
    /// Lines skipped: fewer than 7 fields, or not ASCII.
    pub(crate) skipped: u64,
}

impl Robots {
    /// Adds another file's result (the seed's `all_robots.update(robots)`).
    pub(crate) fn merge(&mut self, other: Robots) {
        if self.hosts.is_empty() {
            self.hosts = other.hosts;
        } else {
            self.hosts.extend(other.hosts);
        }
        self.lines += other.lines;
        self.skipped += other.skipped;
    }

    /// Records a host (ASCII: its line was checked).
    #[inline]
    pub(super) fn add_host(&mut self, host: &[u8]) {
        if let Ok(h) = std::str::from_utf8(host)
            && !self.hosts.contains(h)
        {
            self.hosts.insert(h.to_owned());
        }
    }

    /// Scans the complete lines of `buf`; with `last`, the text ends there
    /// (a final line without a newline counts). Returns how many bytes were
    /// consumed: the rest is a partial line to scan again with more text.
    pub(crate) fn scan(&mut self, buf: &[u8], last: bool) -> usize {
        self.scan_before(buf, last, &[])
    }

    /// [`Robots::scan`], having the CPU fetch `ahead`, the text to be read
    /// next, into cache meanwhile.
    pub(crate) fn scan_before(&mut self, buf: &[u8], last: bool, ahead: &[u8]) -> usize {
        // Plain text goes 64 bytes at a time (falling back to the exact loop
        // line by line where a block holds anything else); the exact loop
        // below does the tail.
        let i = super::fastscan::scan(self, buf, last, ahead);
        self.scan_exact(buf, i, last, buf.len())
    }

    /// The exact byte-by-byte scanner: the lines from line start `i` that
    /// start before `until`. Returns the next line start (or the start of an
    /// incomplete last line when not `last`).
    pub(super) fn scan_exact(
        &mut self,
        buf: &[u8],
        mut i: usize,
        last: bool,
        until: usize,
    ) -> usize {
        let n = buf.len();
        while i < until.min(n) {
            let (mut j, mut fields) = (i, 0u32);
            let (mut host, mut path) = (0..0, 0..0);
            // Fields 1..=7 only: the rest of the line is found with memchr.
            while fields < 7 {
                while j < n && CLASS[buf[j] as usize] == 1 {
                    j += 1;
                }
                if j == n || CLASS[buf[j] as usize] == 2 {
                    break;
                }
                let start = j;
                j = field_end(buf, j + 1);
                fields += 1;
                if fields == 1 {
                    host = start..j;
                } else if fields == 7 {
                    path = start..j;
                }
            }
            let end = memchr::memchr2(b'\n', b'\r', &buf[j..]).map_or(n, |k| j + k);
            let next = if end == n {
                if !last {
                    return i;
                }
                n
            } else if buf[end] == b'\r' {
                match buf.get(end + 1) {
                    Some(b'\n') => end + 2,
                    Some(_) => end + 1,
                    // A `\r` at the end of a chunk may be half of `\r\n`.
                    None if !last => return i,
                    None => end + 1,
                }
            } else {
                end + 1
            };
            self.lines += 1;
            if fields < 7 || !buf[i..end].is_ascii() {
                self.skipped += 1;
            } else if &buf[path] == b"/robots.txt" {
                self.add_host(&buf[host]);
            }
            i = next;
        }
        i
    }
}

/// One worker's reusable buffers: the compressed file, the decoded text and
/// the libdeflate state, kept across files so no file pays for page faults
/// of fresh buffers.
#[derive(Debug)]
pub(crate) struct Scanner {
    inflater: Inflater,
    gz: Vec<u8>,
    text: Vec<u8>,
    members: Vec<gz::MemberCrc>,
}

impl Scanner {
    /// A scanner whose in-memory limit is `max` decoded bytes per file.
    #[cfg(test)]
    fn with_max(max: usize) -> Scanner {
        Scanner {
            inflater: Inflater::with_max(max),
            ..Scanner::new()
        }
    }

    /// Empty buffers; they grow to the largest file seen.
    pub(crate) fn new() -> Scanner {
        Scanner {
            inflater: Inflater::new(),
            gz: Vec::new(),
            text: Vec::new(),
            members: Vec::new(),
        }
    }

    /// Reads `path` into the gzip buffer; `false` when the file is too big
    /// to decode in memory.
    fn read(&mut self, path: &Path) -> io::Result<bool> {
        let mut f = File::open(path)?;
        let size = f.metadata()?.len();
        if size > (self.inflater.max() / 4) as u64 {
            return Ok(false);
        }
        self.gz.clear();
        gz::reserve_populated(&mut self.gz, size as usize + 1);
        f.read_to_end(&mut self.gz)?;
        Ok(true)
    }

    /// Scans the text of the gzip file in the gzip buffer, checking its
    /// CRC-32 piece by piece just before scanning each piece, while the
    /// piece is in cache (see [`Inflater::gunzip_unchecked`]).
    fn scan_checked(&mut self, out: &mut Robots) -> io::Result<()> {
        /// Well within a core's L2 cache (1 MiB on the machine measured).
        const PIECE: usize = 256 << 10;
        let len = self
            .inflater
            .gunzip_unchecked(&self.gz, &mut self.text, &mut self.members)?;
        let text = &self.text[..len];
        let mut check = gz::CrcCheck::new(&self.members);
        // The lines before `at` are scanned: each piece up to its last
        // `\n` (with what the piece before left), so no line is scanned
        // twice, and a line longer than a piece waits for its end. While a
        // piece is scanned, the next one is fetched into cache for the CRC.
        let mut at = 0;
        for from in (0..len).step_by(PIECE) {
            let to = (from + PIECE).min(len);
            check.update(&text[from..to]);
            if let Some(nl) = memchr::memrchr(b'\n', &text[from..to]) {
                let ahead = &text[to..(to + PIECE).min(len)];
                at += out.scan_before(&text[at..from + nl + 1], false, ahead);
            }
        }
        out.scan(&text[at..], true);
        check.finish()
    }

    /// The seed's `find_robots(filename)`.
    ///
    /// # Errors
    ///
    /// The file cannot be read or is not valid gzip.
    pub(crate) fn find_robots(&mut self, path: &Path) -> io::Result<Robots> {
        let mut out = Robots::default();
        let whole = self.read(path)? && {
            let scanned = self.scan_checked(&mut out);
            self.in_memory(scanned)?.is_some()
        };
        if !whole {
            // Too big for memory: stream it in 1 MiB pieces.
            out = Robots::default();
            let mut dec = MultiGzDecoder::new(io::BufReader::new(File::open(path)?));
            let mut buf = vec![0u8; 1 << 20];
            let mut filled = 0;
            loop {
                if filled == buf.len() {
                    buf.resize(buf.len() * 2, 0); // one line longer than the buffer
                }
                let got = dec.read(&mut buf[filled..])?;
                filled += got;
                let used = out.scan(&buf[..filled], got == 0);
                buf.copy_within(used..filled, 0);
                filled -= used;
                if got == 0 {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Gunzips `path` and discards the text: the decoder's own speed limit.
    ///
    /// # Errors
    ///
    /// As [`Scanner::find_robots`].
    pub(crate) fn decode_only(&mut self, path: &Path) -> io::Result<u64> {
        if self.read(path)? {
            let decoded = self.inflater.gunzip(&self.gz, &mut self.text);
            if let Some(len) = self.in_memory(decoded)? {
                return Ok(len as u64);
            }
        }
        io::copy(&mut MultiGzDecoder::new(File::open(path)?), &mut io::sink())
    }

    /// `Some(value)` for a file that was handled in memory, `None` for one
    /// that turned out to decode past the in-memory limit (its buffer is
    /// freed: the caller streams the file instead), the error otherwise.
    fn in_memory<T>(&mut self, r: io::Result<T>) -> io::Result<Option<T>> {
        match r {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.kind() == io::ErrorKind::FileTooLarge => {
                self.text = Vec::new();
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Decodes `path`'s DEFLATE data and checks nothing else (no CRC-32):
    /// the floor under any reading of the file, for the bench to report.
    /// Returns the decoded length; `None` for a file too big for memory.
    ///
    /// # Errors
    ///
    /// As [`Scanner::find_robots`], except that a bad CRC goes unseen.
    pub(crate) fn inflate_only(&mut self, path: &Path) -> io::Result<Option<u64>> {
        if !self.read(path)? {
            return Ok(None);
        }
        let len = self
            .inflater
            .gunzip_unchecked(&self.gz, &mut self.text, &mut self.members);
        Ok(self.in_memory(len)?.map(|len| len as u64))
    }
}

thread_local! {
    static SCANNER: std::cell::RefCell<Option<Scanner>> = const { std::cell::RefCell::new(None) };
}

/// [`Scanner::find_robots`] with this thread's reused buffers.
///
/// # Errors
///
/// As [`Scanner::find_robots`].
pub(crate) fn find_robots(path: &Path) -> io::Result<Robots> {
    with_scanner(|s| s.find_robots(path))
}

/// [`Scanner::decode_only`] with this thread's reused buffers.
///
/// # Errors
///
/// As [`Scanner::find_robots`].
pub(crate) fn decode_only(path: &Path) -> io::Result<u64> {
    with_scanner(|s| s.decode_only(path))
}

/// [`Scanner::inflate_only`] with this thread's reused buffers.
///
/// # Errors
///
/// As [`Scanner::inflate_only`].
pub(crate) fn inflate_only(path: &Path) -> io::Result<Option<u64>> {
    with_scanner(|s| s.inflate_only(path))
}

fn with_scanner<R>(f: impl FnOnce(&mut Scanner) -> R) -> R {
    SCANNER.with(|cell| {
        let mut slot = cell.borrow_mut();
        f(slot.get_or_insert_with(Scanner::new))
    })
}

/// The `*.log.gz` files of `dir`, sorted by name (the seed's `glob`).
///
/// # Errors
///
/// `dir` cannot be listed.
pub(crate) fn log_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let p = entry?.path();
        if p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|s| s.ends_with(".log.gz"))
        {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

/// `hosts: N` and `sha256: <first 16 hex digits>` over the sorted hosts joined
/// by "\n": the fingerprint every mode (and the Python program) must agree on.
pub(crate) fn fingerprint(hosts: &HashSet<String>) -> (usize, String) {
    let mut sorted: Vec<&String> = hosts.iter().collect();
    sorted.sort();
    let mut h = Sha256::new();
    for (i, host) in sorted.iter().enumerate() {
        if i > 0 {
            h.update(b"\n");
        }
        h.update(host.as_bytes());
    }
    let hex: String = h
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    (sorted.len(), hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(text: &[u8]) -> Robots {
        let mut r = Robots::default();
        assert_eq!(r.scan(text, true), text.len());
        r
    }

    const GOOD: &str =
        "1.2.3.4 - - [10/Jul/2012:00:18:50 -0500] \"GET /robots.txt HTTP/1.1\" 200 71";

    #[test]
    fn field_seven_and_host_as_str_split_sees_them() {
        let text = format!(
            "{GOOD}\n5.6.7.8\t-  -\x0b[x\x1f-0500]   \"GET /robots.txt\n9.9.9.9 - - [x y] \"GET /index.html\n"
        );
        let r = scan(text.as_bytes());
        assert_eq!(r.lines, 3);
        assert_eq!(r.skipped, 0);
        let mut hosts: Vec<_> = r.hosts.into_iter().collect();
        hosts.sort();
        assert_eq!(hosts, ["1.2.3.4", "5.6.7.8"]);
    }

    #[test]
    fn universal_newlines_and_a_last_line_without_newline() {
        let text = format!("{GOOD}\r\n{GOOD}\r{GOOD}");
        let r = scan(text.as_bytes());
        assert_eq!((r.lines, r.skipped, r.hosts.len()), (3, 0, 1));
        // Python's universal newlines split "a\rb" in two lines.
        let r = scan(b"1.1.1.1 - - [d z] \"GET\r/robots.txt x\n");
        assert_eq!((r.lines, r.skipped), (2, 2));
    }

    #[test]
    fn malformed_lines_are_skipped_and_counted() {
        let text = format!(
            "\n{GOOD}\n   \nshort line\n1.2.3.9 - - [caf\u{e9} z] \"GET /robots.txt\n{GOOD}\n"
        );
        let r = scan(text.as_bytes());
        assert_eq!(r.lines, 6);
        assert_eq!(r.skipped, 4, "empty, blank, short, non-ASCII");
        assert_eq!(r.hosts.len(), 1);
        assert!(r.hosts.contains("1.2.3.4"));
    }

    #[test]
    fn chunked_scanning_matches_whole_scanning() {
        let mut text = String::new();
        for i in 0..500 {
            let path = if i % 7 == 0 { "/robots.txt" } else { "/x" };
            let nl = ["\n", "\r\n", "\r"][i % 3];
            text += &format!(
                "10.0.{}.{} - - [d z] \"GET {path} HTTP/1.1\" 200 1{nl}",
                i % 5,
                i % 11
            );
            if i % 50 == 0 {
                text += "bad\n";
            }
        }
        let whole = scan(text.as_bytes());
        for chunk in [1, 2, 3, 7, 64, 1000] {
            let mut r = Robots::default();
            let bytes = text.as_bytes();
            let (mut buf, mut pos) = (Vec::new(), 0);
            while pos < bytes.len() {
                let end = (pos + chunk).min(bytes.len());
                buf.extend_from_slice(&bytes[pos..end]);
                pos = end;
                let used = r.scan(&buf, false);
                buf.drain(..used);
            }
            r.scan(&buf, true);
            assert_eq!(r, whole, "chunk {chunk}");
        }
        assert_eq!(whole.lines, 510);
        assert_eq!(whole.skipped, 10);
    }

    /// Random text from the pieces that matter: fields, every kind of
    /// whitespace and line end, control and non-ASCII bytes.
    /// `plain`: spaces and `\n` only (the fast path's text); `odd`: now and
    /// then a control or non-ASCII byte.
    fn random_text(seed: u64, lines: usize, plain: bool, odd: bool) -> Vec<u8> {
        let mut rng = super::super::logs::SplitMix64::new(seed);
        let pieces: &[&[u8]] = &[
            b"1.2.3.4",
            b"5.6.7.8",
            b"-",
            b"[10/Jul/2012:00:18:50",
            b"-0500]",
            b"\"GET",
            b"/robots.txt",
            b"/robots.txtx",
            b"x/robots.txt",
            b"/r",
            b"/rx",
            b"/",
            b"/index.html",
            b"HTTP/1.1\"",
            b"200",
            b"71",
        ];
        let seps: &[&[u8]] = &[
            b" ", b" ", b" ", b"  ", b"\t", b"\x0b", b"\x0c", b"\x1c", b"\x1f",
        ];
        let weird: &[&[u8]] = &[
            b"\x01",
            b"\x1b",
            "\u{e9}".as_bytes(),
            b"\r",
            b"\r\n",
            b"\n\n",
        ];
        let mut out = Vec::new();
        for _ in 0..lines {
            let fields = rng.below(10);
            for f in 0..fields {
                if f > 0 || rng.below(4) == 0 {
                    let sep = if plain {
                        b" "
                    } else {
                        seps[rng.below(seps.len() as u64) as usize]
                    };
                    out.extend_from_slice(sep);
                }
                // Field 7 is /robots.txt more often than chance.
                let piece = if f == 6 && rng.below(3) == 0 {
                    &b"/robots.txt"[..]
                } else {
                    pieces[rng.below(pieces.len() as u64) as usize]
                };
                out.extend_from_slice(piece);
                if odd && rng.below(40) == 0 {
                    out.extend_from_slice(weird[rng.below(weird.len() as u64) as usize]);
                }
            }
            out.extend_from_slice(match rng.below(10) {
                _ if plain => b"\n",
                0 => b"\r\n",
                1 => b"\r",
                _ => b"\n",
            });
        }
        out
    }

    type FastPath = fn(&mut Robots, &[u8], bool, &[u8]) -> usize;

    /// Every fast path this CPU can run, beside the one `scan` picks.
    fn fast_paths() -> Vec<(&'static str, FastPath)> {
        #[allow(unused_mut)]
        let mut paths: Vec<(&'static str, FastPath)> = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            use super::super::fastscan;
            paths.push(("SSE2", fastscan::scan_sse2));
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2 (checked just above).
                paths.push(("AVX2", |o, b, l, a| unsafe {
                    fastscan::scan_avx2(o, b, l, a)
                }));
            }
            if std::arch::is_x86_feature_detected!("avx512bw") {
                // SAFETY: the CPU has AVX-512 F and BW (checked just above).
                paths.push(("AVX-512", |o, b, l, a| unsafe {
                    fastscan::scan_avx512(o, b, l, a)
                }));
            }
        }
        paths
    }

    #[test]
    fn the_fast_path_agrees_with_the_exact_scanner() {
        let rounds = if cfg!(miri) { 4 } else { 300 };
        let (mut found, mut skipped) = (0, 0);
        for seed in 0..rounds {
            for (plain, odd) in [(true, false), (true, true), (false, true)] {
                let text = random_text(seed, 60, plain, odd);
                for cut in [text.len(), text.len().saturating_sub(1), text.len() / 2] {
                    let part = &text[..cut];
                    let mut fast = Robots::default();
                    let used_fast = fast.scan(part, seed % 2 == 0);
                    let mut exact = Robots::default();
                    let used_exact = exact.scan_exact(part, 0, seed % 2 == 0, part.len());
                    assert_eq!(
                        used_fast, used_exact,
                        "seed {seed} plain {plain} odd {odd} cut {cut}"
                    );
                    assert_eq!(fast, exact, "seed {seed} plain {plain} odd {odd} cut {cut}");
                    for (name, path) in fast_paths() {
                        let mut r = Robots::default();
                        // Prefetching (here the text itself) changes nothing.
                        let at = path(&mut r, part, seed % 2 == 0, &text);
                        let used = r.scan_exact(part, at, seed % 2 == 0, part.len());
                        assert_eq!((used, &r), (used_exact, &exact), "{name}, seed {seed}");
                    }
                    found += fast.hosts.len();
                    skipped += fast.skipped;
                }
            }
        }
        // The generator exercises both outcomes.
        assert!(
            found > 100 && skipped > 100,
            "{found} hosts, {skipped} skipped"
        );
    }

    #[test]
    fn the_fast_path_takes_plain_text() {
        let text = format!("{GOOD}\n").repeat(100);
        let mut r = Robots::default();
        let upto = super::super::fastscan::scan(&mut r, text.as_bytes(), true, &[]);
        if cfg!(target_arch = "x86_64") {
            assert!(upto > text.len() - 128, "fast path stopped at {upto}");
            assert_eq!(r.lines as usize, upto / (GOOD.len() + 1));
        }
        r.scan_exact(text.as_bytes(), upto, true, text.len());
        assert_eq!((r.lines, r.skipped, r.hosts.len()), (100, 0, 1));
    }

    #[test]
    fn fingerprint_is_sha256_of_sorted_hosts_joined_by_newline() {
        let hosts: HashSet<String> = ["b", "a"].iter().map(|s| s.to_string()).collect();
        let (n, hex) = fingerprint(&hosts);
        assert_eq!(n, 2);
        let want: String = Sha256::digest(b"a\nb")
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, want);
        assert_eq!(fingerprint(&HashSet::new()).0, 0);
    }

    /// A gzip file of one member per item of `members`.
    fn gzip_file(dir: &Path, name: &str, members: &[&[u8]]) -> PathBuf {
        let path = dir.join(name);
        let file: Vec<u8> = members
            .iter()
            .flat_map(|m| super::super::gz::tests::gzip(m))
            .collect();
        std::fs::write(&path, file).unwrap();
        path
    }

    #[test]
    fn files_scan_in_pieces_as_the_whole_text_does() {
        // More than a few 256 KiB pieces, with a line longer than a piece,
        // `\r\n` and `\r` line ends, and members that split lines.
        let mut text = random_text(7, 6000, false, true);
        let long = format!(
            "9.9.9.9 - - [d z] \"GET /robots.txt {}\n",
            "x".repeat(600 << 10)
        );
        let at = text.len() / 3;
        text.splice(at..at, long.bytes());
        let mut more = random_text(8, 6000, true, false);
        // A stretch of `\r`-only line ends longer than a piece, and a last
        // line without a newline.
        for i in 0..2000 {
            let path = if i % 9 == 0 { "/robots.txt" } else { "/a" };
            more.extend(format!("7.7.{}.{i} - - [d z] \"GET {path} H\" 200 1\r", i % 7).bytes());
            more.extend(std::iter::repeat_n(b'y', 150));
            more.push(b'\r');
        }
        more.extend(b"8.8.8.8 - - [d z] \"GET /robots.txt H\" 200 1");
        let dir =
            std::env::temp_dir().join(format!("spindle-robots-pieces-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cut = text.len() / 2 + 11;
        let path = gzip_file(&dir, "a.log.gz", &[&text[..cut], &text[cut..], &more]);
        let mut whole = text.clone();
        whole.extend(&more);
        let want = scan(&whole);
        assert!(text.len() + more.len() > 4 * (256 << 10));
        let got = Scanner::new().find_robots(&path).unwrap();
        assert_eq!(got, want);
        assert!(got.hosts.contains("8.8.8.8"), "the last line counts");
        // Past the in-memory limit, by file size or by decoded size, the
        // file streams, with the same answer.
        for max in [1 << 20, 64 << 20] {
            let mut s = Scanner::with_max(max);
            assert_eq!(s.find_robots(&path).unwrap(), want, "limit {max}");
            assert_eq!(s.decode_only(&path).unwrap(), whole.len() as u64);
            let floor = s.inflate_only(&path).unwrap();
            assert_eq!(floor, (max > whole.len()).then_some(whole.len() as u64));
        }
        // A CRC that does not match is an error, not a partial answer.
        let mut bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 5] ^= 0x40;
        std::fs::write(&path, bytes).unwrap();
        let err = Scanner::new().find_robots(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
