#!/bin/bash
# usage: benches/restart_ready.sh BINARY TAG (after rss_and_restart.sh made $WORK/TAG): clean restart of an existing data dir,
# time to /-/ready and to the first answered query over the old data, the CPU seconds each thread had used by then, and the
# shards' "head rebuilt" durations. KILL=1 stops the previous run with SIGKILL first (a crash restart of the same data).
BIN=$1; D=${WORK:-/tmp/h3-man}/$2; PORT=$((20000 + RANDOM % 20000))
if [ "${KILL:-0}" = 1 ]; then
  $BIN --config.file=$D/p.yml --storage.tsdb.path=$D/data --web.listen-address=127.0.0.1:$PORT >> $D/log 2>&1 & pid=$!
  for i in $(seq 1 900); do curl -s -m 2 -o /dev/null -w '%{http_code}' http://127.0.0.1:$PORT/-/ready | grep -q 200 && break; sleep 0.05; done
  sleep 3; kill -KILL $pid; wait $pid 2>/dev/null
fi
t0=$(date +%s.%N)
$BIN --config.file=$D/p.yml --storage.tsdb.path=$D/data --web.listen-address=127.0.0.1:$PORT >> $D/log 2>&1 & pid=$!
for i in $(seq 1 900); do curl -s -m 2 -o /dev/null -w '%{http_code}' http://127.0.0.1:$PORT/-/ready | grep -q 200 && break; sleep 0.02; done
ready=$(echo "$(date +%s.%N) - $t0" | bc)
cpu=$(for t in /proc/$pid/task/*; do echo -n "$(cat $t/comm)=$(sed 's/.*) //' $t/stat | awk '{printf "%.2f", ($12+$13)/100}') "; done)
hwm=$(grep -E "VmHWM|RssAnon|RssFile" /proc/$pid/status | tr -s " \t\n" " ")
for i in $(seq 1 900); do curl -s -m 5 "http://127.0.0.1:$PORT/api/v1/query?query=count(loadgen_build_info)" | grep -q '"value"' && break; sleep 0.02; done
query=$(echo "$(date +%s.%N) - $t0" | bc)
echo "$2 ready_s=$ready first_query_s=$query $hwm cpu_at_ready: $cpu"
kill -TERM $pid; while kill -0 $pid 2>/dev/null; do sleep 0.1; done
grep "head rebuilt" $D/log | tail -2 | grep -o "shard-00.\|series=[0-9]*\|duration=[0-9.a-z]*" | tr '\n' ' '; echo
