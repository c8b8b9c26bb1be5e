//! spindle — Python's concurrency model (`threading`, `queue`, `sched`,
//! `concurrent.futures`, `multiprocessing`) in idiomatic Rust.
//!
//! Every concept keeps its Python name and meaning: `Thread`, `Lock`,
//! `Condition`, `Queue` with `task_done`/`join`, `Timer`, `Future`,
//! `ThreadPoolExecutor`, `Process`, `Pipe`, `Pool`. Errors are typed instead
//! of raised, acquired things are RAII guards instead of `with` blocks, and
//! there is no GIL. `docs/PYTHON.md` in the repository maps every Python
//! name to its spindle twin, with each difference.
//!
//! **spindle builds on Linux only.** Its process scope rests on Linux
//! facilities: `memfd` shared memory, futexes in shared memory, `/proc`
//! (`/proc/self/exe` to start a fresh copy of the program, `/proc/<id>/stat`
//! to find a dead lock holder), the parent-death signal, and a constructor
//! in `.init_array` that runs a child's task before `main`. A build for
//! another operating system stops with one `compile_error!` that says so.
//!
//! # Four scopes
//!
//! The same contracts, with one implementation per scope:
//!
//! | scope | what runs at once | spindle | state |
//! |---|---|---|---|
//! | threads | the threads of one process | [`thread`], [`sync`], [`queue`], [`futures::ThreadPoolExecutor`], [`sched`], [`lockorder`] | done |
//! | processes | processes of one program on one machine | [`process`], [`ipc`], [`ipc::sync`], [`process::Pool`], [`process::ProcessPoolExecutor`] | done |
//! | coroutines | async tasks on any executor | the async faces: [`put_async`](queue::OrderedQueue::put_async), [`get_async`](queue::OrderedQueue::get_async) and [`join_async`](queue::OrderedQueue::join_async) on the thread queues, `.await` on a [`futures::Future`] | the async faces are done; a coroutine crate (tasks, actors, async synchronisation objects) is planned |
//! | hosts | processes on several machines | — | planned: managers (objects served to other processes and hosts, Python's `multiprocessing.managers`) and a cluster executor and queue; none of it exists yet |
//!
//! # Which type for which job
//!
//! | you need to … | threads | processes | Python |
//! |---|---|---|---|
//! | run a function concurrently | [`thread::spawn`], [`thread::Thread`] | [`process::Process`] running a [`task`] | `Thread`, `Process` |
//! | run many calls on a pool and get [`futures::Future`]s | [`futures::ThreadPoolExecutor`] | [`process::ProcessPoolExecutor`] | `concurrent.futures` |
//! | use `apply_async`, `map`, `imap`, `starmap` | — | [`process::Pool`] | `multiprocessing.Pool` |
//! | pass items from producers to consumers | [`queue::Queue`], [`queue::LifoQueue`], [`queue::PriorityQueue`], [`queue::SimpleQueue`] | [`ipc::Queue`] | `queue.Queue`, `multiprocessing.Queue` |
//! | exchange messages between two ends | a [`queue::Queue`] | [`ipc::Pipe`] (two [`ipc::Connection`]s) | `multiprocessing.Pipe` |
//! | guard a critical section | [`sync::Lock`], [`sync::RLock`] (to guard *data*, `std::sync::Mutex`) | [`ipc::sync::Lock`], [`ipc::sync::RLock`] | `Lock`, `RLock` |
//! | signal that something happened | [`sync::Event`] | [`ipc::sync::Event`] | `Event` |
//! | wait until shared state meets a condition | [`sync::Condition`] | [`ipc::sync::Condition`] | `Condition` |
//! | bound how many do something at once | [`sync::Semaphore`], [`sync::BoundedSemaphore`] | [`ipc::sync::Semaphore`], [`ipc::sync::BoundedSemaphore`] | `Semaphore`, `BoundedSemaphore` |
//! | make a fixed number of parties meet | [`sync::Barrier`] | [`ipc::sync::Barrier`] | `Barrier` |
//! | share numbers or arrays | ordinary Rust (`Arc`, atomics, `Mutex`) | [`ipc::Value`], [`ipc::Array`], [`ipc::RawValue`], [`ipc::RawArray`] | `Value`, `Array` |
//! | keep one value per thread | [`thread::Local`] | — (each process has its own memory) | `threading.local` |
//! | ask a thread to stop | [`thread::StopSource`] | [`Process::terminate`](process::Process::terminate) | a polled flag, `terminate()` |
//! | run something later or repeatedly | [`sched::Timer`], [`sched::Scheduler`] | — | `threading.Timer`, `sched` |
//! | take several locks without deadlock, find deadlocks | [`lockorder::acquire`], [`lockorder::detector`] | — | `acquire(*locks)` (Python Cookbook recipe 12.5) |
//!
//! Each module's documentation has a longer "Which one should I use?".
//!
//! # One naming rule
//!
//! Every blocking call comes in four forms:
//!
//! - `get()` blocks until it can complete;
//! - `try_get()` never blocks;
//! - `get_timeout(d)` waits at most the [`Duration`](std::time::Duration) `d`;
//! - `get_deadline(t)` waits until the [`Instant`](std::time::Instant) `t`.
//!
//! The same holds for `put`, `acquire`, `wait`, `join`, `recv`, `result`
//! and the rest. `_timeout(d)` is `_deadline(now + d)`; a duration too long
//! to represent waits for ever. Where Python's `with` is meant, the guard
//! forms follow the same rule: `lock()`, `try_lock()`, `lock_timeout(d)`,
//! `lock_deadline(t)` (and `permit*` for semaphores). Results follow
//! Python's: a bounded `acquire` returns `bool`, as `acquire(timeout=t)`
//! does; a bounded queue `get` fails with a typed error where Python raises
//! `queue.Empty`, and a failed `put` hands its item back inside the error.
//! A few calls lack a form on purpose (a `Connection::send` only blocks,
//! for instance); `docs/PYTHON.md` lists them and says why.
//!
//! # Contracts: code that switches scope
//!
//! Code written against a contract runs in either scope; switching is the
//! one line that builds the object.
//!
//! - [`queue::BlockingQueue`]: Python's `queue.Queue` interface, implemented
//!   by the thread queues ([`queue::Queue`], [`queue::LifoQueue`],
//!   [`queue::PriorityQueue`]) and by [`ipc::Queue`].
//! - The contracts in [`sync::contract`]: [`sync::BlockingLock`],
//!   [`sync::BlockingRLock`], [`sync::BlockingCondition`],
//!   [`sync::BlockingSemaphore`], [`sync::BlockingBoundedSemaphore`],
//!   [`sync::BlockingEvent`] and [`sync::BlockingBarrier`]. Each
//!   synchronisation object is written once, in [`sync::generic`], over a
//!   raw layer per scope ([`sync::ThreadScope`], [`ipc::sync::ProcessScope`]);
//!   [`sync`] and [`ipc::sync`] name its two instances.
//! - [`futures::Executor`]: `submit`, `map`, `shutdown`, implemented by
//!   [`futures::ThreadPoolExecutor`] and [`process::ProcessPoolExecutor`].
//!   Both run calls of registered tasks (`my_task::call(args..)`); the
//!   thread pool also runs closures.
//!
//! The workspace crate `spindle-conformance` holds suites that check
//! implementations of these contracts against ports of CPython's tests:
//! the queue suite runs on every queue above, the sync suite (a port of
//! `lock_tests.py`) on every object of `sync` and `ipc::sync`, the executor
//! suite on both pools.
//!
//! ```
//! use spindle::sync::BlockingEvent;
//!
//! // Written once, against the contract...
//! fn signal_and_check<E: BlockingEvent>(event: &E) -> bool {
//!     event.set().unwrap(); // the error is `Infallible` in both scopes
//!     event.try_wait().unwrap()
//! }
//! // ...run with a thread event and with one shared between processes.
//! assert!(signal_and_check(&spindle::sync::Event::new()));
//! assert!(signal_and_check(&spindle::ipc::sync::Event::new()?));
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Examples
//!
//! Threads: workers on a [`ThreadPoolExecutor`](futures::ThreadPoolExecutor)
//! drain a bounded [`Queue`](queue::Queue); shutting the queue down ends
//! their loops.
//!
//! ```
//! use spindle::futures::{Executor, ThreadPoolExecutor};
//! use spindle::queue::Queue;
//!
//! let jobs: Queue<u64> = Queue::with_maxsize(4);
//! let pool = ThreadPoolExecutor::builder().max_workers(2).build().unwrap();
//! let workers: Vec<_> = (0..2)
//!     .map(|_| {
//!         let jobs = jobs.clone();
//!         pool.submit(move || jobs.iter().map(|n| n * n).sum::<u64>())
//!             .unwrap()
//!     })
//!     .collect();
//! for n in 1..=10 {
//!     jobs.put(n).unwrap(); // blocks while 4 items wait
//! }
//! jobs.shutdown(false); // the workers take what is left, then stop
//! let total: u64 = workers.iter().map(|f| f.result().unwrap()).sum();
//! assert_eq!(total, 385);
//! ```
//!
//! Processes: a child process fills an [`ipc::Queue`], then a
//! [`ProcessPoolExecutor`](process::ProcessPoolExecutor) maps a task over
//! the items. A task is a function marked [`#[spindle::task]`](task); its
//! arguments and result are serde types.
//!
//! ```
//! use spindle::futures::Executor;
//! use spindle::ipc;
//! use spindle::process::{Process, ProcessPoolExecutor};
//!
//! #[spindle::task]
//! fn produce(q: ipc::Queue<u64>, n: u64) {
//!     for i in 1..=n {
//!         q.put(i).unwrap();
//!     }
//! }
//!
//! #[spindle::task]
//! fn square(n: u64) -> u64 {
//!     n * n
//! }
//!
//! let q = ipc::Queue::new()?;
//! let mut child = Process::new(produce::call(q.clone(), 5));
//! child.start()?;
//! child.join()?;
//! let items: Vec<u64> = (0..5).map(|_| q.get().unwrap()).collect();
//! assert_eq!(items, [1, 2, 3, 4, 5]);
//!
//! let pool = ProcessPoolExecutor::builder().max_workers(2).build()?;
//! let squares: Vec<u64> = pool.map(square::call, items)?.map(Result::unwrap).collect();
//! assert_eq!(squares, [1, 4, 9, 16, 25]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Async face: a blocking thread feeds an async consumer through one thread
//! queue. spindle needs no runtime: any executor can poll its futures (here
//! a minimal `block_on`; tokio's works the same).
//!
//! ```
//! use spindle::queue::Queue;
//! use std::sync::Arc;
//! use std::task::{Context, Poll, Wake, Waker};
//!
//! /// Polls `fut` on this thread, parking between polls.
//! fn block_on<F: std::future::Future>(fut: F) -> F::Output {
//!     struct Unpark(std::thread::Thread);
//!     impl Wake for Unpark {
//!         fn wake(self: Arc<Self>) {
//!             self.0.unpark();
//!         }
//!     }
//!     let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
//!     let mut cx = Context::from_waker(&waker);
//!     let mut fut = std::pin::pin!(fut);
//!     loop {
//!         if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
//!             return out;
//!         }
//!         std::thread::park();
//!     }
//! }
//!
//! let q: Queue<u32> = Queue::with_maxsize(2);
//! let producer = {
//!     let q = q.clone();
//!     std::thread::spawn(move || {
//!         for n in 1..=5 {
//!             q.put(n).unwrap(); // a blocking put
//!         }
//!         q.shutdown(false);
//!     })
//! };
//! let sum = block_on(async {
//!     let mut sum = 0;
//!     while let Ok(n) = q.get_async().await {
//!         sum += n;
//!     }
//!     sum
//! });
//! producer.join().unwrap();
//! assert_eq!(sum, 15);
//! ```
//!
//! # Further reading
//!
//! In the repository: `docs/PYTHON.md` (every Python name and its twin),
//! `docs/EXAMPLES.md` (runnable ports of Python programs), and the design
//! notes beside the code: `process/README.md` (start methods, bootstrap,
//! failure handling), `process/pool/README.md`, `ipc/README.md` (framing,
//! connections, the shared-memory queue), `queue/README.md`,
//! `futures/README.md` and `lockorder/README.md`.
#![deny(missing_docs)]

