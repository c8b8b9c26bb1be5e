use spindle::process::{Process, StartMethod};

#[spindle::task]
fn ok_task(n: u64) {
    assert_eq!(n, 5);
}

#[test]
fn all_methods() {
    for m in StartMethod::all() {
        let t = std::time::Instant::now();
        let mut p = Process::builder()
            .task(ok_task::call(5))
            .start_method(m)
            .start()
            .unwrap();
        p.join().unwrap();
        assert_eq!(p.exitcode(), Some(0));
        let mut p = Process::builder()
            .task(ok_task::call(6))
            .start_method(m)
            .start()
            .unwrap();
        let e = p.join().unwrap_err();
        eprintln!("{m:?} {e} {:?}", t.elapsed());
        assert!(e.is_panic());
    }
}
