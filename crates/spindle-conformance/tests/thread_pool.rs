//! The executor conformance suite (`spindle_conformance::executor`, a port
//! of CPython's `Lib/test/test_concurrent_futures/`) run against
//! `futures::ThreadPoolExecutor`, with closures as tasks.

spindle_conformance::executor_suite!(spindle::futures::ThreadPoolExecutor);
