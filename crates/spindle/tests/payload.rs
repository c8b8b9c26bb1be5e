//! Large arguments and results: payloads past the pipes' 64 MiB frame limit
//! travel (in sealed memfds), and past the configured `max_payload` the
//! sender refuses with one typed `TooLarge { size, limit }` — at submit for
//! an argument, on the future for a result — and the worker survives.
//!
//! Before the memfd route, a 70 MB result was `WorkerLost` ("killed by
//! signal 9": the parent's link refused the 64 MiB+ frame as garbled and
//! killed the worker), a 70 MB argument was `WorkerLost` ("exit code 0":
//! the worker's link refused it and the worker returned), and a 70 MB
//! `Process` argument was "Broken pipe" (the child refused the boot frame
//! and exited while the parent was still writing it).

mod common;

use serde_bytes::ByteBuf;
use spindle::futures::{Executor, FutureError, Payload};
use spindle::process::{Pool, Process, ProcessPoolExecutor, StartMethod};

use common::LONG;

const MIB: usize = 1 << 20;

/// `n` bytes: byte `i` is `i % 251`.
fn pattern(n: usize) -> ByteBuf {
    ByteBuf::from((0..n).map(|i| (i % 251) as u8).collect::<Vec<u8>>())
}

fn is_pattern(b: &[u8]) -> bool {
    b.iter().enumerate().all(|(i, &x)| x == (i % 251) as u8)
}

/// The postcard size of a `ByteBuf` of `n` bytes (varint length + bytes),
/// alone or as a one-argument tuple: the same.
fn encoded(n: usize) -> usize {
    postcard_len(n) + n
}

fn postcard_len(mut n: usize) -> usize {
    let mut k = 1;
    while n >= 0x80 {
        n >>= 7;
        k += 1;
    }
    k
}

/// The byte length whose encoding is exactly `size` bytes.
fn bytes_for(size: usize) -> usize {
    let n = size - postcard_len(size);
    assert_eq!(encoded(n), size);
    n
}

#[spindle::task]
fn make(n: u64) -> ByteBuf {
    pattern(n as usize)
}

#[spindle::task]
fn check_len(b: ByteBuf) -> u64 {
    assert!(is_pattern(&b), "argument bytes arrived changed");
    b.len() as u64
}

#[spindle::task]
fn pid() -> u32 {
    std::process::id()
}

#[spindle::task]
fn exit_with_len(b: ByteBuf) {
    assert!(is_pattern(&b), "argument bytes arrived changed");
    std::process::exit((b.len() % 50) as i32 + 60);
}

#[test]
fn a_70mb_result_and_a_70mb_argument_travel() {
    let pool = Pool::new(1).unwrap();
    let got = pool.apply(make::call(70_000_000)).unwrap();
    assert_eq!(got.len(), 70_000_000);
    assert!(is_pattern(&got));
    assert_eq!(
        pool.apply(check_len::call(pattern(70_000_000))),
        Ok(70_000_000)
    );
    // Many medium results in one `map` chunk: more than a pipe frame's
    // 64 MiB together.
    let lens = pool
        .map_chunked(make::call, [5_000_000u64; 16], 16)
        .unwrap()
        .iter()
        .map(|b| (b.len(), is_pattern(b)))
        .collect::<Vec<_>>();
    assert_eq!(lens, vec![(5_000_000, true); 16]);
    assert_eq!(pool.executor().workers_lost(), 0);
}

/// A pool of one process whose payloads may be `limit` bytes, and that
/// process's pid.
fn one_process_pool(limit: usize) -> (Pool, u32) {
    let pool = Pool::builder()
        .processes(1)
        .max_payload(limit)
        .build()
        .unwrap();
    let worker = pool.apply(pid::call()).unwrap();
    (pool, worker)
}

/// `err` is a result one byte over `limit`.
fn assert_result_one_byte_over(err: &FutureError, limit: usize) {
    let t = err
        .too_large()
        .copied()
        .unwrap_or_else(|| panic!("{err:?}"));
    assert_eq!(
        (t.payload(), t.size(), t.limit()),
        (Payload::Result, limit as u64 + 1, limit as u64)
    );
}

