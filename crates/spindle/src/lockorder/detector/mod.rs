//! The deadlock detector: finds threads that are blocked right now in a cycle
//! of spindle locks (a wait-for graph), on demand with [`detect`] or from a
//! [`Watchdog`] thread, and can break the cycle by aborting blocked waits.
//!
//! # Examples
//!
//! ```
//! use spindle::lockorder::detector::{self, Recovery};
//! use spindle::sync::{Barrier, Lock};
//! use std::sync::Arc;
//!
//! detector::enable();
//! let (a, b) = (Arc::new(Lock::new()), Arc::new(Lock::new()));
//! let meet = Arc::new(Barrier::new(2).unwrap());
//! let spawn = |name: &str, first: Arc<Lock>, second: Arc<Lock>| {
//!     let meet = Arc::clone(&meet);
//!     std::thread::Builder::new().name(name.into()).spawn(move || {
//!         let _first = first.lock();
//!         meet.wait().unwrap();
//!         let _second = second.lock(); // both block here, forever...
//!     }).unwrap()
//! };
//! let t1 = spawn("t1", Arc::clone(&a), Arc::clone(&b));
//! let t2 = spawn("t2", Arc::clone(&b), Arc::clone(&a));
//! let start = std::time::Instant::now();
//! let found = loop {
//!     if let Some(d) = detector::detect().into_iter().find(|d| d.involves(a.id())) {
//!         break d;
//!     }
//!     assert!(start.elapsed().as_secs() < 60, "not found");
//!     std::thread::yield_now();
//! };
//! assert!(found.involves_thread("t1") && found.involves_thread("t2"));
//! found.recover(Recovery::AbortAll); // ...unless the detector breaks the cycle
//! assert!(t1.join().is_err() && t2.join().is_err()); // both unwound with a DeadlockError
//! ```
#![forbid(unsafe_code)]

use super::label;
use super::state::{self, Held, Site, ThreadState, Waiting};
pub use super::state::{Deadlock, Link};
use crate::sync::LockId;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

mod watchdog;
pub use watchdog::{Watchdog, WatchdogBuilder};

impl Link {
    /// The name of the blocked thread.
    pub fn thread(&self) -> &str {
        &self.thread
    }
    /// The lock it waits for.
    pub fn waits_for(&self) -> LockId {
        self.waits_for
    }
    /// Where it asked for that lock.
    pub fn wait_site(&self) -> Site {
        self.wait_site
    }
    /// The name of the thread holding that lock (the next link's thread).
    pub fn holder(&self) -> &str {
        &self.holder
    }
    /// Where the holder acquired it.
    pub fn held_site(&self) -> Site {
        self.held_site
    }
}

impl Deadlock {
    /// The links of the cycle.
    pub fn links(&self) -> &[Link] {
        &self.links
    }
    /// The names of the blocked threads, in cycle order.
    pub fn threads(&self) -> Vec<&str> {
        self.links.iter().map(|l| l.thread()).collect()
    }
    /// The locks waited for, in cycle order.
    pub fn locks(&self) -> Vec<LockId> {
        self.links.iter().map(|l| l.waits_for).collect()
    }
    /// Whether lock `id` is part of the cycle.
    pub fn involves(&self, id: LockId) -> bool {
        self.links.iter().any(|l| l.waits_for == id)
    }
    /// Whether the thread named `name` is part of the cycle.
    pub fn involves_thread(&self, name: &str) -> bool {
        self.links.iter().any(|l| &*l.thread == name)
    }

    /// Breaks the cycle: aborts the waits `how` says. An aborted thread gets
    /// a [`DeadlockError`](super::DeadlockError): as an `Err` from
    /// [`acquire`](super::acquire), as an unwinding payload from a plain
    /// `Lock::lock`/`acquire` (see [`recoverable`](super::recoverable)).
    /// Returns how many waits were aborted (0 if the cycle was already gone).
    pub fn recover(&self, how: Recovery) -> usize {
        let why = Arc::new(self.clone());
        let victims: Vec<usize> = match how {
            Recovery::Report => vec![],
            Recovery::AbortAll => (0..self.links.len()).collect(),
            Recovery::AbortNewest => (0..self.links.len())
                .max_by_key(|&i| self.links[i].since)
                .into_iter()
                .collect(),
        };
        let keys: Vec<usize> = victims
            .into_iter()
            .filter_map(|i| state::abort_wait(&self.waits[i].0, self.waits[i].1, &why))
            .collect();
        for &key in &keys {
            state::wake(key);
        }
        keys.len()
    }

