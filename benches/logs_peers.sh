#!/usr/bin/env bash
# Log ingest: instantops end to end (TCP in, WAL fsynced, indexed, committed:
# searchable) against bare Tantivy indexing of the same events, same machine,
# interleaved, RUNS rounds. Three bare peers:
#   bare     `bench logs --proto bare-SHAPE`: the appliance's schema and
#            document code, no network, no WAL; the events are generated and
#            parsed before the clock starts, only documents, indexing and the
#            commit are timed.
#   tparse   the same with `--timed-parse`: each event's JSON is parsed inside
#            the timed part, as an indexer fed JSON lines must.
#   cli      tantivy-cli 0.24 (`tantivy index -t 2 -m 150000000`, the
#            appliance's threads and writer heap), fed the same events as
#            documents of the appliance's fields (tantivy_cli/convert.py; its
#            built-in tokenizers `raw` and `default`, and LZ4 for the doc store,
#            the codec its default build has). Its rate is its own "Nowait
#            Merge" figure: JSON parsing, indexing and the commit.
#            TANTIVY=path/to/tantivy, or it is built with cargo install (~8 min).
#
#   BIN=path/to/instantops benches/logs_peers.sh
#
# Each round, per shape (syslog TCP, json TCP, _bulk): the three bare peers on
# 1M events of that shape, then a fresh appliance loaded for DURATION s at rate 0 (as fast
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
HERE=$(cd "$(dirname "$0")" && pwd)
TANTIVY=${TANTIVY:-}
if [ -z "$TANTIVY" ]; then
  cargo install tantivy-cli --version 0.24.0 --root "$OUT/tantivy-cli" > "$OUT/tantivy-cli-build.log" 2>&1
  TANTIVY=$OUT/tantivy-cli/bin/tantivy
fi
echo "tantivy-cli: $("$TANTIVY" --version 2>&1 | head -1)" | tee -a "$OUT/summary.txt"
# The events tantivy-cli indexes: the bare run's 1M events of each shape, as
# the appliance stores them, made into documents of its fields.
for shape in syslog json bulk; do
  scratch=$(mktemp -d)
  "$BIN" bench logs --proto "bare-$shape" --to "$scratch" --rate 0 --dump "$scratch/events" > /dev/null 2>&1
  python3 "$HERE/tantivy_cli/convert.py" "$scratch/events" "$OUT/$shape.docs"
  rm -rf "$scratch"
done

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
    line=$("$BIN" bench logs --proto "bare-$shape" --to "$scratch" --rate 0 --timed-parse 2> "$OUT/tparse-$shape-$run.err")
    echo "run $run tparse-$shape: $line $(cat "$OUT/tparse-$shape-$run.err")" | tee -a "$OUT/summary.txt"
    mkdir "$scratch/cli" && cp "$HERE/tantivy_cli/meta.json" "$scratch/cli/"
    docs=$(wc -l < "$OUT/$shape.docs")
    mb=$("$TANTIVY" index -i "$scratch/cli" -t 2 -m 150000000 -f "$OUT/$shape.docs" 2>&1 | sed -n 's/^Total Nowait Merge: \([0-9.]*\) Mb\/s/\1/p')
    size=$(du -sb "$scratch/cli" | cut -f1)
    rate=$(python3 -c "print(round($docs * $mb * 1e6 / $(stat -c %s "$OUT/$shape.docs")))")
    echo "run $run cli-$shape: $docs documents at $mb MB/s of documents: $rate events/s; index $size bytes" | tee -a "$OUT/summary.txt"
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
rm -f "$OUT"/*.docs

python3 - "$OUT/summary.txt" <<'PY'
import re, statistics, sys
rows, cli = {}, {}
for line in open(sys.argv[1]):
    c = re.match(r'run \d+ cli-(\w+): \d+ documents at [\d.]+ MB/s of documents: (\d+) events/s; index (\d+) bytes', line)
    if c:
        cli.setdefault(c.group(1), []).append((float(c.group(2)), int(c.group(3))))
        continue
    m = re.match(r'run \d+ ([\w-]+): sent (\d+) events \(([\d.]+) MB', line)
    if not m:
        continue
    shape, events, mb = m.group(1), int(m.group(2)), float(m.group(3))
    if shape.startswith(('bare', 'tparse')):
        rate = float(re.search(r'([\d.]+) events/s', line).group(1))
        ratio = float(re.search(r'\(([\d.]+)x\)', line).group(1))
    else:
        rate = float(re.search(r'([\d.]+) events/s, [\d.]+ MB/s end to end', line).group(1))
        ratio = int(re.search(r'index (\d+) bytes', line).group(1)) / (mb * 1e6)
    rows.setdefault(shape, []).append((rate, mb, ratio, events))
print('| shape | median events/s | MB/s (median) | vs bare | vs tparse | vs tantivy-cli | index / raw |')
print('|---|---|---|---|---|---|---|')
for shape in ['syslog', 'json', 'bulk']:
    peers = {}
    for name in ['bare-' + shape, 'tparse-' + shape]:
        if name in rows:
            peers[name.split('-')[0]] = statistics.median(r[0] for r in rows[name])
    if shape in cli:
        peers['cli'] = statistics.median(r[0] for r in cli[shape])
    def ratios(med):
        return ' | '.join(f"{med / peers[p]:.2f}x" if p in peers else '' for p in ['bare', 'tparse', 'cli'])
    for name in ['bare-' + shape, 'tparse-' + shape, shape]:
        if name not in rows:
            continue
        rates = [r[0] for r in rows[name]]
        med = statistics.median(rates)
        mbs = statistics.median(r[0] * r[1] / r[3] for r in rows[name])
        print(f"| {name} | {med:,.0f} ({', '.join(f'{r:,.0f}' for r in rates)}) | {mbs:.1f} | {ratios(med)} | {statistics.median(r[2] for r in rows[name]):.2f} |")
    if shape in cli:
        rates = [r[0] for r in cli[shape]]
        mb = statistics.median(r[1] for r in cli[shape]) / 1e6
        print(f"| tantivy-cli {shape} | {peers['cli']:,.0f} ({', '.join(f'{r:,.0f}' for r in rates)}) | | {ratios(peers['cli'])} | index {mb:.1f} MB |")
PY
