//! The Python Cookbook's `find_robots` (recipe 12.8): every host (field 1) of a log line
//! whose field 7 is `/robots.txt`, over whole gzip files.
//!
//! Python semantics, byte for byte, without a per-line allocation:
//! - lines end at `\n`, `\r` or `\r\n` (the universal newlines of
//!   `io.TextIOWrapper`); a last line without a newline still counts;
//! - fields are split as `str.split()` splits ASCII text: on runs of
//!   `\t \n \x0b \x0c \r \x1c \x1d \x1e \x1f` and space;
//! - a line with fewer than 7 fields, or with a byte that is not ASCII (the
//!   Python program decodes with `encoding='ascii'`), is *skipped and
//!   counted*. The Python program itself would stop with `IndexError` / `UnicodeDecodeError`; one bad line
//!   should not lose the whole answer.
//!
//! [`Robots::scan`] runs the SIMD fast path (`fastscan`) over plain text and
//! the exact scanner (`exact`, where [`Robots`] is defined) over the rest.

#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use sha2::{Digest, Sha256};

pub use crate::exact::Robots;
use crate::fastscan;
use crate::gz::{self, Inflater};

impl Robots {
    /// Scans the complete lines of `buf`; with `last`, the text ends there
    /// (a final line without a newline counts). Returns how many bytes were
    /// consumed: the rest is a partial line to scan again with more text.
    pub fn scan(&mut self, buf: &[u8], last: bool) -> usize {
        self.scan_before(buf, last, &[])
    }

    /// [`Robots::scan`], having the CPU fetch `ahead`, the text to be read
    /// next, into cache meanwhile.
    pub fn scan_before(&mut self, buf: &[u8], last: bool, ahead: &[u8]) -> usize {
        // Plain text goes 64 bytes at a time (falling back to the exact loop
        // line by line where a block holds anything else); the exact loop
        // below does the tail.
        let i = fastscan::scan(self, buf, last, ahead);
        self.scan_exact(buf, i, last, buf.len())
    }
}

