//! Large payloads between processes as sealed memfds.
//!
//! A payload too large to be worth copying through a pipe (a pool task's
//! argument or result, a spawned child's argument) is written once into a
//! `memfd`, which is then *sealed* (no write, shrink or grow, no further
//! seal) and its descriptor passed with `SCM_RIGHTS`. The receiver checks
//! the seals and the size, then maps it read-only and decodes straight from
//! the mapping: one copy on each side (none on the receiver's for a
//! [`SharedBytes`](super::SharedBytes), which keeps the mapping), nothing
//! through the pipe, and the kernel frees the memory when the last
//! descriptor and mapping go.
//!
//! The seals are what make the read-only mapping sound: the sender can
//! neither change the bytes under the receiver (`F_SEAL_WRITE`) nor truncate
//! the file, which would make the receiver's reads fault (`F_SEAL_SHRINK`).
//!
//! A [`Writable`] is the other way round: a memfd a task fills in place
//! through a writable mapping (a [`SharedBytesMut`](super::SharedBytesMut)),
//! then frozen: unmapped, sealed the same way and mapped read-only, keeping
//! its descriptor, so that a pool result can pass the memfd itself (no
//! copy at all; `process/pool/README.md`).

use std::io;
use std::num::NonZeroUsize;
use std::ops::Deref;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;

use nix::fcntl::{FallocateFlags, FcntlArg, SealFlag, fallocate, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::mman::{MRemapFlags, MapFlags, ProtFlags, mmap, mremap, munmap};

/// The seals a receiver insists on before mapping.
fn required_seals() -> SealFlag {
    SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_WRITE | SealFlag::F_SEAL_SEAL
}

/// A sealed memfd holding `len` bytes, ready to be passed to another process.
#[derive(Debug)]
pub(crate) struct Sealed {
    fd: OwnedFd,
    len: usize,
}

impl Sealed {
    /// A sealed copy of `bytes`, written with `write(2)`: the copy is never
    /// mapped here, so it does not count in this process's resident memory
    /// (the caller typically frees `bytes` next).
    pub(crate) fn copy_of(bytes: &[u8]) -> io::Result<Sealed> {
        let mut f = Filling::new()?;
        f.append(bytes)?;
        f.seal()
    }

    /// The payload's length.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The descriptor, to pass with `SCM_RIGHTS`.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The descriptor, owned.
    pub(crate) fn into_fd(self) -> OwnedFd {
        self.fd
    }
}

/// A memfd being filled, payload after payload (each at the offset
/// [`append`](Self::append) returns), then sealed: one memfd carries every
/// large payload of one frame.
#[derive(Debug)]
pub(crate) struct Filling {
    file: std::fs::File,
    len: usize,
}

impl Filling {
    /// An empty memfd.
    pub(crate) fn new() -> io::Result<Filling> {
        let fd = memfd_create(
            "spindle-payload",
            MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
        )?;
        Ok(Filling {
            file: std::fs::File::from(fd),
            len: 0,
        })
    }

    /// Appends what `fill` writes (with `write(2)`) and returns its offset
    /// and length. On an error the memfd is unusable: drop it.
    pub(crate) fn append_with(
        &mut self,
        fill: impl FnOnce(&mut std::fs::File) -> Result<(), String>,
    ) -> io::Result<(usize, usize)> {
        let at = self.len;
        fill(&mut self.file).map_err(|m| io::Error::new(io::ErrorKind::InvalidData, m))?;
        let end = usize::try_from(self.file.metadata()?.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "payload too large"))?;
        self.len = end;
        Ok((at, end - at))
    }

    /// Appends a copy of `bytes`; its offset and length.
    pub(crate) fn append(&mut self, bytes: &[u8]) -> io::Result<(usize, usize)> {
        self.append_with(|f| std::io::Write::write_all(f, bytes).map_err(|e| e.to_string()))
    }

    /// Bytes appended so far.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Seals it: no write, shrink or grow any more.
    pub(crate) fn seal(self) -> io::Result<Sealed> {
        let fd = OwnedFd::from(self.file);
        fcntl(&fd, FcntlArg::F_ADD_SEALS(required_seals()))?;
        Ok(Sealed { fd, len: self.len })
    }
}

/// `len` bytes at `start` of a shared [`Mapped`]: one payload of a frame's
/// memfd. The mapping goes with the last slice of it.
#[derive(Debug, Clone)]
pub(crate) struct MappedSlice {
    map: std::sync::Arc<Mapped>,
    start: usize,
    len: usize,
}

