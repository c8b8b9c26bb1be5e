//! A blocking producer thread feeding an async consumer through one queue:
//! the thread calls `put()`, the async task awaits `get_async()`. No
//! runtime is needed by spindle; this example polls the consumer with the
//! tiny `block_on` from `examples/common` (any executor works the same).
//!
//! The queue is bounded, so the producer blocks when the consumer falls
//! behind; `shutdown()` ends the consumer's loop after the last item.

use std::thread;
use std::time::Duration;

use spindle::queue::Queue;
use spindle_examples::{block_on, tprintln};

fn main() {
    let readings: Queue<(u32, f64)> = Queue::with_maxsize(4);

    let sensor = {
        let readings = readings.clone();
        thread::Builder::new()
            .name("sensor".into())
            .spawn(move || {
                for n in 1..=12 {
                    let celsius = 20.0 + f64::from(n % 5) * 0.5;
                    tprintln!("putting reading #{n}: {celsius:.1} °C");
                    readings.put((n, celsius)).unwrap(); // blocks while 4 wait
                    thread::sleep(Duration::from_millis(20));
                }
                readings.shutdown(false); // no more readings
            })
            .unwrap()
    };

    let (count, mean) = block_on(async {
        let mut sum = 0.0;
        let mut count = 0;
        while let Ok((n, celsius)) = readings.get_async().await {
            count += 1;
            sum += celsius;
            println!(
                "[async consumer] got reading #{n}: {celsius:.1} °C (running mean {:.2})",
                sum / f64::from(count)
            );
        }
        (count, sum / f64::from(count))
    });
    sensor.join().unwrap();
    println!("async consumer saw {count} readings, mean {mean:.2} °C; queue shut down");
    assert_eq!(count, 12);
}
