//! The fast path of [`Robots::scan`](crate::robots::Robots::scan): 64 bytes
//! at a time as bit masks, with AVX-512 (where the CPU has it), AVX2, or
//! SSE2 (every x86-64 CPU has it).
//!
//! Log text is printable ASCII with fields split by spaces and lines ended
//! by `\n`. For each 64-byte block the masks are: separators (space, `\n`),
//! line ends (`\n`), "other" bytes (any other control byte — `\r`, `\t`, ...
//! — or non-ASCII) and candidates (a `/` followed by `r`). Field starts are
//! `!sep & (sep << 1 | carry)`, so a line costs a population count per
//! block instead of a loop over its bytes or fields: a line with fewer than
//! seven field starts is skipped and counted. Field 7 can only be
//! `/robots.txt` on a line where a field starts with `/r`; those lines (1%
//! of a log) go to the exact scanner, which finds field 7 and the host.
//! A block holding an "other" byte is handed, line by line, to the exact
//! byte-by-byte scanner (which knows Python's full whitespace and newline
//! rules), and the fast path resumes after those lines: both paths always
//! agree (tests compare them on random text), and one odd line does not
//! slow down the rest of a file.
//!
//! It uses [`Robots`] and its exact scanner from `exact`, and nothing of
//! `robots`, which calls it.

// SIMD intrinsics and `#[target_feature]` functions: every unsafe block
// says why its call is sound.
#![allow(unsafe_code)]

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::{_MM_HINT_T1, _mm_prefetch};

use crate::exact::Robots;

/// The masks of one 64-byte block (bit `i` is byte `i`).
#[derive(Clone, Copy)]
struct Masks {
    /// Space or `\n`.
    sep: u64,
    /// `\n`.
    eol: u64,
    /// `/` followed by `r`; bit 63 (whose next byte is in the next block)
    /// is set for any `/`, which at worst sends one more line to the exact
    /// scanner.
    cand: u64,
}

/// Scans the lines of `buf` from the start; returns the line start where it
/// stopped (less than 64 bytes left, or an incomplete line) for the exact
/// scanner to go on.
///
/// `ahead` is the text the caller reads next: for every block of `buf` the
/// loop asks the CPU to fetch the block at the same offset of `ahead` into
/// its L2 cache, so the next piece's memory loads overlap this piece's
/// scanning instead of stalling whoever reads it next (robots in pieces:
/// 0.61 → 0.57 s serial, 0.34 → 0.30 s on 2 threads).
#[cfg(target_arch = "x86_64")]
pub(crate) fn scan(out: &mut Robots, buf: &[u8], last: bool, ahead: &[u8]) -> usize {
    // Less than 4 GiB (fewer than 2^32 lines, see `scan_with`); the exact
    // scanner goes on from where this stops. (Robots decodes at most 1 GiB.)
    let cut = buf.len() > u32::MAX as usize;
    let (buf, last) = if cut {
        (&buf[..u32::MAX as usize], false)
    } else {
        (buf, last)
    };
    if std::arch::is_x86_feature_detected!("avx512bw") {
        // SAFETY: the CPU has AVX-512 F and BW (BW implies F; checked just
        // above).
        unsafe { scan_avx512(out, buf, last, ahead) }
    } else if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        unsafe { scan_avx2(out, buf, last, ahead) }
    } else {
        scan_sse2(out, buf, last, ahead)
    }
}

/// The SSE2 path (every x86-64 CPU has SSE2).
#[cfg(target_arch = "x86_64")]
fn scan_sse2(out: &mut Robots, buf: &[u8], last: bool, ahead: &[u8]) -> usize {
    // SAFETY: `masks_sse2` only needs SSE2, which every x86-64 CPU has (it
    // is part of the target's baseline: see the assertion below).
    scan_with(out, buf, last, ahead, |b| unsafe { masks_sse2(b) })
}

/// [`scan`] compiled for AVX2: 32-byte lanes and three-operand encodings.
///
/// # Safety
///
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt")]
unsafe fn scan_avx2(out: &mut Robots, buf: &[u8], last: bool, ahead: &[u8]) -> usize {
    scan_with(out, buf, last, ahead, |b| masks_avx2(b))
}

/// [`scan`] compiled for AVX-512: one 64-byte register per block, compares
/// straight into bit masks.
///
/// # Safety
///
/// The CPU must have AVX-512 F and BW.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,popcnt")]
unsafe fn scan_avx512(out: &mut Robots, buf: &[u8], last: bool, ahead: &[u8]) -> usize {
    scan_with(out, buf, last, ahead, |b| masks_avx512(b))
}