impl MappedSlice {
    /// The payload at `start..start + len` of `map`, if it is inside.
    pub(crate) fn new(
        map: &std::sync::Arc<Mapped>,
        start: u64,
        len: u64,
    ) -> io::Result<MappedSlice> {
        let (start, len) = (start as usize, len as usize);
        if start.checked_add(len).is_none_or(|end| end > map.len) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "a payload at {start}+{len} outside its memfd of {} bytes",
                    map.len
                ),
            ));
        }
        Ok(MappedSlice {
            map: map.clone(),
            start,
            len,
        })
    }

    /// The whole mapping this slice is part of.
    pub(crate) fn map(&self) -> &std::sync::Arc<Mapped> {
        &self.map
    }
}

impl Deref for MappedSlice {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.map[self.start..self.start + self.len]
    }
}

/// A received sealed memfd, mapped read-only: derefs to its bytes.
pub(crate) struct Mapped {
    ptr: Option<NonNull<u8>>,
    len: usize,
    /// The memfd itself, kept by a frozen [`Writable`] so that it can be
    /// passed on (`SharedBytes`' export); `None` for a received one.
    fd: Option<OwnedFd>,
}

// SAFETY: the mapping is read-only and its file sealed against writes, so
// the bytes never change; it stays valid until `Drop` unmaps it.
unsafe impl Send for Mapped {}
// SAFETY: as above: shared reads of immutable bytes.
unsafe impl Sync for Mapped {}

impl Mapped {
    /// Maps `fd`, which must be a memfd sealed against writing, shrinking
    /// and growing, holding exactly `len` bytes; anything else is an
    /// `InvalidData` error (a peer cannot make us map bytes it may still
    /// change or cut short).
    pub(crate) fn open(fd: OwnedFd, len: usize) -> io::Result<Mapped> {
        check_sealed(fd.as_fd(), len)?;
        let mut m = Mapped::map(fd, len, true)?;
        // Not passed on from here: no descriptor held per result.
        m.fd = None;
        Ok(m)
    }

    /// Maps `len` bytes of `fd`, which [`check_sealed`] accepted, read-only
    /// (`populate`: with every page mapped now rather than on first read);
    /// the mapping keeps `fd` (drop it with `m.fd = None` if not needed).
    fn map(fd: OwnedFd, len: usize, populate: bool) -> io::Result<Mapped> {
        let Some(n) = NonZeroUsize::new(len) else {
            return Ok(Mapped {
                ptr: None,
                len: 0,
                fd: Some(fd),
            });
        };
        let flags = if populate {
            MapFlags::MAP_SHARED | MapFlags::MAP_POPULATE
        } else {
            MapFlags::MAP_SHARED
        };
        // SAFETY: a fresh read-only mapping of a file sealed against
        // shrinking and writing and exactly `len` bytes long (checked by
        // `check_sealed`, which every caller runs first), so every byte of
        // it stays readable and unchanged for the mapping's life; no
        // existing memory is affected.
        let ptr = unsafe { mmap(None, n, ProtFlags::PROT_READ, flags, &fd, 0)? };
        Ok(Mapped {
            ptr: Some(ptr.cast()),
            len,
            fd: Some(fd),
        })
    }

    /// The memfd, if this mapping kept it (a frozen [`Writable`]).
    pub(crate) fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.fd.as_ref().map(AsFd::as_fd)
    }
}

/// Checks that `fd` is a memfd sealed against writing, shrinking and
/// growing, holding exactly `len` bytes; anything else is an `InvalidData`
/// error (a peer cannot make us map bytes it may still change or cut
/// short).
fn check_sealed(fd: BorrowedFd<'_>, len: usize) -> io::Result<()> {
    let seals = fcntl(fd, FcntlArg::F_GET_SEALS)?;
    let seals = SealFlag::from_bits_truncate(seals);
    let need = SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_WRITE | SealFlag::F_SEAL_GROW;
    if !seals.contains(need) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "a payload descriptor that is not sealed",
        ));
    }
    let size = nix::sys::stat::fstat(fd)?.st_size;
    if u64::try_from(size).ok() != Some(len as u64) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a payload of {size} bytes announced as {len}"),
        ));
    }
    Ok(())
}

impl Deref for Mapped {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self.ptr {
            // SAFETY: `len` readable bytes mapped at `p` until `Drop`, never
            // written (see `open`).
            Some(p) => unsafe { std::slice::from_raw_parts(p.as_ptr(), self.len) },
            None => &[],
        }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        if let Some(p) = self.ptr {
            // SAFETY: the mapping made in `open`; no slice of it outlives
            // `self` (`deref` borrows `self`).
            unsafe { munmap(p.cast(), self.len).ok() };
        }
    }
}

