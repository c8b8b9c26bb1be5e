"""Python contenders of `spindle bench sched` (sched.scheduler, threading.Timer).

    python3 sched.py CASE [--quick]

Measures itself and prints ONE number in the case's unit:
  enter_run           events/s: enterabs N due events (priorities 0..9), then run()
  timer_start_cancel  timers/s: start N one-hour Timers, cancel and join each
"""
import sys

# This file is named sched.py: drop its own folder from the path so that
# `import sched` finds the standard library's module, not this script.
del sys.path[0]

import sched  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402


def enter_run(quick):
    # A rate: fewer events than the Rust side (Python is ~100x slower here).
    n = 5_000 if quick else 20_000
    count = [0]

    def fun():
        count[0] += 1

    start = time.perf_counter()
    s = sched.scheduler(time.monotonic, time.sleep)
    now = time.monotonic()
    for i in range(n):
        s.enterabs(now, i % 10, fun)
    s.run()
    secs = time.perf_counter() - start
    assert count[0] == n
    return n / secs


def timer_start_cancel(quick):
    n = 300 if quick else 1_000
    start = time.perf_counter()
    for _ in range(n):
        t = threading.Timer(3600, lambda: None)
        t.start()
        t.cancel()
        t.join()
    secs = time.perf_counter() - start
    return n / secs


CASES = {'enter_run': enter_run, 'timer_start_cancel': timer_start_cancel}

if __name__ == '__main__':
    case = sys.argv[1]
    quick = '--quick' in sys.argv[2:]
    print('%.1f' % CASES[case](quick))
