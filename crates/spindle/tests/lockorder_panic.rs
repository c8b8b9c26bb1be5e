//! The checker's panic mode (`Sink::Panic`, or `SPINDLE_LOCKORDER=panic`): the
//! acquisition that closes a lock-order cycle panics, naming both locks.

use spindle::lockorder::checker::{self, Sink};
use spindle::sync::Lock;

#[test]
fn closing_a_cycle_panics_in_panic_mode() {
    checker::set_sink(Sink::Panic);
    checker::enable();
    let (a, b) = (Lock::new(), Lock::new());
    spindle::lockorder::set_name(&a, "first");
    spindle::lockorder::set_name(&b, "second");
    {
        let _a = a.lock();
        let _b = b.lock();
    }
    let err = std::thread::spawn(move || {
        let _b = b.lock();
        let _a = a.lock();
    })
    .join()
    .unwrap_err();
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("potential deadlock"), "{msg}");
    assert!(
        msg.contains("\"first\"") && msg.contains("\"second\""),
        "{msg}"
    );
}
