#!/usr/bin/env python3
"""coreshard against redis-server, with coreshard-bench as the client.

Both servers run at once pinned to --server-cpus; coreshard-bench, pinned to
--client-cpus, hits them in turn (A B, then B A in the next round) for each
case: SET and GET at each pipeline depth. Prints medians of ops/s, p50 and
p99 per case and the coreshard/redis throughput ratio. The neutral harness
with redis-benchmark as the client is ../shared/bench/vs-redis.

  bench/servers-vs-redis.py --rounds 3

Build first: cargo build --release -p coreshard -p coreshard-bench.
"""
import argparse, json, os, signal, socket, statistics, subprocess, sys, tempfile, time
from benchlib import free_port, wait_ping






def bench(a, port, command, pipeline):
    requests = a.requests * pipeline // 4 if pipeline > 1 else a.requests
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        cmd = ["taskset", "-c", a.client_cpus, a.bench, "-p", str(port), "-c", str(a.connections),
               "-P", str(pipeline), "-n", str(requests), "-d", str(a.data_size), "--key-space", str(a.keyspace),
               "--ratio", "1:0" if command == "SET" else "0:1", "--json", f.name]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            sys.exit(f"servers-vs-redis: {' '.join(cmd)} failed:\n{r.stdout}{r.stderr}")
        report = json.load(open(f.name))
    row = report["rows"][-1]
    return report["ops_per_sec"], row["p50_ms"], row["p99_ms"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--connections", type=int, default=50)
    p.add_argument("--requests", type=int, default=400000, help="per case at pipeline 1; P/4 times that when pipelined")
    p.add_argument("--pipelines", default="1,16")
    p.add_argument("--data-size", type=int, default=32)
    p.add_argument("--keyspace", type=int, default=100000)
    p.add_argument("--shards", type=int, default=1)
    p.add_argument("--server-cpus", default="0")
    p.add_argument("--client-cpus", default="1")
    p.add_argument("--coreshard", default="target/release/coreshard")
    p.add_argument("--bench", default="target/release/coreshard-bench")
    a = p.parse_args()
    procs = {}
    ports = {"redis": free_port(), "coreshard": free_port()}
    commands = {
        "redis": ["redis-server", "--port", str(ports["redis"]), "--save", "", "--appendonly", "no",
                  "--bind", "127.0.0.1"],
        "coreshard": [a.coreshard, "--port", str(ports["coreshard"]), "--threads", str(a.shards)],
    }
    results = {}
    try:
        for who, cmd in commands.items():
            procs[who] = subprocess.Popen(["taskset", "-c", a.server_cpus] + cmd, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL, start_new_session=True)
        for who in commands:
            wait_ping(ports[who], procs[who])
        for rnd in range(a.rounds):
            for pipeline in [int(x) for x in a.pipelines.split(",")]:
                for command in ("SET", "GET"):
                    order = ["redis", "coreshard"] if rnd % 2 == 0 else ["coreshard", "redis"]
                    for who in order:
                        results.setdefault((command, pipeline, who), []).append(bench(a, ports[who], command, pipeline))
    finally:
        for proc in procs.values():
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
    print("| case | redis ops/s | coreshard ops/s | throughput | p50 ms r/c | p99 ms r/c |")
    print("|---|---|---|---|---|---|")
    for pipeline in [int(x) for x in a.pipelines.split(",")]:
        for command in ("SET", "GET"):
            r, c = results[(command, pipeline, "redis")], results[(command, pipeline, "coreshard")]
            m = lambda rows, i: statistics.median(x[i] for x in rows)
            print(f"| {command} P{pipeline} | {m(r, 0):,.0f} | {m(c, 0):,.0f} | {m(c, 0) / m(r, 0):.2f} "
                  f"| {m(r, 1):.3f}/{m(c, 1):.3f} | {m(r, 2):.3f}/{m(c, 2):.3f} |")


if __name__ == "__main__":
    main()
