#!/usr/bin/env bash
# Carbon plaintext ingest: instantops against carbon-cache (Debian graphite-carbon)
# and VictoriaMetrics (Debian victoria-metrics), same machine, same load, one
# receiver at a time, every listener on 127.0.0.1.
#
#   benches/carbon_peers.sh [PHASE...]      PHASE: ingest (default), sustained, disk, ram, restart, timeline, all
#
# ingest   loads (a) 10k series and (b) 100k series, rate 0 (as fast as the receiver
#          reads), 20 s, 4 connections; RUNS runs per receiver, interleaved, each on a
#          fresh receiver in a fresh dir. instantops and VictoriaMetrics are timed until
#          their own counter has every point (--wait-metric); carbon-cache by the send
#          rate (TCP backpressure) and by the time until its sockets are drained.
# disk     bytes on disk per point sent: load (a) as is (its timestamps wrap after 2,160
#          rounds, so later rounds overwrite), and a paced variant whose timestamps never
#          repeat (250k points/s x 80 s = 20M points, 2,000 per series, identical for both);
#          instantops measured after POST /api/tsdb/compact, after SIGTERM, then restarted
#          for COMPACT_WAIT s and stopped again; VictoriaMetrics after /internal/force_flush +
#          /internal/force_merge.
#          DISK_VARIANTS picks them (default "a-rate0 a-paced"); "replay" sends real data
#          instead: every csv under REPLAY=DIR (bench carbon --replay), e.g. the Numenta
#          Anomaly Benchmark's data/real* folders.
# ram      1,000,000 series x 3 points; (RSS after - RSS at start) / active series,
#          instantops and VictoriaMetrics.
# restart  instantops exec -> `ready` on a dir holding load (a) (>= 10M points, 10k series)
#          or 1M series x 3 points: RUNS cycles of fresh dir, load, SIGTERM, 3 timed starts.
# timeline instantops alone under loads (a) and (b), its counters every 0.5 s: does ingest
#          keep pace with sending, and how long does it stall while the head is flushed.
#
# Environment: BIN (instantops binary, default /tmp/io-bench/instantops), OUT (results
# dir, default /tmp/io-bench/carbon_peers-<time>), RUNS (3), DURATION (20), CONNS (4),
# MAX_SECONDS (whole-script watchdog, 5400), COMPACT_WAIT (30), KEEP=1 keeps the temp dir,
# LOADS (ingest's loads, "a b"), RECEIVERS (ingest's, "instantops victoriametrics carbon-cache"),
# PORT_BASE (28100: uses PORT_BASE..PORT_BASE+99).
# Needs root only to apt-get install the peers when they are missing. Every run waits for an
# idle machine and is repeated (up to 4 attempts) when processes outside this script's
# session used > FOREIGN_MAX (0.2) cores during it; run it with `setsid` so that your
# shell's other jobs count as outside.
set -euo pipefail

