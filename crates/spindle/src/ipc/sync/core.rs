//! What every process-shared object stands on: a tagged shared region that
//! crosses into children as a file descriptor, the caller's process and
//! thread ids (cached, refreshed after `fork`), a liveness test for a holder
//! recorded by id, and a futex mutex whose holder can be taken over once it
//! is found dead.

use std::io;
use std::sync::Arc;
use std::sync::Once;
use std::sync::atomic::Ordering::{Acquire, Relaxed, SeqCst};
use std::time::{Duration, Instant};

use serde::{Deserializer, Serializer};

use crate::ipc::fdpass;
use crate::ipc::shm::{SharedWords, futex_wait, futex_wake};
use crate::loom::sync::atomic::AtomicU32;
use crate::util::{Wait, passed};

/// What a region holds; word 0 of every region is `MAGIC | kind`, checked
/// when a child maps a descriptor it received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Kind {
    Lock = 1,
    RLock = 2,
    Semaphore = 3,
    Event = 4,
    Condition = 5,
    Barrier = 6,
    Data = 7,
}

const MAGIC: u32 = 0x5350_5300; // "SPS\0"

/// A shared region of words (one memfd), cheap to clone within a process.
#[derive(Clone)]
pub(crate) struct Region(Arc<SharedWords>);

impl Region {
    /// A fresh zeroed region of `words` words (at least 2) tagged `kind`.
    pub(crate) fn new(kind: Kind, words: usize) -> io::Result<Region> {
        let shm = SharedWords::new(words.max(2))?;
        shm.word(0).store(MAGIC | kind as u32, SeqCst);
        Ok(Region(Arc::new(shm)))
    }

    /// Word `i` (word 0 is the tag).
    #[inline]
    pub(crate) fn word(&self, i: usize) -> &AtomicU32 {
        self.0.word(i)
    }

    /// The mapped words.
    pub(crate) fn shm(&self) -> &SharedWords {
        &self.0
    }

    /// Serialises the region as the index of its descriptor among those a
    /// task call carries (see `ipc/fdpass.rs`).
    pub(crate) fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let index = fdpass::export(self.0.fd()).map_err(serde::ser::Error::custom)?;
        s.serialize_u32(index)
    }

    /// Maps the region whose descriptor index `d` holds, checking that it is
    /// at least `min_words` long and tagged `kind`.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
        kind: Kind,
        min_words: usize,
    ) -> Result<Region, D::Error> {
        use serde::Deserialize;
        let index = u32::deserialize(d)?;
        let fd = fdpass::import(index).map_err(serde::de::Error::custom)?;
        let size = nix::sys::stat::fstat(&fd)
            .map_err(serde::de::Error::custom)?
            .st_size as usize;
        let words = size / 4;
        if words < min_words.max(2) {
            return Err(serde::de::Error::custom("shared region too small"));
        }
        let shm = SharedWords::map(fd, words).map_err(serde::de::Error::custom)?;
        let tag = shm.word(0).load(SeqCst);
        if tag != MAGIC | kind as u32 {
            return Err(serde::de::Error::custom(format!(
                "shared region is not a {kind:?} (tag {tag:#x})"
            )));
        }
        Ok(Region(Arc::new(shm)))
    }
}

static FORKS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

extern "C" fn after_fork_in_child() {
    FORKS.fetch_add(1, Relaxed);
}

thread_local! {
    /// (fork generation, pid, tid) of the calling thread.
    static IDS: std::cell::Cell<(u32, u32, u32)> = const { std::cell::Cell::new((u32::MAX, 0, 0)) };
}

#[inline]
fn ids() -> (u32, u32) {
    IDS.with(|c| {
        let (gen_, pid, tid) = c.get();
        if gen_ == FORKS.load(Relaxed) {
            return (pid, tid);
        }
        static ATFORK: Once = Once::new();
        ATFORK.call_once(|| {
            // SAFETY: registers a handler that only bumps an atomic, which
            // is async-signal-safe as the child side of fork requires.
            unsafe {
                libc::pthread_atfork(None, None, Some(after_fork_in_child));
            }
        });
        let g = FORKS.load(Relaxed);
        // SAFETY: getpid/gettid have no preconditions.
        let (pid, tid) = unsafe { (libc::getpid() as u32, libc::gettid() as u32) };
        c.set((g, pid, tid));
        (pid, tid)
    })
}

/// The calling process's id.
#[inline]
pub(crate) fn my_pid() -> u32 {
    ids().0
}

/// The calling thread's system-wide id (`gettid`).
#[inline]
pub(crate) fn my_tid() -> u32 {
    ids().1
}

/// Whether the process or thread `id` still runs: `/proc/<id>/stat` exists
/// and is not a zombie. An unreadable entry counts as alive (never take over
/// a lock on a guess). Under miri every holder is alive: its thread ids are
/// its own, not the system's, and nothing dies there.
pub(crate) fn alive(id: u32) -> bool {
    if cfg!(miri) {
        return true;
    }
    match std::fs::read(format!("/proc/{id}/stat")) {
        Err(e) => e.kind() != io::ErrorKind::NotFound,
        Ok(stat) => match stat.iter().rposition(|&b| b == b')') {
            Some(i) => !matches!(stat.get(i + 2), Some(b'Z' | b'X' | b'x')),
            None => true,
        },
    }
}

