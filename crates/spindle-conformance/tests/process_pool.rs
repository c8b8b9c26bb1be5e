//! The executor conformance suite (`spindle_conformance::executor`, a port
//! of CPython's `Lib/test/test_concurrent_futures/`) run against
//! `process::ProcessPoolExecutor`, with calls of the task the conformance
//! crate registers (`executor::tasks::run_work`). The workers are this test
//! binary: spindle recognises a worker before `main` runs, so the test
//! harness needs no line of its own. (`process::Pool` has its own API, not
//! the `Executor` trait, so the suite does not apply to it.)

spindle_conformance::executor_suite!(spindle::process::ProcessPoolExecutor);