BIN=${BIN:-/tmp/io-bench/instantops}
OUT=${OUT:-/tmp/io-bench/carbon_peers-$(date +%Y%m%d-%H%M%S)}
RUNS=${RUNS:-3}
DURATION=${DURATION:-20}
CONNS=${CONNS:-4}
MAX_SECONDS=${MAX_SECONDS:-5400}
COMPACT_WAIT=${COMPACT_WAIT:-30}
PORT_BASE=${PORT_BASE:-28100}
PHASES=("$@")
[ ${#PHASES[@]} -eq 0 ] && PHASES=(ingest)
[ "${PHASES[0]}" = all ] && PHASES=(ingest disk ram restart timeline)

IO_HTTP=$((PORT_BASE + 80)) IO_CARBON=$((PORT_BASE + 3))
VM_HTTP=$((PORT_BASE + 81)) VM_GRAPHITE=$((PORT_BASE + 13))
CC_LINE=$((PORT_BASE + 23)) CC_PICKLE=$((PORT_BASE + 24)) CC_QUERY=$((PORT_BASE + 22))
IO_METRICS="http://127.0.0.1:$IO_HTTP/metrics"
VM_METRICS="http://127.0.0.1:$VM_HTTP/metrics"
IO_COUNTER=instantops_tsdb_points_total
VM_COUNTER='vm_rows_inserted_total{type="graphite"}'

mkdir -p "$OUT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/carbon_peers.XXXXXX")
RAW="$OUT/raw.tsv"
LOG="$OUT/log.txt"
MYSID=$(awk '{n = split($0, a, ") "); split(a[n], f, " "); print f[4]}' /proc/$$/stat)
PIDS=()  # every receiver this script started and has not yet seen exit

say() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$LOG" >&2; }
now() { date +%s.%N; }
fsub() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", a-b}'; }
fdiv() { awk -v a="$1" -v b="$2" 'BEGIN{if (b+0==0) print "nan"; else printf "%.4g", a/b}'; }

# ---------------------------------------------------------------- process control
STOP_SECS=
stop_pid() {  # stop_pid PID [grace seconds]: SIGTERM, wait, SIGKILL; sets STOP_SECS (seconds to exit)
	local pid=$1 grace=${2:-120} t0 i
	t0=$(now)
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < grace * 20; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
		if kill -0 "$pid" 2>/dev/null; then
			say "pid $pid still running after ${grace}s: SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	wait "$pid" 2>/dev/null || true
	local keep=() p
	for p in "${PIDS[@]}"; do [ "$p" != "$pid" ] && keep+=("$p"); done
	PIDS=("${keep[@]}")
	STOP_SECS=$(fsub "$(now)" "$t0")
}

WATCHDOG=
cleanup() {
	local rc=$? p
	trap - EXIT INT TERM
	for p in "${PIDS[@]}"; do stop_pid "$p" 30; done
	[ -n "$WATCHDOG" ] && kill "$WATCHDOG" 2>/dev/null
	if [ "${KEEP:-0}" = 1 ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
	exit $rc
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM
( trap 'kill "$s" 2>/dev/null; exit 0' TERM; sleep "$MAX_SECONDS" & s=$!; wait "$s" && { echo "watchdog: ${MAX_SECONDS}s elapsed, stopping" >&2; kill -TERM $$; } ) &
WATCHDOG=$!

port_free() { ! ss -Hltn "( sport = :$1 )" | grep -q .; }
wait_port() {  # wait_port PORT PID SECONDS
	local i
	for ((i = 0; i < $3 * 20; i++)); do
		ss -Hltn "( sport = :$1 )" | grep -q . && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}
metric() {  # metric URL PREFIX: the sum of the sample lines starting with PREFIX
	{ curl -sf --max-time 5 "$1" || true; } | awk -v p="$2" 'index($0, p) == 1 {s += $NF} END {printf "%.0f", s}'
}
cpu_ticks() { awk '{n = split($0, a, ") "); split(a[n], f, " "); print f[12] + f[13]}' "/proc/$1/stat" 2>/dev/null || echo 0; }
hwm_bytes() { awk '/^VmHWM/ {print $2 * 1024}' "/proc/$1/status" 2>/dev/null || echo 0; }
rss_bytes() { awk '/^VmRSS/ {print $2 * 1024}' "/proc/$1/status" 2>/dev/null || echo 0; }
sys_busy() { awk '/^cpu / {idle = $5 + $6; t = 0; for (i = 2; i <= 9; i++) t += $i; print t - idle, t}' /proc/stat; }
dir_bytes() { du -sb "$1" 2>/dev/null | awk '{print $1}'; }  # apparent size
dir_alloc() { du -s --block-size=1 "$1" 2>/dev/null | awk '{print $1}'; }  # allocated blocks

# Another session on this machine builds and runs tests now and then: wait until the
# machine is idle before a run, and flag a run during which others used the CPU.
busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
wait_quiet() {  # until 5 consecutive seconds with < 0.15 cores busy (QUIET_WAIT s at most)
	local i q=0 b0 b1 hz; hz=$(getconf CLK_TCK)
	for ((i = 0; i < ${QUIET_WAIT:-900}; i++)); do
		b0=$(busy_ticks); sleep 1; b1=$(busy_ticks)
		if [ $((b1 - b0)) -lt $((hz * 15 / 100)) ]; then q=$((q + 1)); [ $q -ge 5 ] && return 0; else q=0; fi
	done
	say "warning: the machine was still busy after ${QUIET_WAIT:-900}s; measuring anyway"
}

# The receiver's peak RSS and the CPU of processes outside this session, sampled every
# 0.5 s during a run (system python; prints "peak_rss foreign_cores" when stopped).
SAMPLER=
sampler_start() {
	/usr/bin/python3 - "$1" "$MYSID" >"$WORK/sampler.out" <<'PY' &
import os, signal, sys, time
pid, mysid = int(sys.argv[1]), int(sys.argv[2])
hz = os.sysconf("SC_CLK_TCK")
def foreign():
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                f = f.read().rsplit(") ", 1)[1].split()
        except OSError:
            continue
        ppid, sid = int(f[1]), int(f[3])
        if d in ("1", "2") or ppid == 2 or sid == mysid:
            continue
        out[d] = int(f[11]) + int(f[12])
    return out
def rss():
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
stop = False
def on_term(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, on_term)
t0, prev, ticks, peak = time.time(), foreign(), 0, rss()
while not stop:
    time.sleep(0.5)
    cur = foreign()
    ticks += sum(v - prev.get(k, 0) for k, v in cur.items())
    prev = cur
    peak = max(peak, rss())
print(peak, "%.2f" % (ticks / hz / max(time.time() - t0, 1e-9)))
PY
	SAMPLER=$!
}
sampler_stop() { kill -TERM "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null || true; }

# ---------------------------------------------------------------- receivers
START_PID='' START_SECS=''
start_instantops() {  # start_instantops DATA_DIR LOGPREFIX: sets START_PID, START_SECS (exec -> ready)
	local dir=$1 lp=$2 t0 i
	if ! { port_free "$IO_HTTP" && port_free "$IO_CARBON"; }; then say "instantops ports $IO_HTTP/$IO_CARBON busy"; exit 1; fi
	t0=$(now)
	(
		export INSTANTOPS_HTTP__LISTEN=127.0.0.1:$IO_HTTP INSTANTOPS_CARBON__TCP=127.0.0.1:$IO_CARBON
		for v in STATSD__UDP STATSD__TCP STATSD__ADMIN CARBON__UDP CARBON__PICKLE LOGS__SYSLOG_UDP \
			LOGS__SYSLOG_TCP LOGS__JSON_TCP LOGS__GELF_UDP LOGS__RESP LOGS__ELASTICSEARCH; do
			export "INSTANTOPS_$v=127.0.0.1:0"
		done
		exec "$BIN" serve --data-dir "$dir"
	) >"$lp.out" 2>"$lp.err" &
	START_PID=$!
	PIDS+=("$START_PID")
	for ((i = 0; i < 12000; i++)); do  # 10 ms polls, 120 s at most
		grep -q '^ready' "$lp.out" 2>/dev/null && break
		kill -0 "$START_PID" 2>/dev/null || { say "instantops exited at start: $(tail -3 "$lp.err")"; exit 1; }
		sleep 0.01
	done
	grep -q '^ready' "$lp.out" || { say "instantops not ready in 120 s"; exit 1; }
	START_SECS=$(fsub "$(now)" "$t0")
	grep -q "listening carbon_tcp 127.0.0.1:$IO_CARBON" "$lp.out" || { say "instantops carbon_tcp not on $IO_CARBON"; exit 1; }
}
start_vm() {  # start_vm DATA_DIR LOGPREFIX
	local dir=$1 lp=$2 t0 i
	if ! { port_free "$VM_HTTP" && port_free "$VM_GRAPHITE"; }; then say "VictoriaMetrics ports busy"; exit 1; fi
	t0=$(now)
	/usr/bin/victoria-metrics -graphiteListenAddr="127.0.0.1:$VM_GRAPHITE" -httpListenAddr="127.0.0.1:$VM_HTTP" \
		-storageDataPath="$dir" -retentionPeriod=1y >"$lp.out" 2>&1 &
	START_PID=$!
	PIDS+=("$START_PID")
	for ((i = 0; i < 1200; i++)); do
		curl -sf --max-time 1 "http://127.0.0.1:$VM_HTTP/health" >/dev/null 2>&1 && break
		kill -0 "$START_PID" 2>/dev/null || { say "VictoriaMetrics exited at start"; exit 1; }
		sleep 0.05
	done
	wait_port "$VM_GRAPHITE" "$START_PID" 30 || { say "VictoriaMetrics graphite listener not up"; exit 1; }
	START_SECS=$(fsub "$(now)" "$t0")
}
start_carbon() {  # start_carbon ROOT LOGPREFIX
	local root=$1 lp=$2 t0
	if ! { port_free "$CC_LINE" && port_free "$CC_PICKLE" && port_free "$CC_QUERY"; }; then say "carbon-cache ports busy"; exit 1; fi
	mkdir -p "$root/conf" "$root/storage/whisper" "$root/storage/lists" "$root/log" "$root/run"
	# The reference carbon.conf (shared/reference/oracle-configs) with this run's dirs and
	# ports; whisper files are created sparse so 100k series x 3.3 MB fit on the disk; the
	# per-update/create logging is off as in Debian's shipped /etc/carbon/carbon.conf.
	cat >"$root/conf/carbon.conf" <<EOF
[cache]
STORAGE_DIR    = $root/storage/
LOCAL_DATA_DIR = $root/storage/whisper/
WHITELISTS_DIR = $root/storage/lists/
CONF_DIR       = $root/conf/
LOG_DIR        = $root/log/
PID_DIR        = $root/run/
DATABASE = whisper
ENABLE_LOGROTATION = False
USER =
MAX_CACHE_SIZE = ${CC_MAX_CACHE:-inf}
MAX_UPDATES_PER_SECOND = inf
MAX_CREATES_PER_MINUTE = inf
LINE_RECEIVER_INTERFACE = 127.0.0.1
LINE_RECEIVER_PORT = $CC_LINE
ENABLE_UDP_LISTENER = False
PICKLE_RECEIVER_INTERFACE = 127.0.0.1
PICKLE_RECEIVER_PORT = $CC_PICKLE
CACHE_QUERY_INTERFACE = 127.0.0.1
CACHE_QUERY_PORT = $CC_QUERY
USE_FLOW_CONTROL = True
CACHE_WRITE_STRATEGY = sorted
WHISPER_AUTOFLUSH = False
WHISPER_FALLOCATE_CREATE = False
WHISPER_SPARSE_CREATE = True
LOG_UPDATES = False
LOG_CREATES = False
LOG_CACHE_HITS = False
LOG_CACHE_QUEUE_SORTS = False
LOG_LISTENER_CONN_SUCCESS = False
ENABLE_TAGS = False
EOF
	# instantops' default schema (config/instantops.toml), carbon's default aggregation.
	printf '[default]\npattern = .*\nretentions = 10s:6h,1m:7d,10m:5y\n' >"$root/conf/storage-schemas.conf"
	printf '[default]\npattern = .*\nxFilesFactor = 0\naggregationMethod = average\n' >"$root/conf/storage-aggregation.conf"
	t0=$(now)
	/usr/bin/carbon-cache --config="$root/conf/carbon.conf" --pidfile="$root/run/carbon.pid" \
		--logdir="$root/log" --nodaemon start >"$lp.out" 2>&1 &
	START_PID=$!
	PIDS+=("$START_PID")
	wait_port "$CC_LINE" "$START_PID" 60 || { say "carbon-cache did not listen: $(tail -3 "$lp.out")"; exit 1; }
	START_SECS=$(fsub "$(now)" "$t0")
}

# ---------------------------------------------------------------- one bench run
# bench_run NAME TARGET_PORT BENCH_ARGS... ; sets B_* globals, appends its output to LOG.
B_OTHERS=0 B_FOREIGN=0 B_POINTS='' B_MB='' B_SEND='' B_SENDRATE='' B_INGEST='' B_INGESTRATE='' B_BENCHCPU='' B_RECVCPU='' B_BUSY='' B_DRAIN='' B_RSS_MAX=''
bench_run() {
	local pid=$1 port=$2; shift 2
	local out="$WORK/bench.out" c0 c1 s0 s1 t0 tsent line i
	c0=$(cpu_ticks "$pid"); s0=$(sys_busy); t0=$(now)
	# RSS sampler (the receiver's peak during the run).
	sampler_start "$pid"
	if ! timeout $((DURATION + 300)) /usr/bin/time -f 'benchcpu %U %S' \
		"$BIN" bench carbon --to "127.0.0.1:$port" --duration "$DURATION" --connections "$CONNS" "$@" >"$out" 2>&1; then
		say "bench failed: $(cat "$out")"
	fi
	tsent=$(now)
	# Until the receiver has read and closed every connection (carbon-cache: its
	# receive rate, not only what the kernel buffered for it).
	for ((i = 0; i < 6000; i++)); do
		ss -Htn state established state close-wait "( sport = :$port )" | grep -q . || break
		sleep 0.05
	done
	B_DRAIN=$(fsub "$(now)" "$t0")
	c1=$(cpu_ticks "$pid"); s1=$(sys_busy)
	sampler_stop
	B_RSS_MAX=$(awk '{print $1}' "$WORK/sampler.out")

	cat "$out" >>"$LOG"
	line=$(grep '^sent ' "$out" || echo "sent 0 points (0 MB) in 0 s: 0 points/s")
	B_POINTS=$(sed -E 's/^sent ([0-9]+) points.*/\1/' <<<"$line")
	B_MB=$(sed -E 's/.*\(([0-9.]+) MB\).*/\1/' <<<"$line")
	B_SEND=$(sed -E 's/^sent [0-9]+ points \([0-9.]+ MB\) in ([0-9.]+) s: ([0-9]+) points\/s.*/\1/' <<<"$line")
	B_SENDRATE=$(sed -E 's/^sent [0-9]+ points \([0-9.]+ MB\) in ([0-9.]+) s: ([0-9]+) points\/s.*/\2/' <<<"$line")
	if grep -q 'ingested in' <<<"$line"; then
		B_INGEST=$(sed -E 's/.*ingested in ([0-9.]+) s: ([0-9]+) points\/s.*/\1/' <<<"$line")
		B_INGESTRATE=$(sed -E 's/.*ingested in ([0-9.]+) s: ([0-9]+) points\/s.*/\2/' <<<"$line")
	else
		B_INGEST=nan B_INGESTRATE=nan
	fi
	B_BENCHCPU=$(awk '/^benchcpu/ {printf "%.2f", $2 + $3}' "$out")
	B_RECVCPU=$(awk -v a="$c0" -v b="$c1" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", (b - a) / hz}')
	B_BUSY=$(awk -v n="$(nproc)" -v a="$s0" -v b="$s1" 'BEGIN{split(a, x, " "); split(b, y, " "); printf "%.2f", n * (y[1] - x[1]) / (y[2] - x[2])}')
	# CPU used by processes outside this script's session (another session's builds and
	# tests), in cores on average; kernel threads (e.g. writeback of a receiver's files)
	# are not counted.
	B_FOREIGN=$(awk '{print $2}' "$WORK/sampler.out")
	B_OTHERS=$(awk -v f="$B_FOREIGN" -v t="${FOREIGN_MAX:-0.2}" 'BEGIN{print (f > t) ? 1 : 0}')
	[ "$B_OTHERS" -gt 0 ] && say "warning: ${B_FOREIGN} cores on average used by other processes during this run"
	: "$tsent"
}

# ---------------------------------------------------------------- phase: ingest
# sustained: carbon-cache with a bounded cache (MAX_CACHE_SIZE = 2,000,000 points,
# carbon.conf's own example value) under load (b) for SUSTAINED_SECONDS (60):
# once the cache is full carbon stops reading until whisper writes drain it, so
# its send rate is the rate it can keep up, not the rate its memory grows.
phase_sustained() {
	local run dir pid rate saved=$DURATION
	[ -f "$RAW" ] || printf 'load\treceiver\trun\tseries\tpoints\tMB\tsend_s\tsend_rate\tingest_s\tingest_rate\tdrain_s\tdrain_rate\trecv_cpu_s\tbench_cpu_s\tbusy_cores\trss_peak\trss_end\tstop_s\textra\n' >"$RAW"
	DURATION=${SUSTAINED_SECONDS:-60}
	for ((run = 1; run <= RUNS; run++)); do
		wait_quiet
		dir="$WORK/sustained-$run"; rm -rf "$dir"; mkdir -p "$dir"
		CC_MAX_CACHE=2000000 start_carbon "$dir" "$dir/cc"; pid=$START_PID
		bench_run "$pid" "$CC_LINE" --series 100000 --rate 0
		stop_pid "$pid" 120
		rate=$(awk -v p="$B_POINTS" -v s="$B_DRAIN" 'BEGIN{printf "%.0f", p / s}')
		printf 'b-bounded\tcarbon-cache\t%d\t100000\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\t%s\tmax_cache=2000000;foreign_cores=%s;contaminated=%s\n' \
			"$run" "$B_POINTS" "$B_MB" "$B_SEND" "$B_SENDRATE" "$B_INGEST" "$B_INGESTRATE" "$B_DRAIN" "$rate" "$B_RECVCPU" "$B_BENCHCPU" "$B_BUSY" "$B_RSS_MAX" "$STOP_SECS" "$B_FOREIGN" "$B_OTHERS" >>"$RAW"
		say "sustained carbon-cache run $run: sent $B_POINTS in ${B_SEND}s = $B_SENDRATE/s; drained ${B_DRAIN}s = $rate/s; receiver cpu ${B_RECVCPU}s; peak rss $B_RSS_MAX"
		rm -rf "$dir"
	done
	DURATION=$saved
	{
		echo
		echo "## carbon-cache with MAX_CACHE_SIZE = 2000000, load (b), ${SUSTAINED_SECONDS:-60} s, medians of $RUNS (points/s)"
		echo
		echo "sent $(col b-bounded carbon-cache send_rate | median3), drained $(col b-bounded carbon-cache drain_rate | median3), peak RSS $(col b-bounded carbon-cache rss_peak | median3)"
	} | tee -a "$OUT/summary.md"
}

phase_ingest() {
	local load series run recv dir pid stopsecs rate extra
	[ -f "$RAW" ] || printf 'load\treceiver\trun\tseries\tpoints\tMB\tsend_s\tsend_rate\tingest_s\tingest_rate\tdrain_s\tdrain_rate\trecv_cpu_s\tbench_cpu_s\tbusy_cores\trss_peak\trss_end\tstop_s\textra\n' >"$RAW"
	for load in ${LOADS:-a b}; do
		series=$([ "$load" = a ] && echo 10000 || echo 100000)
		for ((run = 1; run <= RUNS; run++)); do
			for recv in ${RECEIVERS:-instantops victoriametrics carbon-cache}; do
			local attempt
			for attempt in 1 2 3 4; do
				wait_quiet
				dir="$WORK/$load-$recv-$run"; rm -rf "$dir"; mkdir -p "$dir"
				extra=
				case $recv in
				instantops)
					start_instantops "$dir/data" "$dir/io"; pid=$START_PID
					bench_run "$pid" "$IO_CARBON" --series "$series" --rate 0 --wait-metric "$IO_METRICS" "$IO_COUNTER"
					extra="active_series=$(metric "$IO_METRICS" instantops_tsdb_active_series);pending=$(metric "$IO_METRICS" instantops_tsdb_pending_points);flushes=$(metric "$IO_METRICS" instantops_tsdb_flushes_total);dropped=$(metric "$IO_METRICS" instantops_tsdb_dropped_total);bad_lines=$(metric "$IO_METRICS" instantops_bad_lines_total)"
					;;
				victoriametrics)
					start_vm "$dir/data" "$dir/vm"; pid=$START_PID
					bench_run "$pid" "$VM_GRAPHITE" --series "$series" --rate 0 --wait-metric "$VM_METRICS" "$VM_COUNTER"
					extra="tsid_entries=$(metric "$VM_METRICS" 'vm_cache_entries{type="storage/tsid"}');parse_errors=$(metric "$VM_METRICS" 'vm_rows_invalid_total')"
					;;
				carbon-cache)
					start_carbon "$dir" "$dir/cc"; pid=$START_PID
					bench_run "$pid" "$CC_LINE" --series "$series" --rate 0
					extra="wsp_files=$(find "$dir/storage/whisper" -name '*.wsp' | wc -l);wsp_apparent=$(dir_bytes "$dir/storage/whisper");wsp_alloc=$(dir_alloc "$dir/storage/whisper")"
					;;
				esac
				local rss_end; rss_end=$(rss_bytes "$pid")
				stop_pid "$pid" 60; stopsecs=$STOP_SECS
				rate=$(awk -v p="$B_POINTS" -v s="$B_DRAIN" 'BEGIN{printf "%.0f", p / s}')
				printf '%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
					"$load" "$recv" "$run" "$series" "$B_POINTS" "$B_MB" "$B_SEND" "$B_SENDRATE" "$B_INGEST" "$B_INGESTRATE" \
					"$B_DRAIN" "$rate" "$B_RECVCPU" "$B_BENCHCPU" "$B_BUSY" "$B_RSS_MAX" "$rss_end" "$stopsecs" "$extra;foreign_cores=$B_FOREIGN;contaminated=$B_OTHERS" >>"$RAW"
				say "load $load $recv run $run (attempt $attempt): sent $B_POINTS in ${B_SEND}s = $B_SENDRATE/s; ingested $B_INGESTRATE/s; drained ${B_DRAIN}s = $rate/s; receiver cpu ${B_RECVCPU}s, bench cpu ${B_BENCHCPU}s, busy ${B_BUSY}/2 cores; peak rss $B_RSS_MAX; stop ${stopsecs}s; $extra"
				rm -rf "$dir"
				[ "$B_OTHERS" -eq 0 ] && break
				say "  other processes used the CPU during that run: repeating it (the row is marked contaminated=1 and left out of the medians)"
			done
			done
		done
	done
	summarize_ingest
}

median3() { sort -g | awk '{v[NR] = $1} END {if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
col() {  # col LOAD RECEIVER COLUMN_NAME: the values of one column
	awk -F'\t' -v l="$1" -v r="$2" -v c="$3" 'NR == 1 {for (i = 1; i <= NF; i++) if ($i == c) k = i; next} $1 == l && $2 == r && $NF !~ /contaminated=1/ {print $k}' "$RAW"
}
summarize_ingest() {
	local load io vm io_s vm_s cc_s cc_d
	{
		echo
		echo "## Carbon plaintext ingest, medians of $RUNS (points/s; $DURATION s, $CONNS connections, rate 0)"
		echo
		echo "| load | instantops ingested | VictoriaMetrics ingested | carbon-cache sent (drained) | instantops sent | VM sent | io/VM | io/carbon |"
		echo "|---|---|---|---|---|---|---|---|"
		for load in ${LOADS:-a b}; do
			io=$(col "$load" instantops ingest_rate | median3); vm=$(col "$load" victoriametrics ingest_rate | median3)
			io_s=$(col "$load" instantops send_rate | median3); vm_s=$(col "$load" victoriametrics send_rate | median3)
			cc_s=$(col "$load" carbon-cache send_rate | median3); cc_d=$(col "$load" carbon-cache drain_rate | median3)
			echo "| ($load) $(col "$load" instantops series | head -1) series | $io | $vm | $cc_s ($cc_d) | $io_s | $vm_s | $(fdiv "$io" "$vm") | $(fdiv "$io" "$cc_s") |"
		done
		echo
		echo "Per-run rows: $RAW"
	} | tee -a "$OUT/summary.md"
}

# ---------------------------------------------------------------- phase: disk
rocks_breakdown() {  # sst / wal / other bytes and counts of a RocksDB dir
	local d=$1
	local sst wal all
	sst=$(find "$d" -maxdepth 1 -name '*.sst' -printf '%s\n' | awk '{s += $1; n++} END {printf "%d(%d files)", s, n}')
	wal=$(find "$d" -maxdepth 1 -name '*.log' -printf '%s\n' | awk '{s += $1; n++} END {printf "%d(%d files)", s, n}')
	all=$(dir_bytes "$d")
	echo "total=$all sst=$sst wal=$wal"
}
sst_bytes() { find "$1" -maxdepth 1 -name '*.sst' -printf '%s\n' | awk '{s += $1} END {printf "%d", s}'; }
# Distinct (series, timestamp) pairs among POINTS points of 10k series: the
# generator backfills at most 2070 rounds (6 h less 15 min, at 10 s), then sends
# wall-clock timestamps, which repeat within each 10 s slot.
unique_points() { awk -v p="$1" 'BEGIN{r = int((p + 9999) / 10000); if (r > 2070) r = 2070; u = r * 10000; if (u > p) u = p; print u}'; }
# One row of disk.tsv: VARIANT RECEIVER POINTS UNIQUE MOMENT TOTAL_BYTES DATA_BYTES NOTES
disk_row() {
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$(fdiv "$6" "$3")" "$(fdiv "$7" "$3")" "$8" >>"$dsum"
}
phase_disk() {
	local variant args dir pid points t k tsdb vmd st
	local dsum="$OUT/disk.tsv"
	printf 'variant\treceiver\tpoints\tunique_points\tmoment\ttotal_bytes\tsst_or_data_bytes\tbytes_per_point\tsst_bytes_per_point\tnotes\n' >"$dsum"
	for variant in ${DISK_VARIANTS:-a-rate0 a-paced}; do
		case $variant in
			a-rate0) args=(--series 10000 --rate 0) ;;
			a-paced) args=(--series 10000 --rate 250000) ;;
			replay) args=(--replay "${REPLAY:?replay needs REPLAY=DIR of csv files}" --rate 0) ;;
			*) say "unknown disk variant $variant"; exit 1 ;;
		esac
		# instantops
		dir="$WORK/disk-$variant-io"; mkdir -p "$dir"; tsdb="$dir/data/tsdb"
		wait_quiet
		start_instantops "$dir/data" "$dir/io1"; pid=$START_PID
		if [ "$variant" = a-paced ]; then DURATION_SAVE=$DURATION; DURATION=80; fi
		bench_run "$pid" "$IO_CARBON" "${args[@]}" --wait-metric "$IO_METRICS" "$IO_COUNTER"
		[ "$variant" = a-paced ] && DURATION=$DURATION_SAVE
		points=$B_POINTS
		local uniq; uniq=$(unique_points "$points")
		[ "$variant" = replay ] && uniq=$points  # every replayed (series, ts) is distinct
		say "disk $variant instantops: sent $points (unique (series,ts) ~$uniq), rss peak $B_RSS_MAX"
		# The counterpart of VictoriaMetrics' force_merge below.
		say "  POST /api/tsdb/compact: $(curl -sf -X POST "http://127.0.0.1:$IO_HTTP/api/tsdb/compact")"
		disk_row "$variant" instantops "$points" "$uniq" "POST /api/tsdb/compact" "$(dir_bytes "$tsdb")" "$(sst_bytes "$tsdb")" "$(rocks_breakdown "$tsdb")"
		stop_pid "$pid" 120; st=$STOP_SECS
		say "  SIGTERM took ${st}s; after stop: $(rocks_breakdown "$tsdb")"
		disk_row "$variant" instantops "$points" "$uniq" "after SIGTERM" "$(dir_bytes "$tsdb")" "$(sst_bytes "$tsdb")" "$(rocks_breakdown "$tsdb")"
		start_instantops "$dir/data" "$dir/io2"; pid=$START_PID
		for ((t = 0; t <= COMPACT_WAIT; t += 10)); do
			say "  restarted +${t}s: $(rocks_breakdown "$tsdb")"
			disk_row "$variant" instantops "$points" "$uniq" "restarted +${t}s" "$(dir_bytes "$tsdb")" "$(sst_bytes "$tsdb")" "$(rocks_breakdown "$tsdb")"
			[ $t -lt "$COMPACT_WAIT" ] && sleep 10
		done
		stop_pid "$pid" 120; st=$STOP_SECS
		local compactions; compactions=$(cat "$tsdb"/LOG* 2>/dev/null | grep -c '"event": "compaction_finished"' || true)
		say "  second SIGTERM took ${st}s; final: $(rocks_breakdown "$tsdb"); compaction_finished events in LOGs: $compactions"
		disk_row "$variant" instantops "$points" "$uniq" "after restart+${COMPACT_WAIT}s and SIGTERM" "$(dir_bytes "$tsdb")" "$(sst_bytes "$tsdb")" "$(rocks_breakdown "$tsdb") compactions_logged=$compactions"
		ls -l "$tsdb" >>"$LOG"
		rm -rf "$dir"
		# VictoriaMetrics
		dir="$WORK/disk-$variant-vm"; mkdir -p "$dir"; vmd="$dir/data"
		wait_quiet
		start_vm "$vmd" "$dir/vm"; pid=$START_PID
		if [ "$variant" = a-paced ]; then DURATION_SAVE=$DURATION; DURATION=80; fi
		bench_run "$pid" "$VM_GRAPHITE" "${args[@]}" --wait-metric "$VM_METRICS" "$VM_COUNTER"
		[ "$variant" = a-paced ] && DURATION=$DURATION_SAVE
		points=$B_POINTS
		uniq=$(unique_points "$points")
		[ "$variant" = replay ] && uniq=$points
		curl -sf "http://127.0.0.1:$VM_HTTP/internal/force_flush" >/dev/null
		curl -sf "http://127.0.0.1:$VM_HTTP/internal/force_merge" >/dev/null
		sleep 1
		for ((k = 0; k < 600; k++)); do
			grep -q 'forced merge .* has been successfully finished' "$dir/vm.out" && break
			sleep 0.5
		done
		sleep 2
		say "disk $variant VictoriaMetrics: sent $points; after force_flush+force_merge: total $(dir_bytes "$vmd") data/ $(dir_bytes "$vmd/data") indexdb/ $(dir_bytes "$vmd/indexdb")"
		disk_row "$variant" victoriametrics "$points" "$uniq" "force_flush+force_merge" "$(dir_bytes "$vmd")" "$(dir_bytes "$vmd/data")" "indexdb=$(dir_bytes "$vmd/indexdb")"
		stop_pid "$pid" 120; st=$STOP_SECS
		disk_row "$variant" victoriametrics "$points" "$uniq" "after SIGTERM" "$(dir_bytes "$vmd")" "$(dir_bytes "$vmd/data")" "indexdb=$(dir_bytes "$vmd/indexdb")"
		rm -rf "$dir"
	done
	{ echo; echo "## Disk (bytes per point sent; sst_or_data = instantops *.sst / VM data/)"; echo; column -t -s $'\t' "$dsum"; } | tee -a "$OUT/summary.md"
}

