"""Python contenders of `spindle bench process` (multiprocessing).

    python3 process.py CASE [--quick]

Measures itself and prints ONE number in the case's unit:
  start_fork, start_spawn, start_forkserver   µs per Process start()+join()
  pipe_roundtrip   µs per send()+recv() of a small int through an echo child
  pipe_1mib        bytes/s: send_bytes of 1 MiB blocks to a child
  queue_small      items/s: a child puts small ints, the parent gets them
  queue_64kib      bytes/s: a child puts 64 KiB bytes objects, the parent gets them
  value_incr       increments/s: 4 children add 1 to one shared Value under its lock
"""
import multiprocessing as mp
import sys
import time


def noop():
    pass


def start_join(method, quick):
    ctx = mp.get_context(method)
    n = {'fork': 20 if quick else 100, 'spawn': 3 if quick else 10,
         'forkserver': 10 if quick else 50}[method]
    # Start the fork server (and warm the context) outside the timing.
    p = ctx.Process(target=noop)
    p.start()
    p.join()
    start = time.perf_counter()
    for _ in range(n):
        p = ctx.Process(target=noop)
        p.start()
        p.join()
    return (time.perf_counter() - start) * 1e6 / n


def echo(conn):
    # Stops on an empty message: with fork the child also inherits the
    # parent's end, so end-of-file alone would never arrive.
    while True:
        b = conn.recv_bytes()
        if not b:
            return
        conn.send_bytes(b)


def pipe_roundtrip(quick):
    n = 2_000 if quick else 10_000
    a, b = mp.Pipe()
    p = mp.Process(target=echo, args=(b,))
    p.start()
    b.close()
    a.send(0)
    a.recv()
    start = time.perf_counter()
    for i in range(n):
        a.send(i)
        assert a.recv() == i
    secs = time.perf_counter() - start
    a.send_bytes(b'')
    p.join()
    return secs * 1e6 / n


def sink(conn):
    total = 0
    while True:
        b = conn.recv_bytes()
        if not b:
            break
        total += len(b)
    conn.send(total)


def pipe_1mib(quick):
    mib = 64 if quick else 256
    a, b = mp.Pipe()
    p = mp.Process(target=sink, args=(b,))
    p.start()
    block = b'\x01' * (1 << 20)
    start = time.perf_counter()
    for _ in range(mib):
        a.send_bytes(block)
    a.send_bytes(b'')
    assert a.recv() == mib << 20
    secs = time.perf_counter() - start
    p.join()
    return (mib << 20) / secs


def producer(q, n, size):
    item = b'\x07' * size if size else None
    for i in range(n):
        q.put(item if size else i)


def queue_rate(quick, size):
    n = (20_000 if quick else 100_000) if size == 0 else (500 if quick else 2_000)
    q = mp.Queue()
    p = mp.Process(target=producer, args=(q, n, size))
    start = time.perf_counter()
    p.start()
    for _ in range(n):
        q.get()
    secs = time.perf_counter() - start
    p.join()
    return n / secs if size == 0 else n * size / secs


def incr(v, go, n):
    go.wait()
    for _ in range(n):
        with v.get_lock():
            v.value += 1


def value_incr(quick):
    procs, n = 4, (20_000 if quick else 100_000)
    v = mp.Value('q', 0)
    go = mp.Barrier(procs + 1)
    ps = [mp.Process(target=incr, args=(v, go, n)) for _ in range(procs)]
    for p in ps:
        p.start()
    go.wait()
    start = time.perf_counter()
    for p in ps:
        p.join()
    secs = time.perf_counter() - start
    assert v.value == procs * n
    return procs * n / secs


CASES = {
    'start_fork': lambda q: start_join('fork', q),
    'start_spawn': lambda q: start_join('spawn', q),
    'start_forkserver': lambda q: start_join('forkserver', q),
    'pipe_roundtrip': pipe_roundtrip,
    'pipe_1mib': pipe_1mib,
    'queue_small': lambda q: queue_rate(q, 0),
    'queue_64kib': lambda q: queue_rate(q, 64 << 10),
    'value_incr': value_incr,
}

if __name__ == '__main__':
    case = sys.argv[1]
    quick = '--quick' in sys.argv[2:]
    print('%.1f' % CASES[case](quick))
