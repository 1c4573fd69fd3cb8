#!/bin/bash
# The migration target's own clients while it applies a snapshot, on a
# 2-core machine without the CPU sharing of bench/migration.sh: two
# one-shard nodes, the source pinned to CPU 0 and the target to CPU 1
# (ports 7200 and 7201), 1,000,000 keys of 32 bytes written into slots
# 0-299 of the source with redis-cli --pipe, then an unthrottled
# `coreshard-admin migrate` of 0-299 to the target while a probe sends
# one GET at a time (0.5 ms apart) for a key of the target's own slots.
# Prints per round the migration's wall time and the probe's
# count/p50/p99/max latency in µs, in the second before the migration and
# between its start and its CUTOVER (the snapshot phase). Run from the
# repository root after
#   cargo build --release -p coreshard
# as
#   bench/migration-target-probe.sh [--rounds N]      (BIN=dir of the binaries, default target/release)
set -u
ROUNDS=1
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds N]" >&2; exit 2 ;;
  esac
done
BIN=${BIN:-target/release}
D=${D:-/tmp/coreshard-target-probe}
mkdir -p $D
PIDS=""
cleanup() { [ -n "$PIDS" ] && kill $PIDS 2>/dev/null; wait 2>/dev/null; PIDS=""; }
trap cleanup EXIT
if [ ! -s $D/fill.resp ]; then
  python3 - > $D/fill.resp <<'PY'
import sys
def crc16(data):
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc
tags, i = {}, 0
while len(tags) < 300:  # one hash tag per slot of 0-299
    t = "t%d" % i
    s = crc16(t.encode()) % 16384
    if s < 300 and s not in tags:
        tags[s] = t
    i += 1
tags = list(tags.values())
out, value = sys.stdout.buffer, b"x" * 32
for k in range(1_000_000):
    key = ("{%s}:%d" % (tags[k % 300], k)).encode()
    out.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$32\r\n%s\r\n" % (len(key), key, value))
PY
fi
for round in $(seq 1 "$ROUNDS"); do
  R=$D/round$round; rm -rf $R; mkdir -p $R
  for p in 7200 7201; do
    redis-cli -p $p ping >/dev/null 2>&1 && { echo "port $p is in use: stop what runs there" >&2; exit 1; }
  done
  taskset -c 0 $BIN/coreshard --port 7200 --threads 1 --cluster-enabled yes --cluster-config-file $R/a.conf > $R/a.log 2>&1 &
  PIDS="$PIDS $!"
  taskset -c 1 $BIN/coreshard --port 7201 --threads 1 --cluster-enabled yes --cluster-config-file $R/b.conf > $R/b.log 2>&1 &
  PIDS="$PIDS $!"
  for p in 7200 7201; do
    for _ in $(seq 200); do redis-cli -p $p ping >/dev/null 2>&1 && break; sleep 0.1; done
  done
  $BIN/coreshard-admin create 127.0.0.1:7200 127.0.0.1:7201 > $R/create.txt || exit 1
  redis-cli -p 7200 --pipe < $D/fill.resp > $R/fill.txt 2>&1 || { cat $R/fill.txt >&2; exit 1; }
  # probe0 is in slot 9762, the target's (it serves 8192-16383).
  python3 - $R/stop $R/probe.txt <<'PY' &
import os, socket, sys, time
stop, out = sys.argv[1], sys.argv[2]
s = socket.create_connection(("127.0.0.1", 7201))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
cmd, rows = b"*2\r\n$3\r\nGET\r\n$6\r\nprobe0\r\n", []
while not os.path.exists(stop):
    t = time.time()
    s.sendall(cmd)
    s.recv(256)
    rows.append((t, time.time() - t))
    time.sleep(0.0005)
with open(out, "w") as f:
    f.write("\n".join("%f %f" % r for r in rows))
PY
  PROBE=$!
  sleep 1.5
  $BIN/coreshard-admin migrate --from 127.0.0.1:7200 --to 127.0.0.1:7201 --slots 0-299 --json > $R/migration.json || exit 1
  sleep 0.5
  touch $R/stop
  wait $PROBE
  cleanup
  python3 - $R $round <<'PY'
import json, sys
r, n = sys.argv[1], sys.argv[2]
rows = [tuple(map(float, line.split())) for line in open(r + "/probe.txt") if line.strip()]
m = json.load(open(r + "/migration.json"))
start, cutover = m["started_unix_us"] / 1e6, m["cutover_unix_us"] / 1e6
def stats(a, b):
    xs = sorted(l * 1e6 for t, l in rows if a <= t < b)
    if not xs:
        return "0/0/0/0"
    return "%d/%d/%d/%d" % (len(xs), xs[len(xs) // 2], xs[min(len(xs) - 1, int(len(xs) * 0.99))], xs[-1])
print("round=%s wall_s=%.3f before_n/p50/p99/max_us=%s snapshot_n/p50/p99/max_us=%s"
      % (n, m["seconds"], stats(start - 1, start), stats(start, cutover)))
PY
done