#[test]
fn a_pool_result_at_the_limit_travels_and_one_byte_more_is_too_large() {
    let limit = MIB;
    let (pool, worker) = one_process_pool(limit);
    let n = bytes_for(limit);
    let got = pool.apply(make::call(n as u64)).unwrap();
    assert_eq!(got.len(), n);
    assert!(is_pattern(&got));
    let err = pool.apply(make::call(n as u64 + 1)).unwrap_err();
    assert_result_one_byte_over(&err, limit);
    assert!(err.to_string().contains(&format!("{}", limit + 1)), "{err}");
    // The same through the executor's future; the worker is still the same.
    let f = pool.executor().submit(make::call(n as u64 + 1)).unwrap();
    assert!(matches!(f.result(), Err(FutureError::TooLarge(_))));
    assert_eq!(pool.apply(pid::call()), Ok(worker));
    assert_eq!(pool.executor().workers_lost(), 0);
}

#[test]
fn a_pool_argument_at_the_limit_travels_and_one_byte_more_is_refused_at_submit() {
    let limit = MIB;
    let (pool, worker) = one_process_pool(limit);
    let n = bytes_for(limit);
    assert_eq!(pool.apply(check_len::call(pattern(n))), Ok(n as u64));
    let err = pool
        .apply_async(check_len::call(pattern(n + 1)))
        .unwrap_err();
    let t = *err.too_large().expect("TooLarge");
    assert_eq!(
        (t.payload(), t.size(), t.limit()),
        (Payload::Argument, limit as u64 + 1, limit as u64)
    );
    // The call comes back.
    assert_eq!(err.into_inner().into_args().0.len(), n + 1);
    let err = pool.apply(check_len::call(pattern(n + 1))).unwrap_err();
    assert!(err.is_too_large(), "{err:?}");
    let err = pool
        .map_async(
            check_len::call,
            [pattern(10), pattern(n + 1)],
            1,
            Default::default(),
        )
        .unwrap_err();
    assert!(err.is_too_large(), "{err:?}");
    // The executor's submit refuses it too, handing the call back; its
    // `map` ends with the error.
    let err = pool
        .executor()
        .submit(check_len::call(pattern(n + 1)))
        .unwrap_err();
    assert_eq!(err.too_large().map(|t| t.size()), Some(limit as u64 + 1));
    assert_eq!(err.into_inner().into_args().0.len(), n + 1);
    // `map` submits its first chunks at once (as Python's submits every
    // item): the too-large one refuses the whole map.
    let err = pool
        .executor()
        .map(check_len::call, [pattern(10), pattern(n + 1)])
        .unwrap_err();
    assert!(err.is_too_large(), "{err:?}");
    assert_eq!(pool.apply(pid::call()), Ok(worker));
}

/// Dies (SIGKILL) the first time (no `marker` file yet), else checks `b`.
#[spindle::task]
fn check_len_or_die_once(b: ByteBuf, marker: String) -> u64 {
    if std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&marker)
        .is_ok()
    {
        nix_kill_self();
    }
    assert!(is_pattern(&b), "argument bytes arrived changed");
    b.len() as u64
}

fn nix_kill_self() {
    // SAFETY: raising SIGKILL on ourselves has no memory effects.
    unsafe { libc::raise(libc::SIGKILL) };
}

#[test]
fn a_large_argument_is_sent_again_whole_when_its_worker_dies() {
    // A memfd argument stays with its job: the retry on the replacement
    // worker gets it again.
    let marker = std::env::temp_dir().join(format!(
        "spindle-payload-retry-{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
    ));
    let marker = marker.to_string_lossy().into_owned();
    let pool = Pool::builder().processes(1).retries(1).build().unwrap();
    let r = pool
        .apply_async(check_len_or_die_once::call(
            pattern(3 * MIB),
            marker.clone(),
        ))
        .unwrap();
    assert_eq!(r.get_timeout(LONG), Ok(3 * MIB as u64));
    assert_eq!(pool.executor().workers_lost(), 1);
    std::fs::remove_file(&marker).ok();
}

