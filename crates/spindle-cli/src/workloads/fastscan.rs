//! The fast path of [`Robots::scan`](super::robots::Robots::scan): 64 bytes
//! at a time with SSE2 (every x86-64 CPU has it), as bit masks.
//!
//! For each 64-byte block three masks are built: separators (Python's ASCII
//! whitespace, line ends included), line ends (`\n`, `\r`) and "bad" bytes
//! (non-ASCII, or a control byte that is not whitespace). Field starts are
//! then `!sep & (sep << 1 | carry)`, so a line costs a few bit operations
//! instead of a loop over its bytes. A block with a bad byte stops the fast
//! path at the start of the current line; the exact byte-by-byte scanner
//! goes on from there, so both paths always agree (tests compare them).
//!
//! Without this the scan took as long as the gzip decoding itself; with it
//! it is a fraction (see `gz.rs` for the decoder figures).

use super::robots::{Robots, field_end, is_field_byte};

/// Scans whole lines of `buf` from the start while its 64-byte blocks are
/// plain ASCII text; returns where it stopped (a line start) for the exact
/// scanner to go on.
#[cfg(target_arch = "x86_64")]
pub(super) fn scan(out: &mut Robots, buf: &[u8]) -> usize {
    let mut line_start = 0;
    let (mut fields, mut host, mut f7) = (0u32, 0usize, 0usize);
    // The byte before the block is a separator: a line start counts as one.
    let mut carry = 1u64;
    let mut crlf = usize::MAX; // position of a `\n` that ends a `\r\n`
    let mut base = 0;
    while let Some(block) = buf.get(base..base + 64) {
        // SAFETY: `masks` only needs SSE2, which every x86-64 CPU has (it is
        // part of the target's baseline: see the assertion below).
        let Some((sep, mut eol)) = (unsafe { masks(block) }) else {
            return line_start;
        };
        let mut starts = !sep & ((sep << 1) | carry);
        carry = sep >> 63;
        loop {
            let low = eol & eol.wrapping_neg(); // lowest line end, or 0
            let mut here = if low == 0 { starts } else { starts & (low - 1) };
            while here != 0 && fields < 7 {
                let pos = base + here.trailing_zeros() as usize;
                fields += 1;
                if fields == 1 {
                    host = pos;
                } else if fields == 7 {
                    f7 = pos;
                }
                here &= here - 1;
            }
            if low == 0 {
                break;
            }
            let p = base + eol.trailing_zeros() as usize;
            eol &= eol - 1;
            starts &= !(low | (low - 1));
            if p == crlf {
                continue; // the `\n` of `\r\n`: no new line
            }
            let mut next = p + 1;
            if buf[p] == b'\r' {
                match buf.get(p + 1) {
                    Some(b'\n') => {
                        crlf = p + 1;
                        next = p + 2;
                    }
                    Some(_) => {}
                    None => return line_start, // `\r` or `\r\n`? The caller knows.
                }
            }
            finish(out, buf, fields, host, f7);
            fields = 0;
            line_start = next;
        }
        base += 64;
    }
    line_start
}

/// Without SSE2 the exact scanner does all the work.
#[cfg(not(target_arch = "x86_64"))]
pub(super) fn scan(_out: &mut Robots, _buf: &[u8]) -> usize {
    0
}

/// One complete line with `fields` (up to 7) field starts seen.
#[inline]
fn finish(out: &mut Robots, buf: &[u8], fields: u32, host: usize, f7: usize) {
    out.lines += 1;
    if fields < 7 {
        out.skipped += 1;
        return;
    }
    const ROBOTS: &[u8] = b"/robots.txt";
    if buf[f7..].starts_with(ROBOTS)
        && buf
            .get(f7 + ROBOTS.len())
            .is_none_or(|&c| !is_field_byte(c))
    {
        out.add_host(&buf[host..field_end(buf, host + 1)]);
    }
}

#[cfg(target_arch = "x86_64")]
const _: () = assert!(cfg!(target_feature = "sse2"), "x86-64 always has SSE2");

/// Unsigned `x <= k` per byte: `min(x, k) == x`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
#[inline]
fn le(x: std::arch::x86_64::__m128i, k: i8) -> std::arch::x86_64::__m128i {
    use std::arch::x86_64::*;
    _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(k)), x)
}

/// (separators, line ends) of a 64-byte block, or `None` if it holds a byte
/// the fast path does not handle (non-ASCII, non-whitespace control byte).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
#[inline]
fn masks(block: &[u8]) -> Option<(u64, u64)> {
    use std::arch::x86_64::*;
    let (mut sep, mut eol, mut bad) = (0u64, 0u64, 0u64);
    for (i, lane) in block.chunks_exact(16).enumerate() {
        // SAFETY: `lane` is 16 initialised bytes (chunks_exact), and
        // `_mm_loadu_si128` has no alignment requirement.
        let v = unsafe { _mm_loadu_si128(lane.as_ptr().cast()) };
        let low = le(v, 0x20);
        // Python's ASCII whitespace: 0x09..=0x0d and 0x1c..=0x20.
        let ws = _mm_or_si128(
            le(_mm_sub_epi8(v, _mm_set1_epi8(0x09)), 4),
            le(_mm_sub_epi8(v, _mm_set1_epi8(0x1c)), 4),
        );
        let ends = _mm_or_si128(
            _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\n' as i8)),
            _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\r' as i8)),
        );
        let shift = 16 * i;
        sep |= u64::from(_mm_movemask_epi8(ws) as u16) << shift;
        eol |= u64::from(_mm_movemask_epi8(ends) as u16) << shift;
        let odd = _mm_or_si128(_mm_andnot_si128(ws, low), v);
        bad |= u64::from(_mm_movemask_epi8(odd) as u16) << shift;
    }
    (bad == 0).then_some((sep, eol))
}
