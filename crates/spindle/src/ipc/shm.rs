//! A few atomic words in shared memory (a `memfd` mapped `MAP_SHARED`), with
//! futex wait/wake that work across processes.
//!
//! Under `cfg(miri)` the words are an aligned heap buffer instead (miri has
//! no memfd or shared mapping), so the logic over them — the `ipc::Queue`
//! ring, shared ctypes, the process sync objects between threads — runs
//! under miri. Under `cfg(loom)` the mapping stays but [`SharedWords::word`]
//! hands out loom's atomics for the first [`MODEL_WORDS`] words and the
//! futex calls are the model's (see `crate::loom`); the bytes a user does
//! not read as words (ring slots and arena, ctypes data) stay in the
//! mapping.

#[cfg(not(miri))]
use std::num::NonZeroUsize;
#[cfg(not(miri))]
use std::os::fd::AsFd;
use std::os::fd::OwnedFd;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;
#[cfg(not(loom))]
use std::time::Instant;

#[cfg(not(miri))]
use nix::sys::memfd::{MFdFlags, memfd_create};
#[cfg(not(miri))]
use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap};

/// The type of a shared word: `AtomicU32` (loom's under `cfg(loom)`).
pub(crate) type Word = crate::loom::sync::atomic::AtomicU32;

#[cfg(loom)]
pub(crate) use crate::loom::futex::{futex_wait, futex_wake};

/// `WORDS` shared `AtomicU32`s, zero-initialised, mapped from a memfd that
/// can be passed to another process.
pub(crate) struct SharedWords {
    #[cfg(not(miri))]
    fd: OwnedFd,
    ptr: NonNull<AtomicU32>,
    len: usize,
    /// The words as the model's atomics.
    #[cfg(loom)]
    model: Box<[Word]>,
}

/// How many words of a region are loom atomics under `cfg(loom)` (every
/// user keeps its words in the first 128: the ring's header is 128 words).
#[cfg(loom)]
const MODEL_WORDS: usize = 128;

/// The heap buffer's alignment under miri: a page, like a mapping.
#[cfg(miri)]
const HEAP_ALIGN: usize = 4096;

// SAFETY: the mapping is only accessed through `&AtomicU32`, which is Sync;
// the pointer stays valid until `Drop` unmaps it.
unsafe impl Send for SharedWords {}
// SAFETY: as above.
unsafe impl Sync for SharedWords {}

impl SharedWords {
    /// Creates `len` fresh zeroed words.
    #[cfg(not(miri))]
    pub(crate) fn new(len: usize) -> std::io::Result<SharedWords> {
        let fd = memfd_create("spindle-shm", MFdFlags::MFD_CLOEXEC)?;
        nix::unistd::ftruncate(&fd, (len * 4) as i64)?;
        SharedWords::map(fd, len)
    }

    /// Creates `len` fresh zeroed words in an aligned heap buffer (miri).
    #[cfg(miri)]
    pub(crate) fn new(len: usize) -> std::io::Result<SharedWords> {
        let layout = std::alloc::Layout::from_size_align(len.max(1) * 4, HEAP_ALIGN)
            .map_err(std::io::Error::other)?;
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        let Some(ptr) = NonNull::new(ptr) else {
            std::alloc::handle_alloc_error(layout)
        };
        Ok(SharedWords {
            ptr: ptr.cast(),
            len,
            #[cfg(loom)]
            model: (0..len.min(MODEL_WORDS)).map(|_| Word::new(0)).collect(),
        })
    }