#[test]
fn an_executor_moves_large_payloads_both_ways() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(2)
        .build()
        .unwrap();
    let fs: Vec<_> = (0..4)
        .map(|i| pool.submit(check_len::call(pattern(MIB + i))).unwrap())
        .collect();
    for (i, f) in fs.into_iter().enumerate() {
        assert_eq!(f.result(), Ok((MIB + i) as u64));
    }
    let got: Vec<usize> = pool
        .map(make::call, [MIB as u64, 10, 2 * MIB as u64])
        .unwrap()
        .map(|r| r.unwrap().len())
        .collect();
    assert_eq!(got, [MIB, 10, 2 * MIB]);
}

#[test]
fn a_process_argument_at_the_limit_starts_and_one_byte_more_is_refused() {
    let limit = MIB;
    let n = bytes_for(limit);
    for method in StartMethod::all() {
        let mut p = Process::builder()
            .task(exit_with_len::call(pattern(n)))
            .start_method(method)
            .max_payload(limit)
            .start()
            .unwrap();
        let _ = p.join();
        assert_eq!(p.exitcode(), Some((n % 50) as i32 + 60), "{method:?}");
        let err = Process::builder()
            .task(exit_with_len::call(pattern(n + 1)))
            .start_method(method)
            .max_payload(limit)
            .start()
            .unwrap_err();
        let t = err
            .too_large()
            .copied()
            .unwrap_or_else(|| panic!("{err:?}"));
        assert_eq!(
            (t.size(), t.limit()),
            (limit as u64 + 1, limit as u64),
            "{method:?}"
        );
    }
}

#[test]
fn a_70mb_process_argument_travels() {
    for method in StartMethod::all() {
        let mut p = Process::builder()
            .task(exit_with_len::call(pattern(70_000_000)))
            .start_method(method)
            .start()
            .unwrap();
        let _ = p.join();
        assert_eq!(p.exitcode(), Some(60), "{method:?}");
    }
}

/// Puts an item of `n` bytes on `q` from another process: panics unless it
/// went (`fits`) or was refused as too large (`!fits`).
#[spindle::task]
fn put_sized(q: spindle::ipc::Queue<ByteBuf>, n: u64, fits: bool) {
    use spindle::ipc::{ItemErrorKind, QueueError};
    match q.put(pattern(n as usize)) {
        Ok(()) => assert!(fits, "an item over the limit went"),
        Err(QueueError::Item(e)) => assert!(
            !fits && matches!(e.kind(), ItemErrorKind::TooLarge { .. }),
            "{:?}",
            e.kind()
        ),
        Err(e) => panic!("{e:?}"),
    }
}

#[test]
fn an_ipc_queue_item_at_the_limit_travels_and_one_byte_more_is_refused() {
    use spindle::ipc::{ItemErrorKind, Queue, QueueError};
    let limit = MIB;
    let n = bytes_for(limit);
    let q: Queue<ByteBuf> = Queue::with_max_item(0, limit).unwrap();
    assert_eq!(q.max_item(), limit);
    q.put(pattern(n)).unwrap();
    let got = q.get_timeout(LONG).unwrap();
    assert_eq!(got.len(), n);
    assert!(is_pattern(&got));
    match q.put(pattern(n + 1)) {
        Err(QueueError::Item(e)) => {
            assert!(
                matches!(e.kind(), ItemErrorKind::TooLarge { len, limit: l } if *len == limit + 1 && *l == limit),
                "{:?}",
                e.kind()
            );
            assert_eq!(e.into_inner().len(), n + 1, "the item comes back");
        }
        other => panic!("{other:?}"),
    }
    // Another process's handle has the same limit.
    let mut p = Process::new(put_sized::call(q.clone(), n as u64 + 1, false));
    p.start().unwrap();
    p.join().unwrap();
    let mut p = Process::new(put_sized::call(q.clone(), n as u64, true));
    p.start().unwrap();
    p.join().unwrap();
    assert_eq!(q.get_timeout(LONG).unwrap().len(), n);
    assert!(Queue::<ByteBuf>::with_max_item(0, 0).is_err());
    assert!(Queue::<ByteBuf>::with_max_item(0, (1 << 30) + 1).is_err());
}