# ---------------------------------------------------------------- phase: ram
phase_ram() {
	local dir pid rss0 rss1 rss2 act hwm i st
	local rsum="$OUT/ram.tsv"
	printf 'receiver\tpoints\tactive_series\trss_start\trss_after\trss_after_15s\trss_peak\tbytes_per_series\tbytes_per_series_15s\tingest_rate\n' >"$rsum"
	# instantops
	dir="$WORK/ram-io"; mkdir -p "$dir"
	wait_quiet
	start_instantops "$dir/data" "$dir/io"; pid=$START_PID
	sleep 2; rss0=$(metric "$IO_METRICS" instantops_process_resident_memory_bytes)
	DURATION_SAVE=$DURATION; DURATION=20
	bench_run "$pid" "$IO_CARBON" --series 1000000 --rate 150000 --wait-metric "$IO_METRICS" "$IO_COUNTER"
	DURATION=$DURATION_SAVE
	rss1=$(metric "$IO_METRICS" instantops_process_resident_memory_bytes); act=$(metric "$IO_METRICS" instantops_tsdb_active_series)
	sleep 15
	rss2=$(metric "$IO_METRICS" instantops_process_resident_memory_bytes); hwm=$(hwm_bytes "$pid")
	curl -sf "http://127.0.0.1:$IO_HTTP/api/status" >"$OUT/ram-instantops-status.json" || true
	curl -sf "$IO_METRICS" | grep -E '^instantops_(tsdb|process|memory)' >"$OUT/ram-instantops-metrics.txt" || true
	printf 'instantops\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$B_POINTS" "$act" "$rss0" "$rss1" "$rss2" "$hwm" \
		"$(fdiv $((rss1 - rss0)) "$act")" "$(fdiv $((rss2 - rss0)) "$act")" "$B_INGESTRATE" >>"$rsum"
	say "ram instantops: $B_POINTS points, active $act, rss start $rss0 after $rss1 +15s $rss2 peak $hwm; ingest $B_INGESTRATE/s"
	stop_pid "$pid" 120; st=$STOP_SECS; say "  SIGTERM took ${st}s; tsdb $(rocks_breakdown "$dir/data/tsdb")"
	rm -rf "$dir"
	# VictoriaMetrics
	dir="$WORK/ram-vm"; mkdir -p "$dir"
	wait_quiet
	start_vm "$dir/data" "$dir/vm"; pid=$START_PID
	sleep 2; rss0=$(metric "$VM_METRICS" process_resident_memory_bytes)
	DURATION_SAVE=$DURATION; DURATION=20
	bench_run "$pid" "$VM_GRAPHITE" --series 1000000 --rate 150000 --wait-metric "$VM_METRICS" "$VM_COUNTER"
	DURATION=$DURATION_SAVE
	rss1=$(metric "$VM_METRICS" process_resident_memory_bytes); act=$(metric "$VM_METRICS" 'vm_cache_entries{type="storage/tsid"}')
	sleep 15
	rss2=$(metric "$VM_METRICS" process_resident_memory_bytes); hwm=$(hwm_bytes "$pid")
	curl -sf "$VM_METRICS" | grep -E '^(process_|go_memstats_(heap|sys)|vm_cache_(entries|size_bytes)|vm_new_timeseries)' >"$OUT/ram-vm-metrics.txt" || true
	printf 'victoriametrics\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$B_POINTS" "$act" "$rss0" "$rss1" "$rss2" "$hwm" \
		"$(fdiv $((rss1 - rss0)) "$act")" "$(fdiv $((rss2 - rss0)) "$act")" "$B_INGESTRATE" >>"$rsum"
	say "ram VictoriaMetrics: $B_POINTS points, tsid entries $act, rss start $rss0 after $rss1 +15s $rss2 peak $hwm; ingest $B_INGESTRATE/s"
	stop_pid "$pid" 120
	rm -rf "$dir"
	{ echo; echo "## RAM per active series (1,000,000 series x 3 points)"; echo; column -t -s $'\t' "$rsum"; } | tee -a "$OUT/summary.md"
}

