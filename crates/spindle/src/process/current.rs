//! Who this process is: `current_process`, `parent_process`, `cpu_count`.
#![forbid(unsafe_code)]

use std::io::Read;
use std::sync::atomic::{AtomicU32, Ordering};

use parking_lot::{Mutex, MutexGuard};

use super::pidfd::ParentWatch;
use serde::{Deserialize, Serialize};

/// The authentication key of a process: 32 random bytes, inherited by its
/// children (Python's `Process.authkey`).
pub type AuthKey = [u8; 32];

/// The identity a child learns from its parent at start.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Identity {
    pub(crate) name: String,
    pub(crate) path: Vec<u32>,
    pub(crate) authkey: AuthKey,
    pub(crate) daemon: bool,
    pub(crate) parent_pid: u32,
    pub(crate) parent_name: String,
}

pub(crate) struct Me {
    pub(crate) name: String,
    pub(crate) path: Vec<u32>,
    pub(crate) authkey: AuthKey,
    pub(crate) daemon: bool,
    pub(crate) parent: Option<(u32, String)>,
    /// Watches the parent (opened as the child starts, so a pid reused
    /// later cannot fool it).
    pub(crate) parent_watch: Option<ParentWatch>,
}

impl Me {
    /// The descriptor watching the parent, if any.
    pub(crate) fn parent_fd(&self) -> Option<std::os::fd::RawFd> {
        match &self.parent_watch {
            Some(ParentWatch::Fd(fd)) => Some(std::os::fd::AsRawFd::as_raw_fd(&**fd)),
            _ => None,
        }
    }
}

static ME: Mutex<Option<Me>> = Mutex::new(None);
static COUNTER: AtomicU32 = AtomicU32::new(0);

fn random_key() -> AuthKey {
    let mut k = [0u8; 32];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut k))
        .is_err()
    {
        // No /dev/urandom (a chroot): fall back to time, pid and addresses.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            ^ (std::process::id() as u128) << 64
            ^ (&k as *const _ as u128);
        for (i, b) in k.iter_mut().enumerate() {
            *b = (seed >> ((i % 16) * 8)) as u8 ^ (i as u8).wrapping_mul(151);
        }
    }
    k
}

/// Locks this process's identity, creating the main process's on first use.
pub(crate) fn lock_me() -> MutexGuard<'static, Option<Me>> {
    let mut g = ME.lock();
    if g.is_none() {
        *g = Some(Me {
            name: "MainProcess".to_string(),
            path: Vec::new(),
            authkey: random_key(),
            daemon: false,
            parent: None,
            parent_watch: None,
        });
    }
    g
}

/// Installs the identity of a freshly started child (`g` is held across the
/// fork, or this is the child's bootstrap).
pub(crate) fn become_child(g: &mut Option<Me>, id: Identity) {
    COUNTER.store(0, Ordering::Relaxed);
    *g = Some(Me {
        name: id.name,
        path: id.path,
        authkey: id.authkey,
        daemon: id.daemon,
        parent_watch: Some(ParentWatch::of(id.parent_pid)),
        parent: Some((id.parent_pid, id.parent_name)),
    });
}

/// The identity of the next child of this process (name `Process-1:2` style,
/// as Python's `_identity`).
pub(crate) fn next_child(name: Option<String>, daemon: bool, authkey: Option<AuthKey>) -> Identity {
    let g = lock_me();
    let me = g.as_ref().expect("initialised by lock_me");
    let n = COUNTER.fetch_add(1, Ordering::Relaxed) + 1;
    let mut path = me.path.clone();
    path.push(n);
    let default_name = || {
        let parts: Vec<String> = path.iter().map(u32::to_string).collect();
        format!("Process-{}", parts.join(":"))
    };
    Identity {
        name: name.unwrap_or_else(default_name),
        path: path.clone(),
        authkey: authkey.unwrap_or(me.authkey),
        daemon,
        parent_pid: std::process::id(),
        parent_name: me.name.clone(),
    }
}

/// The current process as seen from inside it (Python's
/// `multiprocessing.current_process()`).
#[derive(Debug, Clone)]
pub struct CurrentProcess {
    name: String,
    pid: u32,
    daemon: bool,
    authkey: AuthKey,
    identity: Vec<u32>,
}

impl CurrentProcess {
    /// `"MainProcess"` in the main process, the child's name in a child.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The process id (Python's `pid`, `os.getpid()`).
    pub fn pid(&self) -> u32 {
        self.pid
    }
    /// Whether this process is a daemon.
    pub fn daemon(&self) -> bool {
        self.daemon
    }
    /// This process's authentication key.
    pub fn authkey(&self) -> &AuthKey {
        &self.authkey
    }
    /// The position in the process tree (Python's `_identity`): empty for
    /// the main process, `[1, 2]` for `Process-1:2`.
    pub fn identity(&self) -> &[u32] {
        &self.identity
    }
}

/// The process that started this one (Python's `parent_process()`).
#[derive(Debug, Clone)]
pub struct ParentProcess {
    name: String,
    pid: u32,
    watch: ParentWatch,
}

impl ParentProcess {
    /// The parent's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The parent's process id (`os.getppid()` for fork and spawn children;
    /// for a fork-server child, the process that asked for it).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether the parent is still running (Python's
    /// `parent_process().is_alive()`). Never waits: it looks at a process
    /// descriptor (`pidfd_open`) opened when this child started, so a pid
    /// reused after the parent died cannot fool it. (If the kernel refused
    /// the descriptor, it falls back on `kill(pid, 0)`, which a reused pid
    /// can.)
    pub fn is_alive(&self) -> bool {
        self.watch.is_alive()
    }
}

/// Describes the current process (Python's `multiprocessing.current_process()`).
///
/// # Examples
/// ```
/// let me = spindle::process::current_process();
/// assert_eq!(me.name(), "MainProcess");
/// assert_eq!(me.pid(), std::process::id());
/// assert!(spindle::process::parent_process().is_none());
/// ```
pub fn current_process() -> CurrentProcess {
    let g = lock_me();
    let me = g.as_ref().expect("initialised by lock_me");
    CurrentProcess {
        name: me.name.clone(),
        pid: std::process::id(),
        daemon: me.daemon,
        authkey: me.authkey,
        identity: me.path.clone(),
    }
}

/// The parent of a spindle child, `None` in the main process (Python's
/// `multiprocessing.parent_process()`).
pub fn parent_process() -> Option<ParentProcess> {
    let g = lock_me();
    let me = g.as_ref().expect("initialised by lock_me");
    me.parent.as_ref().map(|(pid, name)| ParentProcess {
        name: name.clone(),
        pid: *pid,
        watch: me.parent_watch.clone().unwrap_or(ParentWatch::Pid(*pid)),
    })
}

/// The number of CPUs online (Python's `multiprocessing.cpu_count()`, which
/// counts all CPUs, not only those this process may use; for that, see
/// `std::thread::available_parallelism`).
///
/// # Examples
/// ```
/// assert!(spindle::process::cpu_count() >= 1);
/// ```
pub fn cpu_count() -> usize {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::_NPROCESSORS_ONLN) {
        Ok(Some(n)) if n > 0 => n as usize,
        _ => std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}
