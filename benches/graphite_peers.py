#!/usr/bin/python3
"""Graphite API query latency: instantops against real graphite-web 1.1.8, same
data, same machine, one server queried at a time, everything on 127.0.0.1.

    BIN=path/to/instantops /usr/bin/python3 benches/graphite_peers.py [--find-series N] [--rounds R] [--requests K]

What it does, then prints a markdown table (and writes results.json to --out):
- starts instantops on a fresh data dir (every listener on 127.0.0.1:0) and sends it
  over carbon plaintext (a) a find namespace of N series (default 1,000,000),
  `find.a<0-99>.b<0-99>.c<0-99>` one point each, and (b) 100 render series
  `render.s<0-99>` x 24 h at 10 s (864,000 points), then waits until the store has
  them all and has flushed (they answer /metrics/find);
- writes the same 100 render series as whisper files (10s:1d, xff 0.5, average)
  with Debian's python3-whisper and starts graphite-web on them
  (tests/oracle/graphite_web.py: Django's threaded development server, one process);
- times each query K times (after 2 warm-ups) per round, R rounds interleaved
  between the servers, over one keep-alive connection per server; reports the
  median over rounds of each round's p50 and p90, and the ratio of p50s; and
  each render's very first request (instantops decodes its chunks then; later
  requests read them from its decoded-chunk cache). Timing starts once
  instantops has been idle (under 0.05 cores for 3 s): it compacts the
  freshly sent namespace in the background for a minute or more.

Finds run on instantops only (graphite-web has no such namespace here; the issue's
find target is absolute). Needs the system python3 (graphite-web, whisper).
"""

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

import whisper

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

FIND_QUERIES = ['find.*', 'find.a17.*', 'find.a17.b42.*', 'find.*.b42.c7', 'find.a1*.b4*.c9', 'find.a17.b42.c7']
RENDER_TARGETS = [
    'sumSeries(render.*)',
    'averageSeries(render.s1*)',
    'render.s42',
    'movingAverage(render.s42,60)',
    'summarize(render.*,"1h","max")',
    'aliasByNode(scale(render.s1*,2),1)',
]


def say(msg):
    print('[%s] %s' % (time.strftime('%H:%M:%S'), msg), file=sys.stderr, flush=True)


def start_instantops(binary, data_dir, log_dir):
    env = dict(os.environ)
    for key in ['HTTP__LISTEN', 'STATSD__UDP', 'STATSD__TCP', 'STATSD__ADMIN', 'CARBON__TCP', 'CARBON__UDP', 'CARBON__PICKLE',
                'LOGS__SYSLOG_UDP', 'LOGS__SYSLOG_TCP', 'LOGS__JSON_TCP', 'LOGS__GELF_UDP', 'LOGS__RESP', 'LOGS__ELASTICSEARCH']:
        env['INSTANTOPS_' + key] = '127.0.0.1:0'
    env['INSTANTOPS_GRAPHITE__MAX_SERIES'] = '2000000'
    config = os.path.join(log_dir, 'instantops.toml')
    with open(config, 'w') as f:
        f.write('[[carbon.schemas]]\nname = "all"\npattern = ".*"\nretentions = "10s:1d"\n')
    proc = subprocess.Popen([binary, 'serve', '--config', config, '--data-dir', data_dir], env=env, stdout=subprocess.PIPE,
                            stderr=open(os.path.join(log_dir, 'instantops.err'), 'w'), text=True)
    listeners = {}
    deadline = time.time() + 60
    for line in proc.stdout:
        parts = line.split()
        if parts[:1] == ['listening']:
            listeners[parts[1]] = parts[2]
        if parts == ['ready'] or time.time() > deadline:
            break
    if 'http' not in listeners:
        raise SystemExit('instantops did not start: see %s' % log_dir)
    return proc, listeners


def send_lines(addr, lines):
    host, port = addr.rsplit(':', 1)
    with socket.create_connection((host, int(port))) as s:
        batch = []
        for line in lines:
            batch.append(line)
            if len(batch) >= 10000:
                s.sendall(''.join(batch).encode())
                batch = []
        if batch:
            s.sendall(''.join(batch).encode())


def get(conn, path):
    conn.request('GET', path)
    r = conn.getresponse()
    body = r.read()
    if r.status != 200:
        raise SystemExit('%s -> %d %s' % (path, r.status, body[:300]))
    return body


def wait_for(what, probe, seconds=600):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if probe():
            return
        time.sleep(0.5)
    raise SystemExit('timed out waiting for ' + what)


def cpu_seconds(pid):
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def wait_idle(pid, seconds=300):
    """Waits until the process used under 0.05 cores over 3 s; returns how long that took."""
    t0 = time.time()
    while time.time() - t0 < seconds:
        before = cpu_seconds(pid)
        time.sleep(3)
        if cpu_seconds(pid) - before < 0.15:
            break
    return time.time() - t0


