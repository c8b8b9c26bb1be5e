//! Whole-file gzip decoding with libdeflate, the fastest decoder measured here.
//!
//! Decode-only throughput on the generated logs (`spindle gen-logs DIR
//! --files 8 --lines 200000`: 283 MB of text in 26 MB of gzip), one core,
//! best of 5, on the shared 2-core machine (AMD EPYC, load ~6):
//!
//! | decoder | how | MB/s of text |
//! |---|---|---|
//! | flate2 1.1 + zlib-rs 0.6 | `GzDecoder` streaming, 64 KiB reads | 398–516 |
//! | flate2 1.1 + zlib-rs 0.6 | `Decompress` over the whole file | 736–1026 |
//! | flate2 1.1 + zlib-ng (needs cmake) | `GzDecoder` streaming, 64 KiB reads | 794 |
//! | flate2 1.1 + zlib-ng (needs cmake) | `Decompress` over the whole file | 1182 |
//! | miniz_oxide 0.8 | streaming, 64 KiB | 643–840 |
//! | miniz_oxide 0.8 | whole file | 778–922 |
//! | libdeflate 1.26 (libdeflate-sys, bundled C, no system deps) | whole file | 1459–1811 |
//!
//! libdeflate decodes a whole member into a buffer large enough for it, which
//! is what makes it 1.5–2× faster than the rest. Its safe wrapper (`libdeflater`) calls
//! `libdeflate_gzip_decompress`, which decodes the *first* member and ignores
//! what follows — a multi-member file (`cat a.gz b.gz`) would silently lose
//! data — so this module calls `libdeflate_gzip_decompress_ex`, which reports
//! the bytes consumed, and decodes every member as Python's `gzip` does.
//! Files too large to hold decoded in memory go through flate2's streaming
//! `MultiGzDecoder` instead (see [`robots::find_robots`](crate::robots::find_robots)).
//!
//! libdeflate's gzip decoder checks each member's CRC-32 in a pass of its
//! own over the decoded text, which (35 MB a file) no longer is in cache
//! when the caller reads it again. [`Inflater::gunzip_unchecked`] does the
//! same work in another order: it parses the member headers here (RFC
//! 1952), decodes the DEFLATE data raw with libdeflate and checks each
//! ISIZE, and leaves the CRC-32 to a [`CrcCheck`] the caller feeds piece by
//! piece just before it reads each piece itself (libdeflate's CRC-32 still;
//! robots: 0.10 s less on 1.1 GB of text, one pass over memory instead of
//! two).

// libdeflate's C API and `madvise`: every unsafe block says why its call is
// sound.
#![allow(unsafe_code)]

use std::io;
use std::ptr::NonNull;

use libdeflate_sys as sys;

/// Largest decoded size one file may take in memory; bigger files stream.
pub const MAX_WHOLE: usize = 1 << 30;

/// A libdeflate decompressor (about 32 KiB of tables), reused across files.
#[derive(Debug)]
pub struct Inflater {
    raw: NonNull<sys::libdeflate_decompressor>,
    /// The most one file may decode to in memory ([`MAX_WHOLE`]; smaller
    /// in tests).
    max: usize,
}

// SAFETY: a libdeflate decompressor is a plain heap block with no thread
// affinity; every use takes `&mut self`, so two threads never use it at once.
unsafe impl Send for Inflater {}

/// The shape of `libdeflate_gzip_decompress_ex` and
/// `libdeflate_deflate_decompress_ex`.
type DecompressEx = unsafe extern "C" fn(
    *mut sys::libdeflate_decompressor,
    *const std::ffi::c_void,
    usize,
    *mut std::ffi::c_void,
    usize,
    *mut usize,
    *mut usize,
) -> sys::libdeflate_result;

/// Why one member did not decode.
enum Fail {
    /// The output buffer is too small.
    Short,
    /// Not gzip, corrupt, or a CRC/size mismatch.
    Bad,
}

impl Inflater {
    /// A fresh decompressor.
    ///
    /// # Panics
    ///
    /// Aborts via `handle_alloc_error` when out of memory, like any allocation.
    pub fn new() -> Inflater {
        // SAFETY: no preconditions; it returns null only when out of memory.
        let raw = unsafe { sys::libdeflate_alloc_decompressor() };
        let raw = NonNull::new(raw).unwrap_or_else(|| {
            std::alloc::handle_alloc_error(std::alloc::Layout::new::<[u8; 32 << 10]>())
        });
        Inflater {
            raw,
            max: MAX_WHOLE,
        }
    }

