#!/bin/bash
# RSS per series and restart time of one promcore binary under a running loadgen serve
# (`loadgen serve --targets=1000 --series-per-target=1000 --gzip-level=1
#  --sd-file=$WORK/targets.json`); see BENCHMARKS.md, "Memory per series and restart".
# usage: benches/rss_and_restart.sh BINARY TAG  (loadgen serve already running, sd file ${WORK:-/tmp/h3-man}/targets.json)
BIN=$1; TAG=$2; D=${WORK:-/tmp/h3-man}/$TAG; rm -rf $D; mkdir -p $D
cat > $D/p.yml <<EOT
global:
  scrape_interval: 10s
  scrape_timeout: 10s
scrape_configs:
  - job_name: loadgen
    file_sd_configs:
      - files: ["${WORK:-/tmp/h3-man}/targets.json"]
EOT
PORT=$((20000 + RANDOM % 20000))
start() { $BIN --config.file=$D/p.yml --storage.tsdb.path=$D/data --web.listen-address=127.0.0.1:$PORT >> $D/log 2>&1 & echo $! > $D/pid; }
ready() { local t0=$(date +%s.%N); for i in $(seq 1 600); do curl -s -m 2 -o /dev/null -w '%{http_code}' http://127.0.0.1:$PORT/-/ready | grep -q 200 && break; sleep 0.05; done; echo "$(date +%s.%N) - $t0" | bc; }
start; ready > /dev/null
for i in $(seq 1 24); do sleep 5; n=$(curl -s -m 60 http://127.0.0.1:$PORT/metrics | awk '/^prometheus_tsdb_head_series /{printf "%d", $2}'); echo "t=$((i*5)) series=$n rss=$(awk '/VmRSS/{print $2}' /proc/$(cat $D/pid)/status)kB"; [ "$n" -ge 1005000 ] 2>/dev/null && [ $i -ge 12 ] && break; done
RSS=$(awk '/VmRSS/{print $2}' /proc/$(cat $D/pid)/status)
curl -s -m 60 http://127.0.0.1:$PORT/metrics | grep -E "^promcore_shard_head_heap_bytes|^prometheus_tsdb_head_series "
echo "RSS_KB=$RSS"
kill -TERM $(cat $D/pid); while kill -0 $(cat $D/pid) 2>/dev/null; do sleep 0.1; done
start; echo "clean_ready_s=$(ready)"; sleep 3
kill -KILL $(cat $D/pid); sleep 0.5
start; echo "kill_ready_s=$(ready)"
grep "head rebuilt\|ready to receive" $D/log | tail -6
kill -TERM $(cat $D/pid); while kill -0 $(cat $D/pid) 2>/dev/null; do sleep 0.1; done
