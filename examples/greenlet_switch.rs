//! The greenlet documentation's first example: `test1` prints 12 and
//! switches to `test2`, which prints 56 and switches back; `test1` prints
//! 34 and switches to `test2`, which prints 78. Two coroutines pass a baton.
//!
//! Python: `gr1 = greenlet(test1); gr2 = greenlet(test2); gr1.switch()`,
//! with `gr2.switch()` / `gr1.switch()` inside. (In greenlet's own
//! documentation `test1` returns after 34, which ends the program, and 78
//! is never printed; this port makes the last switch too.)
//!
//! spindle: there is no stackful `switch` in safe Rust (see docs/PYTHON.md);
//! each greenlet is a task, and a switch is "hand the baton to the other
//! task, then wait for it back", with one `tokio::sync::mpsc` channel of
//! capacity 1 per task as its baton slot. The order is fixed by the
//! batons, whatever thread runs which task.

use std::sync::{Arc, Mutex};

use spindle_aio::{gather, run, spawn};
use tokio::sync::mpsc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let printed = Arc::new(Mutex::new(Vec::new()));
    let say = {
        let printed = printed.clone();
        move |n: u32| {
            println!("{n}");
            printed.lock().unwrap().push(n);
        }
    };
    run(async move {
        let (to_gr1, mut gr1_baton) = mpsc::channel::<()>(1);
        let (to_gr2, mut gr2_baton) = mpsc::channel::<()>(1);
        let say1 = say.clone();
        let test1 = spawn(async move {
            say1(12);
            to_gr2.send(()).await.expect("gr2 alive"); // gr2.switch()
            gr1_baton.recv().await.expect("gr2 switches back");
            say1(34);
            to_gr2.send(()).await.expect("gr2 alive"); // gr2.switch()
        });
        let test2 = spawn(async move {
            gr2_baton.recv().await.expect("first switch");
            say(56);
            to_gr1.send(()).await.expect("gr1 alive"); // gr1.switch()
            gr2_baton.recv().await.expect("second switch");
            say(78);
        });
        for outcome in gather([test1, test2]).await {
            outcome.expect("no greenlet panicked");
        }
    })?;
    assert_eq!(*printed.lock().unwrap(), [12, 56, 34, 78]);
    Ok(())
}