# ---------------------------------------------------------------- phase: restart
phase_restart() {
	# RUNS cycles per data set: a fresh dir, a load, SIGTERM, then three timed starts on that
	# dir (exec -> `ready`): the first replays what the stop left (WAL) and is the one a
	# restart after ingest sees; the next two start from a clean stop.
	local dir pid i j st stored set args
	for set in 10k 1M; do
		if [ $set = 10k ]; then args=(--series 10000 --rate 0); else args=(--series 1000000 --rate 150000); fi
		for ((i = 1; i <= RUNS; i++)); do
			dir="$WORK/restart-$set-$i"; rm -rf "$dir"; mkdir -p "$dir"
			wait_quiet
			start_instantops "$dir/data" "$dir/io0"; pid=$START_PID
			bench_run "$pid" "$IO_CARBON" "${args[@]}" --wait-metric "$IO_METRICS" "$IO_COUNTER"
			stored=$B_POINTS
			stop_pid "$pid" 120; st=$STOP_SECS
			say "restart $set cycle $i: stored $stored points ($(metric_note)); SIGTERM after load took ${st}s; tsdb $(rocks_breakdown "$dir/data/tsdb")"
			printf '%s\t%s\tstop-after-load\t%s\t%s\n' "$set" "$i" "$stored" "$st" >>"$OUT/restart.tsv"
			for j in 1 2 3; do
				start_instantops "$dir/data" "$dir/io$j"; pid=$START_PID
				printf '%s\t%s\tstart-%s\t%s\t%s\n' "$set" "$i" "$j" "$stored" "$START_SECS" >>"$OUT/restart.tsv"
				sleep 1
				say "  start $j: exec -> ready ${START_SECS}s, rss $(rss_bytes "$pid")"
				stop_pid "$pid" 120
			done
			rm -rf "$dir"
		done
	done
	{
		echo; echo "## instantops restart, exec -> ready (s); $RUNS cycles of load + SIGTERM + 3 starts"; echo
		echo "| data | points stored (median) | first start after the load | 2nd start | 3rd start | SIGTERM right after the load |"
		echo "|---|---|---|---|---|---|"
		for set in 10k 1M; do
			m() { awk -F'\t' -v s="$set" -v k="$1" '$1 == s && $3 == k {print $5}' "$OUT/restart.tsv" | median3; }
			all() { awk -F'\t' -v s="$set" -v k="$1" '$1 == s && $3 == k {printf "%s ", $5}' "$OUT/restart.tsv"; }
			echo "| $set series | $(awk -F'\t' -v s="$set" '$1 == s && $3 == "stop-after-load" {print $4}' "$OUT/restart.tsv" | median3) | $(m start-1) ($(all start-1)) | $(m start-2) ($(all start-2)) | $(m start-3) ($(all start-3)) | $(m stop-after-load) ($(all stop-after-load)) |"
		done
	} | tee -a "$OUT/summary.md"
}
metric_note() { echo "ingest ${B_INGESTRATE}/s"; }

