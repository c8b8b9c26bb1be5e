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

use std::io;
use std::num::NonZeroUsize;
use std::ops::Deref;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;

use nix::fcntl::{FcntlArg, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap};

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
        let seals = fcntl(&fd, FcntlArg::F_GET_SEALS)?;
        let seals = SealFlag::from_bits_truncate(seals);
        let need = SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_WRITE | SealFlag::F_SEAL_GROW;
        if !seals.contains(need) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a payload descriptor that is not sealed",
            ));
        }
        let size = nix::sys::stat::fstat(&fd)?.st_size;
        if u64::try_from(size).ok() != Some(len as u64) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a payload of {size} bytes announced as {len}"),
            ));
        }
        let Some(n) = NonZeroUsize::new(len) else {
            return Ok(Mapped { ptr: None, len: 0 });
        };
        // SAFETY: a fresh read-only mapping of a file sealed against
        // shrinking and writing and exactly `len` bytes long (checked
        // above), so every byte of it stays readable and unchanged for the
        // mapping's life; no existing memory is affected.
        let ptr = unsafe {
            mmap(
                None,
                n,
                ProtFlags::PROT_READ,
                MapFlags::MAP_SHARED | MapFlags::MAP_POPULATE,
                &fd,
                0,
            )?
        };
        Ok(Mapped {
            ptr: Some(ptr.cast()),
            len,
        })
    }
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
}
