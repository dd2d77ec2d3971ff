#!/bin/sh
# Query latency, promcore vs Prometheus 2.42, on the same data backfilled into both (see
# benches/query_compare/). Usage: benches/query_compare.sh [SERIES [HOURS [RUNS]]]
# Needs /usr/bin/prometheus and promtool, and target/release/promcore
# (cargo build --release --bin promcore).
#
# Both get their blocks from `promcore tsdb create-blocks-from openmetrics` over one input:
# promcore with --shards=$SHARDS, and Prometheus the blocks of a one-shard run (a promcore shard
# directory is a Prometheus data directory, and its blocks are what promtool's backfill writes
# for the same input). promtool's own backfill is much slower (it re-reads the input once per
# 2 h block); PROMTOOL=1 uses it for Prometheus instead. RANGE_S (default 86400) is the span
# of the range query.
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
python3 "$HERE/generate.py" "$SERIES" "$HOURS" 60 "$END" "$WORK/om" 0 >&2
ls -l "$WORK/om/all.om" >&2
/usr/bin/time -f "promcore backfill, $SHARDS shards: %e s, %M KiB max RSS" \
  "$ROOT/target/release/promcore" tsdb create-blocks-from openmetrics -q --shards="$SHARDS" \
  "$WORK/om/all.om" "$WORK/promcore" >&2
if [ "${PROMTOOL:-0}" = 1 ]; then
  /usr/bin/time -f 'promtool backfill: %e s, %M KiB max RSS' \
    promtool tsdb create-blocks-from openmetrics -q "$WORK/om/all.om" "$WORK/prometheus" >&2
else
  "$ROOT/target/release/promcore" tsdb create-blocks-from openmetrics -q --shards=1 \
    "$WORK/om/all.om" "$WORK/one-shard" >&2
  mv "$WORK/one-shard/shard-000" "$WORK/prometheus"
  rm -rf "$WORK/one-shard"
fi
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
