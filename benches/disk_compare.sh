#!/bin/sh
# On-disk bytes per sample, promcore against Prometheus 2.42 on the same samples: one
# scrape-like OpenMetrics file (benches/disk_compare/generate.py: counters, integer and
# decimal gauges, 15 s with ms jitter) backfilled by `promtool tsdb create-blocks-from
# openmetrics` and by `promcore tsdb create-blocks-from openmetrics` (one shard, and
# $SHARDS shards), then benches/disk_compare/sizes.py compares chunks/ and index bytes per
# sample of the resulting blocks.
# With COMPACT=1 both servers (Prometheus 2.42 on promtool's blocks, promcore on its own
# one-shard and $SHARDS-shard directories) are then started on the blocks until each has
# merged its first 2 h blocks into a 6 h one, and the sizes are compared again. Give
# HOURS >= 10: backfilled blocks end at their last sample, not on the 2 h boundary, so
# Prometheus's planner merges a 6 h range only once it lies before the newest block it
# considers, and it never considers the newest block of all.
# Usage: benches/disk_compare.sh [SERIES [HOURS]]   (defaults 100000 and 2)
# Needs promtool (Debian package prometheus) and target/release/promcore (or PROMCORE=path).
# The input takes about 52 bytes a sample on disk; WORK (default a new /tmp directory) is
# kept for a re-run, and an input already there is reused.
set -eu
SERIES=${1:-100000}
HOURS=${2:-2}
SHARDS=${SHARDS:-2}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PROMCORE=${PROMCORE:-$ROOT/target/release/promcore}
WORK=${WORK:-$(mktemp -d /tmp/disk_compare.XXXXXX)}
HERE="$ROOT/benches/disk_compare"
echo "data in $WORK: $SERIES series, ${HOURS}h at 15s" >&2
[ -f "$WORK/all.om" ] || python3 "$HERE/generate.py" "$SERIES" "$HOURS" 15 "$WORK/all.om" >&2
rm -rf "$WORK/prometheus" "$WORK/promcore-1" "$WORK/promcore-$SHARDS"
/usr/bin/time -f 'promtool backfill: %e s, %M KiB max RSS' \
  promtool tsdb create-blocks-from openmetrics -q "$WORK/all.om" "$WORK/prometheus" >&2
for n in 1 "$SHARDS"; do
  /usr/bin/time -f "promcore backfill, $n shards: %e s, %M KiB max RSS" \
    "$PROMCORE" tsdb create-blocks-from openmetrics -q --shards="$n" "$WORK/all.om" \
    "$WORK/promcore-$n" >&2
done
python3 "$HERE/sizes.py" "$WORK/prometheus" "$WORK/promcore-1" "$WORK/promcore-$SHARDS"
[ "${COMPACT:-0}" = 1 ] || exit 0

printf 'global:\n  scrape_interval: 1h\n' > "$WORK/empty.yml"
# The data is from 2023: a retention long enough to keep it.
KEEP=--storage.tsdb.retention.time=100y
/usr/bin/prometheus --config.file="$WORK/empty.yml" --storage.tsdb.path="$WORK/prometheus" \
  "$KEEP" --web.listen-address=127.0.0.1:19481 --log.level=warn 2>"$WORK/prometheus.log" &
PIDS=$!
"$PROMCORE" --config.file="$WORK/empty.yml" --storage.tsdb.path="$WORK/promcore-1" "$KEEP" \
  --shards=1 --web.listen-address=127.0.0.1:19482 2>"$WORK/promcore-1.log" &
PIDS="$PIDS $!"
"$PROMCORE" --config.file="$WORK/empty.yml" --storage.tsdb.path="$WORK/promcore-$SHARDS" \
  "$KEEP" --shards="$SHARDS" --web.listen-address=127.0.0.1:19483 2>"$WORK/promcore-n.log" &
PIDS="$PIDS $!"
trap 'kill $PIDS 2>/dev/null || true' EXIT
# Every directory (every shard) holds a merged block, or 20 minutes passed.
n=0
until [ "$(grep -l '"level": *2' "$WORK"/prometheus/*/meta.json "$WORK"/promcore-1/*/*/meta.json \
      "$WORK/promcore-$SHARDS"/*/*/meta.json 2>/dev/null | wc -l)" -ge $((2 + SHARDS)) ]; do
  n=$((n + 1)); [ "$n" -lt 1200 ] || { echo "no merge within 20 minutes" >&2; exit 1; }
  sleep 1
done
kill $PIDS; wait
trap - EXIT
echo "after the merge into 6 h blocks:"
python3 "$HERE/sizes.py" "$WORK/prometheus" "$WORK/promcore-1" "$WORK/promcore-$SHARDS"
