//! The PRIMES check of the `ProcessPoolExecutor` example in Python's
//! `concurrent.futures` documentation: trial division, exactly as its
//! `is_prime`.

#![forbid(unsafe_code)]

/// The PRIMES list of Python's `concurrent.futures` docs.
pub const PRIMES: [u64; 6] = [
    112_272_535_095_293,
    112_582_705_942_171,
    112_272_535_095_293,
    115_280_095_190_773,
    115_797_848_077_099,
    1_099_726_899_285_419,
];

/// The documentation's `is_prime`: trial division by odd numbers up to isqrt(n).
pub fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    if n == 2 {
        return true;
    }
    if n.is_multiple_of(2) {
        return false;
    }
    let sqrt_n = n.isqrt();
    let mut i = 3;
    while i <= sqrt_n {
        if n.is_multiple_of(i) {
            return false;
        }
        i += 2;
    }
    true
}

/// Whether an odd number in `lo..=hi` divides `n` (the trial divisions of
/// [`is_prime`] over part of its range: `is_prime(n)` for odd `n >= 3` is
/// `!has_odd_divisor(n, 3, n.isqrt())`).
pub fn has_odd_divisor(n: u64, lo: u64, hi: u64) -> bool {
    let mut i = lo.max(3) | 1;
    while i <= hi {
        if n.is_multiple_of(i) {
            return true;
        }
        i += 2;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_ranges_agree_with_is_prime() {
        for n in (3..5000u64).step_by(2) {
            let r = n.isqrt();
            let a = (3 + r.saturating_sub(3) / 4).min(r);
            let m = a + r.saturating_sub(a) / 2;
            let split = has_odd_divisor(n, 3, a)
                || has_odd_divisor(n, a + 1, m)
                || has_odd_divisor(n, m + 1, r);
            assert_eq!(!split, is_prime(n), "n = {n}");
            assert_eq!(!has_odd_divisor(n, 3, r), is_prime(n), "n = {n}");
        }
    }

    #[test]
    fn small_numbers_match_a_sieve() {
        let mut sieve = vec![true; 2000];
        sieve[0] = false;
        sieve[1] = false;
        for i in 2..2000 {
            if sieve[i] {
                for j in (i * i..2000).step_by(i) {
                    sieve[j] = false;
                }
            }
        }
        for (n, &p) in sieve.iter().enumerate() {
            assert_eq!(is_prime(n as u64), p, "n = {n}");
        }
    }

    /// Deterministic Miller-Rabin for n < 3.3e24 (bases 2..=41): an
    /// independent check of the trial division's answers.
    fn miller_rabin(n: u64) -> bool {
        let mul = |a: u64, b: u64| (u128::from(a) * u128::from(b) % u128::from(n)) as u64;
        let pow = |mut b: u64, mut e: u64| {
            let mut r = 1u64;
            while e > 0 {
                if e & 1 == 1 {
                    r = mul(r, b);
                }
                b = mul(b, b);
                e >>= 1;
            }
            r
        };
        if n < 2 {
            return false;
        }
        let bases = [2u64, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41];
        if bases.contains(&n) {
            return true;
        }
        if bases.iter().any(|&p| n.is_multiple_of(p)) {
            return false;
        }
        let (mut d, mut s) = (n - 1, 0);
        while d % 2 == 0 {
            d /= 2;
            s += 1;
        }
        'witness: for &a in &bases {
            let mut x = pow(a, d);
            if x == 1 || x == n - 1 {
                continue;
            }
            for _ in 1..s {
                x = mul(x, x);
                if x == n - 1 {
                    continue 'witness;
                }
            }
            return false;
        }
        true
    }

    #[test]
    fn the_primes_list_has_one_composite() {
        // Python's docs: the last one, 1099726899285419, is not prime
        // (3306091 × 332636609); the others are.
        let verdicts: Vec<bool> = PRIMES.iter().map(|&n| miller_rabin(n)).collect();
        assert_eq!(verdicts, [true, true, true, true, true, false]);
        assert_eq!(3_306_091u64 * 332_636_609, PRIMES[5]);
        assert!(!is_prime(PRIMES[5]));
        if !cfg!(debug_assertions) {
            // Five full trial divisions: seconds in a debug build, so only
            // optimised (`cargo test --release`); the CLI tests cover the
            // rest with smaller numbers.
            for &n in &PRIMES[..5] {
                assert!(is_prime(n), "{n}");
            }
        }
    }

    #[test]
    fn trial_division_agrees_with_miller_rabin_on_big_numbers() {
        // Around 1e10 (isqrt 1e5): fast even unoptimised.
        for n in 10_000_000_000u64..10_000_000_000 + if cfg!(miri) { 20 } else { 400 } {
            assert_eq!(is_prime(n), miller_rabin(n), "n = {n}");
        }
        assert!(miller_rabin(1_000_000_007) && is_prime(1_000_000_007));
    }
}
