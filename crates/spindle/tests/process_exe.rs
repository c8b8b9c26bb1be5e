//! `SPINDLE_EXE` names the executable a `Spawn` child re-execs instead of
//! `/proc/self/exe` (what `.ci/valgrind` relies on: under valgrind
//! `/proc/self/exe` is valgrind's tool). This binary has one test, because
//! it changes the environment.

use std::time::Duration;

use spindle::process::{Process, StartMethod};

#[spindle::task]
fn exit_with(code: i32) {
    std::process::exit(code)
}

/// Spawns a child running `exit_with(7)` and returns its exit code.
fn spawn_exit_7() -> Option<i32> {
    let mut p = Process::builder()
        .task(exit_with::call(7))
        .start_method(StartMethod::Spawn)
        .start()
        .unwrap();
    let _ = p.join_timeout(Duration::from_secs(60));
    p.exitcode()
}

fn set_exe(value: &std::ffi::OsStr) {
    // SAFETY: the only test of this binary; no other thread reads or writes
    // the environment while it runs.
    unsafe { std::env::set_var("SPINDLE_EXE", value) };
}

#[test]
fn spindle_exe_names_what_a_spawned_child_execs() {
    assert_eq!(spawn_exit_7(), Some(7), "default: /proc/self/exe");

    set_exe(std::env::current_exe().unwrap().as_os_str());
    assert_eq!(spawn_exit_7(), Some(7), "this test binary, named");

    // Another program: it exits 0 without ever running the task, so the
    // task's 7 is not seen — the named file is what ran.
    set_exe("/bin/true".as_ref());
    assert_eq!(spawn_exit_7(), Some(0), "/bin/true ran instead");

    set_exe("".as_ref());
    assert_eq!(spawn_exit_7(), Some(7), "empty: the default again");
}
