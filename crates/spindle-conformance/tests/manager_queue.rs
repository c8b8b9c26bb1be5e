//! The queue conformance suite (`spindle_conformance::queue`, a port of
//! CPython's `test_queue.py` with Python 3.13's shutdown tests) run against
//! the manager's queue proxies through the `BlockingQueue` trait: FIFO
//! (`QueueProxy`, which is also `JoinableQueueProxy`) and LIFO
//! (`LifoQueueProxy`), over TCP (a server in a thread of this process) and
//! over a Unix socket (a server in a child process, `Manager::start`),
//! blocking and async faces.

use std::sync::OnceLock;

use spindle::manager::{LifoQueueProxy, Manager, QueueProxy, Server};

fn tcp_server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        Manager::builder()
            .bind("127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap())
            .authkey(b"conformance-suite-key-0123456789")
            .spawn()
            .expect("manager server on TCP")
    })
}

fn tcp() -> &'static Manager {
    static M: OnceLock<Manager> = OnceLock::new();
    M.get_or_init(|| tcp_server().connect().expect("connect over TCP"))
}

fn unix() -> &'static Manager {
    static M: OnceLock<Manager> = OnceLock::new();
    M.get_or_init(|| Manager::start().expect("manager in a child on a Unix socket"))
}

mod tcp_fifo {
    use super::*;
    use spindle_conformance::queue::ExpectedOrder;
    fn make(maxsize: usize) -> QueueProxy<u64> {
        tcp().queue(maxsize).expect("queue proxy")
    }
    spindle_conformance::queue_suite!(ExpectedOrder::Fifo, make);
    spindle_conformance::queue_suite!(async: ExpectedOrder::Fifo, make);
}

mod tcp_lifo {
    use super::*;
    use spindle_conformance::queue::ExpectedOrder;
    fn make(maxsize: usize) -> LifoQueueProxy<u64> {
        tcp().lifo_queue(maxsize).expect("lifo queue proxy")
    }
    spindle_conformance::queue_suite!(ExpectedOrder::Lifo, make);
    spindle_conformance::queue_suite!(async: ExpectedOrder::Lifo, make);
}

mod unix_fifo {
    use super::*;
    use spindle_conformance::queue::ExpectedOrder;
    fn make(maxsize: usize) -> QueueProxy<u64> {
        unix().joinable_queue(maxsize).expect("queue proxy")
    }
    spindle_conformance::queue_suite!(ExpectedOrder::Fifo, make);
    spindle_conformance::queue_suite!(async: ExpectedOrder::Fifo, make);
}

mod unix_lifo {
    use super::*;
    use spindle_conformance::queue::ExpectedOrder;
    fn make(maxsize: usize) -> LifoQueueProxy<u64> {
        unix().lifo_queue(maxsize).expect("lifo queue proxy")
    }
    spindle_conformance::queue_suite!(ExpectedOrder::Lifo, make);
    spindle_conformance::queue_suite!(async: ExpectedOrder::Lifo, make);
}
