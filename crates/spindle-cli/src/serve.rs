//! `spindle serve`: a manager server of named queues, dicts and lists
//! (Python's `BaseManager(address, authkey).get_server().serve_forever()`
//! with `register('get_task_queue', ...)`), for clients that call
//! `spindle::manager::Manager::connect(address, key)` and `get(name)`.
//!
//! Output: the first stdout line is exactly `listening on ADDRESS` (the
//! bound address: the real port for port 0, or the Unix socket path);
//! without `--authkey-file` the second is the path of the file of
//! the key it generated. Both are flushed before any client can be served.
//!
//! Stopping: SIGTERM or SIGINT ends the accept loop (the command asks its
//! own server to shut down, as a client would) and the command exits 0; so
//! does a client's `Manager::shutdown_server`. The signals are blocked in
//! every thread and taken by one thread with `sigwait`, so no handler (and
//! no unsafe code) is involved.
//!
//! Exit codes: 0 after a stop, 2 for a usage error (a bad address, a key
//! file holding fewer than 16 bytes, a name given twice), 1 for a runtime
//! error (a key file that cannot be read, an address in use, a failed
//! bind).

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};
use spindle::ipc::Address;
use spindle::manager::{BaseManager, MIN_AUTHKEY, Manager, ManagerError, Typeid};

/// Bytes of a key `spindle serve` generates.
pub(crate) const GENERATED_KEY_LEN: usize = 32;

/// What to serve, from the command line.
#[derive(Debug)]
pub(crate) struct ServeArgs {
    pub(crate) bind: Address,
    pub(crate) authkey_file: Option<PathBuf>,
    pub(crate) queues: Vec<String>,
    pub(crate) dicts: Vec<String>,
    pub(crate) lists: Vec<String>,
    pub(crate) brokers: Vec<String>,
}

/// Parses `--bind`: `HOST:PORT` with an IP address (port 0: any free port)
/// or a Unix socket path (anything with a `/`: `./mgr.sock`).
pub(crate) fn parse_address(s: &str) -> Result<Address, String> {
    s.parse::<Address>().map_err(|_| {
        format!(
            "{s:?} is neither IP:PORT (an IP address and a port, e.g. 127.0.0.1:5000) \
             nor a Unix socket path (a path with a '/', e.g. ./manager.sock)"
        )
    })
}

/// Why the command stops.
enum Event {
    Signal(Signal),
    Ended(Result<(), ManagerError>),
}

/// A usage error (exit 2) or a runtime error (exit 1), with its message.
enum Failure {
    Usage(String),
    Runtime(String),
}

impl Failure {
    fn exit(self) -> ExitCode {
        match self {
            Failure::Usage(m) => {
                eprintln!("spindle serve: {m}");
                ExitCode::from(2)
            }
            Failure::Runtime(m) => {
                eprintln!("spindle serve: {m}");
                ExitCode::FAILURE
            }
        }
    }
}

/// The key and, when generated, the private directory that holds its file.
struct Key {
    bytes: Vec<u8>,
    generated: Option<(PathBuf, PathBuf)>,
}

impl Key {
    fn remove_generated(&self) {
        if let Some((dir, file)) = &self.generated {
            let _ = std::fs::remove_file(file);
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// `--authkey-file F`: the key is the file's bytes, all of them (a
/// trailing newline is part of it), as `Manager::connect(addr,
/// &std::fs::read(F)?)` reads it.
fn read_key(path: &Path) -> Result<Key, Failure> {
    let bytes = std::fs::read(path).map_err(|e| {
        Failure::Runtime(format!(
            "cannot read the authkey file {}: {e}",
            path.display()
        ))
    })?;
    if bytes.len() < MIN_AUTHKEY {
        return Err(Failure::Usage(format!(
            "the authkey file {} holds {} bytes; a key needs at least {MIN_AUTHKEY}",
            path.display(),
            bytes.len()
        )));
    }
    Ok(Key {
        bytes,
        generated: None,
    })
}

/// No `--authkey-file`: 32 random bytes, written raw to `authkey` in a new
/// directory of the temporary directory that only this user can enter
/// (0700), the file itself 0600 and created new.
fn generate_key() -> Result<Key, Failure> {
    let mut bytes = vec![0u8; GENERATED_KEY_LEN];
    getrandom::fill(&mut bytes)
        .map_err(|e| Failure::Runtime(format!("no random bytes for a key: {e}")))?;
    let mut tag = [0u8; 8];
    getrandom::fill(&mut tag)
        .map_err(|e| Failure::Runtime(format!("no random bytes for a key: {e}")))?;
    let dir = std::env::temp_dir().join(format!(
        "spindle-serve-{}-{:016x}",
        std::process::id(),
        u64::from_le_bytes(tag)
    ));
    DirBuilder::new().mode(0o700).create(&dir).map_err(|e| {
        Failure::Runtime(format!(
            "cannot create the key's directory {}: {e}",
            dir.display()
        ))
    })?;
    let file = dir.join("authkey");
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&file)
        .and_then(|mut f| f.write_all(&bytes).and_then(|()| f.sync_all()));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&file);
        let _ = std::fs::remove_dir(&dir);
        return Err(Failure::Runtime(format!(
            "cannot write the key file {}: {e}",
            file.display()
        )));
    }
    Ok(Key {
        bytes,
        generated: Some((dir, file)),
    })
}