impl std::fmt::Debug for Mapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapped").field("len", &self.len).finish()
    }
}

/// A memfd mapped read-write, filled in place by a
/// [`SharedBytesMut`](super::SharedBytesMut), then frozen into a sealed
/// read-only [`Mapped`] that keeps its descriptor: passing that to another
/// process copies nothing.
///
/// Its pages are allocated when it is made or grows (`fallocate`: no
/// `SIGBUS` on a later write if memory runs out) and mapped writable at
/// once (`MADV_POPULATE_WRITE`: one call instead of a fault per page). The bytes past
/// `len` up to the capacity are allocated, initialised (zero, or what was
/// written before a `truncate`) and not part of the value.
#[derive(Debug)]
pub(crate) struct Writable {
    fd: OwnedFd,
    map: RwMap,
    len: usize,
}

/// The writable mapping of a [`Writable`]'s `cap` bytes (`None` while 0).
#[derive(Debug)]
struct RwMap {
    ptr: Option<NonNull<u8>>,
    cap: usize,
}

// SAFETY: the mapping belongs to its `Writable` alone (the descriptor is
// never handed out while it is mapped writable), as a `Vec`'s buffer does:
// `&Writable` only reads it, `&mut Writable` writes it.
unsafe impl Send for RwMap {}
// SAFETY: as above.
unsafe impl Sync for RwMap {}

impl Drop for RwMap {
    fn drop(&mut self) {
        if let Some(p) = self.ptr {
            // SAFETY: the mapping of `cap` bytes made in `Writable::reserve`;
            // no slice of it outlives its `Writable` (`Deref` borrows it).
            unsafe { munmap(p.cast(), self.cap).ok() };
        }
    }
}

impl Writable {
    /// An empty one with room for `cap` bytes.
    pub(crate) fn with_capacity(cap: usize) -> io::Result<Writable> {
        let fd = memfd_create(
            "spindle-bytes",
            MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
        )?;
        let mut w = Writable {
            fd,
            map: RwMap { ptr: None, cap: 0 },
            len: 0,
        };
        w.reserve(cap)?;
        Ok(w)
    }

    /// The room: bytes allocated and mapped.
    pub(crate) fn capacity(&self) -> usize {
        self.map.cap
    }

    /// Makes the room at least `cap` bytes (the new bytes are zero).
    pub(crate) fn reserve(&mut self, cap: usize) -> io::Result<()> {
        let old = self.map.cap;
        if cap <= old {
            return Ok(());
        }
        let too_large = || io::Error::new(io::ErrorKind::OutOfMemory, "a buffer too large");
        let end = libc::off_t::try_from(cap).map_err(|_| too_large())?;
        let n = NonZeroUsize::new(cap).ok_or_else(too_large)?;
        // Allocates the new pages (zeroed) and grows the file in one call.
        fallocate(
            &self.fd,
            FallocateFlags::empty(),
            old as libc::off_t,
            end - old as libc::off_t,
        )?;
        let mapped = match self.map.ptr {
            // SAFETY: `p` is this value's mapping of `old` bytes of the
            // memfd, which now has `cap`; the kernel moves it if it must,
            // contents and all (they live in the file). The old address is
            // not used again: no slice of it outlives `&mut self`, and
            // `self.map` takes the new one below.
            Some(p) => unsafe { mremap(p.cast(), old, cap, MRemapFlags::MREMAP_MAYMOVE, None) },
            // SAFETY: a fresh shared mapping of this value's own memfd,
            // `cap` bytes long now; no existing memory is affected.
            None => unsafe {
                mmap(
                    None,
                    n,
                    ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                    MapFlags::MAP_SHARED,
                    &self.fd,
                    0,
                )
            },
        };
        let p = match mapped {
            Ok(p) => p,
            Err(e) => {
                // Back to the old size: the mapping is unchanged.
                nix::unistd::ftruncate(&self.fd, old as libc::off_t).ok();
                return Err(e.into());
            }
        };
        // Every page mapped writable now, in one call: faster here than
        // `MAP_POPULATE` (whose read faults find `fallocate`'s pages not
        // yet zeroed, one by one) or than a fault per page on first write.
        // Best effort: a kernel before 5.14 (no `MADV_POPULATE_WRITE`)
        // takes the page faults instead.
        // SAFETY: advice on this value's own mapping of `cap` bytes; it
        // changes no contents.
        unsafe {
            nix::sys::mman::madvise(p, cap, nix::sys::mman::MmapAdvise::MADV_POPULATE_WRITE).ok()
        };
        // Field by field: the old mapping is this one now (moved or grown
        // in place), not to be unmapped.
        self.map.ptr = Some(p.cast());
        self.map.cap = cap;
        Ok(())
    }

