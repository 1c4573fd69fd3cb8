#!/usr/bin/env python3
"""A primary's SET throughput without a replica and with one in sync: coreshard against redis-server.

Six servers run at once, all on --server-cpus (default CPU 0): of each kind a
primary that never has a replica ("solo"), and a primary with one replica
attached and in sync ("replicated"). redis-benchmark, on --client-cpus
(default CPU 1), runs `-t set -c 50 -d 32 -r 100000` at each pipeline depth
against the four primaries in turn, the order rotating every round. The
replica shares the servers' core, so what it costs shows as the primary's
loss. After each run against a replicated primary the script waits until
the replica has applied everything (its slave_repl_offset reaches the
primary's master_repl_offset) before the next run starts, so no run pays for
another's backlog; how long that took is printed. Every primary is first
filled with the whole key space (so all runs overwrite keys), and at the end
each replica must have its primary's DEBUG DIGEST with no second full sync.

Prints the medians of ops/s, each server's loss in percent (1 - replicated /
solo), whether coreshard's loss is within redis's + 5 points, and the
CPU time per request of each primary and of each replica (from /proc, in
clock ticks: read it over several rounds).

  cargo build --release -p coreshard
  bench/repl-throughput.py --rounds 11

redis-server runs with `--save "" --appendonly no --enable-debug-command yes`
(the replicated primary also with `--repl-diskless-sync yes
--repl-diskless-sync-delay 0`, so its one full sync starts at once), coreshard with `--threads 1` (--threads for more).
"""
import argparse, shutil, statistics, subprocess, time
from benchlib import Resp, Servers, cpu_seconds, fail, free_port, info, wait_replica

TARGETS = ["redis-solo", "redis-replicated", "coreshard-solo", "coreshard-replicated"]


