#!/usr/bin/env bash
# The dashboard's render targets in headless Chromium (tests/browser/dashboard.py
# in bench mode): the overview's first render (navigation start to the first
# status drawn, from a blank page, RUNS times) and the redraw of a dashboard of
# 12 panels x 20 series (an hour at 10 s: 360 points per series, 86,400 in all;
# every redraw fetches all 12 renders and draws them), beside graphite-web's
# dashboard redraw of the same panels (12 server-side PNGs) and instantops'
# PNGs of them. Prints medians as JSON.
# Needs chromium, chromium-driver and the tests/run venv (selenium). Loopback
# only; stops by itself.
#
#   benches/dashboard.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-$HOME/.cache/instantops-target/release/instantops}
PY=${PY:-$HOME/.cache/instantops-target/py-venv/bin/python}
dir=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; rm -rf "$dir"' EXIT
env INSTANTOPS_HTTP__LISTEN=127.0.0.1:0 INSTANTOPS_STATSD__UDP=127.0.0.1:0 INSTANTOPS_STATSD__TCP=off INSTANTOPS_STATSD__ADMIN=off \
  INSTANTOPS_CARBON__TCP=127.0.0.1:0 INSTANTOPS_CARBON__UDP=off INSTANTOPS_CARBON__PICKLE=off INSTANTOPS_LOGS__SYSLOG_UDP=off \
  INSTANTOPS_LOGS__SYSLOG_TCP=off INSTANTOPS_LOGS__JSON_TCP=off INSTANTOPS_LOGS__GELF_UDP=off INSTANTOPS_LOGS__RESP=off \
  INSTANTOPS_LOGS__ELASTICSEARCH=off INSTANTOPS_HOST__METRICS=false "$BIN" serve --data-dir "$dir/data" > "$dir/out" 2> "$dir/err" &
PID=$!
for _ in $(seq 100); do grep -q '^ready$' "$dir/out" 2>/dev/null && break; sleep 0.1; done
addr() { grep "^listening $1 " "$dir/out" | awk '{print $3}'; }
"$PY" - "$(addr carbon_tcp)" <<'PY'
import socket, sys, time
host, port = sys.argv[1].rsplit(':', 1)
t = int(time.time()) // 10 * 10
lines = []
for p in range(12):
    for s in range(20):
        for i in range(360):
            lines.append(f"dash.p{p}.s{s} {(p * 20 + s + i) % 50 + (i % 7) * 3} {t - 3600 + i * 10}\n")
with socket.create_connection((host, int(port))) as c:
    c.sendall("".join(lines).encode())
PY
http=$(addr http)
for _ in $(seq 200); do
  n=$(curl -s "http://$http/render?target=dash.p11.*&from=-2h&format=json" | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)))')
  [ "$n" = 20 ] && break; sleep 0.1
done
# The peer: graphite-web 1.1.8 (Debian) on the same series as whisper files
# (10s:1d). Its dashboard draws each panel as a server-side PNG (an <img> of
# /render), so its redraw is 12 PNG renders loaded by the browser; the same
# 12 images from instantops' own PNG renderer are timed beside it.
/usr/bin/python3 - "$dir/whisper" <<'PY'
import os, sys, time, whisper
t = int(time.time()) // 10 * 10
for p in range(12):
    for s in range(20):
        path = os.path.join(sys.argv[1], "dash", f"p{p}", f"s{s}.wsp")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        whisper.create(path, [(10, 8640)], xFilesFactor=0.5, aggregationMethod="average")
        whisper.update_many(path, [(t - 3600 + i * 10, (p * 20 + s + i) % 50 + (i % 7) * 3) for i in range(360)])
PY
coproc WEB { exec /usr/bin/python3 tests/oracle/graphite_web.py --whisper-dir "$dir/whisper" --work-dir "$dir/web" 2> "$dir/web.err"; }
read -r -u "${WEB[0]}" _ _ web_addr
shots=$(mktemp -d)
"$PY" tests/browser/dashboard.py "{\"base\": \"http://$http\", \"shots\": \"$shots\", \"bench\": true, \"big_prefix\": \"dash\", \"peer\": \"http://$web_addr\"}"
rm -rf "$shots"
kill "$WEB_PID" 2>/dev/null || true
