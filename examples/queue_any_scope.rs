//! One worker loop, written once against `queue::BlockingQueue`, run over a
//! thread queue and then over a cross-process queue — Python's pattern of
//! workers with `task_done()` and `join()`, where only the constructor
//! changes. In the second run a child process produces the items.

use std::thread;

use spindle::ipc;
use spindle::process::Process;
use spindle::queue::{self, BlockingQueue};

/// Workers sum what they take while `produce` fills the queue; then the
/// queue is joined (every item done) and shut down, which ends the workers.
fn sum_with_workers<Q: BlockingQueue<u64> + Sync>(
    q: &Q,
    workers: usize,
    produce: impl FnOnce(),
) -> u64 {
    thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut sum = 0;
                    while let Ok(v) = q.get() {
                        sum += v;
                        q.task_done().unwrap();
                    }
                    sum
                })
            })
            .collect();
        produce();
        q.join(); // every item taken and done
        q.shutdown(false); // releases the workers' get()
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    })
}

#[spindle::task]
fn produce(q: ipc::Queue<u64>, n: u64) {
    for i in 1..=n {
        q.put(i).unwrap();
    }
    println!("child {} put 1..={n}", std::process::id());
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    const N: u64 = 10_000;

    // Threads: this thread produces.
    let q = queue::Queue::with_maxsize(64);
    let sum = sum_with_workers(&q, 4, || {
        for i in 1..=N {
            q.put(i).unwrap();
        }
    });
    println!("queue::Queue (threads):   sum of 1..={N} = {sum}");
    assert_eq!(sum, N * (N + 1) / 2);

    // Processes: the same function; a child process produces.
    let q = ipc::Queue::with_maxsize(64)?;
    let sum = sum_with_workers(&q, 4, || {
        let mut child = Process::new(produce::call(q.clone(), N));
        child.start().unwrap();
        child.join().unwrap();
    });
    println!("ipc::Queue (processes):   sum of 1..={N} = {sum}");
    assert_eq!(sum, N * (N + 1) / 2);
    Ok(())
}
