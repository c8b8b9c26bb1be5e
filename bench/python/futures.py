"""Suite `futures`: Python's concurrent.futures.ThreadPoolExecutor, the
contender of `spindle bench futures` (crates/spindle-bench/src/futures.rs).

    python3 futures.py CASE [--quick]

Prints one number in the case's unit: submit_wait_100k (tasks/s), roundtrip
(microseconds per submit -> result), map_1m (items/s), primes (seconds for the
PRIMES list of the concurrent.futures documentation). The pool uses Python's default max_workers and is warmed
up (its threads started) before the clock starts. map_1m measures a shorter
run (Python's map costs ~25 us per item) and reports the rate.
"""
import concurrent.futures
import math
import sys
import time

PRIMES = [
    112272535095293,
    112582705942171,
    112272535095293,
    115280095190773,
    115797848077099,
    1099726899285419]


def is_prime(n):
    if n < 2:
        return False
    if n == 2:
        return True
    if n % 2 == 0:
        return False
    sqrt_n = int(math.floor(math.sqrt(n)))
    for i in range(3, sqrt_n + 1, 2):
        if n % i == 0:
            return False
    return True


def ident(x):
    return x


def cheap(x):
    return (x * x) ^ 0x5bd1


def main():
    case = sys.argv[1]
    quick = '--quick' in sys.argv[2:]
    with concurrent.futures.ThreadPoolExecutor() as pool:
        list(pool.map(ident, range(pool._max_workers * 4)))  # start the threads
        if case == 'submit_wait_100k':
            n = 20_000 if quick else 100_000
            t = time.perf_counter()
            fs = [pool.submit(ident, i) for i in range(n)]
            for f in fs:
                f.result()
            print(n / (time.perf_counter() - t))
        elif case == 'roundtrip':
            n = 2_000 if quick else 10_000
            t = time.perf_counter()
            for i in range(n):
                pool.submit(ident, i).result()
            print((time.perf_counter() - t) * 1e6 / n)
        elif case == 'map_1m':
            n = 50_000 if quick else 200_000
            t = time.perf_counter()
            total = 0
            for v in pool.map(cheap, range(n)):
                total += v
            print(n / (time.perf_counter() - t))
        elif case == 'primes':
            t = time.perf_counter()
            verdicts = list(pool.map(is_prime, PRIMES))
            assert verdicts == [True] * 5 + [False]
            print(time.perf_counter() - t)
        else:
            sys.exit('unknown case %r' % case)


if __name__ == '__main__':
    main()