#[cfg(not(target_os = "linux"))]
compile_error!(
    "spindle supports Linux only: its process scope uses memfd, futexes in shared memory, \
     /proc and an .init_array constructor"
);

// Lets `#[spindle::task]`'s generated `::spindle::...` paths resolve inside
// this crate too.
#[allow(unused_extern_crates)]
extern crate self as spindle;

// Off Linux nothing but the error above is compiled, so it is the only
// message.
#[cfg(target_os = "linux")]
pub mod futures;
#[cfg(target_os = "linux")]
pub mod ipc;
#[cfg(target_os = "linux")]
pub mod lockorder;
#[cfg(target_os = "linux")]
mod loom;
#[cfg(target_os = "linux")]
pub mod manager;
pub mod process;
#[cfg(target_os = "linux")]
pub mod queue;
#[cfg(target_os = "linux")]
pub mod sched;
#[cfg(target_os = "linux")]
pub mod stats;
#[cfg(target_os = "linux")]
pub mod sync;
#[cfg(target_os = "linux")]
pub mod thread;
#[cfg(all(target_os = "linux", feature = "tracing"))]
pub mod trace;
#[cfg(target_os = "linux")]
mod util;

/// Registers a free function as a task that can run in another process
/// (the Rust form of Python's "the target must be picklable").
///
/// ```
/// #[spindle::task]
/// fn add(a: u64, b: u64) -> u64 {
///     a + b
/// }
///
/// // The function stays an ordinary function...
/// assert_eq!(add(2, 3), 5);
/// // ...and `add::call(..)` is a call of it, for a child process...
/// let mut p = spindle::process::Process::new(add::call(2, 3));
/// p.start()?;
/// p.join()?;
/// // ...or for a pool, whose future yields the result.
/// let pool = spindle::process::Pool::new(1).unwrap();
/// assert_eq!(pool.apply(add::call(2, 3)), Ok(5));
/// assert_eq!(pool.map(|n| add::call(n, 1), [1, 2]), Ok(vec![2, 3]));
/// # Ok::<(), spindle::process::ProcessError>(())
/// ```
///
/// The macro keeps the function and adds, in the type namespace, a struct of
/// the same name implementing [`process::Task`] (its stable name is
/// `module_path!() + "::" + fn name`), with one constructor:
/// `add::call(args..)` returns a [`process::Call<add>`](process::Call), a
/// call typed by the task's result. Pools and executors run it as is
/// (`submit`, `apply`, `apply_async`, and `map(add::call, ..)` for a
/// one-argument task); [`Process::new`](process::Process::new) and
/// [`Builder::task`](process::Builder::task) take anything
/// `Into<`[`process::TaskCall`]`>`, so the same call starts a child process
/// (`.into()` gives the untyped `TaskCall` itself, e.g. to keep calls of
/// different tasks in one `Vec`). The name says what you get: it used to be
/// `call(..) -> TaskCall` for processes and `task(..) -> Call` for pools.
///
/// Arguments and result must be serde types; a [`ipc::Connection`] argument
/// travels as its file descriptors. The function must be free (no `self`),
/// not generic and not async. The registration is a static in the
/// `spindle_tasks` link section: no code runs to register it, so a child can
/// look tasks up before `main`.
///
/// The task also gets [`Task::SIGNATURE`](process::Task::SIGNATURE), computed
/// at compile time: FNV-1a 64 ([`process::signature_of`]) of
/// `(A1,A2,..)->R`, the argument types' and the return type's tokens with
/// every whitespace character removed (`()` for no return type) — `add`
/// above hashes `(u64,u64)->u64`. [`process::invoke`] checks it, so a caller
/// built against another signature of the task is refused before anything
/// is decoded. It hashes the types *as written*: a field changed inside a
/// struct argument is not seen (the call then fails to decode, as
/// `TaskFault::ArgDecode`), and `Vec<u8>` / `std::vec::Vec<u8>` differ.
pub use spindle_macros::task;

