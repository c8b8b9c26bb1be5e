"""The PRIMES check of the ProcessPoolExecutor example in Python's
concurrent.futures documentation, serial or with ProcessPoolExecutor (its own
programs; bounded as they are).

    python3 primes.py [serial|processes] [WORKERS]

Prints `<n> is prime? <True|False>` per number, then, as its last line, the
seconds taken (pool start included, as in the documentation's program) as a bare number.
"""
import os
import sys

# bench/python/queue.py would shadow the standard queue module that
# concurrent.futures.process imports.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != _here]

import concurrent.futures  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402

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


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else 'processes'
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else None
    start = time.perf_counter()
    if mode == 'serial':
        verdicts = list(map(is_prime, PRIMES))
    else:
        with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool:
            verdicts = list(pool.map(is_prime, PRIMES))
    secs = time.perf_counter() - start
    for number, prime in zip(PRIMES, verdicts):
        print('%d is prime? %s' % (number, prime))
    print('%.6f' % secs)


if __name__ == '__main__':
    main()
