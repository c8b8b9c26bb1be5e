//! The lock-order checker (lockdep-style): remembers, across the whole
//! program, "lock A was held while lock B was acquired", and reports a
//! [`PotentialDeadlock`] the first time such an edge closes a cycle — even if
//! this run never deadlocked.
//!
//! # Examples
//!
//! ```
//! use spindle::lockorder::{self, checker};
//! use spindle::sync::Lock;
//!
//! checker::set_sink(checker::Sink::Silent); // keep the doc test quiet
//! checker::enable();
//! let (a, b) = (Lock::new(), Lock::new());
//! lockorder::set_name(&a, "a");
//! lockorder::set_name(&b, "b");
//! {
//!     let _a = a.lock();
//!     let _b = b.lock(); // a before b
//! }
//! {
//!     let _b = b.lock();
//!     let _a = a.lock(); // b before a: could deadlock against the above
//! }
//! let found = checker::reports().into_iter().any(|r| r.involves(a.id()) && r.involves(b.id()));
//! assert!(found);
//! ```
#![forbid(unsafe_code)]

use super::label;
use super::state::{self, Held, Site, ThreadState};
use crate::sync::LockId;
use parking_lot::Mutex;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// One recorded ordering: a thread acquired `acquired` while holding `held`.
#[derive(Clone, Debug)]
pub struct OrderEdge {
    held: LockId,
    held_site: Site,
    acquired: LockId,
    acquire_site: Site,
    thread: Arc<str>,
}

impl OrderEdge {
    /// The lock that was already held.
    pub fn held(&self) -> LockId {
        self.held
    }
    /// Where the held lock had been acquired.
    pub fn held_site(&self) -> Site {
        self.held_site
    }
    /// The lock that was acquired while `held` was held.
    pub fn acquired(&self) -> LockId {
        self.acquired
    }
    /// Where it was acquired.
    pub fn acquire_site(&self) -> Site {
        self.acquire_site
    }
    /// The name of the thread that did it (the first time).
    pub fn thread(&self) -> &str {
        &self.thread
    }
}

/// A cycle in the program's lock order: each edge's `acquired` lock is the
/// next edge's `held` lock, and the last edge leads back to the first. The
/// first edge is the one that closed the cycle.
#[derive(Clone, Debug)]
pub struct PotentialDeadlock {
    edges: Vec<OrderEdge>,
}

impl PotentialDeadlock {
    /// The edges of the cycle, starting with the one that closed it.
    pub fn edges(&self) -> &[OrderEdge] {
        &self.edges
    }
    /// The locks of the cycle, in cycle order.
    pub fn locks(&self) -> Vec<LockId> {
        self.edges.iter().map(|e| e.held).collect()
    }
    /// Whether lock `id` is part of the cycle.
    pub fn involves(&self, id: LockId) -> bool {
        self.edges.iter().any(|e| e.held == id)
    }
}

impl fmt::Display for PotentialDeadlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.locks().into_iter().map(label).collect();
        writeln!(
            f,
            "potential deadlock: lock order cycle {} -> {}",
            names.join(" -> "),
            names[0]
        )?;
        for e in &self.edges {
            writeln!(
                f,
                "  thread {:?} acquired {} at {}",
                e.thread,
                label(e.acquired),
                e.acquire_site
            )?;
            writeln!(
                f,
                "      while holding {}, acquired at {}",
                label(e.held),
                e.held_site
            )?;
        }
        Ok(())
    }
}

/// Where reports go.
#[derive(Clone)]
#[non_exhaustive]
pub enum Sink {
    /// Print each report once on standard error (the default).
    Stderr,
    /// Panic in the thread whose acquisition closed the cycle.
    Panic,
    /// Only keep them for [`reports`].
    Silent,
    /// Call this function (from the acquiring thread, with no lock held).
    Custom(Arc<dyn Fn(&PotentialDeadlock) + Send + Sync>),
}

impl fmt::Debug for Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Sink::Stderr => "Stderr",
            Sink::Panic => "Panic",
            Sink::Silent => "Silent",
            Sink::Custom(_) => "Custom",
        })
    }
}

#[derive(Default)]
struct Graph {
    /// Edges out of each lock.
    out: HashMap<LockId, Vec<OrderEdge>>,
    known: HashSet<(LockId, LockId)>,
}

