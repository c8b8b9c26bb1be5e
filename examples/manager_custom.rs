//! Python's "customized manager": a class of your own, registered with a
//! `BaseManager` subclass, called through a proxy from this process and
//! from a child process.
//!
//! The Python program (from the `multiprocessing` docs):
//!
//! ```python
//! from multiprocessing.managers import BaseManager
//!
//! class MathsClass:
//!     def add(self, x, y):
//!         return x + y
//!     def mul(self, x, y):
//!         return x * y
//!
//! class MyManager(BaseManager):
//!     pass
//!
//! MyManager.register('Maths', MathsClass)
//!
//! if __name__ == '__main__':
//!     with MyManager() as manager:
//!         maths = manager.Maths()
//!         print(maths.add(4, 3))         # prints 7
//!         print(maths.mul(7, 8))         # prints 56
//! ```
//!
//! In spindle the exposed methods are a trait's, marked
//! `#[spindle::remote]`: it generates `MathsProxy`, whose methods return
//! `Result<_, ManagerError>`. The server holds one object under a
//! registered name; this one also counts the calls it answered, and a child
//! process, given the proxy as its task argument, calls it too.

use spindle::manager::BaseManager;
use spindle::process::Process;

#[spindle::remote]
pub trait Maths {
    fn add(&mut self, x: i64, y: i64) -> i64;
    fn mul(&mut self, x: i64, y: i64) -> i64;
    /// How many calls this object has answered.
    fn calls(&self) -> u64;
}

#[derive(Default)]
struct MathsClass {
    calls: u64,
}

impl Maths for MathsClass {
    fn add(&mut self, x: i64, y: i64) -> i64 {
        self.calls += 1;
        x + y
    }
    fn mul(&mut self, x: i64, y: i64) -> i64 {
        self.calls += 1;
        x * y
    }
    fn calls(&self) -> u64 {
        self.calls
    }
}

/// Runs in a child process: the proxy arrived as its argument.
#[spindle::task]
fn child_square(maths: MathsProxy, n: i64) -> i64 {
    maths.mul(n, n).expect("the manager answers")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `start()` runs the server in a child process (forked, so that it
    // holds the object registered here) on a private Unix socket, keyed
    // with this process's authkey.
    let manager = BaseManager::builder()
        .register("Maths", MathsProxy::typeid(MathsClass::default()))
        .start()?;
    let maths: MathsProxy = manager.get("Maths")?;
    println!("{}", maths.add(4, 3)?); // prints 7
    println!("{}", maths.mul(7, 8)?); // prints 56

    let mut child = Process::new(child_square::call(maths.clone(), 9));
    child.start()?;
    child.join()?;
    assert_eq!(child.exitcode(), Some(0), "the child process failed");
    println!("the child process computed 9 * 9 on the server");
    println!("calls answered by the server's object: {}", maths.calls()?);
    assert_eq!(maths.calls()?, 3);
    Ok(())
}
