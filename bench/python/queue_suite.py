"""Python contender of `spindle bench queue`: queue.Queue with threads.

Usage: queue_suite.py CASE [--quick]; prints ONE number in the case's unit
(items/s for the throughput cases, microseconds per round trip for pingpong).
"""
import os
import sys

# This file is named like the stdlib module it measures: keep its own folder
# off the import path so `import queue` finds the stdlib's.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != _here]

import queue  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402


def st_put_get(n):
    q = queue.Queue()
    t = time.perf_counter()
    for i in range(n):
        q.put(i)
        q.get()
    return n / (time.perf_counter() - t)


def _spsc(n, maxsize):
    q = queue.Queue(maxsize)

    def produce():
        for i in range(n):
            q.put(i)

    t = time.perf_counter()
    p = threading.Thread(target=produce)
    p.start()
    for _ in range(n):
        q.get()
    p.join()
    return n / (time.perf_counter() - t)


def spsc_unbounded(n):
    return _spsc(n, 0)


def spsc_bounded1000(n):
    return _spsc(n, 1000)


def mpmc_4x4_bounded1000(n):
    q = queue.Queue(1000)
    per = n // 4

    def produce():
        for i in range(per):
            q.put(i)

    def consume():
        for _ in range(per):
            q.get()

    t = time.perf_counter()
    threads = [threading.Thread(target=f) for f in [produce] * 4 + [consume] * 4]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return per * 4 / (time.perf_counter() - t)


def pingpong(n):
    ping, pong = queue.Queue(), queue.Queue()

    def echo():
        for _ in range(n):
            pong.put(ping.get())

    t = time.perf_counter()
    th = threading.Thread(target=echo)
    th.start()
    for i in range(n):
        ping.put(i)
        pong.get()
    th.join()
    return (time.perf_counter() - t) * 1e6 / n


CASES = {
    "st_put_get": (st_put_get, 200_000, 50_000),
    "spsc_unbounded": (spsc_unbounded, 200_000, 50_000),
    "spsc_bounded1000": (spsc_bounded1000, 200_000, 50_000),
    "mpmc_4x4_bounded1000": (mpmc_4x4_bounded1000, 200_000, 50_000),
    "pingpong": (pingpong, 20_000, 5_000),
}

if __name__ == "__main__":
    fn, n, quick_n = CASES[sys.argv[1]]
    print(fn(quick_n if "--quick" in sys.argv[2:] else n))
