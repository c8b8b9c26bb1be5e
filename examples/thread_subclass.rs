//! Subclassing `threading.Thread`: a thread class with a `run()` method, made a
//! daemon and joined.
//!
//! Rust has no subclassing; the idiom is a struct holding the thread's state
//! plus a `run(self)` method (here through a small `Run` trait), handed to a
//! `Thread` built with the name and daemon flag the Python `__init__` set.

use std::time::Duration;

use spindle::thread::{self, Builder, JoinHandle, SpawnError, Thread};

/// What a Python `Thread` subclass overrides.
trait Run: Send + 'static {
    fn run(self);
}

/// Starts `worker.run()` in a thread configured by `builder`: Python's
/// `MyThread(...).start()`.
fn start<W: Run>(builder: Builder, worker: W) -> Result<JoinHandle<()>, SpawnError> {
    builder.spawn(move || worker.run())
}

/// Python's `class myThread(threading.Thread)` with `num`, sleeping in `run`.
struct MyThread {
    num: u32,
}

impl Run for MyThread {
    fn run(self) {
        std::thread::sleep(Duration::from_millis(200)); // Python sleeps 2 s
        println!("{}", self.num);
    }
}

/// Python's `myThread(name, args)` printing its args.
struct ArgsThread {
    args: Vec<&'static str>,
}

impl Run for ArgsThread {
    fn run(self) {
        let me = thread::current_thread();
        println!("{} is running...", me.name());
        for a in self.args {
            println!("{} args: {a}", me.name());
            std::thread::sleep(Duration::from_millis(20));
        }
        println!("{} ended.", me.name());
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // t = myThread(6, 'mythread'); t.daemon = True; t.start(); t.join()
    let t = start(
        Thread::builder().name("mythread").daemon(true),
        MyThread { num: 6 },
    )?;
    println!("started {:?}", t.thread());
    t.join()?;
    println!("thread {} ended.", thread::current_thread().name());

    // Two named subclass instances.
    println!("{} is running...", thread::current_thread().name());
    let t1 = start(
        Thread::builder().name("Thread_1"),
        ArgsThread {
            args: vec!["a", "b", "c"],
        },
    )?;
    let t2 = start(
        Thread::builder().name("Thread_2"),
        ArgsThread {
            args: vec!["aa", "bb", "cc"],
        },
    )?;
    t1.join()?;
    t2.join()?;
    println!("{} ended.", thread::current_thread().name());
    Ok(())
}