    /// Maps an existing region: there is none to map under miri.
    #[cfg(miri)]
    pub(crate) fn map(_fd: OwnedFd, _len: usize) -> std::io::Result<SharedWords> {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "no shared mappings under miri",
        ))
    }

    /// Maps an existing region (received from another process).
    #[cfg(not(miri))]
    pub(crate) fn map(fd: OwnedFd, len: usize) -> std::io::Result<SharedWords> {
        let size = nix::sys::stat::fstat(&fd)?.st_size as usize;
        if len == 0 || size < len * 4 {
            return Err(std::io::Error::other("shared region too small"));
        }
        let bytes = NonZeroUsize::new(len * 4).expect("len > 0");
        // SAFETY: a fresh shared mapping of a memfd we own, of a size the
        // file has (checked above); no existing memory is affected.
        let ptr = unsafe {
            mmap(
                None,
                bytes,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                &fd,
                0,
            )?
        };
        Ok(SharedWords {
            fd,
            ptr: ptr.cast(),
            len,
            #[cfg(loom)]
            model: (0..len.min(MODEL_WORDS)).map(|_| Word::new(0)).collect(),
        })
    }

    /// Word `i`.
    #[cfg(not(loom))]
    #[inline]
    pub(crate) fn word(&self, i: usize) -> &AtomicU32 {
        assert!(i < self.len, "shared word index out of range");
        // SAFETY: `i < len` words are mapped (or allocated), 4-aligned
        // (page-aligned base), live as long as `self`, and only ever
        // accessed atomically.
        unsafe { &*self.ptr.as_ptr().add(i) }
    }

    /// Word `i`, as the model's atomic (`i` < [`MODEL_WORDS`]).
    #[cfg(loom)]
    pub(crate) fn word(&self, i: usize) -> &Word {
        assert!(i < self.len, "shared word index out of range");
        &self.model[i]
    }

    /// The first byte of the mapping (page-aligned), for regions that hold
    /// more than words (shared `Value`/`Array` data).
    pub(crate) fn base(&self) -> NonNull<u8> {
        self.ptr.cast()
    }

    /// How many words are mapped.
    pub(crate) fn words(&self) -> usize {
        self.len
    }

    /// The memfd, to pass to a child.
    #[cfg(not(miri))]
    pub(crate) fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Under miri a heap buffer has no descriptor: passing one to a child
    /// is not something miri runs.
    #[cfg(miri)]
    pub(crate) fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        unimplemented!("shared memory has no descriptor under miri")
    }
}

impl Drop for SharedWords {
    #[cfg(not(miri))]
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping made in `map`; no reference
        // into it outlives `self` (`word` borrows `self`).
        unsafe {
            let _ = munmap(self.ptr.cast(), self.len * 4);
        }
    }

    #[cfg(miri)]
    fn drop(&mut self) {
        let layout = std::alloc::Layout::from_size_align(self.len.max(1) * 4, HEAP_ALIGN)
            .expect("checked in new");
        // SAFETY: the buffer `new` allocated with this layout; no reference
        // into it outlives `self`.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr().cast(), layout) }
    }
}

/// Sleeps while `word == expected`, until woken or `deadline` (cross-process
/// futex). Spurious returns are possible: callers re-check.
#[cfg(not(loom))]
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, deadline: Option<Instant>) {
    let ts;
    let tsp = match deadline {
        None => std::ptr::null(),
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            ts = libc::timespec {
                tv_sec: left.as_secs().min(i64::MAX as u64) as libc::time_t,
                tv_nsec: left.subsec_nanos() as libc::c_long,
            };
            &ts as *const libc::timespec
        }
    };
    // SAFETY: FUTEX_WAIT on a valid, aligned u32 that stays mapped for the
    // call; the timeout pointer is null or points to `ts` on our stack. The
    // non-private op works on shared mappings across processes.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            tsp,
        );
    }
}

/// Wakes up to `n` waiters on `word`.
#[cfg(not(loom))]
pub(crate) fn futex_wake(word: &AtomicU32, n: i32) {
    // SAFETY: FUTEX_WAKE only uses the address as a key.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    // Two mappings of one descriptor: none under miri.
    #[cfg(not(miri))]
    #[test]
    fn words_are_shared_between_mappings() {
        let a = SharedWords::new(4).unwrap();
        let b = SharedWords::map(a.fd().try_clone_to_owned().unwrap(), 4).unwrap();
        a.word(2).store(42, Ordering::SeqCst);
        assert_eq!(b.word(2).load(Ordering::SeqCst), 42);
        assert!(SharedWords::map(a.fd().try_clone_to_owned().unwrap(), 5).is_err());
    }

    #[test]
    fn futex_times_out_and_wakes() {
        let a = std::sync::Arc::new(SharedWords::new(1).unwrap());
        let t = std::time::Instant::now();
        futex_wait(a.word(0), 0, Some(t + Duration::from_millis(20)));
        assert!(t.elapsed() >= Duration::from_millis(20));
        let b = a.clone();
        let h = std::thread::spawn(move || {
            while b.word(0).load(Ordering::SeqCst) == 0 {
                futex_wait(b.word(0), 0, None);
            }
        });
        std::thread::sleep(Duration::from_millis(10));
        a.word(0).store(1, Ordering::SeqCst);
        futex_wake(a.word(0), 1);
        h.join().unwrap();
    }
}