#[test]
fn a_map_chunk_of_many_medium_payloads_past_a_frame_travels() {
    // 400 × 200 KB: each under the memfd threshold, 80 MB together — more
    // than one pipe frame carries; the part past the frame's inline budget
    // goes in memfds, both ways.
    let pool = Pool::new(1).unwrap();
    let items: Vec<ByteBuf> = (0..400).map(|_| pattern(200_000)).collect();
    let lens = pool.map_chunked(check_len::call, items, 400).unwrap();
    assert_eq!(lens, vec![200_000u64; 400]);
    let got = pool
        .map_chunked(make::call, [200_000u64; 400], 400)
        .unwrap();
    assert!(got.iter().all(|b| b.len() == 200_000 && is_pattern(b)));
    assert_eq!(pool.executor().workers_lost(), 0);
}

// ---- SharedBytes: large results and arguments read in place ----

use spindle::ipc::SharedBytes;

/// `n` pattern bytes as a `SharedBytes`.
#[spindle::task]
fn make_shared(n: u64) -> SharedBytes {
    SharedBytes::from(pattern(n as usize).into_vec())
}

/// Several byte strings in one result (one memfd).
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone)]
struct Parts {
    a: SharedBytes,
    n: u32,
    b: SharedBytes,
    c: Vec<SharedBytes>,
}

#[spindle::task]
fn make_parts(n: u64) -> Parts {
    let n = n as usize;
    Parts {
        a: SharedBytes::from(pattern(n).into_vec()),
        n: 7,
        b: SharedBytes::from(pattern(n / 2).into_vec()),
        c: vec![SharedBytes::from(pattern(3).into_vec()); 2],
    }
}

/// Whether the argument arrived mapped, its length, and whether its bytes
/// are right.
#[spindle::task]
fn shared_arg(b: SharedBytes) -> (bool, u64, bool) {
    (b.is_mapped(), b.len() as u64, is_pattern(&b))
}

/// Exits with 70 + (mapped ? 1 : 0) if the bytes are right, else 99.
#[spindle::task]
fn exit_with_shared(b: SharedBytes) {
    let ok = is_pattern(&b);
    std::process::exit(if ok {
        70 + i32::from(b.is_mapped())
    } else {
        99
    });
}

#[test]
fn a_4mib_shared_bytes_result_is_read_in_place() {
    let pool = Pool::new(1).unwrap();
    let big = pool.apply(make_shared::call(4 * MIB as u64)).unwrap();
    assert!(big.is_mapped(), "{big:?}");
    assert_eq!(big.len(), 4 * MIB);
    assert!(is_pattern(&big));
    // A small one came through the pipe: owned.
    let small = pool.apply(make_shared::call(1000)).unwrap();
    assert!(!small.is_mapped());
    assert!(small.len() == 1000 && is_pattern(&small));
    // The executor and a map chunk too.
    let ex = pool.executor();
    let f = ex.submit(make_shared::call(MIB as u64)).unwrap();
    let r = f.result().unwrap();
    assert!(r.is_mapped() && r.len() == MIB && is_pattern(&r));
    let many = pool
        .map_chunked(make_shared::call, [MIB as u64, 10, MIB as u64 + 1], 3)
        .unwrap();
    let seen: Vec<(usize, bool, bool)> = many
        .iter()
        .map(|b| (b.len(), b.is_mapped(), is_pattern(b)))
        .collect();
    assert_eq!(
        seen,
        [(MIB, true, true), (10, false, true), (MIB + 1, true, true)]
    );
    // A ByteBuf result of the same bytes is an owned copy.
    let copied = pool.apply(make::call(4 * MIB as u64)).unwrap();
    assert_eq!(&copied[..], &big[..]);
}

