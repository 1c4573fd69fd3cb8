#!/bin/bash
# The issue's migration benchmark (BENCHMARKS.md, "Migration of 1,000,000
# keys under load"). Run from the repository root after
#   cargo build --release -p coreshard -p coreshard-bench
# as
#   bench/migration.sh [--rounds N] [--slots LO-HI] [--keys N] [--rate R]
#                      [--migration-rate BYTES] [--threads N] [--before S] [--after S]
#
# Each round: 3 fresh release nodes (ports 7100-7102, default shards),
# `coreshard-admin create`, then coreshard-migration-load writes --keys keys
# of 32 bytes into slots LO-HI (node 0's; plain keys spread over those
# slots) and 100,000 keys outside them, and runs a steady open-loop SET/GET
# load (1:1) of --rate requests/s, half on each side, from --threads threads
# per group of keys (the moving keys, and each node's others), each with one
# request in flight. After --before seconds
# of it, node 0 migrates LO-HI to node 1 (`coreshard-admin migrate --json`),
# the load goes on for --after seconds, and the round prints one line: the
# migration (keys, MB, wall seconds, keys/s, MB/s, pause_us: how long the
# source held writes to the slots) and the client's latencies per window,
# inside (in_) and outside (out_) the moving slots, counted from when each
# request was due, and (svc_) from when it was sent; the full per-window
# report is in $D/report-N.json and every request in $D/roundN/samples.csv.
#
# The source's journal keeps what the migration has still to send, past
# the backlog (bounded by client-output-buffer-limit replica), so the
# nodes run with the default repl-backlog-size. --migration-rate sets the
# nodes' cluster-migration-bytes-per-sec
# (default 0: unthrottled).
#
# SERVER_ARGS (unset by default) adds arguments to every node's command
# line, e.g. SERVER_ARGS="--threads 1", or "--debug-migration-cleanup-keys-per-turn 0"
# to hold the source's deletion of the moved keys and see what the rest of
# the cutover costs.
#
# Pinning: SERVER_CPUS and CLIENT_CPUS (taskset -c lists) pin the nodes and
# the load client; unset (the default), nothing is pinned: on a 2-vCPU
# machine shared with other work, pinning three 2-shard nodes and a client
# apart only takes a core away from whichever is busy.
set -u
ROUNDS=1 SLOTS=0-299 KEYS=1000000 RATE=20000 BEFORE=5 AFTER=3 MRATE=0 THREADS=4
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --slots) SLOTS=$2; shift 2 ;;
    --keys) KEYS=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --migration-rate) MRATE=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --before) BEFORE=$2; shift 2 ;;
    --after) AFTER=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--slots LO-HI] [--keys N] [--rate R] [--migration-rate BYTES] [--threads N] [--before S] [--after S]" >&2; exit 2 ;;
  esac
done
BIN=${BIN:-target/release}
D=${D:-/tmp/coreshard-migration}
PORTS="7100 7101 7102"
pin() { # pin CPUS command...: taskset when CPUS is set; run with & (the exec makes $! the command's pid)
  local cpus=$1; shift
  if [ -n "$cpus" ]; then exec taskset -c "$cpus" "$@"; else exec "$@"; fi
}
PIDS=""
cleanup() { [ -n "$PIDS" ] && kill $PIDS 2>/dev/null; wait 2>/dev/null; PIDS=""; }
trap cleanup EXIT
wait_for() { # wait_for SECONDS command...: polls until the command succeeds
  local until=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -ge $until ] && return 1
    sleep 0.1
  done
}
mkdir -p $D
for round in $(seq 1 "$ROUNDS"); do
  R=$D/round$round; rm -rf $R; mkdir -p $R
  for p in $PORTS; do
    redis-cli -p $p ping >/dev/null 2>&1 && { echo "port $p is in use: stop what runs there" >&2; exit 1; }
  done
  for p in $PORTS; do
    pin "${SERVER_CPUS:-}" $BIN/coreshard --port $p --cluster-enabled yes --cluster-config-file $R/n$p.conf \
      --cluster-migration-bytes-per-sec $MRATE ${SERVER_ARGS:-} > $R/log$p 2>&1 &
    PIDS="$PIDS $!"
  done
  for p in $PORTS; do wait_for 20 redis-cli -p $p ping || { echo "node $p did not start" >&2; exit 1; }; done
  $BIN/coreshard-admin create $(for p in $PORTS; do echo 127.0.0.1:$p; done) > $R/create.txt || exit 1
  pin "${CLIENT_CPUS:-}" $BIN/coreshard-migration-load --node 127.0.0.1:7100 --slots $SLOTS --keys $KEYS \
    --rate $RATE --threads $THREADS --ready-file $R/ready --until-file $R/migration.json --json $D/report-$round.json --samples $R/samples.csv \
    > $R/result.txt 2> $R/load.err &
  LPID=$!
  PIDS="$PIDS $LPID"
  wait_for 300 test -e $R/ready || { echo "the load client did not start:" >&2; cat $R/load.err >&2; exit 1; }
  sleep "$BEFORE"
  LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
  AT=$(date -u +%H:%M:%S)
  $BIN/coreshard-admin migrate --from 127.0.0.1:7100 --to 127.0.0.1:7101 --slots $SLOTS --json > $R/migration.tmp \
    || { echo "round $round: migration failed" >&2; exit 1; }
  sleep "$AFTER"
  mv $R/migration.tmp $R/migration.json
  wait $LPID || { echo "round $round: the load client failed:" >&2; cat $R/load.err >&2; exit 1; }
  echo "round=$round at=$AT load=\"$LOAD\" $(cat $R/result.txt)"
  cleanup
done
