//! [`Robots`], what a scan of log text yields, and the exact byte-by-byte
//! line scanner that fills it: Python's rules for lines and fields, byte for
//! byte (see the [`robots`](crate::robots) module for them).
//!
//! Both scanners of [`Robots::scan`](crate::robots::Robots::scan) feed a
//! `Robots`: the SIMD fast path (`fastscan`) hands every line it cannot
//! decide alone to the exact scanner here, and the exact scanner does the
//! tail. This module uses neither of them: `fastscan` and `robots` use it.

#![forbid(unsafe_code)]

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

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
pub struct Robots {
    /// The hosts that asked for `/robots.txt`.
    pub hosts: HashSet<String>,
    /// Lines read.
    pub lines: u64,
    /// Lines skipped: fewer than 7 fields, or not ASCII.
    pub skipped: u64,
}

impl Robots {
    /// Adds another file's result (Python's `all_robots.update(robots)`).
    pub fn merge(&mut self, other: Robots) {
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
    fn add_host(&mut self, host: &[u8]) {
        if let Ok(h) = std::str::from_utf8(host)
            && !self.hosts.contains(h)
        {
            self.hosts.insert(h.to_owned());
        }
    }

    /// The exact byte-by-byte scanner: the lines from line start `i` that
    /// start before `until`. Returns the next line start (or the start of an
    /// incomplete last line when not `last`).
    pub(crate) fn scan_exact(
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