#[test]
fn a_shared_bytes_argument_is_read_in_place_by_a_worker_and_a_child() {
    let pool = Pool::new(1).unwrap();
    let arg = SharedBytes::from(pattern(2 * MIB).into_vec());
    assert_eq!(
        pool.apply(shared_arg::call(arg.clone())),
        Ok((true, 2 * MIB as u64, true))
    );
    let small = SharedBytes::from(pattern(100).into_vec());
    assert_eq!(pool.apply(shared_arg::call(small)), Ok((false, 100, true)));
    // A spawned or fork-server child maps its sealed arguments; a forked
    // one decodes from its inherited copy (owned).
    for method in StartMethod::all() {
        let mut p = Process::builder()
            .task(exit_with_shared::call(arg.clone()))
            .start_method(method)
            .start()
            .unwrap();
        let _ = p.join();
        let mapped = method != StartMethod::Fork;
        assert_eq!(p.exitcode(), Some(70 + i32::from(mapped)), "{method:?}");
    }
}

/// Tiny sizes over the 256 KiB threshold: also run under memcheck
/// (`.ci/valgrind`), which checks every read of the mapping after the pool
/// and the other holders are gone.
#[test]
fn sealed_lifetime_shared_bytes_outlive_their_pool_and_clones_share_one_mapping() {
    let n = 300 * 1024;
    let pool = Pool::new(1).unwrap();
    let one = pool.apply(make_shared::call(n as u64)).unwrap();
    let parts = pool.apply(make_parts::call(n as u64)).unwrap();
    // An argument, read in place by the worker.
    let arg = SharedBytes::from(pattern(n).into_vec());
    assert_eq!(
        pool.apply(shared_arg::call(arg)),
        Ok((true, n as u64, true))
    );
    pool.close();
    pool.join().unwrap();
    drop(pool);
    assert!(one.is_mapped() && one.len() == n && is_pattern(&one));
    let two = one.clone();
    assert_eq!(two.as_ptr(), one.as_ptr());
    drop(one);
    assert!(is_pattern(&two));
    // Every field of one result shares its one mapping: all inside one
    // range no longer than the encoded result.
    assert_eq!(parts.n, 7);
    assert!(parts.a.is_mapped() && parts.b.is_mapped());
    assert!(parts.c.iter().all(SharedBytes::is_mapped));
    assert!(is_pattern(&parts.a) && parts.a.len() == n);
    assert!(is_pattern(&parts.b) && parts.b.len() == n / 2);
    assert!(parts.c.iter().all(|c| c[..] == [0, 1, 2]));
    let lo = parts.a.as_ptr() as usize;
    let hi = parts.c[1].as_ptr() as usize + 3;
    assert!(hi > lo && hi - lo < n + n / 2 + 64, "{lo:#x}..{hi:#x}");
    let Parts { a, b, c, .. } = parts;
    drop((a, c));
    assert!(is_pattern(&b));
    assert_eq!(b.into_vec().len(), n / 2);
}

static CLONES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Counts its clones (in this process).
#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct Counted(u64);

impl Clone for Counted {
    fn clone(&self) -> Counted {
        CLONES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Counted(self.0)
    }
}

#[spindle::task]
fn counted(n: u64) -> Counted {
    Counted(n)
}

#[test]
fn pool_apply_moves_its_result_out_without_a_clone() {
    let pool = Pool::new(1).unwrap();
    assert_eq!(pool.apply(counted::call(5)), Ok(Counted(5)));
    assert_eq!(CLONES.load(std::sync::atomic::Ordering::SeqCst), 0);
}

// ---- SharedBytesMut: results filled in place, handed over by descriptor ----

use spindle::ipc::SharedBytesMut;

/// `n` pattern bytes written into a `SharedBytesMut`, frozen.
fn frozen(n: usize) -> SharedBytes {
    let mut b = SharedBytesMut::zeroed(n).unwrap();
    for (i, x) in b.iter_mut().enumerate() {
        *x = (i % 251) as u8;
    }
    b.freeze().unwrap()
}