/// Every name once: two objects under one name would leave one unreachable.
fn check_names(args: &ServeArgs) -> Result<(), Failure> {
    let mut seen = std::collections::HashSet::new();
    for name in args
        .queues
        .iter()
        .chain(&args.dicts)
        .chain(&args.lists)
        .chain(&args.brokers)
    {
        if !seen.insert(name.as_str()) {
            return Err(Failure::Usage(format!("the name {name:?} is given twice")));
        }
    }
    Ok(())
}

/// `spindle serve`.
pub(crate) fn serve(args: ServeArgs) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.exit(),
    }
}

fn run(args: ServeArgs) -> Result<(), Failure> {
    check_names(&args)?;
    let key = match &args.authkey_file {
        Some(p) => read_key(p)?,
        None => generate_key()?,
    };
    let r = serve_with(&args, &key);
    key.remove_generated();
    r
}

fn serve_with(args: &ServeArgs, key: &Key) -> Result<(), Failure> {
    // Block SIGTERM and SIGINT before any thread starts, so every thread
    // inherits the mask and only the `sigwait` below takes them.
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGINT);
    signals
        .thread_block()
        .map_err(|e| Failure::Runtime(format!("cannot block SIGTERM/SIGINT: {e}")))?;

    let mut builder = BaseManager::builder()
        .bind(args.bind.clone())
        .authkey(&key.bytes);
    for name in &args.queues {
        builder = builder.register(name.clone(), Typeid::queue());
    }
    for name in &args.dicts {
        builder = builder.register(name.clone(), Typeid::dict());
    }
    for name in &args.lists {
        builder = builder.register(name.clone(), Typeid::list());
    }
    for name in &args.brokers {
        builder = builder.register(name.clone(), Typeid::broker());
    }

    let (events, rx) = mpsc::channel::<Event>();
    let (ready_tx, ready_rx) = mpsc::channel::<Address>();
    let ended = events.clone();
    let server = std::thread::Builder::new()
        .name("spindle-serve".into())
        .spawn(move || {
            let r = builder.serve_notify(|a| {
                let _ = ready_tx.send(a.clone());
            });
            let _ = ended.send(Event::Ended(r));
        })
        .map_err(|e| Failure::Runtime(format!("cannot start the server thread: {e}")))?;

    let Ok(address) = ready_rx.recv() else {
        // serve_notify returned before binding: its error is on `rx`.
        let _ = server.join();
        return match rx.recv() {
            Ok(Event::Ended(Err(e))) => Err(bind_failure(&args.bind, e)),
            _ => Err(Failure::Runtime(format!(
                "cannot listen on {}: the server stopped",
                args.bind
            ))),
        };
    };

    let mut out = std::io::stdout().lock();
    let mut printed = writeln!(out, "listening on {address}");
    if let Some((_, file)) = &key.generated {
        printed = printed.and_then(|()| writeln!(out, "{}", file.display()));
    }
    if printed.and_then(|()| out.flush()).is_err() {
        // Nobody can learn the address: stop.
        drop(out);
        return stop(&address, key, &rx, None);
    }
    drop(out);

    // From here the server serves; wait for a signal or for a client's
    // shutdown. The signal thread stays in `sigwait` if a client stops the
    // server; the process exits anyway.
    let _ = std::thread::Builder::new()
        .name("spindle-serve-signals".into())
        .spawn(move || {
            if let Ok(sig) = signals.wait() {
                let _ = events.send(Event::Signal(sig));
            }
        })
        .map_err(|e| Failure::Runtime(format!("cannot start the signal thread: {e}")))?;

    match rx.recv() {
        Ok(Event::Signal(sig)) => stop(&address, key, &rx, Some(sig)),
        Ok(Event::Ended(Ok(()))) => {
            eprintln!("spindle serve: a client shut the server down");
            Ok(())
        }
        Ok(Event::Ended(Err(e))) => Err(Failure::Runtime(format!("the server failed: {e}"))),
        Err(_) => Err(Failure::Runtime("the server thread vanished".into())),
    }
}

/// Stops the server the way a client would (`shutdown_server`), then waits
/// for its accept loop to end.
fn stop(
    address: &Address,
    key: &Key,
    rx: &mpsc::Receiver<Event>,
    sig: Option<Signal>,
) -> Result<(), Failure> {
    if let Some(sig) = sig {
        eprintln!("spindle serve: {sig}: stopping");
    }
    let asked = Manager::connect(address.clone(), &key.bytes).and_then(Manager::shutdown_server);
    if let Err(e) = asked {
        return Err(Failure::Runtime(format!("could not stop the server: {e}")));
    }
    loop {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Event::Ended(Ok(()))) => return Ok(()),
            Ok(Event::Ended(Err(e))) => {
                return Err(Failure::Runtime(format!("the server failed: {e}")));
            }
            // A second signal while stopping: keep waiting.
            Ok(Event::Signal(_)) => continue,
            Err(_) => {
                return Err(Failure::Runtime(
                    "the server did not stop within 10 s".into(),
                ));
            }
        }
    }
}

/// The bind error, named: an address in use, a bad key, anything else.
fn bind_failure(bind: &Address, e: ManagerError) -> Failure {
    match &e {
        ManagerError::Io(io) if io.kind() == std::io::ErrorKind::AddrInUse => {
            Failure::Runtime(format!("cannot listen on {bind}: address in use"))
        }
        ManagerError::Auth(_) => Failure::Usage(format!("{e}")),
        _ => Failure::Runtime(format!("cannot listen on {bind}: {e}")),
    }
}
