//! tqdm over `Pool.imap_unordered`: the usual Python progress bar of a
//! process pool,
//!
//! ```python
//! with multiprocessing.Pool(4) as pool:
//!     for r in tqdm(pool.imap_unordered(square, range(N)), total=N):
//!         total += r
//! ```
//!
//! spindle's `imap_unordered` returns a plain iterator, so indicatif's
//! `ProgressIterator` wraps it as tqdm wraps Python's: `.progress_count(N)`
//! (`total=N`; the iterator does not know its length either). spindle itself
//! has no progress-bar type and no indicatif dependency.
//!
//! The bar goes to stderr and, as tqdm's does not, hides itself when stderr
//! is not a terminal (indicatif's rule), so the stdout below is the same
//! either way: `.ci/run` runs this with stderr to a file.

use indicatif::ProgressIterator;
use spindle::process::Pool;

#[spindle::task]
fn square(x: u64) -> u64 {
    x * x
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    const N: u64 = 2_000;
    let pool = Pool::new(4)?;
    let mut total = 0;
    // Results in the order they finish; the bar moves as each comes back.
    for r in pool.imap_unordered(square::call, 0..N).progress_count(N) {
        total += r?;
    }
    // Σ x² for x < N = (N-1) N (2N-1) / 6.
    assert_eq!(total, (N - 1) * N * (2 * N - 1) / 6);
    println!("sum of squares of 0..{N}: {total}");
    Ok(())
}
