//! Small helpers shared by the examples in `examples/` (each example ports a
//! Python program; `docs/EXAMPLES.md` lists them).

/// Prints a line prefixed with the current thread's name, like the Python
/// programs' `print(threading.current_thread().name, ...)`.
#[macro_export]
macro_rules! tprintln {
    ($($arg:tt)*) => {
        println!("[{}] {}", ::std::thread::current().name().unwrap_or("?"), format!($($arg)*))
    };
}

pub mod http;

/// Runs a future to completion on the current thread: the smallest executor
/// there is (the waker unparks this thread). spindle's async faces work with
/// any executor; the examples use this one to stay free of a runtime.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};

    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let mut future = std::pin::pin!(future);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}
