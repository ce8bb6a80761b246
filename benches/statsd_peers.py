#!/usr/bin/python3
"""statsd UDP ingest: instantops against Etsy statsd 0.9.0 (node), same machine,
same load, one receiver at a time, everything on 127.0.0.1.

    BIN=path/to/instantops ORACLE=dir-holding-node_modules/statsd /usr/bin/python3 benches/statsd_peers.py [--seconds S]

For each receiver and each load shape (30 metric lines a datagram, ~1.4 KB;
one metric a datagram), it climbs a ladder of rates, each run `--seconds` long
with `instantops bench statsd` (counters, sampled counters, timers, gauges and
sets over 10k names), and reports the highest rate at which the receiver
counted more than 99.9% of the metrics sent, with the receiver's CPU (cores)
during the run. A run's loss is 1 - counted / sent:
- instantops counts `instantops_received_total{input="statsd_udp"}` (samples
  it aggregated), read from /metrics once it stops growing;
- Etsy statsd counts `stats_counts.statsd.metrics_received`, summed over the
  flushes its graphite backend sends to a line capture here.
Each receiver starts fresh for every run (Etsy's default flushInterval 10 s
would leave a run's tail in the next flush, so both flush every 2 s).
Writes results.json and prints a markdown table.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))

LADDERS = {
    # (per_packet, sender threads): rates in metrics/s
    'instantops': {30: [1000000, 1500000, 2000000, 2500000, 3000000, 3500000, 4000000],
                   1: [200000, 300000, 400000, 500000, 600000, 700000]},
    'etsy': {30: [5000, 10000, 12500, 15000, 17500, 20000, 30000, 50000, 100000, 200000],
             1: [2000, 3000, 4000, 5000, 7500, 10000, 20000, 50000, 100000]},
}


def say(msg):
    print('[%s] %s' % (time.strftime('%H:%M:%S'), msg), file=sys.stderr, flush=True)


def free_port(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cpu_seconds(pid):
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(') ', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


class Instantops:
    name = 'instantops'

    def __init__(self, binary, work):
        self.udp_port = free_port(socket.SOCK_DGRAM)
        self.http_port = free_port()
        env = dict(os.environ)
        for key in ['STATSD__TCP', 'STATSD__ADMIN', 'CARBON__TCP', 'CARBON__UDP', 'CARBON__PICKLE', 'LOGS__SYSLOG_UDP',
                    'LOGS__SYSLOG_TCP', 'LOGS__JSON_TCP', 'LOGS__GELF_UDP', 'LOGS__RESP', 'LOGS__ELASTICSEARCH']:
            env['INSTANTOPS_' + key] = '127.0.0.1:0'
        env['INSTANTOPS_STATSD__UDP'] = '127.0.0.1:%d' % self.udp_port
        env['INSTANTOPS_HTTP__LISTEN'] = '127.0.0.1:%d' % self.http_port
        self.proc = subprocess.Popen([binary, 'serve', '--data-dir', os.path.join(work, 'data')], env=env,
                                     stdout=subprocess.PIPE, stderr=open(os.path.join(work, 'instantops.err'), 'w'), text=True)
        for line in self.proc.stdout:
            if line.strip() == 'ready':
                break

    def counted(self):
        body = urllib.request.urlopen('http://127.0.0.1:%d/metrics' % self.http_port).read().decode()
        total = 0.0
        for line in body.splitlines():
            if line.startswith('instantops_received_total{input="statsd_udp"}'):
                total = float(line.split()[-1])
        return total

    def settle(self, sent):
        last, stable = -1, 0
        while stable < 4:
            time.sleep(0.25)
            n = self.counted()
            stable = stable + 1 if n == last else 0
            last = n
        return last

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


class Etsy:
    name = 'etsy'

    def __init__(self, oracle, work):
        self.udp_port = free_port(socket.SOCK_DGRAM)
        self.received = []
        self.lock = threading.Lock()
        capture = socket.socket()
        capture.bind(('127.0.0.1', 0))
        capture.listen(16)
        self.capture = capture
        threading.Thread(target=self._capture, daemon=True).start()
        config = os.path.join(work, 'etsy.js')
        with open(config, 'w') as f:
            f.write("{ graphitePort: %d, graphiteHost: '127.0.0.1', address: '127.0.0.1', port: %d, mgmt_address: '127.0.0.1',"
                    " mgmt_port: %d, flushInterval: 2000, backends: ['./backends/graphite'] }"
                    % (capture.getsockname()[1], self.udp_port, free_port()))
        self.proc = subprocess.Popen(['node', 'stats.js', config], cwd=os.path.join(oracle, 'node_modules/statsd'),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_flushes(1, 30)

    def _capture(self):
        while True:
            conn, _ = self.capture.accept()
            data = b''
            while True:
                chunk = conn.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
            conn.close()
            value = 0.0
            for line in data.decode().splitlines():
                parts = line.split()
                if parts[:1] == ['stats_counts.statsd.metrics_received']:
                    value = float(parts[1])
            with self.lock:
                self.received.append(value)

    def _wait_flushes(self, n, seconds):
        deadline = time.time() + seconds
        while time.time() < deadline:
            with self.lock:
                if len(self.received) >= n:
                    return
            time.sleep(0.05)
        raise SystemExit('Etsy statsd did not flush')

    def counted(self):
        with self.lock:
            return sum(self.received)

    def settle(self, sent):
        # Two more flushes after sending: everything received is in them.
        with self.lock:
            seen = len(self.received)
        self._wait_flushes(seen + 2, 30)
        return self.counted()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def kernel_drops(port):
    """The drop counter of the UDP socket bound to `port` (/proc/net/udp)."""
    with open('/proc/net/udp') as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1].endswith(':%04X' % port):
                return int(fields[-1])
    return 0


def run(binary, receiver, per_packet, rate, seconds):
    before = receiver.counted()
    drops0 = kernel_drops(receiver.udp_port)
    c0 = cpu_seconds(receiver.proc.pid)
    out = subprocess.run([binary, 'bench', 'statsd', '--to', '127.0.0.1:%d' % receiver.udp_port, '--rate', str(rate),
                          '--duration', str(seconds), '--per-packet', str(per_packet)], capture_output=True, text=True, check=True).stdout
    c1 = cpu_seconds(receiver.proc.pid)
    sent = int(out.split()[1])
    counted = receiver.settle(sent) - before
    return {'rate': rate, 'sent': sent, 'counted': counted, 'loss': 1 - counted / sent, 'cores': (c1 - c0) / seconds,
            'kernel_drops': kernel_drops(receiver.udp_port) - drops0, 'report': out.strip()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--seconds', type=int, default=10)
    ap.add_argument('--out', default='/tmp/io-bench/statsd_peers-' + time.strftime('%Y%m%d-%H%M%S'))
    ap.add_argument('--only', choices=['instantops', 'etsy'])
    args = ap.parse_args()
    binary = os.environ.get('BIN', os.path.expanduser('~/.cache/instantops-target/release/instantops'))
    oracle = os.environ.get('ORACLE', os.path.expanduser('~/.cache/instantops-target/statsd-oracle'))
    os.makedirs(args.out, exist_ok=True)
    results = {}
    for name in ['instantops', 'etsy']:
        if args.only and name != args.only:
            continue
        for per_packet in [30, 1]:
            best, runs = None, []
            for rate in LADDERS[name][per_packet]:
                work = tempfile.mkdtemp(prefix='statsd_peers.')
                receiver = Instantops(binary, work) if name == 'instantops' else Etsy(oracle, work)
                try:
                    r = run(binary, receiver, per_packet, rate, args.seconds)
                finally:
                    receiver.stop()
                runs.append(r)
                say('%s %d/datagram %d metrics/s: sent %d counted %d loss %.4f%% cores %.2f kernel drops %d datagrams'
                    % (name, per_packet, rate, r['sent'], r['counted'], 100 * r['loss'], r['cores'], r['kernel_drops']))
                if r['loss'] < 0.001:
                    best = r
                else:
                    break
            results['%s/%d' % (name, per_packet)] = {'best': best, 'runs': runs}
    with open(os.path.join(args.out, 'results.json'), 'w') as f:
        json.dump(results, f, indent=1)
    print('| receiver | metrics per datagram | highest rate with < 0.1% loss (metrics/s) | achieved | loss | receiver cores |')
    print('|---|---|---|---|---|---|')
    for key, r in results.items():
        b = r['best']
        if b:
            print('| %s | %s | %d | %.0f | %.4f%% | %.2f |' % (key.split('/')[0], key.split('/')[1], b['rate'], b['sent'] / args.seconds,
                                                              100 * b['loss'], b['cores']))
        else:
            print('| %s | %s | none on the ladder | | | |' % tuple(key.split('/')))


if __name__ == '__main__':
    main()