    /// Sets the length; at most the capacity (the bytes up to it are
    /// always initialised: zero or written before).
    pub(crate) fn set_len(&mut self, len: usize) {
        assert!(len <= self.map.cap, "set_len past the capacity");
        self.len = len;
    }

    /// Seals it and maps it read-only: the writable mapping goes first
    /// (the kernel refuses `F_SEAL_WRITE` while one exists), the file is
    /// cut to `len`, and the result keeps the descriptor, to pass on. Its
    /// pages are mapped on first read (most are never read here).
    pub(crate) fn freeze(self) -> io::Result<Mapped> {
        let Writable { fd, map, len } = self;
        drop(map);
        nix::unistd::ftruncate(&fd, len as libc::off_t)?;
        fcntl(&fd, FcntlArg::F_ADD_SEALS(required_seals()))?;
        check_sealed(fd.as_fd(), len)?;
        Mapped::map(fd, len, false)
    }

    /// The descriptor (tests).
    #[cfg(test)]
    fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Deref for Writable {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self.map.ptr {
            // SAFETY: `len <= cap` bytes mapped at `p`, all initialised
            // (file contents), until the mapping is dropped or moved, which
            // needs `self` by value or `&mut self`.
            Some(p) => unsafe { std::slice::from_raw_parts(p.as_ptr(), self.len) },
            None => &[],
        }
    }
}

