"""Python Cookbook recipe 12.8: which hosts requested /robots.txt — the
recipe's own program, made bounded: a directory argument instead of 'logs',
and a fingerprint of the answer instead of one line per host. Modes: serial
(the recipe's `map`) and processes (its
`ProcessPoolExecutor().map(find_robots, files)`).

    python3 robots.py DIR [serial|processes] [WORKERS]

Prints `hosts: N`, `sha256: <16 hex>` (as `spindle robots` does), then, as
its last line, the seconds taken by find_all_robots (pool start included, as
in the recipe) as a bare number.

One change to find_robots: a line with fewer than 7 fields is skipped (the
recipe would stop with IndexError; `spindle gen-logs` writes a few such lines
on purpose). try/except costs nothing on the normal path in Python 3.11+.
"""
import os
import sys

# bench/python/queue.py would shadow the standard queue module that
# concurrent.futures.process imports.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != _here]

import glob  # noqa: E402
import gzip  # noqa: E402
import hashlib  # noqa: E402
import io  # noqa: E402
import time  # noqa: E402
from concurrent import futures  # noqa: E402


def find_robots(filename):
    '''
    Find all of the hosts that access robots.txt in a single log file
    '''
    robots = set()
    with gzip.open(filename) as f:
        for line in io.TextIOWrapper(f, encoding='ascii'):
            fields = line.split()
            try:
                if fields[6] == '/robots.txt':
                    robots.add(fields[0])
            except IndexError:
                pass  # a malformed line: skipped
    return robots


def find_all_robots(logdir, mode, workers):
    '''
    Find all hosts across and entire sequence of files
    '''
    files = glob.glob(logdir + '/*.log.gz')
    all_robots = set()
    if mode == 'serial':
        for robots in map(find_robots, files):
            all_robots.update(robots)
    else:
        with futures.ProcessPoolExecutor(max_workers=workers) as pool:
            for robots in pool.map(find_robots, files):
                all_robots.update(robots)
    return all_robots


if __name__ == '__main__':
    logdir = sys.argv[1]
    mode = sys.argv[2] if len(sys.argv) > 2 else 'processes'
    workers = int(sys.argv[3]) if len(sys.argv) > 3 else None
    start = time.perf_counter()
    robots = find_all_robots(logdir, mode, workers)
    secs = time.perf_counter() - start
    digest = hashlib.sha256('\n'.join(sorted(robots)).encode('ascii')).hexdigest()
    print('hosts: %d' % len(robots))
    print('sha256: %s' % digest[:16])
    print('%.6f' % secs)
