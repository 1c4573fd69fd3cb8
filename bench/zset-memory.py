#!/usr/bin/env python3
"""Memory of one large sorted set in coreshard and redis-server.

Each server gets the same data: one sorted set of --members members
(`element:` and 12 digits, as redis-benchmark's zadd test names them) with
random integer scores below 100,000 (fixed seed), loaded with
`redis-cli --pipe` in chunks, then a second set like it under another key.
Prints, per server, MEMORY USAGE of the first set (SAMPLES 0: every member
counted) and the growth of resident memory (VmRSS) while the second set
loaded, both per member. The second set is the one measured for RSS so
that one-time costs (connection buffers, allocator arenas) stay out.

  bench/zset-memory.py [--members N] [--server BIN ...]

Build first: cargo build --release -p coreshard. Several --server binaries
(for example a build of main and one of a branch) are measured in turn.
"""
import argparse, random, shutil, subprocess, sys, time
from benchlib import free_port, wait_ping

CHUNK_COMMANDS = 5000


def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def load(port, commands):
    for i in range(0, len(commands), CHUNK_COMMANDS):
        data = b"".join(commands[i:i + CHUNK_COMMANDS])
        r = subprocess.run(["redis-cli", "-p", str(port), "--pipe"], input=data, capture_output=True)
        if r.returncode != 0:
            sys.exit(f"zset-memory: redis-cli --pipe failed: {r.stdout.decode()[-300:]}")


def cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True).stdout.strip()


def measure(name, cmd, sets):
    port = free_port()
    proc = subprocess.Popen([c.replace("{port}", str(port)) for c in cmd],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ping(port, proc)
        load(port, sets[0])
        time.sleep(0.5)
        before = rss_bytes(proc.pid)
        load(port, sets[1])
        time.sleep(0.5)
        grown = rss_bytes(proc.pid) - before
        usage = int(cli(port, "MEMORY", "USAGE", "zset:a", "SAMPLES", "0"))
        card = int(cli(port, "ZCARD", "zset:a"))
        return name, card, usage, grown
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--members", type=int, default=100_000)
    p.add_argument("--server", action="append", help="coreshard binary (repeatable)")
    p.add_argument("--redis", default=shutil.which("redis-server") or "redis-server")
    a = p.parse_args()
    rng = random.Random(20261201)
    scores = [b"%d" % rng.randrange(100_000) for _ in range(a.members)]
    sets = [[resp(b"ZADD", key, scores[i], b"element:%012d" % i) for i in range(a.members)]
            for key in (b"zset:a", b"zset:b")]
    servers = [("redis", [a.redis, "--port", "{port}", "--save", "", "--appendonly", "no"])]
    for binary in a.server or ["target/release/coreshard"]:
        servers.append((binary, [binary, "--port", "{port}", "--threads", "1"]))
    print(f"{'server':<40}{'members':>10}{'MEMORY USAGE':>14}{'B/member':>10}{'RSS growth':>14}{'B/member':>10}")
    for name, cmd in servers:
        name, card, usage, grown = measure(name, cmd, sets)
        print(f"{name:<40}{card:>10,}{usage:>14,}{usage / card:>10.1f}{grown:>14,}{grown / card:>10.1f}")


if __name__ == "__main__":
    main()
