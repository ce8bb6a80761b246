#!/usr/bin/python3
"""A multi-series render while carbon ingest keeps the cores busy.

    BIN=path/to/instantops /usr/bin/python3 benches/render_under_ingest.py

Starts instantops on a fresh data dir (every listener on 127.0.0.1:0), loads
100 series x 24 h at 10 s over carbon plaintext, waits until it is idle, then
times `sumSeries(render.*)` 30 times idle and 30 times while `instantops bench
carbon --series 100000 --rate 0` sends as fast as the appliance reads for
20 s (the store's head then holds up to millions of unflushed points, which
every render lays over what it reads). Prints p50 and max of each.
"""

import http.client
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import graphite_peers as gp  # noqa: E402


def main():
    binary = os.environ.get('BIN', os.path.expanduser('~/.cache/instantops-target/release/instantops'))
    now = int(time.time()) // 10 * 10
    work = tempfile.mkdtemp(prefix='render_under_ingest.')
    proc, listeners = gp.start_instantops(binary, os.path.join(work, 'data'), work)
    try:
        start = now - 86400 + 10
        gp.send_lines(listeners['carbon_tcp'],
                      ('render.s%d %s %d\n' % (s, 50 + s, start + i * 10) for i in range(8640) for s in range(100)))
        conn = http.client.HTTPConnection(*listeners['http'].rsplit(':', 1))

        def loaded():
            body = gp.get(conn, '/render?target=render.s99&from=-24h&format=raw&now=%d' % now).decode()
            return body.count('149.0') >= 8639
        gp.wait_for('instantops to hold every point', loaded)
        gp.wait_idle(proc.pid)
        path = '/render?format=json&from=-24h&target=sumSeries(render.*)'

        def timed(n):
            times = []
            for _ in range(n):
                t0 = time.perf_counter()
                gp.get(conn, path)
                times.append((time.perf_counter() - t0) * 1000)
            return statistics.median(times), max(times)
        print('idle: sumSeries(render.*) p50 %.1f ms, max %.1f ms' % timed(30), flush=True)
        load = subprocess.Popen([binary, 'bench', 'carbon', '--to', listeners['carbon_tcp'], '--series', '100000', '--rate', '0',
                                 '--duration', '20'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(3)
        print('under carbon ingest: sumSeries(render.*) p50 %.1f ms, max %.1f ms' % timed(30), flush=True)
        load.wait()
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
