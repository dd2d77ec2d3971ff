#!/bin/sh
# Query latency, promcore vs Prometheus 2.42, on the same data backfilled into both (see
# benches/query_compare/). Usage: benches/query_compare.sh [SERIES [HOURS [RUNS]]]
# Needs /usr/bin/prometheus and promtool, and target/release/promcore
# (cargo build --release --bin promcore).
#
# Prometheus gets blocks from `promtool tsdb create-blocks-from openmetrics` over all series;
# promcore gets the same tool's blocks per shard, made from the series each shard owns, put in
# its shard directories (promcore reads Prometheus blocks as they are).
set -eu
SERIES=${1:-20000}
HOURS=${2:-24}
RUNS=${3:-7}
SHARDS=${SHARDS:-2}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-$(mktemp -d /tmp/query_compare.XXXXXX)}
HERE="$ROOT/benches/query_compare"
if [ -f "$WORK/end" ]; then END=$(cat "$WORK/end"); else END=$(( $(date +%s) / 60 * 60 - 120 )); fi
PROM_PORT=${PROM_PORT:-19391}
CORE_PORT=${CORE_PORT:-19392}

echo "data in $WORK: $SERIES series, ${HOURS}h at 60s, ending $END" >&2
# A WORK of an earlier run (with its data) is reused as it is.
if [ ! -f "$WORK/end" ]; then
python3 "$HERE/generate.py" "$SERIES" "$HOURS" 60 "$END" "$WORK/om" "$SHARDS" >&2
promtool tsdb create-blocks-from openmetrics -q "$WORK/om/all.om" "$WORK/prometheus" >&2
mkdir -p "$WORK/promcore"
i=0
while [ "$i" -lt "$SHARDS" ]; do
  s=$(printf 'shard-%03d' "$i")
  promtool tsdb create-blocks-from openmetrics -q "$WORK/om/$s.om" "$WORK/promcore/$s" >&2
  i=$((i + 1))
done
printf '{"format_version": 1, "shards": %d}\n' "$SHARDS" > "$WORK/promcore/promcore.json"
rm -rf "$WORK/om"
echo "$END" > "$WORK/end"
fi
printf 'global:\n  scrape_interval: 1m\n' > "$WORK/prometheus.yml"

/usr/bin/prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prometheus" \
  --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn 2>"$WORK/prometheus.log" &
PROM=$!
"$ROOT/target/release/promcore" --config.file="$WORK/prometheus.yml" \
  --storage.tsdb.path="$WORK/promcore" --shards="$SHARDS" \
  --web.listen-address="127.0.0.1:$CORE_PORT" 2>"$WORK/promcore.log" &
CORE=$!
trap 'kill $PROM $CORE 2>/dev/null || true' EXIT
for port in $PROM_PORT $CORE_PORT; do
  n=0
  until curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null; do
    n=$((n + 1)); [ "$n" -lt 600 ] || { echo "server on $port not ready" >&2; exit 1; }
    sleep 1
  done
done
# Let start-up compaction of the imported 2 h blocks finish on both before timing.
sleep "${SETTLE:-60}"
python3 "$HERE/measure.py" "http://127.0.0.1:$PROM_PORT" "http://127.0.0.1:$CORE_PORT" "$END" "$RUNS"