    /// A decompressor whose in-memory limit is `max` bytes (for tests of
    /// what happens past the limit without decoding a gigabyte).
    #[cfg(test)]
    pub(crate) fn with_max(max: usize) -> Inflater {
        // Not `Inflater { max, ..Inflater::new() }`: that would copy the
        // pointer out of a temporary whose drop frees it.
        let mut inf = Inflater::new();
        inf.max = max;
        inf
    }

    /// The most one file may decode to in memory.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Decodes the gzip member at the start of `input` into `out`; returns the
    /// bytes consumed and produced.
    fn member(&mut self, input: &[u8], out: &mut [u8]) -> Result<(usize, usize), Fail> {
        self.call(sys::libdeflate_gzip_decompress_ex, input, out)
    }

    /// Decodes the gzip member at the start of `input` into `out` as
    /// [`Inflater::member`] does, but with the CRC-32 check left to the
    /// caller: the header is parsed here, the DEFLATE data decoded raw, and
    /// the trailer's ISIZE checked. Returns the bytes consumed and produced
    /// and the trailer's CRC-32.
    fn member_unchecked(
        &mut self,
        input: &[u8],
        out: &mut [u8],
    ) -> Result<(usize, usize, u32), Fail> {
        let head = header_len(input).ok_or(Fail::Bad)?;
        let deflate = &input[head..];
        let (used, made) = self.call(sys::libdeflate_deflate_decompress_ex, deflate, out)?;
        let trailer = deflate.get(used..used + 8).ok_or(Fail::Bad)?;
        let (crc, size) = (le32(&trailer[..4]), le32(&trailer[4..]));
        if size != made as u32 {
            return Err(Fail::Bad);
        }
        Ok((head + used + 8, made, crc))
    }

    /// Runs one of libdeflate's `*_decompress_ex` functions (gzip or raw
    /// DEFLATE, same signature) from `input` into `out`; returns the bytes
    /// consumed and produced.
    fn call(
        &mut self,
        decompress: DecompressEx,
        input: &[u8],
        out: &mut [u8],
    ) -> Result<(usize, usize), Fail> {
        let (mut used, mut made) = (0usize, 0usize);
        // SAFETY: `decompress` is one of libdeflate's `*_decompress_ex`
        // functions; `raw` is a live decompressor owned by `self` (and `&mut
        // self` rules out concurrent use); both pointer/length pairs come
        // from valid slices, libdeflate reads at most `input.len()` bytes,
        // writes at most `out.len()` bytes, and writes the two counts through
        // valid pointers.
        let r = unsafe {
            decompress(
                self.raw.as_ptr(),
                input.as_ptr().cast(),
                input.len(),
                out.as_mut_ptr().cast(),
                out.len(),
                &mut used,
                &mut made,
            )
        };
        match r {
            sys::libdeflate_result_LIBDEFLATE_SUCCESS => Ok((used, made)),
            sys::libdeflate_result_LIBDEFLATE_INSUFFICIENT_SPACE => Err(Fail::Short),
            _ => Err(Fail::Bad),
        }
    }

    /// Decodes every member of the gzip file `gz` into `out` (resized as
    /// needed, its allocation reused); returns the decoded length, the valid
    /// prefix of `out`. Zero padding after a member is skipped and an empty
    /// file decodes to nothing, as Python's `gzip` does.
    ///
    /// # Errors
    ///
    /// `InvalidData` for data that is not gzip or is corrupt (bad CRC, size,
    /// truncated); `FileTooLarge` for data that decodes to more than the
    /// in-memory limit ([`MAX_WHOLE`]), which the caller may stream instead.
    pub fn gunzip(&mut self, gz: &[u8], out: &mut Vec<u8>) -> io::Result<usize> {
        self.decode(gz, out, None)
    }

    /// [`Inflater::gunzip`] without the CRC-32 check, which is left to the
    /// caller: each member's end in `out` and its trailer's CRC-32 are
    /// pushed to `members` (cleared first), for a [`CrcCheck`] over the
    /// text. Headers, lengths and everything else are checked here.
    ///
    /// This is the same work as `gunzip` in another order: the check can
    /// then read the text in cache-sized pieces just before the caller
    /// reads them too, instead of in one pass of its own over the whole
    /// text, which does not fit in cache (robots: one pass over memory
    /// instead of two, ~10% of its time).
    ///
    /// # Errors
    ///
    /// As [`Inflater::gunzip`], except that a CRC mismatch is found by the
    /// [`CrcCheck`].
    pub fn gunzip_unchecked(
        &mut self,
        gz: &[u8],
        out: &mut Vec<u8>,
        members: &mut Vec<MemberCrc>,
    ) -> io::Result<usize> {
        members.clear();
        self.decode(gz, out, Some(members))
    }

