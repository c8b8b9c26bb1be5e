"""Python contenders of `spindle bench lockorder`.

    python3 lockorder.py CASE [--quick]

Measures itself and prints ONE number: nanoseconds per operation.
  lock_unlock        `with lock: pass` on a free threading.Lock
  ordered_acquire_2  `with acquire(y_lock, x_lock): pass`, the Python
                     Cookbook's (recipe 12.5) context manager that sorts
                     the locks by id and checks a thread-local order record
"""
import sys
import threading
import time
from contextlib import contextmanager

_local = threading.local()


@contextmanager
def acquire(*locks):
    # The recipe's code, verbatim in behaviour.
    locks = sorted(locks, key=lambda x: id(x))
    acquired = getattr(_local, 'acquired', [])
    if acquired and max(id(lock) for lock in acquired) >= id(locks[0]):
        raise RuntimeError('Lock Order Violation')
    acquired.extend(locks)
    _local.acquired = acquired
    try:
        for lock in locks:
            lock.acquire()
        yield
    finally:
        for lock in reversed(locks):
            lock.release()
        del acquired[-len(locks):]


def lock_unlock(n):
    lock = threading.Lock()
    start = time.perf_counter()
    for _ in range(n):
        with lock:
            pass
    return (time.perf_counter() - start) * 1e9 / n


def ordered_acquire_2(n):
    x_lock, y_lock = threading.Lock(), threading.Lock()
    start = time.perf_counter()
    for _ in range(n):
        with acquire(y_lock, x_lock):
            pass
    return (time.perf_counter() - start) * 1e9 / n


def main():
    case = sys.argv[1]
    quick = "--quick" in sys.argv[2:]
    n = {"lock_unlock": 1_000_000, "ordered_acquire_2": 200_000}[case]
    if quick:
        n //= 4
    print({"lock_unlock": lock_unlock, "ordered_acquire_2": ordered_acquire_2}[case](n))


if __name__ == "__main__":
    main()