# ---------------------------------------------------------------- phase: timeline
phase_timeline() {
	# instantops alone, loads (a) and (b): its counters every 0.5 s during the run, to see
	# whether ingest keeps pace with sending or stalls while the head is flushed.
	local load series dir pid tl
	for load in a b; do
		series=$([ $load = a ] && echo 10000 || echo 100000)
		dir="$WORK/timeline-$load"; mkdir -p "$dir"; tl="$OUT/timeline-$load.tsv"
		wait_quiet
		start_instantops "$dir/data" "$dir/io"; pid=$START_PID
		(
			t0=$(now)
			printf 't_s\tpoints_total\tpending\tflushes\trss\tcarbon_recv_q_bytes\n'
			while kill -0 "$pid" 2>/dev/null; do
				curl -sf --max-time 2 "$IO_METRICS" | awk -v t="$(fsub "$(now)" "$t0")" -v q="$(ss -Htn state established "( sport = :$IO_CARBON )" | awk '{s += $1} END {print s + 0}')" '
					/^instantops_tsdb_points_total / {p = $2} /^instantops_tsdb_pending_points / {pe = $2}
					/^instantops_tsdb_flushes_total / {f = $2} /^instantops_process_resident_memory_bytes / {r = $2}
					END {printf "%s\t%s\t%s\t%s\t%s\t%s\n", t, p, pe, f, r, q}'
				sleep 0.5
			done
		) >"$tl" &
		local poller=$!
		bench_run "$pid" "$IO_CARBON" --series "$series" --rate 0 --wait-metric "$IO_METRICS" "$IO_COUNTER"
		sleep 2
		stop_pid "$pid" 120
		wait "$poller" 2>/dev/null || true
		# Longest stretch in which the stored-points counter did not move while the load
		# generator was still sending (socket backlog non-empty).
		local stall
		stall=$(awk -F'\t' 'NR > 1 && $2 != "" {if ($2 == last && $6 > 0) {if (s == "") s = prev_t; d = $1 - s; if (d > m) m = d} else s = ""; last = $2; prev_t = $1} END {printf "%.1f", m + 0}' "$tl")
		say "timeline $load: sent $B_POINTS, ingest $B_INGESTRATE/s over ${B_INGEST}s, $(awk -F'\t' 'END {print "flushes " $4}' "$tl"); longest stall with data waiting in the socket: ${stall}s; per-0.5s samples in $tl"
		rm -rf "$dir"
	done
}

# ---------------------------------------------------------------- main
[ -x "$BIN" ] || { echo "no instantops binary at $BIN" >&2; exit 1; }
need=()
[ -x /usr/bin/carbon-cache ] || need+=(graphite-carbon)
[ -x /usr/bin/victoria-metrics ] || need+=(victoria-metrics)
if [ ${#need[@]} -gt 0 ]; then
	say "installing ${need[*]}"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >>"$LOG" 2>&1
fi
say "instantops: $("$BIN" version 2>&1 | head -1) ($BIN, sha256 $(sha256sum "$BIN" | cut -c1-12)); VictoriaMetrics $(dpkg-query -W -f='${Version}' victoria-metrics); carbon-cache $(dpkg-query -W -f='${Version}' graphite-carbon)"
say "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo); load generator and receiver share these cores"
say "phases: ${PHASES[*]}; out: $OUT; work: $WORK"
for p in "${PHASES[@]}"; do
	case $p in
	ingest) phase_ingest ;;
	disk) phase_disk ;;
	sustained) phase_sustained ;;
	ram) phase_ram ;;
	restart) phase_restart ;;
	timeline) phase_timeline ;;
	*) echo "unknown phase $p" >&2; exit 2 ;;
	esac
done
say "done: $OUT/summary.md"