    /// [`Inflater::gunzip`], with the CRC checks pushed to `defer` when it
    /// is given.
    fn decode(
        &mut self,
        gz: &[u8],
        out: &mut Vec<u8>,
        mut defer: Option<&mut Vec<MemberCrc>>,
    ) -> io::Result<usize> {
        let max = self.max;
        let mut len = 0;
        let mut rest = gz;
        let mut first = true;
        while !rest.is_empty() {
            if !first {
                // Python's gzip skips zero padding between and after members
                // (empty ones too).
                let zeros = rest.iter().take_while(|&&b| b == 0).count();
                rest = &rest[zeros..];
                if rest.is_empty() {
                    break;
                }
            }
            // The trailer's ISIZE is the decoded size of a single-member file
            // (mod 2^32): the first guess; grow by doubling when it is short.
            // (A multi-member file's trailer is its last member's.)
            let hint = match rest.len() {
                n if n >= 18 => {
                    let isize = le32(&rest[n - 4..]) as usize;
                    // Deflate expands at most 1032:1: a lying trailer cannot
                    // make us allocate more than that.
                    isize.clamp(n, n.saturating_mul(1032))
                }
                n => n.max(64),
            };
            if out.len() < len + hint {
                // An eighth more than the hint, so the next file, a little
                // larger, does not grow (copy and fault in) the buffer again.
                // (Still within the 1032:1 bound.)
                let room = hint
                    .saturating_add(hint / 8)
                    .min(rest.len().saturating_mul(1032));
                let want = len.saturating_add(room).min(max);
                if len == 0 {
                    // Nothing to keep: a fresh zeroed buffer, no copy, no memset.
                    *out = fresh_zeroed(want);
                } else {
                    grow(out, want);
                }
            }
            first = false;
            loop {
                let got = match defer.as_deref_mut() {
                    None => self.member(rest, &mut out[len..]),
                    Some(members) => {
                        self.member_unchecked(rest, &mut out[len..])
                            .map(|(used, made, crc)| {
                                members.push(MemberCrc {
                                    end: len + made,
                                    crc,
                                });
                                (used, made)
                            })
                    }
                };
                match got {
                    Ok((used, made)) => {
                        len += made;
                        rest = &rest[used..];
                        break;
                    }
                    Err(Fail::Short) if out.len() < max => {
                        let grown = (out.len() * 2).max(len + 4 * rest.len()).min(max);
                        grow(out, grown);
                    }
                    Err(Fail::Short) => {
                        // Not corrupt, just too big: the caller can stream it.
                        return Err(io::Error::new(
                            io::ErrorKind::FileTooLarge,
                            "gzip data decodes to more than the in-memory limit",
                        ));
                    }
                    Err(Fail::Bad) => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "not gzip data, or corrupt (bad header, CRC, length or truncated)",
                        ));
                    }
                }
            }
        }
        Ok(len)
    }
}

/// The little-endian `u32` in the first 4 bytes of `b` (gzip's byte order).
fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// The length of the gzip member header at the start of `input` (RFC 1952
/// §2.3: magic, deflate method, flags, then the optional extra field, file
/// name, comment and header CRC the flags announce), or `None` when it is
/// not one. Reserved flag bits are refused, as libdeflate and zlib do.
fn header_len(input: &[u8]) -> Option<usize> {
    const FHCRC: u8 = 1 << 1;
    const FEXTRA: u8 = 1 << 2;
    const FNAME: u8 = 1 << 3;
    const FCOMMENT: u8 = 1 << 4;
    const RESERVED: u8 = 0xe0;
    let fixed = input.get(..10)?;
    if fixed[..3] != [0x1f, 0x8b, 8] || fixed[3] & RESERVED != 0 {
        return None;
    }
    let flags = fixed[3];
    let mut at = 10;
    if flags & FEXTRA != 0 {
        let xlen = input.get(at..at + 2)?;
        at += 2 + usize::from(u16::from_le_bytes([xlen[0], xlen[1]]));
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            at += memchr::memchr(0, input.get(at..)?)? + 1;
        }
    }
    if flags & FHCRC != 0 {
        // Python's gzip and libdeflate skip it without checking; so do we.
        at += 2;
    }
    (at <= input.len()).then_some(at)
}

