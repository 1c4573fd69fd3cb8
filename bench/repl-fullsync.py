#!/usr/bin/env python3
"""Full sync of a loaded primary to an empty replica: coreshard against redis-server.

One primary of each kind is loaded with the same --keys keys (`key:` and 12
digits, 16 bytes) and --value-size random bytes each (fixed seed), generated
once and fed to both through `redis-cli --pipe`. Each round starts a fresh,
empty replica of each kind in turn (redis first in rounds 1, 3, 5 ...,
coreshard first in the others) and times, from its REPLICAOF, when INFO
replication first shows `master_link_status:up` ("link up") and when, after
that, its DEBUG DIGEST equals its primary's ("converged": the time the
matching DEBUG DIGEST was sent, so that the digest's own cost stays out;
over 1M keys it takes about 2.2 s in redis-server and 0.25 s in coreshard;
the count of digests taken is printed). The two servers' digests are
different functions: each replica is compared with its own kind's primary
only. Prints a table per round, the medians, and a summary line with the
median coreshard/redis ratio of "converged" (the goal is 0.5 or less).

Primaries run on --primary-cpus (default CPU 0), replicas on --replica-cpus
(default CPU 1): one core each for the sender and the receiver, as two
machines would give them. redis-server runs with `--save "" --appendonly no
--enable-debug-command yes`, its primary also with `--repl-diskless-sync yes
--repl-diskless-sync-delay 0` (its fork streams the RDB straight to the
socket; the replica, with the default repl-diskless-load disabled, writes it
to a file in a temporary folder and loads it; --redis-diskless-load
on-empty-db has it load from the socket). coreshard runs with
`--threads 1` on both sides unless --threads says otherwise.

  cargo build --release -p coreshard
  bench/repl-fullsync.py --rounds 9

A replica that does not converge within --timeout seconds, or a server that
exits, ends the run with the tail of its log (the logs are kept).
"""
import argparse, random, shutil, statistics, subprocess, time
from benchlib import Resp, RespError, Servers, fail, free_port, info

KEY_FORMAT = b"key:%012d"
SEED = 20261202


def dataset(keys, value_size):
    """The load as RESP: one SET per key, values random bytes (fixed seed)."""
    rng = random.Random(SEED)
    out = []
    for i in range(keys):
        key, value = KEY_FORMAT % i, rng.randbytes(value_size)
        out.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, len(value), value))
    return b"".join(out)


def load(servers, name, port, data, keys):
    r = subprocess.run(["redis-cli", "-p", str(port), "--pipe"], input=data, capture_output=True)
    if r.returncode != 0:
        servers.fail(f"redis-cli --pipe into {name} failed: {(r.stdout + r.stderr).decode()[-300:]}", [name])
    size = Resp(port).cmd("DBSIZE")
    if size != keys:
        servers.fail(f"{name} holds {size} keys after the load, not {keys}", [name])


def timed_digest(port):
    c = Resp(port, timeout=120)
    t = time.monotonic()
    d = c.cmd("DEBUG", "DIGEST")
    return d, time.monotonic() - t


