"""Python contenders for `spindle bench thread`: the classic threading programs
reduced to one measurable operation each.

    python3 thread.py CASE [--quick]

Prints ONE number in the case's unit:
  spawn_join     µs per Thread(target=f).start(); .join() of an empty target
  local_access   ns per read+write of a threading.local() attribute
  gil_countdown  seconds for CountDown(N) split over 2 threads (the GIL demo)
"""
import sys
import threading
import time


def spawn_join(quick):
    n = 500 if quick else 2000

    def f():
        pass

    start = time.perf_counter()
    for _ in range(n):
        t = threading.Thread(target=f)
        t.start()
        t.join()
    return (time.perf_counter() - start) * 1e6 / n


def local_access(quick):
    n = 200_000 if quick else 1_000_000
    local = threading.local()
    local.x = 0
    start = time.perf_counter()
    for i in range(n):
        local.x = local.x + i
    return (time.perf_counter() - start) * 1e9 / n


def count_down(n):
    while n > 0:
        n -= 1


def gil_countdown(quick):
    n = 2_000_000 if quick else 10_000_000
    start = time.perf_counter()
    t1 = threading.Thread(target=count_down, args=[n // 2])
    t2 = threading.Thread(target=count_down, args=[n // 2])
    t1.start()
    t2.start()
    t1.join()
    t2.join()
    return time.perf_counter() - start


CASES = {
    'spawn_join': spawn_join,
    'local_access': local_access,
    'gil_countdown': gil_countdown,
}

if __name__ == '__main__':
    case = sys.argv[1]
    quick = '--quick' in sys.argv[2:]
    print(CASES[case](quick))