static GRAPH: Mutex<Option<Graph>> = Mutex::new(None);
static SINK: Mutex<Option<Sink>> = Mutex::new(None);
static HISTORY: Mutex<Vec<PotentialDeadlock>> = Mutex::new(Vec::new());
const HISTORY_MAX: usize = 1024;

/// A cheap hasher for lock-id pairs (ids are small unique numbers, not
/// attacker-chosen keys).
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type Pairs = HashSet<(LockId, LockId), BuildHasherDefault<IdHasher>>;

thread_local! {
    /// Edges this thread already knows are in the graph: after warm-up the
    /// checker takes no global lock.
    static SEEN: RefCell<Pairs> = RefCell::new(Pairs::default());
}

/// Turns the checker on (and with it lock tracking).
pub fn enable() {
    state::set_tracking(Some(true), None);
}

/// Turns the checker off; the edges seen so far are kept.
pub fn disable() {
    state::set_tracking(Some(false), None);
}

/// Whether the checker is on (after [`enable`] or `SPINDLE_LOCKORDER=1`).
pub fn is_enabled() -> bool {
    state::checker_on()
}

/// Sets where reports go (default [`Sink::Stderr`]).
pub fn set_sink(sink: Sink) {
    *SINK.lock() = Some(sink);
}

/// Every report so far (the latest 1024), oldest first.
pub fn reports() -> Vec<PotentialDeadlock> {
    HISTORY.lock().clone()
}

/// Called before `me`, holding `held`, may block acquiring `id` at `site`.
pub(crate) fn on_acquire(
    me: &ThreadState,
    held: &[Held],
    id: LockId,
    site: Site,
) -> Option<PotentialDeadlock> {
    let mut found = None;
    for h in held.iter().filter(|h| h.id != id) {
        let pair = (h.id, id);
        if SEEN.with(|s| s.borrow().contains(&pair)) {
            continue;
        }
        let edge = OrderEdge {
            held: h.id,
            held_site: h.site,
            acquired: id,
            acquire_site: site,
            thread: Arc::clone(&me.name),
        };
        let mut g = GRAPH.lock();
        let g = g.get_or_insert_with(Graph::default);
        if g.known.insert(pair) {
            if let Some(path) = g.path(id, h.id) {
                let mut edges = vec![edge.clone()];
                edges.extend(path);
                found.get_or_insert(PotentialDeadlock { edges });
            }
            g.out.entry(h.id).or_default().push(edge);
        }
        SEEN.with(|s| s.borrow_mut().insert(pair));
    }
    found
}

/// Sends a report to the history and the sink (no lock held by the caller).
pub(crate) fn emit(found: Option<PotentialDeadlock>) {
    let Some(report) = found else { return };
    {
        let mut h = HISTORY.lock();
        if h.len() == HISTORY_MAX {
            h.remove(0);
        }
        h.push(report.clone());
    }
    let sink = SINK.lock().clone().unwrap_or_else(|| {
        if state::env_wants_panic() {
            Sink::Panic
        } else {
            Sink::Stderr
        }
    });
    match sink {
        Sink::Stderr => eprint!("spindle lockorder: {report}"),
        Sink::Panic => panic!("spindle lockorder: {report}"),
        Sink::Silent => {}
        Sink::Custom(f) => f(&report),
    }
}

impl Graph {
    /// The edges of a shortest path `from` ->* `to`, if any (breadth first).
    fn path(&self, from: LockId, to: LockId) -> Option<Vec<OrderEdge>> {
        let mut came: HashMap<LockId, &OrderEdge> = HashMap::new();
        let mut queue = VecDeque::from([from]);
        while let Some(n) = queue.pop_front() {
            if n == to {
                let mut path = Vec::new();
                let mut at = to;
                while at != from {
                    let e = came[&at];
                    path.push(e.clone());
                    at = e.held;
                }
                path.reverse();
                return Some(path);
            }
            for e in self.out.get(&n).into_iter().flatten() {
                if e.acquired != from && !came.contains_key(&e.acquired) {
                    came.insert(e.acquired, e);
                    queue.push_back(e.acquired);
                }
            }
        }
        None
    }
}
