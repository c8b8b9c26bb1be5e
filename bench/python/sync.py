"""Suite `sync`: Python's threading objects, the contender of
crates/spindle-bench/src/sync.rs (same cases, same units, same shapes).

    python3 sync.py CASE [--quick]

Prints one number: ops/s for lock_uncontended, lock_contended_2t,
rlock_reentrant, semaphore_uncontended; microseconds per round trip for
event_pingpong and condition_pingpong.
"""
import sys
import threading
import time


def per_sec(n, job):
    t = time.perf_counter()
    job(n)
    return n / (time.perf_counter() - t)


def micros_per(n, job):
    t = time.perf_counter()
    job(n)
    return (time.perf_counter() - t) * 1e6 / n


def lock_uncontended(n):
    lock = threading.Lock()
    for _ in range(n):
        with lock:
            pass


def lock_contended_2t(n):
    lock = threading.Lock()
    state = {'counter': 0}

    def work():
        for _ in range(n // 2):
            with lock:
                state['counter'] += 1

    ts = [threading.Thread(target=work) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def rlock_reentrant(n):
    rlock = threading.RLock()
    for _ in range(n):
        with rlock:
            with rlock:
                pass


def semaphore_uncontended(n):
    sem = threading.Semaphore(1)
    for _ in range(n):
        sem.acquire()
        sem.release()


def pingpong(n, side_a, side_b):
    def partner():
        for _ in range(n):
            side_b()
    t = threading.Thread(target=partner)
    t.start()
    for _ in range(n):
        side_a()
    t.join()


def event_pingpong(n):
    ping, pong = threading.Event(), threading.Event()

    def a():
        ping.set()
        pong.wait()
        pong.clear()

    def b():
        ping.wait()
        ping.clear()
        pong.set()
    pingpong(n, a, b)


def condition_pingpong(n):
    cond = threading.Condition(threading.Lock())
    state = {'turn': 0}

    def side(me):
        with cond:
            while state['turn'] != me:
                cond.wait()
            state['turn'] = 1 - me
            cond.notify()
    pingpong(n, lambda: side(0), lambda: side(1))


CASES = {
    # case: (measure, n quick, n full)
    'lock_uncontended': (per_sec, lock_uncontended, 300_000, 1_000_000),
    'lock_contended_2t': (per_sec, lock_contended_2t, 200_000, 1_000_000),
    'rlock_reentrant': (per_sec, rlock_reentrant, 200_000, 1_000_000),
    'semaphore_uncontended': (per_sec, semaphore_uncontended, 100_000, 500_000),
    'event_pingpong': (micros_per, event_pingpong, 2_000, 10_000),
    'condition_pingpong': (micros_per, condition_pingpong, 2_000, 10_000),
}


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in CASES:
        sys.exit('usage: sync.py {%s} [--quick]' % '|'.join(CASES))
    measure, job, quick, full = CASES[sys.argv[1]]
    n = quick if '--quick' in sys.argv[2:] else full
    print(measure(n, job))


if __name__ == '__main__':
    main()
