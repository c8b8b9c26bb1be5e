//! Python's `threading.local()`: a global `local = threading.local()` where
//! each thread binds its own `local.student`, then the timing run where each
//! thread keeps `local.x` and loops `run(x, n)` a million times.

use std::time::Instant;

use spindle::thread::{self, Local, Thread};

/// The global ThreadLocal object: each thread reads and writes its own copy.
static STUDENT: Local<String> = Local::new(String::new);

fn process_student() {
    // Read the student bound to the current thread.
    println!(
        "local.student: {} , current_thread : {}",
        STUDENT.get(),
        thread::current_thread().name()
    );
}

fn process_thread(stu_name: &str) {
    STUDENT.set(stu_name.to_owned()); // bind this thread's student
    process_student();
}

static X: Local<i64> = Local::new(|| 0);

fn run(x: i64, n: i64) -> i64 {
    let x = std::hint::black_box(x + n);
    x - n
}

fn func(n: i64) {
    X.set(0); // local.x = num
    for _ in 0..1_000_000 {
        X.with(|x| *x = run(*x, n));
    }
    println!("{}- local.x ={}", thread::current_thread().name(), X.get());
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let t1 = Thread::builder()
        .name("Thread-A")
        .build(|| process_thread("Alice"));
    let t2 = Thread::builder()
        .name("Thread-B")
        .build(|| process_thread("Bob"));
    t1.start()?;
    t2.start()?;
    t1.join()?;
    t2.join()?;
    println!(
        "main thread's own student is still empty: {:?}",
        STUDENT.get()
    );

    let start = Instant::now();
    let t1 = Thread::new(|| func(6));
    let t2 = Thread::new(|| func(9));
    t1.start()?;
    t2.start()?;
    t1.join()?;
    t2.join()?;
    println!("num = {}", X.get());
    println!("{:.4}", start.elapsed().as_secs_f64());
    Ok(())
}