#[spindle::task]
fn make_mut(n: u64) -> SharedBytes {
    frozen(n as usize)
}

/// Buffers of every kind in one result: frozen ones over and under the
/// 256 KiB threshold, an owned one, and plain fields around them.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone)]
struct MutParts {
    a: SharedBytes,
    n: u32,
    owned: SharedBytes,
    tiny: SharedBytes,
    more: Vec<SharedBytes>,
    tail: String,
}

#[spindle::task]
fn make_mut_parts(n: u64) -> MutParts {
    let n = n as usize;
    MutParts {
        a: frozen(n),
        n: 7,
        owned: SharedBytes::from(pattern(n / 2).into_vec()),
        tiny: frozen(100),
        more: vec![frozen(n / 3), frozen(0), frozen(n + 1)],
        tail: "end".into(),
    }
}

/// The line of `/proc/self/maps` of the mapping holding `p`.
fn mapping_of(p: *const u8) -> String {
    let p = p as usize;
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .find(|l| {
            let range = l.split(' ').next().unwrap();
            let (lo, hi) = range.split_once('-').unwrap();
            let lo = usize::from_str_radix(lo, 16).unwrap();
            let hi = usize::from_str_radix(hi, 16).unwrap();
            (lo..hi).contains(&p)
        })
        .unwrap_or_else(|| panic!("no mapping holds {p:#x}"))
        .to_string()
}

/// Whether `b` is a whole buffer a worker froze, handed over by its
/// descriptor: mapped read-only and shared, from the worker's own memfd
/// (named `spindle-bytes`; a copy in a frame's memfd is `spindle-payload`),
/// starting at its first byte.
fn by_descriptor(b: &SharedBytes) -> bool {
    if !b.is_mapped() {
        return false;
    }
    let line = mapping_of(b.as_ptr());
    let lo = usize::from_str_radix(line.split('-').next().unwrap(), 16).unwrap();
    line.contains("memfd:spindle-bytes")
        && line.split_whitespace().nth(1) == Some("r--s")
        && lo == b.as_ptr() as usize
}

#[test]
fn shared_bytes_mut_results_go_by_descriptor_through_a_pool_and_an_executor() {
    let pool = Pool::new(1).unwrap();
    let big = pool.apply(make_mut::call(4 * MIB as u64)).unwrap();
    assert!(by_descriptor(&big), "{big:?}: {}", mapping_of(big.as_ptr()));
    assert!(big.len() == 4 * MIB && is_pattern(&big));
    // Under 256 KiB: copied in the encoding (through the pipe), owned.
    let small = pool.apply(make_mut::call(1000)).unwrap();
    assert!(!small.is_mapped() && small.len() == 1000 && is_pattern(&small));
    // Empty.
    let empty = pool.apply(make_mut::call(0)).unwrap();
    assert!(empty.is_empty() && !empty.is_mapped());
    // Every kind in one result, and several such results in one map chunk
    // (the descriptors of one frame's outcomes, in order).
    let n = 300 * 1024;
    let all = pool
        .map_chunked(make_mut_parts::call, [n as u64, 10, 2 * n as u64], 3)
        .unwrap();
    for (p, n) in all.iter().zip([n, 10, 2 * n]) {
        assert_eq!((p.n, p.tail.as_str()), (7, "end"));
        let want = [
            (&p.a, n),
            (&p.owned, n / 2),
            (&p.tiny, 100),
            (&p.more[0], n / 3),
            (&p.more[1], 0),
            (&p.more[2], n + 1),
        ];
        for (i, (b, len)) in want.into_iter().enumerate() {
            assert!(b.len() == len && is_pattern(b), "{i}: {b:?}");
            let frozen_big = i != 1 && len >= 256 * 1024;
            assert_eq!(by_descriptor(b), frozen_big, "{i}: {b:?}");
        }
    }
    // The executor's future, and its map.
    let ex = ProcessPoolExecutor::builder()
        .max_workers(2)
        .build()
        .unwrap();
    let r = ex
        .submit(make_mut::call(MIB as u64))
        .unwrap()
        .result()
        .unwrap();
    assert!(by_descriptor(&r) && r.len() == MIB && is_pattern(&r));
    let got: Vec<(usize, bool)> = ex
        .map(make_mut::call, [MIB as u64, 10, 2 * MIB as u64])
        .unwrap()
        .map(|r| r.unwrap())
        .map(|b| (b.len(), by_descriptor(&b) && is_pattern(&b)))
        .collect();
    assert_eq!(got, [(MIB, true), (10, false), (2 * MIB, true)]);
    drop((pool, ex));
    // Readable after the workers are gone; the frozen buffer is whole.
    assert!(is_pattern(&big) && is_pattern(&all[2].more[2]));
}