/// Makes a trait's implementations servable by a manager server, and
/// generates `<Trait>Proxy`, a proxy that calls them from other processes
/// and hosts (Python's `BaseManager.register(typeid, callable)` with a class
/// of your own).
///
/// ```
/// use spindle::manager::{BaseManager, ManagerError};
///
/// #[spindle::remote]
/// pub trait Counter {
///     /// Adds `by`; returns the new count.
///     fn incr(&mut self, by: u64) -> u64;
///     fn get(&self) -> u64;
/// }
///
/// #[derive(Default)]
/// struct Count(u64);
///
/// impl Counter for Count {
///     fn incr(&mut self, by: u64) -> u64 {
///         self.0 += by;
///         self.0
///     }
///     fn get(&self) -> u64 {
///         self.0
///     }
/// }
///
/// let server = BaseManager::builder()
///     .register("counter", CounterProxy::typeid(Count::default()))
///     .bind("127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap())
///     .authkey(b"a key of at least sixteen bytes")
///     .spawn()?;
/// let manager = server.connect()?;
/// let counter: CounterProxy = manager.get("counter")?;
/// assert_eq!(counter.incr(2)?, 2);
/// assert_eq!(counter.incr(3)?, 5);
/// assert_eq!(counter.get()?, 5);
/// # Ok::<(), ManagerError>(())
/// ```
///
/// The proxy has each method of the trait, taking `&self` and returning
/// `Result<R, ManagerError>` (`R` the method's own return type, so a method
/// that returns a `Result` gives a `Result` inside), and an `_async` face
/// of each (`incr_async`), a future that is sent when first polled and does
/// not run if dropped before the server started it. `CounterProxy::typeid(obj)`
/// serves `obj` under a name of
/// [`ManagerBuilder::register`](manager::ManagerBuilder::register); clients
/// reach it with [`Manager::get`](manager::Manager::get). Like every proxy
/// it is `Clone` and crosses to another process inside a task's argument.
///
/// Rules, checked at compile time: the trait is not generic and holds only
/// methods; each takes `&self` or `&mut self`, is neither async nor generic,
/// and takes and returns owned serde types (`String`, not `&str`). The
/// object's methods run one at a time, in the order calls reach it, under
/// the object's lock, so a method that waits for another call of the same
/// object waits forever; coordinate through the manager's queues, locks and
/// events instead. A method that panics fails its call with
/// [`ManagerError::Panicked`](manager::ManagerError::Panicked); the object
/// stays usable.
///
/// The typeid is `remote:` and the trait's name, or `name = "..."`:
/// `#[spindle::remote(name = "Maths")]`. The trait's signature (its methods'
/// names, receivers and types as written, hashed) is the object's
/// fingerprint: a proxy built from a different version of the trait is
/// refused by [`Manager::get`](manager::Manager::get) as
/// [`ManagerError::WrongType`](manager::ManagerError::WrongType). A changed
/// field inside one of your own types is not caught there: its value then
/// fails to decode, a [`ManagerError::Codec`](manager::ManagerError::Codec).
pub use spindle_macros::remote;
