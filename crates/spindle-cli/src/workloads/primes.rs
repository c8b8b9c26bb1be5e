//! The seeds' CPU-bound workload (seed 002 "PPE"): trial division of the PRIMES
//! list, exactly as the seed's `is_prime`.

/// The seed's PRIMES list (from Python's `concurrent.futures` docs).
pub(crate) const PRIMES: [u64; 6] = [
    112_272_535_095_293,
    112_582_705_942_171,
    112_272_535_095_293,
    115_280_095_190_773,
    115_797_848_077_099,
    1_099_726_899_285_419,
];

/// The seed's `is_prime`: trial division by odd numbers up to isqrt(n).
pub(crate) fn is_prime(n: u64) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn the_seed_list_has_one_composite() {
        // Python's docs: the last one, 1099726899285419, is not prime.
        let verdicts: Vec<bool> = PRIMES.iter().map(|&n| is_prime(n)).collect();
        assert_eq!(verdicts, [true, true, true, true, true, false]);
    }
}