/// Where one gzip member's text ends in the decoded output, and the CRC-32
/// its trailer gives for that text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberCrc {
    end: usize,
    crc: u32,
}

/// Checks the CRC-32 of each member of text decoded by
/// [`Inflater::gunzip_unchecked`], fed in order, piece by piece, with
/// libdeflate's CRC-32 (carry-less multiplication where the CPU has it).
#[derive(Debug)]
pub struct CrcCheck<'a> {
    members: &'a [MemberCrc],
    /// Bytes fed so far.
    at: usize,
    /// The CRC so far of the member being fed.
    crc: u32,
    bad: bool,
}

impl<'a> CrcCheck<'a> {
    /// A check of the text whose members `members` lists.
    pub fn new(members: &'a [MemberCrc]) -> CrcCheck<'a> {
        let mut check = CrcCheck {
            members,
            at: 0,
            crc: 0,
            bad: false,
        };
        check.close_members();
        check
    }

    /// Feeds the next `piece` of the text.
    pub fn update(&mut self, mut piece: &[u8]) {
        while !piece.is_empty() {
            let Some(member) = self.members.first() else {
                // More text than the members hold.
                self.bad = true;
                return;
            };
            let take = (member.end - self.at).min(piece.len());
            // SAFETY: the pointer and length come from a valid slice;
            // libdeflate reads exactly `take` bytes.
            self.crc = unsafe { sys::libdeflate_crc32(self.crc, piece.as_ptr().cast(), take) };
            self.at += take;
            piece = &piece[take..];
            self.close_members();
        }
    }

    /// Compares and drops the members that end where the text fed so far
    /// does (empty members included).
    fn close_members(&mut self) {
        while let Some((member, rest)) = self.members.split_first()
            && member.end == self.at
        {
            self.bad |= self.crc != member.crc;
            self.crc = 0;
            self.members = rest;
        }
    }

    /// Whether every member was fed whole and matched its CRC-32.
    ///
    /// # Errors
    ///
    /// `InvalidData` on a CRC mismatch or text missing.
    pub fn finish(self) -> io::Result<()> {
        if self.bad || !self.members.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "corrupt gzip data (CRC-32 mismatch)",
            ));
        }
        Ok(())
    }
}

/// Resizes `out` to `size` zeroed bytes (a no-op if it is as long already),
/// through [`reserve_populated`].
fn grow(out: &mut Vec<u8>, size: usize) {
    if size > out.len() {
        reserve_populated(out, size);
        out.resize(size, 0);
    }
}

/// `size` zero bytes in a fresh allocation: `calloc` (a large block is fresh
/// `mmap` memory, zero without a `memset`), then populated as in
/// [`reserve_populated`].
pub(crate) fn fresh_zeroed(size: usize) -> Vec<u8> {
    let mut v = vec![0u8; size];
    populate(&mut v, 0);
    v
}

/// Makes room for `total` bytes in `v` and has the kernel populate the new
/// pages with one system call (`MADV_POPULATE_WRITE`) instead of one page
/// fault per 4 KiB as they are first written: a 35 MB buffer is ~8,600
/// faults otherwise, and faults are dear in a VM and in every fresh worker
/// process (robots in processes mode: 19.8k faults → 2.5k, 0.21 s → 0.17 s).
/// (Transparent huge pages, `MADV_HUGEPAGE`, were tried too and measured
/// worse: docs/NOTES.md.)
pub(crate) fn reserve_populated(v: &mut Vec<u8>, total: usize) {
    if total <= v.capacity() {
        return;
    }
    v.reserve(total - v.len());
    let from = v.len();
    populate(v, from);
}

/// Populates the pages of `v`'s allocation past byte `from` (within its
/// capacity).
fn populate(v: &mut Vec<u8>, from: usize) {
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let base = v.as_mut_ptr() as usize;
        let from = (base + from).next_multiple_of(PAGE);
        let to = (base + v.capacity()) & !(PAGE - 1);
        if to > from {
            // SAFETY: [from, to) is page aligned and lies inside `v`'s
            // allocation (within its capacity, past the bytes the caller
            // keeps); MADV_POPULATE_WRITE only faults the pages in and does
            // not change their contents. On a kernel without it the call
            // fails with EINVAL, which is harmless: the pages fault in as
            // usual.
            unsafe {
                libc::madvise(
                    from as *mut libc::c_void,
                    to - from,
                    libc::MADV_POPULATE_WRITE,
                );
            }
        }
    }
}