def bench(a, servers, port, pipeline, requests):
    cmd = ["taskset", "-c", a.client_cpus, "redis-benchmark", "-p", str(port), "-c", str(a.clients),
           "-n", str(requests), "-P", str(pipeline), "-d", str(a.data_size), "-r", str(a.keyspace),
           "-t", "set", "--csv"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        servers.fail(f"redis-benchmark on port {port} ran past 600s")
    rows = [l for l in r.stdout.splitlines() if l.startswith('"') and not l.startswith('"test"')]
    if r.returncode != 0 or not rows:
        servers.fail(f"redis-benchmark failed on port {port}: {(r.stderr or r.stdout).strip()[:300]}")
    return float(rows[0].split(",")[1].strip('"'))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--requests", type=int, default=200_000, help="per run at pipeline 1; P/2 times that when pipelined")
    p.add_argument("--pipelines", default="1,16")
    p.add_argument("--data-size", type=int, default=32)
    p.add_argument("--keyspace", type=int, default=100_000)
    p.add_argument("--threads", type=int, default=1, help="coreshard shards, primaries and replica")
    p.add_argument("--server-cpus", default="0", help="taskset list for all six servers")
    p.add_argument("--client-cpus", default="1", help="taskset list for redis-benchmark")
    p.add_argument("--timeout", type=float, default=120, help="seconds a replica may take to catch up")
    p.add_argument("--coreshard", default="target/release/coreshard")
    p.add_argument("--redis", default=shutil.which("redis-server") or "redis-server")
    a = p.parse_args()
    for tool in ("redis-benchmark", "redis-cli", "taskset"):
        if not shutil.which(tool):
            fail(f"{tool} not found (apt-get install redis-tools util-linux)")
    redis = [a.redis, "--save", "", "--appendonly", "no", "--enable-debug-command", "yes", "--bind", "127.0.0.1"]
    coreshard = [a.coreshard, "--threads", str(a.threads)]
    # Without a delay, Redis's first sync starts at once (the default waits 5 s for more replicas).
    diskless = ["--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"]
    commands = {"redis-solo": redis, "redis-replicated": redis + diskless, "redis-replica": redis,
                "coreshard-solo": coreshard, "coreshard-replicated": coreshard, "coreshard-replica": coreshard}
    pipelines = [int(x) for x in a.pipelines.split(",")]
    requests = {pl: a.requests * pl // 2 if pl > 1 else a.requests for pl in pipelines}
    servers = Servers()
    ops, cpu, catch_up = {}, {}, {}
    try:
        ports = {name: free_port() for name in commands}
        for name, cmd in commands.items():
            servers.start(name, a.server_cpus, cmd + ["--port", str(ports[name])], ports[name])
        for name in TARGETS:
            bench(a, servers, ports[name], 16, a.keyspace * 10)
        for kind in ("redis", "coreshard"):
            Resp(ports[f"{kind}-replica"]).cmd("REPLICAOF", "127.0.0.1", ports[f"{kind}-replicated"])
            s = wait_replica(servers, f"{kind}-replicated", f"{kind}-replica", ports, a.timeout)
            print(f"repl-throughput: {kind} replica in sync after {s:.2f}s", flush=True)
        for rnd in range(a.rounds):
            order = TARGETS[rnd % len(TARGETS):] + TARGETS[:rnd % len(TARGETS)]
            for pl in pipelines:
                for name in order:
                    replica = name.replace("replicated", "replica") if name.endswith("replicated") else None
                    procs = [n for n in (name, replica) if n]
                    before = [cpu_seconds(servers.procs[n].pid) for n in procs]
                    rps = bench(a, servers, ports[name], pl, requests[pl])
                    if replica:
                        s = wait_replica(servers, name, replica, ports, a.timeout, digest=False)
                        catch_up.setdefault((name, pl), []).append(s)
                    for n, b in zip(procs, before):
                        cpu.setdefault((n, pl), []).append((cpu_seconds(servers.procs[n].pid) - b) / requests[pl])
                    ops.setdefault((name, pl), []).append(rps)
            print(f"repl-throughput: round {rnd + 1}: " + ", ".join(
                f"{n} P{pl} {ops[(n, pl)][-1]:,.0f}" for pl in pipelines for n in TARGETS), flush=True)
        for kind in ("redis", "coreshard"):
            wait_replica(servers, f"{kind}-replicated", f"{kind}-replica", ports, a.timeout)
            full = int(info(Resp(ports[f"{kind}-replicated"]), "stats").get("sync_full", -1))
            if full != 1:
                servers.fail(f"{kind}-replicated served {full} full syncs, not 1",
                             [f"{kind}-replicated", f"{kind}-replica"])
    finally:
        servers.stop()
    med = lambda key: statistics.median(ops[key])
    spread = lambda key: f"{min(ops[key]):,.0f}-{max(ops[key]):,.0f}"
    print()
    print("| case | redis solo ops/s | redis replicated ops/s | redis loss | coreshard solo ops/s "
          "| coreshard replicated ops/s | coreshard loss | within redis + 5 points |")
    print("|---|---|---|---|---|---|---|---|")
    verdicts = []
    for pl in pipelines:
        loss = {}
        for kind in ("redis", "coreshard"):
            loss[kind] = 100 * (1 - med((f"{kind}-replicated", pl)) / med((f"{kind}-solo", pl)))
        ok = loss["coreshard"] <= loss["redis"] + 5
        verdicts.append(f"P{pl} {loss['coreshard']:.1f}% vs {loss['redis']:.1f}% {'yes' if ok else 'no'}")
        print(f"| SET P{pl} | {med(('redis-solo', pl)):,.0f} | {med(('redis-replicated', pl)):,.0f} "
              f"| {loss['redis']:.1f}% "
              f"| {med(('coreshard-solo', pl)):,.0f} | {med(('coreshard-replicated', pl)):,.0f} "
              f"| {loss['coreshard']:.1f}% | {'yes' if ok else 'no'} |")
    print()
    print("| case | spread of ops/s over rounds: " + " | ".join(TARGETS) + " |")
    print("|---|" + "---|" * len(TARGETS))
    for pl in pipelines:
        print(f"| SET P{pl} | " + " | ".join(spread((n, pl)) for n in TARGETS) + " |")
    print()
    cpu_of = list(commands)
    print("| case | CPU µs per request: " + " | ".join(cpu_of) + " | replica catch-up s, max r/c |")
    print("|---|" + "---|" * (len(cpu_of) + 1))
    for pl in pipelines:
        us = " | ".join(f"{statistics.median(cpu[(n, pl)]) * 1e6:.2f}" for n in cpu_of)
        cu = "/".join(f"{max(catch_up[(k + '-replicated', pl)]):.2f}" for k in ("redis", "coreshard"))
        print(f"| SET P{pl} | {us} | {cu} |")
    print(f"repl-throughput: {a.rounds} rounds, loss with one replica (coreshard vs redis, within redis + 5 points): "
          + "; ".join(verdicts))


if __name__ == "__main__":
    main()
