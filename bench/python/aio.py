"""Python contenders of `spindle bench aio` (asyncio and a generator scheduler).

    python3 aio.py CASE [--quick]

Measures itself and prints ONE number in the case's unit:
  spawn_gather_100k   tasks/s: asyncio.gather of N trivial tasks
                      (create_task each, then gather), in a running loop
  async_queue_spsc    items/s: one producer task puts N ints into an
                      asyncio.Queue(maxsize=1024), one consumer gets them
  scheduler_switches  switches/s: a round-robin generator scheduler (the
                      Cookbook's TaskScheduler, recipe 12.12) runs T tasks
                      of S bare `yield`s each
The echo case runs echo.py's servers instead.
"""
import asyncio
import collections
import sys
import time


def spawn_gather_100k(quick):
    n = 20_000 if quick else 100_000

    async def trivial(i):
        return i

    async def main():
        start = time.perf_counter()
        tasks = [asyncio.create_task(trivial(i)) for i in range(n)]
        out = await asyncio.gather(*tasks)
        secs = time.perf_counter() - start
        assert out[-1] == n - 1
        return n / secs

    return asyncio.run(main())


def async_queue_spsc(quick):
    n = 50_000 if quick else 200_000

    async def main():
        q = asyncio.Queue(maxsize=1024)

        async def producer():
            for i in range(n):
                await q.put(i)

        async def consumer():
            total = 0
            for _ in range(n):
                total += await q.get()
            return total

        start = time.perf_counter()
        _, total = await asyncio.gather(producer(), consumer())
        secs = time.perf_counter() - start
        assert total == n * (n - 1) // 2
        return n / secs

    return asyncio.run(main())


def scheduler_switches(quick):
    tasks, steps = (100, 1_000) if quick else (100, 5_000)

    def task(steps):
        for _ in range(steps):
            yield

    ready = collections.deque(task(steps) for _ in range(tasks))
    switches = 0
    start = time.perf_counter()
    while ready:
        t = ready.popleft()
        try:
            next(t)
            switches += 1
            ready.append(t)
        except StopIteration:
            pass
    secs = time.perf_counter() - start
    assert switches == tasks * steps
    return switches / secs


CASES = {
    'spawn_gather_100k': spawn_gather_100k,
    'async_queue_spsc': async_queue_spsc,
    'scheduler_switches': scheduler_switches,
}

if __name__ == '__main__':
    case = sys.argv[1]
    quick = '--quick' in sys.argv[2:]
    print('%.1f' % CASES[case](quick))