def timed(conn, path, k):
    for _ in range(2):
        get(conn, path)
    times = []
    for _ in range(k):
        t0 = time.perf_counter()
        get(conn, path)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.9) - 1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--find-series', type=int, default=1_000_000)
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--requests', type=int, default=30)
    ap.add_argument('--out', default='/tmp/io-bench/graphite_peers-' + time.strftime('%Y%m%d-%H%M%S'))
    args = ap.parse_args()
    binary = os.environ.get('BIN', os.path.expanduser('~/.cache/instantops-target/release/instantops'))
    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix='graphite_peers.')
    procs = []
    try:
        io, listeners = start_instantops(binary, os.path.join(work, 'data'), args.out)
        procs.append(io)
        io_http = listeners['http']
        now = int(time.time()) // 10 * 10
        side = round(args.find_series ** (1 / 3))
        say('sending %d find series (%d^3) and 100 x 8640 render points' % (side ** 3, side))
        t0 = time.time()
        send_lines(listeners['carbon_tcp'],
                   ('find.a%d.b%d.c%d 1 %d\n' % (i // (side * side), i // side % side, i % side, now) for i in range(side ** 3)))
        start = now - 86400 + 10
        render_points = {('render.s%d' % s): [(start + i * 10, round(50 + 40 * ((i * 7 + s * 13) % 97) / 97, 2)) for i in range(8640)]
                         for s in range(100)}
        send_lines(listeners['carbon_tcp'],
                   ('%s %s %d\n' % (name, v, t) for i in range(8640) for name, pts in render_points.items() for (t, v) in [pts[i]]))
        io_conn = http.client.HTTPConnection(*io_http.rsplit(':', 1))

        def loaded():
            last = json.loads(get(io_conn, '/metrics/find?query=find.a%d.b%d.*' % (side - 1, side - 1)))
            full = json.loads(get(io_conn, '/render?target=render.s99&from=-24h&format=json&now=%d' % now))
            return len(last) == side and full and sum(1 for v, _ in full[0]['datapoints'] if v is not None) >= 8639
        wait_for('instantops to hold every point', loaded)
        say('instantops loaded in %.1f s' % (time.time() - t0))

        whisper_dir = os.path.join(work, 'whisper')
        for name, pts in render_points.items():
            path = os.path.join(whisper_dir, *name.split('.')) + '.wsp'
            os.makedirs(os.path.dirname(path), exist_ok=True)
            whisper.create(path, [(10, 8640)], xFilesFactor=0.5, aggregationMethod='average')
            whisper.update_many(path, pts)
        web = subprocess.Popen(['/usr/bin/python3', os.path.join(REPO, 'tests/oracle/graphite_web.py'), '--whisper-dir', whisper_dir,
                                '--work-dir', os.path.join(work, 'web')], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=open(os.path.join(args.out, 'graphite-web.err'), 'w'), text=True)
        procs.append(web)
        line = web.stdout.readline().split()
        if line[:2] != ['listening', 'graphite-web']:
            raise SystemExit('graphite-web did not start: %r' % line)
        web_conn = http.client.HTTPConnection(*line[2].rsplit(':', 1))

        # Both servers idle before timing: graphite-web has nothing left to do
        # once its whisper files are written, while instantops compacts the
        # 1M series it was just sent for a minute or more (RocksDB, in the
        # background); timing during that measures the compaction too.
        settled = wait_idle(io.pid)
        say('instantops idle after %.0f s' % settled)

        # First request of each render, before anything is cached: instantops
        # decodes (and RocksDB merges) every chunk once here.
        cold = {}
        for t in RENDER_TARGETS:
            path = '/render?format=json&from=-24h&now=%d&target=%s' % (now, urllib.parse.quote(t))
            for who, conn in (('io', io_conn), ('web', web_conn)):
                t0 = time.perf_counter()
                get(conn, path)
                cold.setdefault(t, {})[who] = (time.perf_counter() - t0) * 1000
        rows = {}
        for rnd in range(args.rounds):
            say('round %d' % (rnd + 1))
            for q in FIND_QUERIES:
                path = '/metrics/find?query=' + urllib.parse.quote(q)
                rows.setdefault(('find', q), {'io': [], 'web': []})['io'].append(timed(io_conn, path, args.requests))
            for t in RENDER_TARGETS:
                path = '/render?format=json&from=-24h&now=%d&target=%s' % (now, urllib.parse.quote(t))
                a = json.loads(get(io_conn, path))
                b = json.loads(get(web_conn, path))
                if [s['target'] for s in a] != [s['target'] for s in b] or [len(s['datapoints']) for s in a] != [len(s['datapoints']) for s in b]:
                    raise SystemExit('answers differ for %s' % t)
                for who, conn in (('io', io_conn), ('web', web_conn)):
                    rows.setdefault(('render', t), {'io': [], 'web': []})[who].append(timed(conn, path, args.requests))

        def med(samples, i):
            return statistics.median(s[i] for s in samples) if samples else None
        out = ['| query | instantops p50 ms | p90 ms | first request ms | graphite-web p50 ms | p90 ms | first request ms | ratio (p50) |',
               '|---|---|---|---|---|---|---|---|']
        results = []
        for (kind, q), r in rows.items():
            io50, io90, w50, w90 = med(r['io'], 0), med(r['io'], 1), med(r['web'], 0), med(r['web'], 1)
            ratio = '%.0fx' % (w50 / io50) if w50 else ''
            c = cold.get(q, {})
            fmt = lambda v: '%.1f' % v if v else ''
            out.append('| %s `%s` | %.2f | %.2f | %s | %s | %s | %s | %s |' % (kind, q, io50, io90, fmt(c.get('io')), fmt(w50), fmt(w90), fmt(c.get('web')), ratio))
            results.append({'kind': kind, 'query': q, 'io_p50': io50, 'io_p90': io90, 'web_p50': w50, 'web_p90': w90, 'first': c})
        with open(os.path.join(args.out, 'results.json'), 'w') as f:
            json.dump({'find_series': side ** 3, 'rounds': args.rounds, 'requests': args.requests, 'results': results}, f, indent=1)
        print('\n'.join(out))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
