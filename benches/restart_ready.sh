#!/bin/bash
# usage: benches/restart_ready.sh BINARY TAG (after rss_and_restart.sh made $WORK/TAG): clean restart of an existing data dir, time to /-/ready
BIN=$1; D=${WORK:-/tmp/h3-man}/$2; PORT=$((20000 + RANDOM % 20000))
t0=$(date +%s.%N)
$BIN --config.file=$D/p.yml --storage.tsdb.path=$D/data --web.listen-address=127.0.0.1:$PORT >> $D/log 2>&1 & pid=$!
for i in $(seq 1 900); do curl -s -m 2 -o /dev/null -w '%{http_code}' http://127.0.0.1:$PORT/-/ready | grep -q 200 && break; sleep 0.05; done
echo "$2 ready_s=$(echo "$(date +%s.%N) - $t0" | bc)"
kill -TERM $pid; while kill -0 $pid 2>/dev/null; do sleep 0.1; done
grep "head rebuilt" $D/log | tail -2 | grep -o "shard-00.\|series=[0-9]*\|duration=[0-9.a-z]*" | tr '\n' ' '; echo
