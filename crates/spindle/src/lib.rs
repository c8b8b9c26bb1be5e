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
mod loom;
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
/// // ...and `add::call(..)` encodes a call of it for a child process.
/// let mut p = spindle::process::Process::new(add::call(2, 3));
/// p.start()?;
/// p.join()?;
/// # Ok::<(), spindle::process::ProcessError>(())
/// ```
///
/// The macro keeps the function and adds, in the type namespace, a struct of
/// the same name implementing [`process::Task`] (its stable name is
/// `module_path!() + "::" + fn name`), with a `call(args..)` constructor of a
/// [`process::TaskCall`]. Arguments and result must be serde types; a
/// [`ipc::Connection`] argument travels as its file descriptors. The function
/// must be free (no `self`), not generic and not async. The registration is
/// a static in the `spindle_tasks` link section: no code runs to register it,
/// so a child can look tasks up before `main`.
pub use spindle_macros::task;
