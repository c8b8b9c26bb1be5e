//! Small helpers shared by the examples in `examples/` (each example is a port of
//! a program from the seeds; see `SEEDS.md` for the index).

/// Prints a line prefixed with the current spindle thread's name, like the seeds'
/// `print(threading.current_thread().name, ...)`.
#[macro_export]
macro_rules! tprintln {
    ($($arg:tt)*) => {
        println!("[{}] {}", ::std::thread::current().name().unwrap_or("?"), format!($($arg)*))
    };
}

pub mod http;
