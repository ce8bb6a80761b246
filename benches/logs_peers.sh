#!/usr/bin/env bash
# Log ingest: instantops end to end (TCP in, WAL fsynced, indexed, committed:
# searchable) against bare Tantivy indexing of the same events with the same
# schema (`bench logs --proto bare|bare-json|bare-bulk`: no network, no WAL,
# events generated, parsed and made into documents before the clock starts),
# same machine, interleaved, RUNS rounds.
#
#   BIN=path/to/instantops benches/logs_peers.sh
#
# Each round, per shape (syslog TCP, json TCP, _bulk): bare Tantivy on 1M
# events of that shape, then a fresh appliance loaded for DURATION s at rate 0 (as fast
# as the receiver takes it) with 2 connections and timed until
# instantops_logs_indexed_total (committed) counts every event. After the
# load the appliance is stopped (SIGTERM: last commit, merges finish) and the
# index size on disk is divided by the bytes of events sent (index / raw).
# Prints one line per run and the medians.
set -euo pipefail
BIN=${BIN:-$HOME/.cache/instantops-target/release/instantops}
RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
OUT=${OUT:-/tmp/io-bench/logs_peers-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
echo "binary $(sha256sum "$BIN" | cut -c1-12), $RUNS runs, $DURATION s, results in $OUT" | tee "$OUT/summary.txt"

start() {
  local dir=$1
  env INSTANTOPS_HTTP__LISTEN=127.0.0.1:0 INSTANTOPS_STATSD__UDP=off INSTANTOPS_STATSD__TCP=off INSTANTOPS_STATSD__ADMIN=off \
    INSTANTOPS_CARBON__TCP=off INSTANTOPS_CARBON__UDP=off INSTANTOPS_CARBON__PICKLE=off INSTANTOPS_LOGS__SYSLOG_UDP=off \
    INSTANTOPS_LOGS__GELF_UDP=off INSTANTOPS_LOGS__RESP=off INSTANTOPS_LOGS__SYSLOG_TCP=127.0.0.1:0 \
    INSTANTOPS_LOGS__JSON_TCP=127.0.0.1:0 INSTANTOPS_LOGS__ELASTICSEARCH=127.0.0.1:0 \
    "$BIN" serve --data-dir "$dir/data" > "$dir/stdout" 2> "$dir/stderr" &
  PID=$!
  for _ in $(seq 100); do grep -q '^ready$' "$dir/stdout" 2>/dev/null && return 0; sleep 0.1; done
  echo "not ready" >&2; exit 1
}
addr() { grep "^listening $2 " "$1/stdout" | awk '{print $3}'; }

for run in $(seq "$RUNS"); do
  for shape in syslog json bulk; do
    scratch=$(mktemp -d)
    line=$("$BIN" bench logs --proto "bare-$shape" --to "$scratch" --rate 0 2> "$OUT/bare-$shape-$run.err")
    echo "run $run bare-$shape: $line $(cat "$OUT/bare-$shape-$run.err")" | tee -a "$OUT/summary.txt"
    rm -rf "$scratch"
    dir=$(mktemp -d)
    start "$dir"
    case $shape in syslog) to=$(addr "$dir" syslog_tcp) ;; json) to=$(addr "$dir" json_tcp) ;; bulk) to=$(addr "$dir" elasticsearch) ;; esac
    http=$(addr "$dir" http)
    line=$("$BIN" bench logs --to "$to" --proto $shape --rate 0 --duration "$DURATION" --connections 2 \
      --wait-metric "http://$http/metrics" instantops_logs_indexed_total)
    kill -TERM $PID; wait $PID || true
    index=$(du -sb "$dir/data/logs/index" | cut -f1)
    echo "run $run $shape: $line; index $index bytes" | tee -a "$OUT/summary.txt"
    rm -rf "$dir"
  done
done

python3 - "$OUT/summary.txt" <<'PY'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    m = re.match(r'run \d+ ([\w-]+): sent (\d+) events \(([\d.]+) MB', line)
    if not m:
        continue
    shape, events, mb = m.group(1), int(m.group(2)), float(m.group(3))
    if shape.startswith('bare'):
        rate = float(re.search(r'([\d.]+) events/s', line).group(1))
        ratio = float(re.search(r'\(([\d.]+)x\)', line).group(1))
    else:
        rate = float(re.search(r'([\d.]+) events/s, [\d.]+ MB/s end to end', line).group(1))
        ratio = int(re.search(r'index (\d+) bytes', line).group(1)) / (mb * 1e6)
    rows.setdefault(shape, []).append((rate, mb, ratio, events))
print('| shape | median events/s | MB/s (median) | vs bare Tantivy, same events | index / raw |')
print('|---|---|---|---|---|')
for shape in ['syslog', 'json', 'bulk']:
    for name in ['bare-' + shape, shape]:
        if name not in rows:
            continue
        rates = [r[0] for r in rows[name]]
        med = statistics.median(rates)
        bare = statistics.median(r[0] for r in rows.get('bare-' + shape, [(med,)]))
        mbs = statistics.median(r[0] * r[1] / r[3] for r in rows[name])
        print(f"| {name} | {med:,.0f} ({', '.join(f'{r:,.0f}' for r in rates)}) | {mbs:.1f} | {med / bare:.2f}x | {statistics.median(r[2] for r in rows[name]):.2f} |")
PY
