//! Who this process is: `current_process`, `parent_process`, `cpu_count`.
#![forbid(unsafe_code)]

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};

use parking_lot::{Mutex, MutexGuard};

use super::pidfd::ParentWatch;
use serde::{Deserialize, Serialize};

/// The authentication key of a process: 32 random bytes, inherited by its
/// children (Python's `Process.authkey`).
pub type AuthKey = [u8; 32];

/// Why a process has no authentication key: the OS random source
/// (`getrandom`) failed when the main process made its key, here or in an
/// ancestor that passed the failure down.
///
/// Python's `os.urandom` raises when the OS has no randomness, so
/// `multiprocessing` never runs without a key; spindle makes the key once,
/// lazily, and reports the failure wherever the key is asked for
/// ([`CurrentProcess::authkey`], [`Process::authkey`](super::Process::authkey))
/// rather than making one up: a key guessed from the time or the pid would
/// defeat the challenge it is meant for. Starting children still works (they
/// inherit the failure, see [`is_inherited`](Self::is_inherited)); a child
/// given its own key with `Builder::authkey` has that key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthKeyError {
    cause: String,
    inherited: bool,
}

impl AuthKeyError {
    /// The OS random source's own error message (`getrandom`'s), as seen
    /// by the process that tried to make the key.
    pub fn cause(&self) -> &str {
        &self.cause
    }

    /// Whether the failure happened in an ancestor (this process inherited
    /// "no key" from its parent) rather than in this process.
    pub fn is_inherited(&self) -> bool {
        self.inherited
    }
}

impl fmt::Display for AuthKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.inherited {
            write!(
                f,
                "no authkey: inherited from the parent, whose OS random source (getrandom) failed: {}",
                self.cause
            )
        } else {
            write!(
                f,
                "no authkey: the OS random source (getrandom) failed: {}",
                self.cause
            )
        }
    }
}

impl std::error::Error for AuthKeyError {}

/// A process's key, or why it has none.
pub(crate) type KeyState = Result<AuthKey, AuthKeyError>;

/// The identity a child learns from its parent at start.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Identity {
    pub(crate) name: String,
    pub(crate) path: Vec<u32>,
    pub(crate) authkey: KeyState,
    pub(crate) daemon: bool,
    pub(crate) parent_pid: u32,
    pub(crate) parent_name: String,
}

pub(crate) struct Me {
    pub(crate) name: String,
    pub(crate) path: Vec<u32>,
    pub(crate) authkey: KeyState,
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

/// A fresh key from `fill` (the OS's `getrandom` outside tests), or the
/// error it gave: there is no other source, so no key is ever derived from
/// the time, the pid or an address.
fn new_key(fill: impl FnOnce(&mut [u8]) -> Result<(), getrandom::Error>) -> KeyState {
    let mut k = [0u8; 32];
    match fill(&mut k) {
        Ok(()) => Ok(k),
        Err(e) => Err(AuthKeyError {
            cause: e.to_string(),
            inherited: false,
        }),
    }
}

/// The identity of a main process whose key is `authkey`.
fn main_me(authkey: KeyState) -> Me {
    Me {
        name: "MainProcess".to_string(),
        path: Vec::new(),
        authkey,
        daemon: false,
        parent: None,
        parent_watch: None,
    }
}

/// Locks this process's identity, creating the main process's on first use.
pub(crate) fn lock_me() -> MutexGuard<'static, Option<Me>> {
    let mut g = ME.lock();
    if g.is_none() {
        *g = Some(main_me(new_key(getrandom::fill)));
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
    child_identity(me, n, name, daemon, authkey)
}

/// The identity of child number `n` of `me`: its own `authkey` if given,
/// else `me`'s key, or `me`'s failure to have one (marked inherited).
fn child_identity(
    me: &Me,
    n: u32,
    name: Option<String>,
    daemon: bool,
    authkey: Option<AuthKey>,
) -> Identity {
    let mut path = me.path.clone();
    path.push(n);
    let default_name = || {
        let parts: Vec<String> = path.iter().map(u32::to_string).collect();
        format!("Process-{}", parts.join(":"))
    };
    Identity {
        name: name.unwrap_or_else(default_name),
        path: path.clone(),
        authkey: match authkey {
            Some(k) => Ok(k),
            None => me.authkey.clone().map_err(|e| AuthKeyError {
                inherited: true,
                ..e
            }),
        },
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
    authkey: KeyState,
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
    /// This process's authentication key (Python's
    /// `current_process().authkey`): 32 bytes from the OS's `getrandom` in
    /// the main process, inherited by children.
    ///
    /// # Errors
    /// [`AuthKeyError`] if the OS random source failed when the key was
    /// made (in this process or, [`is_inherited`](AuthKeyError::is_inherited),
    /// an ancestor): there is then no key, never a guessable one.
    pub fn authkey(&self) -> Result<&AuthKey, AuthKeyError> {
        self.authkey.as_ref().map_err(Clone::clone)
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
    describe(g.as_ref().expect("initialised by lock_me"))
}

fn describe(me: &Me) -> CurrentProcess {
    CurrentProcess {
        name: me.name.clone(),
        pid: std::process::id(),
        daemon: me.daemon,
        authkey: me.authkey.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The test-only hook: an OS random source that fails, after writing
    /// into part of the buffer (so a partial fill cannot become a key).
    fn failing(buf: &mut [u8]) -> Result<(), getrandom::Error> {
        buf[..8].fill(0xAB);
        Err(getrandom::Error::UNSUPPORTED)
    }

    #[test]
    fn a_failing_random_source_gives_no_key_but_a_typed_error() {
        let e = new_key(failing).unwrap_err();
        assert!(!e.is_inherited());
        assert_eq!(e.cause(), getrandom::Error::UNSUPPORTED.to_string());
        assert!(e.to_string().contains("getrandom"), "{e}");

        // What `current_process().authkey()` reports in such a process.
        let me = main_me(new_key(failing));
        assert_eq!(describe(&me).authkey().unwrap_err(), e);
        assert_eq!(describe(&me).name(), "MainProcess");
    }

    #[test]
    fn a_child_inherits_the_failure_unless_given_its_own_key() {
        let me = main_me(new_key(failing));
        let id = child_identity(&me, 1, None, false, None);
        let e = id.authkey.clone().unwrap_err();
        assert!(e.is_inherited());
        assert_eq!(e.cause(), getrandom::Error::UNSUPPORTED.to_string());
        assert!(e.to_string().contains("parent"), "{e}");
        // The child's own view once it installs that identity.
        let mut g = None;
        become_child(&mut g, id);
        assert!(
            describe(g.as_ref().unwrap())
                .authkey()
                .unwrap_err()
                .is_inherited()
        );

        let given = child_identity(&me, 2, None, false, Some([9; 32]));
        assert_eq!(given.authkey, Ok([9; 32]));
    }

    #[test]
    fn the_key_is_exactly_what_the_random_source_wrote() {
        let key = new_key(|b| {
            for (i, x) in b.iter_mut().enumerate() {
                *x = i as u8;
            }
            Ok(())
        })
        .unwrap();
        let want: Vec<u8> = (0..32).collect();
        assert_eq!(key.to_vec(), want);
        // The real source: two keys differ (32 random bytes).
        assert_ne!(
            new_key(getrandom::fill).unwrap(),
            new_key(getrandom::fill).unwrap()
        );
    }
}
