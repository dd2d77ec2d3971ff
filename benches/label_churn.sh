#!/bin/sh
# Label requests under series churn (issue 6): Prometheus and promcore scrape the same loadgen
# targets every second while loadgen replaces series (new `pod` values); then
# benches/label_churn/measure.py asks both the same label requests at a steady pace and
# prints latencies and promcore's kept-answer hit rate per request.
#
# usage: benches/label_churn.sh   (env: TARGETS=20 SERIES=1000 CHURN=600 per target per
#        minute, WARMUP=30 s, RUNS=200, INTERVAL=0.02 s, BIN=target/release/promcore,
#        LOADGEN=target/release/loadgen, PROMETHEUS=/usr/bin/prometheus, WORK=/tmp/label_churn,
#        PORT=19591: Prometheus on PORT, promcore on PORT+1)
set -eu
cd "$(dirname "$0")/.."
TARGETS=${TARGETS:-20} SERIES=${SERIES:-1000} CHURN=${CHURN:-600} WARMUP=${WARMUP:-30}
RUNS=${RUNS:-200} INTERVAL=${INTERVAL:-0.02} PORT=${PORT:-19591}
BIN=${BIN:-target/release/promcore} LOADGEN=${LOADGEN:-target/release/loadgen}
PROMETHEUS=${PROMETHEUS:-/usr/bin/prometheus} WORK=${WORK:-/tmp/label_churn}
rm -rf "$WORK" && mkdir -p "$WORK"
PIDS=""
trap 'kill $PIDS 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT INT TERM
"$LOADGEN" serve --targets="$TARGETS" --series-per-target="$SERIES" --churn="$CHURN" \
    --base-port=0 --cores=1 --sd-file="$WORK/targets.json" >"$WORK/loadgen.log" 2>&1 &
PIDS="$PIDS $!"
n=0; until [ -s "$WORK/targets.json" ]; do n=$((n+1)); [ $n -lt 100 ] || exit 1; sleep 0.1; done
cat >"$WORK/config.yml" <<YML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: loadgen
    file_sd_configs:
      - files: ['$WORK/targets.json']
YML
"$PROMETHEUS" --config.file="$WORK/config.yml" --storage.tsdb.path="$WORK/prometheus" \
    --web.listen-address=127.0.0.1:$PORT --log.level=warn 2>"$WORK/prometheus.log" &
PIDS="$PIDS $!"
"$BIN" --config.file="$WORK/config.yml" --storage.tsdb.path="$WORK/promcore" --shards=2 \
    --web.listen-address=127.0.0.1:$((PORT+1)) 2>"$WORK/promcore.log" &
PIDS="$PIDS $!"
for p in $PORT $((PORT+1)); do
    n=0; until curl -sf http://127.0.0.1:$p/-/ready >/dev/null; do
        n=$((n+1)); [ $n -lt 300 ] || exit 1; sleep 0.2; done
done
sleep "$WARMUP"
for p in $PORT $((PORT+1)); do
    printf '%s: %s series in the head\n' "$p" "$(curl -s "http://127.0.0.1:$p/api/v1/query?query=count(%7B__name__%3D~%22.%2B%22%7D)" | sed 's/.*"value":\[[^,]*,"\([0-9]*\)".*/\1/')"
done
python3 benches/label_churn/measure.py http://127.0.0.1:$PORT http://127.0.0.1:$((PORT+1)) "$RUNS" "$INTERVAL"