def sync_once(a, servers, name, kind, primary_port, want_digest, replica_cmd):
    """Starts an empty replica, points it at the primary; returns (link up s,
    converged s, digests taken)."""
    port = free_port()
    servers.start(name, a.replica_cpus, replica_cmd(port), port)
    c = Resp(port, timeout=max(a.timeout, 30))
    if c.cmd("DBSIZE") != 0:
        servers.fail(f"{name} is not empty before REPLICAOF", [name])
    poll = a.poll_ms / 1000
    t0 = time.monotonic()
    c.cmd("REPLICAOF", "127.0.0.1", primary_port)
    deadline = t0 + a.timeout
    up = None
    digests = 0
    last = {}
    while time.monotonic() < deadline:
        if servers.dead():
            servers.fail(f"{', '.join(servers.dead())} exited during the sync", [name, f"{kind}-primary"])
        try:
            if up is None:
                last = info(c, "replication")
                if last.get("master_link_status") == "up":
                    up = time.monotonic() - t0
                    continue
            else:
                sent = time.monotonic() - t0
                got = c.cmd("DEBUG", "DIGEST")
                digests += 1
                if got == want_digest:
                    converged = sent
                    break
                last = {"digest": got.decode(), "want": want_digest.decode()}
        except (OSError, RespError) as e:
            last = {"error": str(e)}
        time.sleep(poll)
    else:
        state = ", ".join(f"{k}={v}" for k, v in last.items() if k in (
            "master_link_status", "master_sync_in_progress", "slave_repl_offset", "digest", "want", "error"))
        servers.fail(f"{name} did not converge in {a.timeout}s (link up at {up}; last seen: {state})",
                     [name, f"{kind}-primary"])
    size = c.cmd("DBSIZE")
    if size != a.keys:
        servers.fail(f"{name} converged with {size} keys, not {a.keys}", [name])
    c.close()
    servers.stop_one(name)
    return up, converged, digests


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--keys", type=int, default=1_000_000)
    p.add_argument("--value-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=1, help="coreshard shards, primary and replica")
    p.add_argument("--primary-cpus", default="0")
    p.add_argument("--replica-cpus", default="1")
    p.add_argument("--timeout", type=float, default=120, help="seconds a replica may take to converge")
    p.add_argument("--poll-ms", type=float, default=5, help="INFO / DIGEST polling interval")
    p.add_argument("--redis-diskless-load", default="disabled", choices=["disabled", "on-empty-db", "swapdb"],
                   help="repl-diskless-load of the redis replica")
    p.add_argument("--coreshard", default="target/release/coreshard")
    p.add_argument("--redis", default=shutil.which("redis-server") or "redis-server")
    a = p.parse_args()
    for tool in ("redis-cli", "taskset"):
        if not shutil.which(tool):
            fail(f"{tool} not found (apt-get install redis-tools util-linux)")
    redis_common = ["--save", "", "--appendonly", "no", "--enable-debug-command", "yes", "--bind", "127.0.0.1"]
    commands = {
        "redis": lambda port, primary=False: [a.redis, "--port", str(port)] + redis_common + (
            ["--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"] if primary
            else ["--repl-diskless-load", a.redis_diskless_load]),
        "coreshard": lambda port, primary=False: [a.coreshard, "--port", str(port), "--threads", str(a.threads)],
    }
    print(f"repl-fullsync: generating {a.keys:,} keys with {a.value_size}-byte values", flush=True)
    data = dataset(a.keys, a.value_size)
    servers = Servers()
    results = {"redis": [], "coreshard": []}
    try:
        ports, digests = {}, {}
        for kind, make in commands.items():
            ports[kind] = free_port()
            servers.start(f"{kind}-primary", a.primary_cpus, make(ports[kind], primary=True), ports[kind])
            t = time.monotonic()
            load(servers, f"{kind}-primary", ports[kind], data, a.keys)
            digests[kind], digest_s = timed_digest(ports[kind])
            print(f"repl-fullsync: {kind} primary loaded in {time.monotonic() - t:.1f}s, "
                  f"DEBUG DIGEST takes {digest_s * 1000:.0f} ms", flush=True)
        del data
        for rnd in range(a.rounds):
            order = ["redis", "coreshard"] if rnd % 2 == 0 else ["coreshard", "redis"]
            for kind in order:
                name = f"{kind}-replica-{rnd + 1}"
                up, conv, checks = sync_once(a, servers, name, kind, ports[kind], digests[kind], commands[kind])
                results[kind].append((up, conv))
                print(f"repl-fullsync: round {rnd + 1} {kind}: link up {up:.2f}s, converged {conv:.2f}s "
                      f"({checks} digest{'s' if checks > 1 else ''})", flush=True)
        for kind in commands:
            if timed_digest(ports[kind])[0] != digests[kind]:
                servers.fail(f"{kind} primary's digest changed during the run", [f"{kind}-primary"])
    finally:
        servers.stop()
    r, c = results["redis"], results["coreshard"]
    print()
    print("| round | redis link up s | redis converged s | coreshard link up s | coreshard converged s "
          "| converged c/r |")
    print("|---|---|---|---|---|---|")
    for i, (rr, cc) in enumerate(zip(r, c)):
        print(f"| {i + 1} | {rr[0]:.2f} | {rr[1]:.2f} | {cc[0]:.2f} | {cc[1]:.2f} | {cc[1] / rr[1]:.2f} |")
    med = lambda rows, i: statistics.median(x[i] for x in rows)
    ratios = [cc[1] / rr[1] for rr, cc in zip(r, c)]
    print(f"| median | {med(r, 0):.2f} | {med(r, 1):.2f} | {med(c, 0):.2f} | {med(c, 1):.2f} "
          f"| {statistics.median(ratios):.2f} |")
    ratio = statistics.median(ratios)
    print(f"repl-fullsync: {a.keys:,} keys, {a.rounds} rounds: converged in {med(r, 1):.2f}s (redis) and "
          f"{med(c, 1):.2f}s (coreshard, {a.threads} shard{'s' if a.threads > 1 else ''}), ratio {ratio:.2f} "
          f"(per round {min(ratios):.2f}-{max(ratios):.2f}); goal <= 0.5 {'met' if ratio <= 0.5 else 'not met'}")


if __name__ == "__main__":
    main()
