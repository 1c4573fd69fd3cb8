#!/usr/bin/env python3
"""coreshard-bench against redis-benchmark as clients of one redis-server.

Starts redis-server pinned to --server-cpus, then runs in turn (A B A B ...)
on --client-cpus:

  redis-benchmark -p PORT -c C -P P -t set,get -n N -d D -r K
  coreshard-bench -p PORT -c C -P P --ratio 1:0 -n N -d D --key-space K   (SET)
  coreshard-bench -p PORT -c C -P P --ratio 0:1 -n N -d D --key-space K   (GET)

and prints the median ops/s of each client per command, and the client's
own CPU time per request (so a client that keeps up only by burning more
CPU shows). Build first: cargo build --release -p coreshard-bench.
"""
import argparse, os, resource, shutil, signal, socket, statistics, subprocess, sys, time
from benchlib import free_port, wait_ping




def timed(cmd):
    """Runs cmd; returns (stdout, CPU seconds it used)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        sys.exit(f"compare-clients: {' '.join(cmd)} failed:\n{r.stdout}{r.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return r.stdout, cpu


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--pipeline", type=int, default=1)
    p.add_argument("--requests", type=int, default=200000)
    p.add_argument("--data-size", type=int, default=32)
    p.add_argument("--keyspace", type=int, default=100000)
    p.add_argument("--server-cpus", default="0")
    p.add_argument("--client-cpus", default="1")
    p.add_argument("--bench", default="target/release/coreshard-bench")
    a = p.parse_args()
    for tool in ("redis-server", "redis-benchmark", "redis-cli", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"compare-clients: {tool} not found (apt-get install redis-server redis-tools util-linux)")
    port = free_port()
    server = subprocess.Popen(["taskset", "-c", a.server_cpus, "redis-server", "--port", str(port), "--save", "",
                               "--appendonly", "no", "--bind", "127.0.0.1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    common = ["-p", str(port), "-c", str(a.clients), "-P", str(a.pipeline), "-n", str(a.requests),
              "-d", str(a.data_size)]
    results = {}
    try:
        deadline = time.time() + 10
        while subprocess.run(["redis-cli", "-p", str(port), "PING"], capture_output=True, text=True).stdout.strip() != "PONG":
            if time.time() > deadline:
                sys.exit("compare-clients: redis-server did not start")
            time.sleep(0.1)
        for rnd in range(a.rounds):
            order = ["redis-benchmark", "coreshard-bench"]
            if rnd % 2:
                order.reverse()
            for client in order:
                if client == "redis-benchmark":
                    out, cpu = timed(["taskset", "-c", a.client_cpus, "redis-benchmark", *common, "-r", str(a.keyspace),
                                      "-t", "set,get", "--csv"])
                    for line in out.splitlines():
                        f = [x.strip('"') for x in line.split(",")]
                        if f[0] in ("SET", "GET"):
                            results.setdefault((client, f[0]), []).append((float(f[1]), cpu / 2 / a.requests))
                else:
                    for cmd, ratio in (("SET", "1:0"), ("GET", "0:1")):
                        out, cpu = timed(["taskset", "-c", a.client_cpus, a.bench, *common, "--key-space",
                                          str(a.keyspace), "--ratio", ratio])
                        row = next(l for l in out.splitlines() if l.startswith(cmd))
                        results.setdefault((client, cmd), []).append((float(row.split()[2]), cpu / a.requests))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)
    print(f"{'case':<10}{'redis-benchmark ops/s':>24}{'coreshard-bench ops/s':>24}{'ratio':>8}"
          f"{'client CPU us/req rb/cb':>26}")
    for cmd in ("SET", "GET"):
        rb = results[("redis-benchmark", cmd)]
        cb = results[("coreshard-bench", cmd)]
        rb_ops, cb_ops = statistics.median(x[0] for x in rb), statistics.median(x[0] for x in cb)
        rb_cpu, cb_cpu = statistics.median(x[1] for x in rb) * 1e6, statistics.median(x[1] for x in cb) * 1e6
        print(f"{cmd + ' P' + str(a.pipeline):<10}{rb_ops:>24,.0f}{cb_ops:>24,.0f}{cb_ops / rb_ops:>8.2f}"
              f"{rb_cpu:>15.2f}/{cb_cpu:<10.2f}")
        print(f"          rounds: redis-benchmark {[round(x[0]) for x in rb]}, coreshard-bench {[round(x[0]) for x in cb]}")


if __name__ == "__main__":
    main()