/// The scanning loop over blocks whose masks `masks` computes.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn scan_with(
    out: &mut Robots,
    buf: &[u8],
    last: bool,
    ahead: &[u8],
    masks: impl Fn(&[u8]) -> Option<Masks>,
) -> usize {
    let mut line_start = 0;
    // Field starts seen on the current line, and its candidate bits (a
    // field that may be `/robots.txt`), all in registers: `out` is only
    // touched per candidate line and at the end.
    let (mut fields, mut cand_line) = (0u32, 0u64);
    // Lines in the low half, skipped lines in the high half: one add per
    // line (two adds get vectorised, and the trip through a vector register
    // costs more than they do). [`scan`] hands over less than 4 GiB, so
    // fewer than 2^32 lines.
    let mut counts = 0u64;
    // The byte before the block is a separator: a line start counts as one.
    let mut carry = 1u64;
    let mut base = 0;
    while let Some(block) = buf.get(base..base + 64) {
        if let Some(next) = ahead.get(base) {
            // SAFETY: `next` is a valid reference; a prefetch never faults
            // and changes nothing but the cache (SSE, in the x86-64 baseline).
            unsafe { _mm_prefetch::<_MM_HINT_T1>(std::ptr::from_ref(next).cast()) };
        }
        let Some(m) = masks(block) else {
            // Exact scanning for the lines that touch this block, then on.
            let next = out.scan_exact(buf, line_start, last, base + 64);
            if next <= line_start || next >= buf.len() {
                line_start = next;
                break;
            }
            line_start = next;
            base = next;
            (fields, cand_line) = (0, 0);
            carry = 1;
            continue;
        };
        let starts = !m.sep & ((m.sep << 1) | carry);
        carry = m.sep >> 63;
        let cand = starts & m.cand;
        base += 64;
        if m.eol == 0 {
            // Most blocks of a log (lines of ~180 bytes) end no line.
            fields += starts.count_ones();
            cand_line |= cand;
            continue;
        }
        // The bits of this block not yet given to a finished line.
        let mut rest = u64::MAX;
        let mut eol = m.eol;
        while eol != 0 {
            let low = eol & eol.wrapping_neg(); // lowest line end
            let upto = low | (low - 1);
            let line = rest & upto;
            fields += (starts & line).count_ones();
            cand_line |= cand & line;
            let end = base - 64 + low.trailing_zeros() as usize;
            if cand_line != 0 {
                // Field 7 may be /robots.txt: the exact scanner decides,
                // for this one line.
                exact_line(out, buf, line_start);
            } else {
                counts += 1 | u64::from(fields < 7) << 32;
            }
            (fields, cand_line) = (0, 0);
            line_start = end + 1;
            rest &= !upto;
            eol &= eol - 1;
        }
        fields += (starts & rest).count_ones();
        cand_line |= cand & rest;
    }
    out.lines += counts & u64::from(u32::MAX);
    out.skipped += counts >> 32;
    line_start
}

/// The exact scanner for the one complete line at `start` (out of line: it
/// is rare, and the hot loop keeps its registers).
#[cold]
#[inline(never)]
fn exact_line(out: &mut Robots, buf: &[u8], start: usize) {
    let next = out.scan_exact(buf, start, true, start + 1);
    debug_assert!(next > start && buf[next - 1] == b'\n');
}

/// Without SSE2 the exact scanner does all the work.
#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn scan(_out: &mut Robots, _buf: &[u8], _last: bool, _ahead: &[u8]) -> usize {
    0
}

#[cfg(target_arch = "x86_64")]
const _: () = assert!(cfg!(target_feature = "sse2"), "x86-64 always has SSE2");

/// The masks from per-byte compares: `None` if the block holds a byte other
/// than printable ASCII, space and `\n`.
#[inline(always)]
fn combine(space: u64, nl: u64, ctrl: u64, high: u64, slash: u64, r: u64) -> Option<Masks> {
    ((ctrl & !nl) | high == 0).then_some(Masks {
        sep: space | nl,
        eol: nl,
        cand: slash & ((r >> 1) | 1 << 63),
    })
}

/// [`Masks`] with SSE2, 16 bytes per lane.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
#[inline]
fn masks_sse2(block: &[u8]) -> Option<Masks> {
    use std::arch::x86_64::*;
    let (mut space, mut nl, mut ctrl, mut high, mut slash, mut r) = (0, 0, 0, 0, 0, 0u64);
    let (k1f, kspace, knl, kslash, kr) = (
        _mm_set1_epi8(0x1f),
        _mm_set1_epi8(b' ' as i8),
        _mm_set1_epi8(b'\n' as i8),
        _mm_set1_epi8(b'/' as i8),
        _mm_set1_epi8(b'r' as i8),
    );
    let bits = |m: __m128i, shift: usize| u64::from(_mm_movemask_epi8(m) as u16) << shift;
    for (i, lane) in block.chunks_exact(16).enumerate() {
        // SAFETY: `lane` is 16 initialised bytes (chunks_exact), and
        // `_mm_loadu_si128` has no alignment requirement.
        let v = unsafe { _mm_loadu_si128(lane.as_ptr().cast()) };
        let shift = 16 * i;
        // Unsigned `v <= 0x1f` is `min(v, 0x1f) == v`.
        ctrl |= bits(_mm_cmpeq_epi8(_mm_min_epu8(v, k1f), v), shift);
        nl |= bits(_mm_cmpeq_epi8(v, knl), shift);
        space |= bits(_mm_cmpeq_epi8(v, kspace), shift);
        high |= bits(v, shift);
        slash |= bits(_mm_cmpeq_epi8(v, kslash), shift);
        r |= bits(_mm_cmpeq_epi8(v, kr), shift);
    }
    combine(space, nl, ctrl, high, slash, r)
}

