//! The fast path of [`Robots::scan`](super::robots::Robots::scan): 64 bytes
//! at a time with SSE2 (every x86-64 CPU has it) or AVX2 (where the CPU
//! has it), as bit masks.
//!
//! Log text is printable ASCII with fields split by spaces and lines ended
//! by `\n`. For each 64-byte block three masks are built: separators (space,
//! `\n`), line ends (`\n`) and "other" bytes (any other control byte —
//! `\r`, `\t`, ... — or non-ASCII). Field starts are `!sep & (sep << 1 |
//! carry)`, so a line costs a few bit operations instead of a loop over its
//! bytes. A block holding an "other" byte is handed, line by line, to the
//! exact byte-by-byte scanner (which knows Python's full whitespace and
//! newline rules), and the fast path resumes after those lines: both paths
//! always agree (tests compare them on random text), and one odd line does
//! not slow down the rest of a file.

use super::robots::{Robots, field_end, is_field_byte};

/// Scans the lines of `buf` from the start; returns the line start where it
/// stopped (less than 64 bytes left, or an incomplete line) for the exact
/// scanner to go on.
#[cfg(target_arch = "x86_64")]
pub(super) fn scan(out: &mut Robots, buf: &[u8], last: bool) -> usize {
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        unsafe { scan_avx2(out, buf, last) }
    } else {
        // SAFETY: `masks` only needs SSE2, which every x86-64 CPU has (it is
        // part of the target's baseline: see the assertion below).
        scan_with(out, buf, last, |b| unsafe { masks(b) })
    }
}

/// The SSE2 path even where AVX2 is there, for the tests.
#[cfg(all(test, target_arch = "x86_64"))]
pub(super) fn scan_sse2(out: &mut Robots, buf: &[u8], last: bool) -> usize {
    // SAFETY: as in `scan`: SSE2 is always there on x86-64.
    scan_with(out, buf, last, |b| unsafe { masks(b) })
}

/// [`scan`] compiled for AVX2: 32-byte lanes and three-operand encodings.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn scan_avx2(out: &mut Robots, buf: &[u8], last: bool) -> usize {
    scan_with(out, buf, last, |b| masks_avx2(b))
}

/// The scanning loop over blocks whose masks `masks` computes.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn scan_with(
    out: &mut Robots,
    buf: &[u8],
    last: bool,
    masks: impl Fn(&[u8]) -> Option<(u64, u64)>,
) -> usize {
    let mut line_start = 0;
    let (mut fields, mut host, mut f7) = (0u32, 0usize, 0usize);
    // The byte before the block is a separator: a line start counts as one.
    let mut carry = 1u64;
    let mut base = 0;
    while let Some(block) = buf.get(base..base + 64) {
        let Some((sep, mut eol)) = masks(block) else {
            // Exact scanning for the lines that touch this block, then on.
            let next = out.scan_exact(buf, line_start, last, base + 64);
            if next <= line_start || next >= buf.len() {
                return next;
            }
            line_start = next;
            base = next;
            fields = 0;
            carry = 1;
            continue;
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
            finish(out, buf, fields, host, f7);
            fields = 0;
            line_start = p + 1;
        }
        base += 64;
    }
    line_start
}

/// Without SSE2 the exact scanner does all the work.
#[cfg(not(target_arch = "x86_64"))]
pub(super) fn scan(_out: &mut Robots, _buf: &[u8], _last: bool) -> usize {
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

/// (separators, line ends) of a 64-byte block, or `None` if it holds a byte
/// other than printable ASCII, space and `\n`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
#[inline]
fn masks(block: &[u8]) -> Option<(u64, u64)> {
    use std::arch::x86_64::*;
    let (mut space, mut nl, mut ctrl, mut high) = (0u64, 0u64, 0u64, 0u64);
    let (k1f, kspace, knl) = (
        _mm_set1_epi8(0x1f),
        _mm_set1_epi8(b' ' as i8),
        _mm_set1_epi8(b'\n' as i8),
    );
    for (i, lane) in block.chunks_exact(16).enumerate() {
        // SAFETY: `lane` is 16 initialised bytes (chunks_exact), and
        // `_mm_loadu_si128` has no alignment requirement.
        let v = unsafe { _mm_loadu_si128(lane.as_ptr().cast()) };
        let shift = 16 * i;
        // Unsigned `v <= 0x1f` is `min(v, 0x1f) == v`.
        let c = _mm_cmpeq_epi8(_mm_min_epu8(v, k1f), v);
        ctrl |= u64::from(_mm_movemask_epi8(c) as u16) << shift;
        nl |= u64::from(_mm_movemask_epi8(_mm_cmpeq_epi8(v, knl)) as u16) << shift;
        space |= u64::from(_mm_movemask_epi8(_mm_cmpeq_epi8(v, kspace)) as u16) << shift;
        high |= u64::from(_mm_movemask_epi8(v) as u16) << shift;
    }
    ((ctrl & !nl) | high == 0).then_some((space | nl, nl))
}

/// [`masks`] with AVX2, 32 bytes per lane.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn masks_avx2(block: &[u8]) -> Option<(u64, u64)> {
    use std::arch::x86_64::*;
    let (mut space, mut nl, mut ctrl, mut high) = (0u64, 0u64, 0u64, 0u64);
    let (k1f, kspace, knl) = (
        _mm256_set1_epi8(0x1f),
        _mm256_set1_epi8(b' ' as i8),
        _mm256_set1_epi8(b'\n' as i8),
    );
    for (i, lane) in block.chunks_exact(32).enumerate() {
        // SAFETY: `lane` is 32 initialised bytes (chunks_exact), and
        // `_mm256_loadu_si256` has no alignment requirement.
        let v = unsafe { _mm256_loadu_si256(lane.as_ptr().cast()) };
        let shift = 32 * i;
        let c = _mm256_cmpeq_epi8(_mm256_min_epu8(v, k1f), v);
        ctrl |= u64::from(_mm256_movemask_epi8(c) as u32) << shift;
        nl |= u64::from(_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, knl)) as u32) << shift;
        space |= u64::from(_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, kspace)) as u32) << shift;
        high |= u64::from(_mm256_movemask_epi8(v) as u32) << shift;
    }
    ((ctrl & !nl) | high == 0).then_some((space | nl, nl))
}
