//! spindle — Python's concurrency model (`threading`, `queue`, `sched`,
//! `concurrent.futures`, `multiprocessing`) in idiomatic Rust.
//!
//! Every concept keeps its Python name and meaning; blocking calls follow one
//! rule: `get()` blocks, `try_get()` never blocks, `get_timeout(d)` and
//! `get_deadline(t)` bound the wait. Errors are typed, acquired things are RAII
//! guards. See `docs/PYTHON.md` for the full Python → spindle map.
#![deny(missing_docs)]

// Lets `#[spindle::task]`'s generated `::spindle::...` paths resolve inside
// this crate too.
#[allow(unused_extern_crates)]
extern crate self as spindle;

pub mod futures;
pub mod ipc;
pub mod lockorder;
pub mod process;
pub mod queue;
pub mod sched;
pub mod sync;
pub mod thread;
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
pub use spindle_macros::task;
