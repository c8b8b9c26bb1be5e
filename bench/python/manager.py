"""Python contenders of `spindle-bench manager` (multiprocessing.managers).

    python3 manager.py CASE [--quick]

Measures itself and prints ONE number in the case's unit. Every server is
a `BaseManager` subclass started in a child process (`start()`), bound to
127.0.0.1 port 0 (a free port) with a 32-byte authkey, and shut down at
the end; everything is bounded (N operations, then exit).

  queue_put_get       ops/s: one client, q.put(i) then q.get() on a
                      registered queue.Queue; one op = the pair
  queue_put_get_8c    ops/s: 8 threads on one proxy of that queue, each
                      doing the same pairs (each thread has its own
                      connection, made before the clock starts)
  connect_first_call  ms: median of K runs of: BaseManager(address,
                      authkey).connect(), the registered queue's proxy,
                      its first qsize(); each run in a new thread, so
                      that it opens its own connections as a new client
                      process would (proxies keep one per thread); one
                      more run before them warms the interpreter up
  dict_ops            ops/s: d[k] = i then d[k] on SyncManager().dict()
                      (the class multiprocessing.Manager() returns) on TCP
  dict_ops_unix       ops/s: the same on multiprocessing.Manager() itself
                      (a Unix socket)
  task_roundtrip      tasks/s: a server of two registered queues
                      (get_task_queue, get_result_queue); a worker process
                      connects, takes N ints, puts their squares; the
                      master puts N tasks then gets N results (the worker
                      started and connected before the clock starts)

CASE_nodelay runs CASE with TCP_NODELAY set on every socket of the
managers, client and server side. multiprocessing.connection opens its
sockets in SocketClient() (every connect) and SocketListener.accept()
(every accept) and hands them to a Connection as a bare file descriptor;
both are wrapped (patch_nodelay) to set the option on that descriptor
before returning. The patch is made at import when the environment
variable SPINDLE_BENCH_NODELAY is 1, which main() sets before any server
or worker starts: the children (fork, or a fresh interpreter with
spawn/forkserver importing this module) patch themselves too.
"""
import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import queue
import socket
import sys
import threading
import time
from multiprocessing.managers import BaseManager, SyncManager

KEY = b'spindle-bench-manager-authkey-32'
assert len(KEY) == 32
LOOPBACK = ('127.0.0.1', 0)
CLIENTS = 8


def set_nodelay(conn):
    """TCP_NODELAY on a Connection's socket (a no-op on a Unix socket)."""
    s = socket.socket(fileno=os.dup(conn.fileno()))
    try:
        if s.family in (socket.AF_INET, socket.AF_INET6):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    finally:
        s.close()


def patch_nodelay():
    client, accept = mpc.SocketClient, mpc.SocketListener.accept

    def socket_client(address):
        c = client(address)
        set_nodelay(c)
        return c

    def socket_accept(self):
        c = accept(self)
        set_nodelay(c)
        return c

    mpc.SocketClient = socket_client
    mpc.SocketListener.accept = socket_accept


if os.environ.get('SPINDLE_BENCH_NODELAY') == '1':
    patch_nodelay()


# The server's objects (made in the server process).
QUEUE = queue.Queue()
TASKS = queue.Queue()
RESULTS = queue.Queue()


def the_queue():
    return QUEUE


def task_queue():
    return TASKS


def result_queue():
    return RESULTS


class QueueManager(BaseManager):
    pass


QueueManager.register('q', callable=the_queue)
QueueManager.register('get_task_queue', callable=task_queue)
QueueManager.register('get_result_queue', callable=result_queue)


def start_server():
    m = QueueManager(address=LOOPBACK, authkey=KEY)
    m.start()
    return m


def put_get(n):
    with start_server() as m:
        q = m.q()
        q.put(-1)
        q.get()
        start = time.perf_counter()
        for i in range(n):
            q.put(i)
            assert q.get() == i
        return n / (time.perf_counter() - start)


def put_get_8c(n):
    with start_server() as m:
        q = m.q()
        go = threading.Barrier(CLIENTS + 1)

        def client():
            q.qsize()  # this thread's connection, before the clock
            go.wait()
            for i in range(n):
                q.put(i)
                q.get()

        threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        go.wait()
        start = time.perf_counter()
        for t in threads:
            t.join()
        return CLIENTS * n / (time.perf_counter() - start)


def connect_first_call(k):
    with start_server() as m:
        m.q().put(7)
        address = m.address
        times = []

        def one():
            start = time.perf_counter()
            c = QueueManager(address=address, authkey=KEY)
            c.connect()
            size = c.q().qsize()
            times.append((time.perf_counter() - start) * 1e3)
            assert size == 1, size

        for _ in range(k + 1):
            t = threading.Thread(target=one)
            t.start()
            t.join()
        del times[0]  # the first run warms this interpreter up: untimed
        assert len(times) == k
        times.sort()
        mid = k // 2
        return times[mid] if k % 2 else (times[mid - 1] + times[mid]) / 2


def dict_ops(n, manager):
    with manager as m:
        d = m.dict()
        d[0] = 0
        start = time.perf_counter()
        for i in range(n):
            d[i % 128] = i
            assert d[i % 128] == i
        return n / (time.perf_counter() - start)


def worker(address, n):
    m = QueueManager(address=address, authkey=KEY)
    m.connect()
    tasks, results = m.get_task_queue(), m.get_result_queue()
    results.put(-1)  # ready
    for _ in range(n):
        t = tasks.get()
        results.put(t * t)


def task_roundtrip(n):
    with start_server() as m:
        tasks, results = m.get_task_queue(), m.get_result_queue()
        p = mp.Process(target=worker, args=(m.address, n))
        p.start()
        assert results.get() == -1
        start = time.perf_counter()
        for i in range(n):
            tasks.put(i)
        total = 0
        for _ in range(n):
            total += results.get()
        secs = time.perf_counter() - start
        p.join()
        assert total == sum(i * i for i in range(n)), 'lost results'
        return n / secs


def main():
    case = sys.argv[1]
    quick = '--quick' in sys.argv[2:]
    if case.endswith('_nodelay'):
        case = case[:-len('_nodelay')]
        os.environ['SPINDLE_BENCH_NODELAY'] = '1'
        patch_nodelay()
    n = 2_000 if quick else 10_000
    if case == 'queue_put_get':
        print(put_get(n))
    elif case == 'queue_put_get_8c':
        print(put_get_8c(250 if quick else 1_000))
    elif case == 'connect_first_call':
        print(connect_first_call(3 if quick else 10))
    elif case == 'dict_ops':
        print(dict_ops(n, SyncManager(address=LOOPBACK, authkey=KEY)))
    elif case == 'dict_ops_unix':
        print(dict_ops(n, mp.Manager()))
    elif case == 'task_roundtrip':
        print(task_roundtrip(1_000 if quick else 5_000))
    else:
        sys.exit(f'unknown case {case}')


if __name__ == '__main__':
    main()