impl std::ops::DerefMut for Writable {
    fn deref_mut(&mut self) -> &mut [u8] {
        match self.map.ptr {
            // SAFETY: as in `deref`, and `&mut self` makes this the only
            // reference into the mapping (nothing else maps the memfd
            // writable: its descriptor is private to this value).
            Some(p) => unsafe { std::slice::from_raw_parts_mut(p.as_ptr(), self.len) },
            None => &mut [],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_payload_maps_back_whole_and_cannot_be_changed() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let s = Sealed::copy_of(&data).unwrap();
        assert_eq!(s.len(), data.len());
        // The sender cannot write or shrink it any more.
        let f = std::fs::File::from(s.fd().try_clone_to_owned().unwrap());
        assert!(f.set_len(10).is_err());
        assert!(std::io::Write::write(&mut &f, b"x").is_err());
        let m = Mapped::open(s.into_fd(), data.len()).unwrap();
        assert_eq!(&m[..], &data[..]);
    }

    #[test]
    fn an_unsealed_or_mis_sized_descriptor_is_refused() {
        let fd = memfd_create("t", MFdFlags::MFD_CLOEXEC).unwrap();
        nix::unistd::ftruncate(&fd, 10).unwrap();
        let e = Mapped::open(fd, 10).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        let s = Sealed::copy_of(b"hello").unwrap();
        let e = Mapped::open(s.into_fd(), 6).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        let empty = Sealed::copy_of(b"").unwrap();
        assert_eq!(&Mapped::open(empty.into_fd(), 0).unwrap()[..], b"");
    }

    #[test]
    fn a_failing_fill_is_an_error() {
        let mut f = Filling::new().unwrap();
        let e = f.append_with(|_| Err("no".into())).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn payloads_share_one_memfd_and_slices_stay_inside() {
        let mut f = Filling::new().unwrap();
        assert_eq!(f.append(b"hello").unwrap(), (0, 5));
        assert_eq!(f.append(b"").unwrap(), (5, 0));
        assert_eq!(f.append(b"world!").unwrap(), (5, 6));
        let s = f.seal().unwrap();
        let m = std::sync::Arc::new(Mapped::open(s.into_fd(), 11).unwrap());
        let a = MappedSlice::new(&m, 0, 5).unwrap();
        let b = MappedSlice::new(&m, 5, 6).unwrap();
        drop(m);
        assert_eq!((&a[..], &b[..]), (&b"hello"[..], &b"world!"[..]));
        let m = std::sync::Arc::new(
            Mapped::open(Sealed::copy_of(b"xy").unwrap().into_fd(), 2).unwrap(),
        );
        assert!(MappedSlice::new(&m, 1, 2).is_err());
        assert!(MappedSlice::new(&m, u64::MAX, 2).is_err());
    }

    /// The inode of `fd` (unique among live shmem files).
    fn inode(fd: BorrowedFd<'_>) -> u64 {
        nix::sys::stat::fstat(fd).unwrap().st_ino as u64
    }

    /// Whether any descriptor or mapping of this process refers to inode
    /// `ino` of a memfd.
    fn still_open(ino: u64) -> bool {
        use std::os::unix::fs::MetadataExt;
        let fds = std::fs::read_dir("/proc/self/fd").unwrap().any(|e| {
            let p = e.unwrap().path();
            std::fs::read_link(&p).is_ok_and(|l| l.to_string_lossy().contains("memfd:"))
                && std::fs::metadata(&p).is_ok_and(|m| m.ino() == ino)
        });
        let maps = std::fs::read_to_string("/proc/self/maps")
            .unwrap()
            .lines()
            .any(|l| {
                l.contains("memfd:")
                    && l.split_whitespace().nth(4) == Some(ino.to_string().as_str())
            });
        fds || maps
    }

    #[test]
    fn a_writable_is_filled_in_place_grows_and_freezes_sealed() {
        let mut w = Writable::with_capacity(100_000).unwrap();
        assert_eq!((w.len(), w.capacity()), (0, 100_000));
        w.set_len(100_000);
        assert!(w.iter().all(|&b| b == 0));
        for (i, b) in w.iter_mut().enumerate() {
            *b = (i % 251) as u8;
        }
        // Growing keeps the bytes (the mapping may move).
        w.reserve(3_000_000).unwrap();
        assert_eq!(w.capacity(), 3_000_000);
        w.set_len(3_000_000);
        assert!(
            w[..100_000]
                .iter()
                .enumerate()
                .all(|(i, &b)| b == (i % 251) as u8)
        );
        assert!(w[100_000..].iter().all(|&b| b == 0));
        w[2_999_999] = 9;
        w.set_len(200_000);
        let ino = inode(w.fd());
        let m = w.freeze().unwrap();
        assert_eq!(m.len(), 200_000);
        assert!(
            m[..100_000]
                .iter()
                .enumerate()
                .all(|(i, &b)| b == (i % 251) as u8)
        );
        // Sealed: the kernel took `F_SEAL_WRITE`, which it refuses while a
        // writable mapping exists, so the writable one is gone; nobody can
        // write, cut or grow it, nor map it writable again.
        let fd = m.fd().unwrap();
        let seals = SealFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GET_SEALS).unwrap());
        assert!(seals.contains(required_seals()));
        let f = std::fs::File::from(fd.try_clone_to_owned().unwrap());
        assert!(std::io::Write::write(&mut &f, b"x").is_err());
        assert!(f.set_len(10).is_err() && f.set_len(1 << 30).is_err());
        assert_eq!(f.metadata().unwrap().len(), 200_000);
        // SAFETY: (test) a fresh mapping the kernel must refuse; nothing is
        // affected if it wrongly succeeds (the assertion fails first).
        let rw = unsafe {
            mmap(
                None,
                NonZeroUsize::new(4096).unwrap(),
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                &f,
                0,
            )
        };
        assert!(rw.is_err());
        // The receiving side's check accepts it.
        let back = Mapped::open(fd.try_clone_to_owned().unwrap(), 200_000).unwrap();
        assert_eq!(&back[..], &m[..]);
        drop((f, back));
        assert!(still_open(ino));
        drop(m);
        assert!(
            !still_open(ino),
            "the frozen memfd outlived its last holder"
        );
    }

    #[test]
    fn a_writable_dropped_unfrozen_frees_its_memfd() {
        let mut w = Writable::with_capacity(1 << 20).unwrap();
        w.set_len(1 << 20);
        w.fill(3);
        let ino = inode(w.fd());
        assert!(still_open(ino));
        drop(w);
        assert!(!still_open(ino));
    }

    #[test]
    fn an_empty_writable_maps_nothing_and_grows_from_nothing() {
        let w = Writable::with_capacity(0).unwrap();
        assert_eq!((&w[..], w.capacity()), (&[][..], 0));
        let m = w.freeze().unwrap();
        assert_eq!(&m[..], b"");
        let mut w = Writable::with_capacity(0).unwrap();
        w.reserve(10).unwrap();
        w.set_len(10);
        w.copy_from_slice(b"0123456789");
        assert_eq!(&w.freeze().unwrap()[..], b"0123456789");
    }
}