impl Default for Inflater {
    fn default() -> Inflater {
        Inflater::new()
    }
}

impl Drop for Inflater {
    fn drop(&mut self) {
        // SAFETY: `raw` came from `libdeflate_alloc_decompressor` and is freed
        // exactly once, here.
        unsafe { sys::libdeflate_free_decompressor(self.raw.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;

    use super::*;
    use crate::testing::gzip;

    #[test]
    fn decodes_every_member_and_skips_zero_padding() {
        let mut file = gzip(b"first member\n");
        file.extend(gzip(b"second member\n"));
        file.extend([0u8; 7]);
        let mut out = Vec::new();
        let n = Inflater::new().gunzip(&file, &mut out).unwrap();
        assert_eq!(&out[..n], b"first member\nsecond member\n");
    }

    #[test]
    fn grows_the_buffer_when_the_size_hint_is_short() {
        // The first guess is the last member's ISIZE (4 here, for "tail"), far
        // below the first member's 800 KB: the buffer must grow and retry.
        let data: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let mut file = gzip(&data);
        file.extend(gzip(b"tail"));
        let mut out = Vec::new();
        let got = Inflater::new().gunzip(&file, &mut out).unwrap();
        assert_eq!(got, data.len() + 4);
        assert_eq!(&out[..data.len()], &data[..]);
        assert_eq!(&out[data.len()..got], b"tail");
    }

    #[test]
    fn grow_keeps_the_prefix_and_zero_fills() {
        let mut v = b"abc".to_vec();
        grow(&mut v, 3 << 20);
        assert_eq!(v.len(), 3 << 20);
        assert_eq!(&v[..3], b"abc");
        assert!(v[3..].iter().all(|&b| b == 0));
        grow(&mut v, 10); // never shrinks
        assert_eq!(v.len(), 3 << 20);
        let mut w: Vec<u8> = Vec::new();
        reserve_populated(&mut w, 1 << 20);
        assert!(w.capacity() >= 1 << 20 && w.is_empty());
        let z = fresh_zeroed(5 << 20);
        assert_eq!(z.len(), 5 << 20);
        assert!(z.iter().all(|&b| b == 0));
    }

    #[test]
    fn a_lying_size_trailer_does_not_allocate_it() {
        // ISIZE says 4 GiB - 1; the data is 30 bytes of junk.
        let mut file = b"\x1f\x8b\x08\x00 not really gzip data".to_vec();
        file.extend_from_slice(&u32::MAX.to_le_bytes());
        let mut out = Vec::new();
        assert!(Inflater::new().gunzip(&file, &mut out).is_err());
        assert!(out.len() <= file.len() * 1032, "allocated {}", out.len());
    }

    #[test]
    fn corrupt_and_foreign_data_are_errors_not_panics() {
        let mut inf = Inflater::new();
        let mut out = Vec::new();
        let mut file = gzip(b"some text that will be damaged\n");
        let mid = file.len() / 2;
        file[mid] ^= 0xFF;
        assert!(inf.gunzip(&file, &mut out).is_err());
        assert!(inf.gunzip(b"plain text, not gzip", &mut out).is_err());
        let whole = gzip(b"truncated\n");
        assert!(inf.gunzip(&whole[..whole.len() - 3], &mut out).is_err());
        assert_eq!(inf.gunzip(b"", &mut out).unwrap(), 0);
    }

    /// Decodes `file` with the CRC check deferred, feeding the check in
    /// `piece`-byte pieces; `Ok(text)` when every check passes.
    fn unchecked(file: &[u8], piece: usize) -> io::Result<Vec<u8>> {
        let (mut out, mut members) = (Vec::new(), Vec::new());
        let n = Inflater::new().gunzip_unchecked(file, &mut out, &mut members)?;
        let mut check = CrcCheck::new(&members);
        out[..n].chunks(piece).for_each(|p| check.update(p));
        check.finish().map(|()| out[..n].to_vec())
    }

    #[test]
    fn deferred_checks_agree_with_the_checked_decoder() {
        // Members of every size, empty ones included, fed in pieces that
        // split them anywhere.
        let parts: Vec<Vec<u8>> = [0usize, 1, 5000, 0, 70_000, 3]
            .iter()
            .enumerate()
            .map(|(k, &n)| (0..n).map(|i| (i * 7 + k) as u8).collect())
            .collect();
        let mut file = Vec::new();
        for p in &parts {
            file.extend(gzip(p));
        }
        file.extend([0u8; 3]);
        let mut want = Vec::new();
        let n = Inflater::new().gunzip(&file, &mut want).unwrap();
        assert_eq!(want[..n], parts.concat()[..]);
        for piece in [1, 7, 4096, 1 << 20] {
            assert_eq!(unchecked(&file, piece).unwrap(), want[..n], "piece {piece}");
        }
        assert_eq!(unchecked(b"", 10).unwrap(), b"");
    }

    #[test]
    fn deferred_checks_find_a_bad_crc_or_size_in_any_member() {
        let mut file = gzip(b"first member\n");
        let first = file.len();
        file.extend(gzip(b"second member\n"));
        let end = file.len();
        // CRC-32 of the first member, CRC-32 and ISIZE of the second.
        for at in [first - 8, end - 8, end - 1] {
            let mut bad = file.clone();
            bad[at] ^= 1;
            assert!(unchecked(&bad, 3).is_err(), "flipped byte {at}");
            assert!(Inflater::new().gunzip(&bad, &mut Vec::new()).is_err());
        }
        // A trailer cut short.
        assert!(unchecked(&file[..end - 2], 3).is_err());
        // Text fed short, or beyond what the members hold.
        let (mut out, mut members) = (Vec::new(), Vec::new());
        let n = Inflater::new()
            .gunzip_unchecked(&file, &mut out, &mut members)
            .unwrap();
        let mut check = CrcCheck::new(&members);
        check.update(&out[..n - 1]);
        assert!(check.finish().is_err());
        let mut check = CrcCheck::new(&members);
        check.update(&out[..n]);
        check.update(b"more");
        assert!(check.finish().is_err());
    }

    #[test]
    fn optional_header_fields_are_skipped() {
        let text = b"a line of text\n".repeat(100);
        let mut e = flate2::GzBuilder::new()
            .filename("log.txt")
            .comment("a comment")
            .extra(vec![1, 2, 3, 4])
            .write(Vec::new(), Compression::fast());
        e.write_all(&text).unwrap();
        let mut file = e.finish().unwrap();
        // Announce a header CRC too (FHCRC), two bytes after the comment;
        // it is skipped unchecked, as Python's gzip does.
        let head = header_len(&file).unwrap();
        file[3] |= 2;
        file.splice(head..head, [0xAB, 0xCD]);
        assert_eq!(header_len(&file), Some(head + 2));
        assert_eq!(unchecked(&file, 100).unwrap(), text);
        let mut out = Vec::new();
        let n = Inflater::new().gunzip(&file, &mut out).unwrap();
        assert_eq!(out[..n], text[..]);
        // Not a header: reserved flags, another method, cut inside a field.
        for (at, bit) in [(3, 0x20), (2, 1), (0, 1)] {
            let mut bad = file.clone();
            bad[at] ^= bit;
            assert!(header_len(&bad).is_none());
            assert!(unchecked(&bad, 100).is_err());
        }
        assert!(header_len(&file[..head - 3]).is_none());
        assert!(header_len(&file[..9]).is_none());
    }

    #[test]
    fn zero_padding_after_an_empty_first_member_is_skipped() {
        let mut file = gzip(b"");
        file.extend([0u8; 5]);
        file.extend(gzip(b"x\n"));
        file.extend([0u8; 2]);
        let mut out = Vec::new();
        let n = Inflater::new().gunzip(&file, &mut out).unwrap();
        assert_eq!(&out[..n], b"x\n");
        assert_eq!(unchecked(&file, 1).unwrap(), b"x\n");
    }

    #[test]
    fn past_the_in_memory_limit_is_file_too_large_not_corrupt() {
        let file = gzip(&b"a line that repeats\n".repeat(1000));
        for defer in [false, true] {
            let (mut out, mut members) = (Vec::new(), Vec::new());
            let mut inf = Inflater::with_max(4096);
            let e = if defer {
                inf.gunzip_unchecked(&file, &mut out, &mut members)
            } else {
                inf.gunzip(&file, &mut out)
            }
            .unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::FileTooLarge, "{e}");
            assert!(out.len() <= 4096);
        }
    }
}
