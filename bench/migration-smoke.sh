#!/bin/bash
# Run from the repository root after `cargo build --release -p coreshard`;
# prints one `coreshard-admin migrate --json` line per move (keys, bytes,
# seconds, pause_us: how long the switch held writes to the slots).
# 3 nodes (2 shards each), about a million keys of 32 B written, node 0's all in one slot
# (redis-benchmark --cluster's hash tags), a redis-benchmark SET/GET load of
# 20 clients on the same keys, migrate slots 0-2730 to node 1 and back, 3 times.
BIN=${BIN:-target/release}
D=${D:-/tmp/coreshard-migration-smoke}; rm -rf $D; mkdir -p $D
PIDS=""
for p in 7100 7101 7102; do
  $BIN/coreshard --port $p --cluster-enabled yes --cluster-config-file $D/n$p.conf > $D/log$p 2>&1 &
  PIDS="$PIDS $!"
done
trap 'kill $PIDS $BPID 2>/dev/null' EXIT
sleep 1
$BIN/coreshard-admin create 127.0.0.1:7100 127.0.0.1:7101 127.0.0.1:7102 >/dev/null || exit 1
redis-benchmark -p 7100 --cluster -t set -n 2500000 -r 1000000 -d 32 -q >/dev/null 2>&1
for p in 7100 7101 7102; do echo "dbsize $p $(redis-cli -p $p dbsize)"; done
redis-benchmark -p 7100 --cluster -t set,get -n 50000000 -r 1000000 -d 32 -c 20 -q > $D/bench.txt 2>&1 &
BPID=$!
sleep 2
for i in 1 2 3; do
  $BIN/coreshard-admin migrate --from 127.0.0.1:7100 --to 127.0.0.1:7101 --slots 0-2730 --json || exit 1
  $BIN/coreshard-admin migrate --from 127.0.0.1:7101 --to 127.0.0.1:7100 --slots 0-2730 --json || exit 1
done
