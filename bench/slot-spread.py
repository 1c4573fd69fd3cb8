#!/usr/bin/env python3
"""How a cluster node's load spreads over its shards: a 3-node cluster of
N-shard nodes is made with `coreshard-admin create` (nodes 1 and 2 stay
idle), and node 0, which serves the first third of the slots, takes a load
on keys of its own slots only. Reports ops/s, the CPU time of each shard
thread, and the keys per shard where the server reports them
(`coreshard_shard_keys` in INFO cluster; "n/a" otherwise), for each server
binary given, in turns.

With contiguous slot ranges per shard (before the slot map change), slots
0-5460 all belong to shard 0 of a 2-shard node, so one shard does every
key's work and the other only forwards; interleaved (slot % shards, the
map now), both shards own a half. BENCHMARKS.md has figures.

    bench/slot-spread.py --server a=/tmp/coreshard-a --server b=target/release/coreshard \\
        --admin target/debug/coreshard-admin --workload lrange

Runs `--runs` rounds; each round runs every server once, so the ratio
between them is taken within a round on the same machine state.
"""
import argparse, json, os, random, socket, subprocess, sys, tempfile, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import Resp, encode, fail, free_port, wait_ping  # noqa: E402

VALUE = b"v" * 32
GET_REPLY = b"$32\r\n" + VALUE + b"\r\n"
# `--workload lrange`: each key a list of this many 8-byte elements.
LIST_LEN = 100
ELEMENT = b"e" * 8
LRANGE_REPLY_BYTES = len(b"*%d\r\n" % LIST_LEN) + LIST_LEN * len(b"$8\r\n" + ELEMENT + b"\r\n")


def crc16(data):
    """CRC16/XMODEM, as Redis Cluster's key slots."""
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def keys_in(lo, hi, n):
    """The first `n` keys `key:<i>` whose slot lies in lo..=hi."""
    out, i = [], 0
    while len(out) < n:
        k = f"key:{i}".encode()
        if lo <= crc16(k) % 16384 <= hi:
            out.append(k)
        i += 1
    return out


def shard_cpu(pid):
    """CPU seconds of each `shard-<i>` thread of process `pid`, by shard."""
    tick = os.sysconf("SC_CLK_TCK")
    cpu = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if name.startswith("shard-"):
            cpu[int(name[6:])] = (int(fields[11]) + int(fields[12])) / tick
    return [cpu[i] for i in sorted(cpu)]


def start(binary, shards, conf):
    port = free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--threads", str(shards),
            "--cluster-enabled", "yes", "--cluster-config-file", conf]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ping(port, proc)
    return proc, port


def load(port, keys, seconds, threads, conns, pipeline, seed, workload):
    """SET:GET 1:9 (or LRANGE of whole lists) in pipelined batches:
    `threads` client threads, each keeping a batch in flight on each of its
    `conns` connections (so many batches are in flight while few Python
    threads run); total ops/s."""
    rng = random.Random(seed)
    batches = []
    for _ in range(64):
        cmds, want = bytearray(), 0
        for j in range(pipeline):
            k = rng.choice(keys)
            if workload == "lrange":
                cmds += encode(b"LRANGE", k, 0, -1)
                want += LRANGE_REPLY_BYTES
            elif j % 10 == 0:
                cmds += encode(b"SET", k, VALUE)
                want += 5
            else:
                cmds += encode(b"GET", k)
                want += len(GET_REPLY)
        batches.append((bytes(cmds), want))
    done = [0] * threads
    stop = time.time() + seconds

    def run(i):
        socks = []
        for _ in range(conns):
            s = socket.create_connection(("127.0.0.1", port))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            socks.append(s)
        n = i
        while time.time() < stop:
            wants = []
            for s in socks:
                cmds, want = batches[n % len(batches)]
                n += 1
                s.sendall(cmds)
                wants.append(want)
            for s, want in zip(socks, wants):
                got = 0
                while got < want:
                    chunk = s.recv(1 << 20)
                    if not chunk:
                        raise RuntimeError("server closed the connection")
                    got += len(chunk)
            done[i] += pipeline * conns
        for s in socks:
            s.close()

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    t0 = time.time()
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return sum(done) / (time.time() - t0)


def one(name, binary, admin, args, seed):
    with tempfile.TemporaryDirectory(prefix="slot-spread-") as d:
        nodes = [start(binary, args.shards, os.path.join(d, f"node{i}.conf")) for i in range(3)]
        try:
            addrs = [f"127.0.0.1:{p}" for _, p in nodes]
            out = subprocess.run([admin, "create", "--json", *addrs], capture_output=True, text=True)
            if out.returncode != 0:
                fail(f"create: {out.stderr}")
            config = json.loads(out.stdout)
            mine = config["nodes"][0]["slots"]
            if len(mine) != 1:
                fail(f"node 0 serves {mine}")
            lo, hi = mine[0]["start"], mine[0]["end"]
            proc, port = nodes[0]
            keys = keys_in(lo, hi, args.keys)
            c = Resp(port)
            for i in range(0, len(keys), 1000):
                for k in keys[i:i + 1000]:
                    if args.workload == "lrange":
                        c.send(b"RPUSH", k, *[ELEMENT] * LIST_LEN)
                    else:
                        c.send(b"SET", k, VALUE)
                for _ in keys[i:i + 1000]:
                    c.read()
            before = shard_cpu(proc.pid)
            ops = load(port, keys, args.seconds, args.threads, args.conns, args.pipeline, seed, args.workload)
            after = shard_cpu(proc.pid)
            per_shard = c.cmd(b"INFO", b"cluster").decode()
            spread = next((l.split(":", 1)[1] for l in per_shard.splitlines()
                           if l.startswith("coreshard_shard_keys:")), "n/a")
            c.close()
            cpu = [round(b - a, 2) for a, b in zip(before, after)]
            print(f"{name}: slots {lo}-{hi}, {ops:,.0f} ops/s, shard CPU s {cpu}, keys per shard {spread}",
                  flush=True)
            return ops
        finally:
            for proc, _ in nodes:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", action="append", required=True, help="NAME=PATH of a coreshard binary")
    ap.add_argument("--admin", required=True, help="coreshard-admin binary")
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--keys", type=int, default=50_000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--threads", type=int, default=2, help="client threads")
    ap.add_argument("--conns", type=int, default=16, help="connections per client thread")
    ap.add_argument("--pipeline", type=int, default=32)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workload", choices=["getset", "lrange"], default="getset",
                    help="getset: SET:GET 1:9 of 32-byte values; lrange: LRANGE 0 -1 of 100-element lists")
    args = ap.parse_args()
    servers = [s.split("=", 1) for s in args.server]
    results = {name: [] for name, _ in servers}
    for r in range(args.runs):
        for name, binary in servers:
            results[name].append(one(name, binary, args.admin, args, seed=r))
        base = results[servers[0][0]][-1]
        print("round", r + 1, " ".join(f"{n}/{servers[0][0]}={results[n][-1] / base:.2f}" for n, _ in servers[1:]))
    for name, ops in results.items():
        print(f"{name}: ops/s min {min(ops):,.0f} median {sorted(ops)[len(ops) // 2]:,.0f} max {max(ops):,.0f}")


if __name__ == "__main__":
    main()