/// One worker's reusable buffers: the compressed file, the decoded text and
/// the libdeflate state, kept across files so no file pays for page faults
/// of fresh buffers.
#[derive(Debug)]
pub struct Scanner {
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
    pub fn new() -> Scanner {
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
    fn scan_checked(&mut self, out: &mut Robots) -> io::Result<u64> {
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
        check.finish()?;
        Ok(len as u64)
    }

    /// Python's `find_robots(filename)`.
    ///
    /// # Errors
    ///
    /// The file cannot be read or is not valid gzip.
    pub fn find_robots(&mut self, path: &Path) -> io::Result<Robots> {
        self.find_robots_counted(path).map(|(r, _)| r)
    }

    /// [`Scanner::find_robots`], and how many bytes of text the file
    /// decoded to (for a progress report).
    ///
    /// # Errors
    ///
    /// As [`Scanner::find_robots`].
    pub fn find_robots_counted(&mut self, path: &Path) -> io::Result<(Robots, u64)> {
        let mut out = Robots::default();
        let mut decoded = 0;
        let whole = self.read(path)? && {
            let scanned = self.scan_checked(&mut out);
            self.in_memory(scanned)?.inspect(|&n| decoded = n).is_some()
        };
        if !whole {
            // Too big for memory: stream it in 1 MiB pieces.
            out = Robots::default();
            decoded = 0;
            let mut dec = MultiGzDecoder::new(io::BufReader::new(File::open(path)?));
            let mut buf = vec![0u8; 1 << 20];
            let mut filled = 0;
            loop {
                if filled == buf.len() {
                    buf.resize(buf.len() * 2, 0); // one line longer than the buffer
                }
                let got = dec.read(&mut buf[filled..])?;
                filled += got;
                decoded += got as u64;
                let used = out.scan(&buf[..filled], got == 0);
                buf.copy_within(used..filled, 0);
                filled -= used;
                if got == 0 {
                    break;
                }
            }
        }
        Ok((out, decoded))
    }

    /// Gunzips `path` and discards the text: the decoder's own speed limit.
    ///
    /// # Errors
    ///
    /// As [`Scanner::find_robots`].
    pub fn decode_only(&mut self, path: &Path) -> io::Result<u64> {
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
    pub fn inflate_only(&mut self, path: &Path) -> io::Result<Option<u64>> {
        if !self.read(path)? {
            return Ok(None);
        }
        let len = self
            .inflater
            .gunzip_unchecked(&self.gz, &mut self.text, &mut self.members);
        Ok(self.in_memory(len)?.map(|len| len as u64))
    }
}

impl Default for Scanner {
    fn default() -> Scanner {
        Scanner::new()
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
pub fn find_robots(path: &Path) -> io::Result<Robots> {
    with_scanner(|s| s.find_robots(path))
}

/// [`Scanner::find_robots_counted`] with this thread's reused buffers.
///
/// # Errors
///
/// As [`Scanner::find_robots`].
pub fn find_robots_counted(path: &Path) -> io::Result<(Robots, u64)> {
    with_scanner(|s| s.find_robots_counted(path))
}

/// [`Scanner::decode_only`] with this thread's reused buffers.
///
/// # Errors
///
/// As [`Scanner::find_robots`].
pub fn decode_only(path: &Path) -> io::Result<u64> {
    with_scanner(|s| s.decode_only(path))
}

/// [`Scanner::inflate_only`] with this thread's reused buffers.
///
/// # Errors
///
/// As [`Scanner::inflate_only`].
pub fn inflate_only(path: &Path) -> io::Result<Option<u64>> {
    with_scanner(|s| s.inflate_only(path))
}

fn with_scanner<R>(f: impl FnOnce(&mut Scanner) -> R) -> R {
    SCANNER.with(|cell| {
        let mut slot = cell.borrow_mut();
        f(slot.get_or_insert_with(Scanner::new))
    })
}

/// The `*.log.gz` files of `dir`, sorted by name (the Python program's `glob`),
/// that are regular files or symbolic links to one; see [`scan_dir`] for
/// the names skipped.
///
/// # Errors
///
/// `dir` cannot be listed.
pub fn log_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    Ok(scan_dir(dir)?.files)
}

/// The `*.log.gz` names of a directory: the regular files to read, and the
/// others, skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFiles {
    /// Regular files (or symbolic links to one), sorted by name.
    pub files: Vec<PathBuf>,
    /// Everything else named `*.log.gz`, sorted, with what it is: a FIFO
    /// (reading one would block until a writer comes), a directory, a
    /// device, a socket, a dangling symbolic link.
    pub skipped: Vec<(PathBuf, String)>,
}

/// The `*.log.gz` names of `dir` (the Python program's `glob`), sorted:
/// the regular files (or symbolic links to one) and the rest, skipped with
/// what they are. Python's `gzip.open` would block forever on a FIFO.
///
/// # Errors
///
/// `dir` cannot be listed.
pub fn scan_dir(dir: &Path) -> io::Result<LogFiles> {
    use std::os::unix::fs::FileTypeExt;
    let mut out = LogFiles::default();
    for entry in std::fs::read_dir(dir)? {
        let p = entry?.path();
        if !p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|s| s.ends_with(".log.gz"))
        {
            continue;
        }
        // `metadata` follows symbolic links (`lstat` would not).
        let what = match std::fs::metadata(&p) {
            Ok(m) if m.is_file() => {
                out.files.push(p);
                continue;
            }
            Ok(m) => {
                let t = m.file_type();
                if t.is_dir() {
                    "a directory"
                } else if t.is_fifo() {
                    "a FIFO"
                } else if t.is_socket() {
                    "a socket"
                } else if t.is_char_device() {
                    "a character device"
                } else if t.is_block_device() {
                    "a block device"
                } else {
                    "not a regular file"
                }
                .to_string()
            }
            Err(e) => format!("cannot be read: {e}"),
        };
        out.skipped.push((p, what));
    }
    out.files.sort();
    out.skipped.sort();
    Ok(out)
}

/// `hosts: N` and `sha256: <first 16 hex digits>` over the sorted hosts joined
/// by "\n": the fingerprint every mode (and the Python program) must agree on.
pub fn fingerprint(hosts: &HashSet<String>) -> (usize, String) {
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
    use crate::testing::{GOOD, gzip, random_text};

    fn scan(text: &[u8]) -> Robots {
        let mut r = Robots::default();
        assert_eq!(r.scan(text, true), text.len());
        r
    }

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

    #[test]
    fn scan_agrees_with_the_exact_scanner_alone() {
        // `scan` takes the fast path where it can; the answer and the bytes
        // consumed are the exact scanner's, on any text (fastscan's tests
        // compare each SIMD path the same way).
        for seed in 0..40 {
            for (plain, odd) in [(true, false), (false, true)] {
                let text = random_text(seed, 80, plain, odd);
                let last = seed % 2 == 0;
                let mut fast = Robots::default();
                let used = fast.scan(&text, last);
                let mut exact = Robots::default();
                let want = exact.scan_exact(&text, 0, last, text.len());
                assert_eq!((used, &fast), (want, &exact), "seed {seed} plain {plain}");
            }
        }
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
        let file: Vec<u8> = members.iter().flat_map(|m| gzip(m)).collect();
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
        let (got, decoded) = Scanner::new().find_robots_counted(&path).unwrap();
        assert_eq!(got, want);
        assert_eq!(decoded, whole.len() as u64);
        assert!(got.hosts.contains("8.8.8.8"), "the last line counts");
        // Past the in-memory limit, by file size or by decoded size, the
        // file streams, with the same answer.
        for max in [1 << 20, 64 << 20] {
            let mut s = Scanner::with_max(max);
            let streamed = s.find_robots_counted(&path).unwrap();
            assert_eq!(streamed, (want.clone(), whole.len() as u64), "limit {max}");
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
