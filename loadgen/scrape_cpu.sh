#!/usr/bin/env bash
# Server CPU per million scraped samples: promcore, Prometheus (Debian 2.42) and
# VictoriaMetrics (Debian) scrape the same `loadgen serve` targets, one server at a time, and
# each is charged the CPU time (user + system, from /proc) it used over a measured window
# after a warm-up, divided by the samples it appended in that window (its own counter).
# Superseded by `loadgen bench` (issue 7); kept because earlier BENCHMARKS.md figures cite it.
#
#   loadgen/scrape_cpu.sh [TARGETS] [SERIES_PER_TARGET] [INTERVAL_S] [WINDOW_S]
#
# Needs release builds: cargo build --release --bin promcore -p loadgen
# SERVERS="promcore" measures only promcore (default: all three that are installed);
# PROMCORE=path runs another promcore binary; WARMUP=seconds overrides the warm-up (3 intervals).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGETS=${1:-1000}
SERIES=${2:-1000}
INTERVAL=${3:-10}
WINDOW=${4:-60}
WARMUP=${WARMUP:-$((INTERVAL * 3))}
SERVERS=${SERVERS:-promcore prometheus victoria-metrics}
wanted() { [[ " $SERVERS " == *" $1 "* ]]; }
WORK=$(mktemp -d /tmp/scrape_cpu.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
metric() { # port name-regex: sum of matching samples on /metrics
  curl -s "http://127.0.0.1:$1/metrics" | awk -v re="^$2" '$0 ~ re {s += $NF} END {printf "%.0f", s}'
}

./target/release/loadgen serve --targets="$TARGETS" --series-per-target="$SERIES" \
  --base-port=0 --sd-file="$WORK/targets.json" --report-every=3600 >"$WORK/loadgen.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$WORK/targets.json" ] && break; sleep 0.2; done

cat >"$WORK/prometheus.yml" <<EOF
global:
  scrape_interval: ${INTERVAL}s
  scrape_timeout: ${INTERVAL}s
scrape_configs:
  - job_name: loadgen
    file_sd_configs: [{files: ["$WORK/targets.json"]}]
EOF

measure() { # name port samples-metric-regex command...
  local name=$1 port=$2 re=$3; shift 3
  "$@" >"$WORK/$name.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  sleep "$WARMUP"
  local c0 s0 c1 s1
  c0=$(cpu_ticks "$pid"); s0=$(metric "$port" "$re")
  sleep "$WINDOW"
  c1=$(cpu_ticks "$pid"); s1=$(metric "$port" "$re")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  local hz; hz=$(getconf CLK_TCK)
  awk -v n="$name" -v c=$((c1 - c0)) -v hz="$hz" -v s=$((s1 - s0)) -v w="$WINDOW" 'BEGIN {
    cpu = c / hz; printf "%-16s %8.2f CPU-s  %10d samples  %6.0f samples/s  %6.3f CPU-s per million samples\n",
      n, cpu, s, s / w, (s > 0 ? cpu / (s / 1e6) : 0) }'
}

echo "targets=$TARGETS series/target=$SERIES interval=${INTERVAL}s window=${WINDOW}s warm-up=${WARMUP}s"
if wanted promcore; then
  P=$(free_port)
  measure promcore "$P" 'prometheus_tsdb_head_samples_appended_total' \
    "${PROMCORE:-./target/release/promcore}" --config.file="$WORK/prometheus.yml" \
    --storage.tsdb.path="$WORK/promcore-data" --web.listen-address="127.0.0.1:$P"
fi
if wanted prometheus && command -v prometheus >/dev/null; then
  P=$(free_port)
  measure prometheus-2.42 "$P" 'prometheus_tsdb_head_samples_appended_total' \
    prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prom-data" \
    --web.listen-address="127.0.0.1:$P"
fi
if wanted victoria-metrics && command -v victoria-metrics >/dev/null; then
  P=$(free_port)
  measure victoria-metrics "$P" 'vm_rows_added_to_storage_total' \
    victoria-metrics -promscrape.config="$WORK/prometheus.yml" -storageDataPath="$WORK/vm-data" \
    -httpListenAddr="127.0.0.1:$P"
fi
tail -n 3 "$WORK/loadgen.log" | sed 's/^/loadgen: /'
