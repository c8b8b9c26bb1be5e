//! Python's `os.fork()` with `getpid()`/`getppid()`: parent and child each
//! say who they are.
//!
//! `spindle::process::fork()` returns twice, like `os.fork()`: `Parent(child)`
//! in the parent, `Child` in the child. It refuses to fork a multi-threaded
//! process (a lock held by another thread would stay locked in the child).

use spindle::process::{Fork, ProcessError, fork};

fn main() -> Result<(), ProcessError> {
    println!("Process ({}) start...", std::process::id());
    match fork()? {
        Fork::Child => {
            println!(
                "I am child process ({}) and my parent is {}.",
                std::process::id(),
                std::os::unix::process::parent_id()
            );
            std::process::exit(0);
        }
        Fork::Parent(child) => {
            println!(
                "I ({}) just created a child process ({}).",
                std::process::id(),
                child.pid()
            );
            let code = child.wait()?;
            println!("child {} exited with code {code}", child.pid());
        }
    }
    Ok(())
}
