//! Helpers shared by the unit tests of several modules (test builds only).

#![forbid(unsafe_code)]

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::logs::SplitMix64;

/// A well-formed log line whose host asked for `/robots.txt`.
pub(crate) const GOOD: &str =
    "1.2.3.4 - - [10/Jul/2012:00:18:50 -0500] \"GET /robots.txt HTTP/1.1\" 200 71";

/// `data` as one gzip member.
pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Random text from the pieces that matter: fields, every kind of
/// whitespace and line end, control and non-ASCII bytes.
/// `plain`: spaces and `\n` only (the fast path's text); `odd`: now and
/// then a control or non-ASCII byte.
pub(crate) fn random_text(seed: u64, lines: usize, plain: bool, odd: bool) -> Vec<u8> {
    let mut rng = SplitMix64::new(seed);
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
