#!/usr/bin/env bash
# Soak under a memory limit: statsd (50k metrics/s over 20k names), carbon
# (100k points/s over 50k series), logstash JSON logs (5k events/s) and
# queries (render, log search, histogram) into one appliance with
# memory.limit = LIMIT, for DURATION s, RSS sampled every second from /proc.
# LOADS picks a subset ("statsd carbon logs"). The CI-length version is
# tests/it/soak.rs. Prints every sample, the peak against the limit, and
# /api/status's memory section at the end. Loopback only; stops by itself.
#
#   LIMIT=256MiB DURATION=60 benches/soak.sh
#
# DETAIL=1 also prints /api/status's memory section every second (each
# subsystem's use and the allocators' totals), to find what a peak is made of.
set -euo pipefail
BIN=${BIN:-$HOME/.cache/instantops-target/release/instantops}
LIMIT=${LIMIT:-256MiB}
DURATION=${DURATION:-60}
dir=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; rm -rf "$dir"' EXIT
printf '[memory]\nlimit = "%s"\n[logs]\ncommit_interval = "500ms"\n' "$LIMIT" > "$dir/c.toml"
env INSTANTOPS_HTTP__LISTEN=127.0.0.1:0 INSTANTOPS_STATSD__UDP=127.0.0.1:0 INSTANTOPS_STATSD__TCP=off INSTANTOPS_STATSD__ADMIN=off \
  INSTANTOPS_CARBON__TCP=127.0.0.1:0 INSTANTOPS_CARBON__UDP=off INSTANTOPS_CARBON__PICKLE=off INSTANTOPS_LOGS__SYSLOG_UDP=off \
  INSTANTOPS_LOGS__SYSLOG_TCP=off INSTANTOPS_LOGS__JSON_TCP=127.0.0.1:0 INSTANTOPS_LOGS__GELF_UDP=off INSTANTOPS_LOGS__RESP=off \
  INSTANTOPS_LOGS__ELASTICSEARCH=off "$BIN" serve --config "$dir/c.toml" --data-dir "$dir/data" > "$dir/out" 2> "$dir/err" &
PID=$!
for _ in $(seq 100); do grep -q '^ready$' "$dir/out" 2>/dev/null && break; sleep 0.1; done
addr() { grep "^listening $1 " "$dir/out" | awk '{print $3}'; }
LOADS=${LOADS:-statsd carbon logs}
loads=()
if [[ $LOADS == *statsd* ]]; then "$BIN" bench statsd --to "$(addr statsd_udp)" --rate 50000 --duration "$DURATION" --per-packet 10 --series 20000 > /dev/null 2>&1 & loads+=($!); fi
if [[ $LOADS == *carbon* ]]; then "$BIN" bench carbon --to "$(addr carbon_tcp)" --series 50000 --rate 100000 --duration "$DURATION" --connections 1 > /dev/null 2>&1 & loads+=($!); fi
if [[ $LOADS == *logs* ]]; then "$BIN" bench logs --to "$(addr json_tcp)" --proto json --rate 5000 --duration "$DURATION" --connections 1 > /dev/null 2>&1 & loads+=($!); fi
# Queries beside the load: a render summing 1,000 carbon series, a log
# search and a histogram, twice a second.
http=$(addr http)
( end=$((SECONDS + DURATION)); while ((SECONDS < end)); do
    curl -s -o /dev/null "http://$http/render?target=sumSeries(bench.host00*.*.*)&from=-10min&format=json"
    curl -s -o /dev/null "http://$http/api/logs/search?q=level:error&limit=100&from=-10min"
    curl -s -o /dev/null "http://$http/api/logs/histogram?q=*&from=-10min"
    sleep 0.5
  done ) &
loads+=($!)
peak=0
for s in $(seq "$DURATION"); do
  sleep 1
  read -r kb anon file < <(awk '/^VmRSS:/ {r=$2} /^RssAnon:/ {a=$2} /^RssFile:/ {f=$2} END {print r, a, f}' "/proc/$PID/status")
  echo "t=$s rss_mib=$((kb / 1024)) anon_mib=$((anon / 1024)) file_mib=$((file / 1024))"
  if [[ ${DETAIL:-} == 1 ]]; then
    curl -s -m 5 "http://$http/api/status" | python3 -c '
import json, sys
st = json.load(sys.stdin)
m = st["memory"]
mib = lambda b: round(b / 1048576, 1)
print("   used", {k: mib(v) for k, v in sorted(m.get("used", {}).items())}, "alloc", {k: mib(v) for k, v in m.get("allocators", {}).items()}, "episodes", [v for k, v in st["counters"].items() if k.startswith("instantops_memory_pressure_total")])' || true
  fi
  ((kb > peak)) && peak=$kb
done
wait "${loads[@]}" 2>/dev/null || true
echo "peak RSS $((peak / 1024)) MiB with memory.limit = $LIMIT"
curl -s "http://$(addr http)/api/status" | python3 -c '
import json, sys
st = json.load(sys.stdin)
print(json.dumps(st["memory"]))
# What got through: points stored, events indexed, and what was shed.
wanted = ("instantops_tsdb_points_total", "instantops_logs_indexed_total", "instantops_memory_pressure_total", "instantops_dropped_total")
print(json.dumps({k: v for k, v in st["counters"].items() if k.startswith(wanted) and v}))'
