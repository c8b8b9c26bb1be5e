//! Threads that talk through a `queue.Queue`: a `Putter` thread puts 0..5 and
//! then `None` as an end marker; a `Taker` thread gets until it sees `None`.
//! (The Python program sleeps 2 s and 3 s between steps; here 0.2 s and 0.3 s.)
//!
//! spindle: the sentinel pattern works as in Python with `Option<T>`; the
//! end of the example shows the spindle way, `shutdown()` plus the queue's
//! iterator, which needs no sentinel at all.

use std::thread;
use std::time::Duration;

use spindle::queue::Queue;
use spindle_examples::tprintln;

fn main() {
    let my_queue: Queue<Option<u32>> = Queue::new();

    let putter = {
        let my_queue = my_queue.clone();
        thread::Builder::new().name("Putter".into()).spawn(move || {
            for i in 0..5 {
                thread::sleep(Duration::from_millis(200));
                my_queue.put(Some(i)).unwrap();
                tprintln!("put {i} to queue.");
            }
            my_queue.put(None).unwrap(); // None: the producer is done
        })
    }
    .unwrap();

    let taker = {
        let my_queue = my_queue.clone();
        thread::Builder::new().name("Taker".into()).spawn(move || {
            let mut taken = Vec::new();
            loop {
                thread::sleep(Duration::from_millis(300));
                let Some(item) = my_queue.get().unwrap() else {
                    break;
                };
                tprintln!("get {item} from queue.");
                taken.push(item);
            }
            taken
        })
    }
    .unwrap();

    putter.join().unwrap();
    let taken = taker.join().unwrap();
    assert_eq!(taken, [0, 1, 2, 3, 4]);

    // The same without a sentinel: shut the queue down when done; the
    // consumer's `for` loop ends after the last item.
    let q = Queue::new();
    let consumer = {
        let q = q.clone();
        thread::spawn(move || q.iter().collect::<Vec<u32>>())
    };
    for i in 0..5 {
        q.put(i).unwrap();
    }
    q.shutdown(false);
    let got = consumer.join().unwrap();
    println!("with shutdown() instead of a sentinel the consumer got {got:?}");
    assert_eq!(got, [0, 1, 2, 3, 4]);
}