/// [`Masks`] with AVX2, 32 bytes per lane.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn masks_avx2(block: &[u8]) -> Option<Masks> {
    use std::arch::x86_64::*;
    let (mut space, mut nl, mut ctrl, mut high, mut slash, mut r) = (0, 0, 0, 0, 0, 0u64);
    let (k1f, kspace, knl, kslash, kr) = (
        _mm256_set1_epi8(0x1f),
        _mm256_set1_epi8(b' ' as i8),
        _mm256_set1_epi8(b'\n' as i8),
        _mm256_set1_epi8(b'/' as i8),
        _mm256_set1_epi8(b'r' as i8),
    );
    let bits = |m: __m256i, shift: usize| u64::from(_mm256_movemask_epi8(m) as u32) << shift;
    for (i, lane) in block.chunks_exact(32).enumerate() {
        // SAFETY: `lane` is 32 initialised bytes (chunks_exact), and
        // `_mm256_loadu_si256` has no alignment requirement.
        let v = unsafe { _mm256_loadu_si256(lane.as_ptr().cast()) };
        let shift = 32 * i;
        ctrl |= bits(_mm256_cmpeq_epi8(_mm256_min_epu8(v, k1f), v), shift);
        nl |= bits(_mm256_cmpeq_epi8(v, knl), shift);
        space |= bits(_mm256_cmpeq_epi8(v, kspace), shift);
        high |= bits(v, shift);
        slash |= bits(_mm256_cmpeq_epi8(v, kslash), shift);
        r |= bits(_mm256_cmpeq_epi8(v, kr), shift);
    }
    combine(space, nl, ctrl, high, slash, r)
}

/// [`Masks`] with AVX-512: the whole block in one register.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
fn masks_avx512(block: &[u8]) -> Option<Masks> {
    use std::arch::x86_64::*;
    debug_assert_eq!(block.len(), 64);
    // SAFETY: `block` is 64 initialised bytes (the caller's `get(base..base
    // + 64)`), and `_mm512_loadu_si512` has no alignment requirement.
    let v = unsafe { _mm512_loadu_si512(block.as_ptr().cast()) };
    let eq = |c: u8| _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(c as i8));
    combine(
        eq(b' '),
        eq(b'\n'),
        _mm512_cmple_epu8_mask(v, _mm512_set1_epi8(0x1f)),
        _mm512_movepi8_mask(v),
        eq(b'/'),
        eq(b'r'),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{GOOD, random_text};

    type FastPath = fn(&mut Robots, &[u8], bool, &[u8]) -> usize;

    /// Every fast path this CPU can run, beside the one `scan` picks.
    fn fast_paths() -> Vec<(&'static str, FastPath)> {
        #[allow(unused_mut)]
        let mut paths: Vec<(&'static str, FastPath)> = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            paths.push(("SSE2", scan_sse2));
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2 (checked just above).
                paths.push(("AVX2", |o, b, l, a| unsafe { scan_avx2(o, b, l, a) }));
            }
            if std::arch::is_x86_feature_detected!("avx512bw") {
                // SAFETY: the CPU has AVX-512 F and BW (checked just above).
                paths.push(("AVX-512", |o, b, l, a| unsafe { scan_avx512(o, b, l, a) }));
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
                    // The path `scan` picks, then the exact scanner for the
                    // tail (what `Robots::scan` does).
                    let mut fast = Robots::default();
                    let at = scan(&mut fast, part, seed % 2 == 0, &[]);
                    let used_fast = fast.scan_exact(part, at, seed % 2 == 0, part.len());
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
        let upto = scan(&mut r, text.as_bytes(), true, &[]);
        if cfg!(target_arch = "x86_64") {
            assert!(upto > text.len() - 128, "fast path stopped at {upto}");
            assert_eq!(r.lines as usize, upto / (GOOD.len() + 1));
        }
        r.scan_exact(text.as_bytes(), upto, true, text.len());
        assert_eq!((r.lines, r.skipped, r.hosts.len()), (100, 0, 1));
    }
}
