"""Python contenders of `spindle bench pool` (multiprocessing.Pool and
concurrent.futures.ProcessPoolExecutor, default start method).

    python3 pool_api.py CASE [--quick]

Measures itself (the pool is started and warmed outside the timing) and
prints ONE number in the case's unit:
  map_chunk1            tasks/s: Pool.map of 10k tiny tasks, chunksize=1
  map_chunk100          tasks/s: the same with chunksize=100
  apply_async_roundtrip µs per Pool.apply_async(f, (i,)).get()
  map_chunk1_ppe        tasks/s: ProcessPoolExecutor.map, chunksize=1
  apply_async_roundtrip_ppe  µs per ProcessPoolExecutor.submit(f, i).result()
  large_result_256mib   bytes/s: Pool.apply(big, (256 MiB,)), a task
                        returning 256 MiB of bytes (2 per sample with
                        --quick, else 4). The parent unpickles every
                        result into a new bytes object: Python has no
                        counterpart of spindle's zero-copy SharedBytes
                        (impl spindle_shared) or of a SharedBytesMut
                        filled in place (impl spindle_mut), so one case
                        serves all three.
"""
import concurrent.futures as cf
import multiprocessing as mp
import os
import sys
import time


def tiny(n):
    return n + 1


def big(n):
    return b'\x07' * n


LARGE = 256 << 20


def pool_large_result(reps):
    with mp.Pool(workers()) as pool:
        pool.apply(big, (1,))
        start = time.perf_counter()
        for _ in range(reps):
            out = pool.apply(big, (LARGE,))
            assert len(out) == LARGE
            del out
        secs = time.perf_counter() - start
    return reps * LARGE / secs


def workers():
    return os.cpu_count() or 1


def pool_map(n, chunksize):
    with mp.Pool(workers()) as pool:
        pool.map(tiny, range(100), chunksize=1)  # warm up
        start = time.perf_counter()
        out = pool.map(tiny, range(n), chunksize=chunksize)
        secs = time.perf_counter() - start
    assert out[-1] == n
    return n / secs


def pool_roundtrip(n):
    with mp.Pool(workers()) as pool:
        pool.apply_async(tiny, (0,)).get()
        start = time.perf_counter()
        for i in range(n):
            assert pool.apply_async(tiny, (i,)).get() == i + 1
        return (time.perf_counter() - start) * 1e6 / n


def ppe_map(n, chunksize):
    with cf.ProcessPoolExecutor(workers()) as ex:
        list(ex.map(tiny, range(100)))
        start = time.perf_counter()
        out = list(ex.map(tiny, range(n), chunksize=chunksize))
        secs = time.perf_counter() - start
    assert out[-1] == n
    return n / secs


def ppe_roundtrip(n):
    with cf.ProcessPoolExecutor(workers()) as ex:
        ex.submit(tiny, 0).result()
        start = time.perf_counter()
        for i in range(n):
            assert ex.submit(tiny, i).result() == i + 1
        return (time.perf_counter() - start) * 1e6 / n


def main():
    case = sys.argv[1]
    quick = '--quick' in sys.argv[2:]
    n_map = 3_000 if quick else 10_000
    n_rt = 300 if quick else 2_000
    if case == 'map_chunk1':
        print(pool_map(n_map, 1))
    elif case == 'map_chunk100':
        print(pool_map(n_map * 10, 100))
    elif case == 'apply_async_roundtrip':
        print(pool_roundtrip(n_rt))
    elif case == 'map_chunk1_ppe':
        print(ppe_map(n_map, 1))
    elif case == 'apply_async_roundtrip_ppe':
        print(ppe_roundtrip(n_rt))
    elif case == 'large_result_256mib':
        print(pool_large_result(2 if quick else 4))
    else:
        sys.exit(f'unknown case {case}')


if __name__ == '__main__':
    main()
