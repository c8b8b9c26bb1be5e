//! `SPINDLE_LOCKORDER=1` turns the checker on without a code change: the test
//! re-runs itself in a child process with the variable set, where an inverted
//! pair is reported on standard error.

use spindle::lockorder::checker;
use spindle::sync::Lock;
use std::process::Command;

#[test]
fn env_var_turns_the_checker_on() {
    if std::env::var_os("SPINDLE_LOCKORDER").is_some() {
        // The child: nothing enables the checker but the environment.
        let (a, b) = (Lock::new(), Lock::new());
        {
            let _a = a.lock();
            let _b = b.lock();
        }
        {
            let _b = b.lock();
            let _a = a.lock();
        }
        assert!(checker::is_enabled());
        assert!(
            checker::reports()
                .iter()
                .any(|r| r.involves(a.id()) && r.involves(b.id()))
        );
        return;
    }
    // Off by default.
    assert!(!checker::is_enabled());
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "env_var_turns_the_checker_on",
            "--test-threads=1",
            "--nocapture",
        ])
        .env("SPINDLE_LOCKORDER", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed: {stderr}");
    assert!(
        stderr.contains("spindle lockorder: potential deadlock"),
        "{stderr}"
    );
}