    /// Identifies the deadlock: its threads and their wait numbers.
    pub(crate) fn key(&self) -> Vec<(u64, u64)> {
        let mut k: Vec<_> = self.waits.iter().map(|(t, s)| (t.tid, *s)).collect();
        k.sort_unstable();
        k
    }
}

impl fmt::Debug for Deadlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deadlock")
            .field("links", &self.links)
            .finish()
    }
}

impl fmt::Display for Deadlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "deadlock: {} threads blocked in a cycle of spindle locks",
            self.links.len()
        )?;
        for l in &self.links {
            writeln!(
                f,
                "  thread {:?} waits for {} at {} (for {:?})",
                l.thread,
                label(l.waits_for),
                l.wait_site,
                l.since.elapsed()
            )?;
            writeln!(
                f,
                "      held by thread {:?}, acquired at {}",
                l.holder, l.held_site
            )?;
        }
        Ok(())
    }
}

/// What to do with a deadlock once found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Recovery {
    /// Only report it (the threads stay blocked).
    #[default]
    Report,
    /// Abort the wait that started last (one victim breaks the cycle).
    AbortNewest,
    /// Abort every wait of the cycle.
    AbortAll,
}

/// Turns on the tracking the detector needs (which thread holds and waits
/// for which spindle lock). Locks taken before this are unknown to it.
pub fn enable() {
    state::set_tracking(None, Some(true));
}

/// Turns the detector's tracking off (the checker may keep it on).
pub fn disable() {
    state::set_tracking(None, Some(false));
}

/// Whether the detector's tracking is on.
pub fn is_enabled() -> bool {
    state::detector_on()
}

struct Snap {
    state: Arc<ThreadState>,
    held: Vec<Held>,
    waiting: Option<Waiting>,
}

fn snapshot() -> Vec<Snap> {
    state::threads()
        .into_iter()
        .map(|state| {
            let (held, waiting) = {
                let mut inner = state.inner.lock();
                (inner.held_now().clone(), inner.waiting.clone())
            };
            Snap {
                state,
                held,
                waiting,
            }
        })
        .collect()
}

/// The cycles of the wait-for graph of `snaps` (every thread waits for at
/// most one lock, so each node has at most one successor).
fn cycles(snaps: &[Snap]) -> Vec<Deadlock> {
    let mut holder: HashMap<LockId, (usize, Site)> = HashMap::new();
    for (i, s) in snaps.iter().enumerate() {
        for h in &s.held {
            holder.insert(h.id, (i, h.site));
        }
    }
    let next: Vec<Option<(usize, Site)>> = snaps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            // A timed wait ends by itself: only waits without a deadline
            // can be stuck forever.
            let w = s.waiting.as_ref().filter(|w| w.forever)?;
            holder.get(&w.id).copied().filter(|&(j, _)| j != i)
        })
        .collect();
    let mut mark = vec![0u8; snaps.len()]; // 0 new, 1 on the current walk, 2 done
    let mut found = Vec::new();
    for start in 0..snaps.len() {
        let mut walk = Vec::new();
        let mut at = start;
        while mark[at] == 0 {
            mark[at] = 1;
            walk.push(at);
            match next[at] {
                Some((j, _)) => at = j,
                None => break,
            }
        }
        if mark[at] == 1 && next[at].is_some() {
            let from = walk.iter().position(|&n| n == at).unwrap_or(0);
            found.push(deadlock(snaps, &next, &walk[from..]));
        }
        for n in walk {
            mark[n] = 2;
        }
    }
    found
}

fn deadlock(snaps: &[Snap], next: &[Option<(usize, Site)>], ring: &[usize]) -> Deadlock {
    let mut links = Vec::new();
    let mut waits = Vec::new();
    for &i in ring {
        let (s, w) = (&snaps[i], snaps[i].waiting.as_ref().expect("waits"));
        let (j, held_site) = next[i].expect("has a holder");
        links.push(Link {
            thread: Arc::clone(&s.state.name),
            waits_for: w.id,
            wait_site: w.site,
            since: w.since,
            holder: Arc::clone(&snaps[j].state.name),
            held_site,
        });
        waits.push((Arc::clone(&s.state), w.seq));
    }
    Deadlock { links, waits }
}

/// Finds the threads blocked right now in cycles of spindle locks.
///
/// The graph is read thread by thread, not atomically, so a cycle is only
/// reported if a second reading finds the very same waits (a real deadlock
/// cannot change; a passing one does): no false positives from races.
pub fn detect() -> Vec<Deadlock> {
    let first = cycles(&snapshot());
    if first.is_empty() {
        return first;
    }
    let again: HashSet<Vec<(u64, u64)>> = cycles(&snapshot()).iter().map(|d| d.key()).collect();
    first
        .into_iter()
        .filter(|d| again.contains(&d.key()))
        .collect()
}