/// Set in a mutex word while some process may sleep on it.
pub(crate) const WAITERS: u32 = 1 << 31;
/// The holder's id bits of a mutex word (0 = free).
pub(crate) const HOLDER: u32 = !WAITERS;

/// How an acquisition of a [`mutex_lock`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Got {
    /// Acquired normally.
    Acquired,
    /// Acquired by taking it over from a holder that had died.
    Recovered,
    /// Not acquired (try, or the deadline passed).
    TimedOut,
}

/// Takes over `word` from a dead holder `cur` (whatever the waiters bit).
fn take_over(word: &AtomicU32, cur: u32, me: u32) -> bool {
    let holder = cur & HOLDER;
    holder != 0
        && holder != me
        && !alive(holder)
        && word
            .compare_exchange(cur, me | WAITERS, Acquire, Relaxed)
            .is_ok()
}

/// Acquires the futex mutex `word` for holder id `me` (a pid or a tid).
///
/// A waiter sleeps in slices (2 ms doubling to 200 ms); when a slice ends
/// with the word unchanged it checks whether the holder still lives and, if
/// not, takes the mutex over ([`Got::Recovered`]). A failed `try` checks once.
pub(crate) fn mutex_lock(word: &AtomicU32, me: u32, wait: Wait) -> Got {
    debug_assert!(me != 0 && me & WAITERS == 0);
    if word.compare_exchange(0, me, Acquire, Relaxed).is_ok() {
        return Got::Acquired;
    }
    let deadline = match wait {
        Wait::Never => {
            let cur = word.load(Relaxed);
            return if take_over(word, cur, me) {
                Got::Recovered
            } else {
                Got::TimedOut
            };
        }
        Wait::Forever => None,
        Wait::Until(t) => Some(t),
    };
    // A short spin: critical sections of shared counters are tiny (none
    // under loom, see `crate::loom::SPIN`).
    let spins = if crate::loom::SPIN { 40 } else { 0 };
    for _ in 0..spins {
        std::hint::spin_loop();
        if word.load(Relaxed) == 0 && word.compare_exchange(0, me, Acquire, Relaxed).is_ok() {
            return Got::Acquired;
        }
    }
    let mut slice = Duration::from_millis(2);
    loop {
        let cur = word.load(Relaxed);
        if cur & HOLDER == 0 {
            // Free: take it, keeping the waiters bit set conservatively.
            if word
                .compare_exchange(cur, me | WAITERS, Acquire, Relaxed)
                .is_ok()
            {
                return Got::Acquired;
            }
            continue;
        }
        if cur & WAITERS == 0
            && word
                .compare_exchange(cur, cur | WAITERS, Relaxed, Relaxed)
                .is_err()
        {
            continue;
        }
        if passed(deadline) {
            return Got::TimedOut;
        }
        let now = Instant::now();
        let until = match deadline {
            Some(d) => d.min(now + slice),
            None => now + slice,
        };
        futex_wait(word, cur | WAITERS, Some(until));
        if passed(Some(until)) && word.load(Relaxed) == cur | WAITERS {
            if take_over(word, cur | WAITERS, me) {
                return Got::Recovered;
            }
            slice = (slice * 2).min(Duration::from_millis(200));
        }
    }
}

/// Releases the futex mutex `word`; returns the previous holder id (0 if it
/// was free, in which case nothing changed).
pub(crate) fn mutex_unlock(word: &AtomicU32) -> u32 {
    let mut cur = word.load(Relaxed);
    loop {
        if cur & HOLDER == 0 {
            return 0;
        }
        match word.compare_exchange(cur, 0, SeqCst, Relaxed) {
            Ok(_) => break,
            Err(now) => cur = now,
        }
    }
    if cur & WAITERS != 0 {
        futex_wake(word, 1);
    }
    cur & HOLDER
}

/// Sleeps on `word` while it equals `expected`, until `deadline`.
#[inline]
pub(crate) fn wait_on(word: &AtomicU32, expected: u32, deadline: Option<Instant>) {
    futex_wait(word, expected, deadline);
}

/// Wakes every sleeper on `word`.
#[inline]
pub(crate) fn wake_all(word: &AtomicU32) {
    futex_wake(word, i32::MAX);
}

// Both need the system's own ids (see `alive`): none under miri.
#[cfg(all(test, not(miri)))]
mod tests {
    use super::*;

    #[test]
    fn ids_and_liveness() {
        assert_eq!(my_pid(), std::process::id());
        assert!(alive(my_pid()));
        assert!(alive(my_tid()));
        // pid_max is at most 2^22 on Linux.
        assert!(!alive(u32::MAX >> 2));
    }

    #[test]
    fn mutex_takes_over_a_dead_holder() {
        let r = Region::new(Kind::Lock, 2).unwrap();
        let w = r.word(1);
        assert_eq!(mutex_lock(w, 7, Wait::Never), Got::Acquired);
        // 7 is (almost surely) not us; pretend a dead id holds it.
        w.store(u32::MAX >> 2, SeqCst);
        assert_eq!(mutex_lock(w, my_pid(), Wait::Never), Got::Recovered);
        assert_eq!(mutex_unlock(w), my_pid());
        assert_eq!(mutex_unlock(w), 0);
    }
}