#[test]
fn shared_bytes_mut_at_the_limit_travels_and_one_byte_more_is_too_large() {
    let limit = MIB;
    let (pool, worker) = one_process_pool(limit);
    let n = bytes_for(limit);
    let got = pool.apply(make_mut::call(n as u64)).unwrap();
    assert!(by_descriptor(&got) && got.len() == n && is_pattern(&got));
    let err = pool.apply(make_mut::call(n as u64 + 1)).unwrap_err();
    assert_result_one_byte_over(&err, limit);
    // Two buffers of half the limit each: over it together.
    let err = pool
        .apply(make_mut_parts::call(limit as u64 / 2))
        .unwrap_err();
    assert!(err.too_large().is_some(), "{err:?}");
    assert_eq!(pool.apply(pid::call()), Ok(worker));
    assert_eq!(pool.executor().workers_lost(), 0);
}

#[test]
fn a_frozen_shared_bytes_mut_is_ordinary_bytes_elsewhere() {
    let n = 2 * MIB;
    // A thread pool: the value itself (nothing encoded).
    let threads = spindle::futures::ThreadPoolExecutor::new();
    let b = threads.submit(move || frozen(n)).unwrap().result().unwrap();
    assert!(b.is_mapped() && b.len() == n && is_pattern(&b));
    // A pipe: the bytes, received as an owned copy.
    let (rx, tx) = spindle::ipc::Pipe(false).unwrap();
    let sender = std::thread::spawn(move || tx.send(&frozen(300 * 1024)).unwrap());
    let got: SharedBytes = rx.recv().unwrap();
    sender.join().unwrap();
    assert!(!got.is_mapped() && got.len() == 300 * 1024 && is_pattern(&got));
    // The same bytes as a ByteBuf's in any serde format.
    assert_eq!(
        postcard::to_allocvec(&b).unwrap(),
        postcard::to_allocvec(&pattern(n)).unwrap()
    );
    // As a pool task's argument: copied into the job's memfd, read in place
    // by the worker.
    let pool = Pool::new(1).unwrap();
    assert_eq!(
        pool.apply(shared_arg::call(b.clone())),
        Ok((true, n as u64, true))
    );
    assert_eq!(
        pool.apply(check_len::call(ByteBuf::from(b.to_vec()))),
        Ok(n as u64)
    );
}

/// Fails to fill its buffer: the task panics after making it.
#[spindle::task]
fn make_mut_then_panic(n: u64) -> SharedBytes {
    let b = SharedBytesMut::zeroed(n as usize).unwrap();
    assert!(b.len() == n as usize, "made");
    panic!("after making {} bytes", b.len());
}

#[test]
fn a_task_that_drops_its_buffer_unfrozen_leaves_the_worker_whole() {
    let pool = Pool::new(1).unwrap();
    let worker = pool.apply(pid::call()).unwrap();
    let err = pool
        .apply(make_mut_then_panic::call(MIB as u64))
        .unwrap_err();
    assert!(err.to_string().contains("after making"), "{err}");
    let b = pool.apply(make_mut::call(MIB as u64)).unwrap();
    assert!(by_descriptor(&b) && is_pattern(&b));
    assert_eq!(pool.apply(pid::call()), Ok(worker));
}
