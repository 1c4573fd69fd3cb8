#!/usr/bin/env python3
"""Throughput and p99 of coreshard against its shard count, with a fixed client.

For each shard count (1, 2, 4, ... up to --max-shards) it starts coreshard
pinned to that many server CPUs, runs coreshard-bench (pinned to the client
CPUs) closed-loop for --seconds to find the peak, then open-loop at --load
(default 80%) of that peak, and prints ops/s and p99 of both runs.

  bench/scaling.py --server-cpus 0-7 --client-cpus 8-15 --client-threads 8

Build first: cargo build --release -p coreshard -p coreshard-bench.
Choose server and client CPUs on different physical cores (lscpu -e).
--json FILE writes the table; --png FILE plots throughput and p99 against the
shard count (needs matplotlib: pip install matplotlib).
"""
import argparse, json, os, signal, socket, subprocess, sys, tempfile, time
from benchlib import free_port, wait_ping


def cpu_list(text):
    cpus = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus






def bench(a, port, extra):
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        cmd = ["taskset", "-c", a.client_cpus, a.bench, "--port", str(port), "--threads", str(a.client_threads),
               "--connections", str(a.connections), "--pipeline", str(a.pipeline), "--ratio", a.ratio,
               "--key-space", str(a.key_space), "--data-size", str(a.data_size), "--test-time", str(a.seconds),
               "--cpus", a.client_cpus, "--json", f.name] + extra
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"scaling: coreshard-bench failed:\n{r.stdout}{r.stderr}")
        report = json.load(open(f.name))
    all_row = next(row for row in report["rows"] if row["command"] == "ALL")
    return report["ops_per_sec"], all_row["p99_ms"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server-cpus", required=True, help="CPUs for the shards, e.g. 0-7")
    p.add_argument("--client-cpus", required=True, help="CPUs for coreshard-bench, e.g. 8-15")
    p.add_argument("--max-shards", type=int, help="default: the number of server CPUs")
    p.add_argument("--client-threads", type=int, default=4)
    p.add_argument("--connections", type=int, default=50, help="per client thread")
    p.add_argument("--pipeline", type=int, default=1)
    p.add_argument("--ratio", default="1:10")
    p.add_argument("--key-space", type=int, default=1_000_000)
    p.add_argument("--data-size", default="32")
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--load", type=float, default=0.8, help="share of the peak for the open-loop run (0: skip)")
    p.add_argument("--server", default="target/release/coreshard")
    p.add_argument("--bench", default="target/release/coreshard-bench")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--png", help="plot throughput and p99 against shard count into this PNG")
    p.add_argument("--title", default="", help="plot title, e.g. the machine's name")
    a = p.parse_args()
    server_cpus = cpu_list(a.server_cpus)
    max_shards = a.max_shards or len(server_cpus)
    counts, n = [], 1
    while n <= min(max_shards, len(server_cpus)):
        counts.append(n)
        n *= 2
    print(f"{'shards':>6}{'peak ops/s':>14}{'p99 ms':>10}{'speedup':>9}"
          f"{'open-loop ops/s':>17}{'p99 ms':>10}")
    results = []
    for shards in counts:
        port = free_port()
        cpus = ",".join(str(c) for c in server_cpus[:shards])
        proc = subprocess.Popen(["taskset", "-c", cpus, a.server, "--port", str(port), "--threads", str(shards),
                                 "--save", ""], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            wait_ping(port, proc)
            peak, p99 = bench(a, port, [])
            row = {"shards": shards, "peak_ops_per_sec": peak, "peak_p99_ms": p99}
            if a.load > 0:
                ops, p99_load = bench(a, port, ["--rate", str(int(peak * a.load))])
                row.update({"load": a.load, "load_ops_per_sec": ops, "load_p99_ms": p99_load})
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        results.append(row)
        speedup = peak / results[0]["peak_ops_per_sec"]
        print(f"{shards:>6}{peak:>14,.0f}{p99:>10.3f}{speedup:>9.2f}"
              f"{row.get('load_ops_per_sec', 0):>17,.0f}{row.get('load_p99_ms', 0):>10.3f}", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"args": vars(a), "results": results}, f, indent=2)
    if a.png:
        plot(results, a.png, a.title)


def plot(results, path, title):
    """Throughput (left axis) and p99 (right axis) against the shard count."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("scaling: --png needs matplotlib (pip install matplotlib)")
    shards = [r["shards"] for r in results]
    fig, left = plt.subplots(figsize=(7, 4.5), dpi=120)
    left.plot(shards, [r["peak_ops_per_sec"] for r in results], "o-", color="tab:blue", label="peak ops/s (closed loop)")
    if all("load_ops_per_sec" in r for r in results):
        left.plot(shards, [r["load_ops_per_sec"] for r in results], "s--", color="tab:cyan",
                  label=f"ops/s at {results[0]['load']:.0%} of peak (open loop)")
    left.set_xlabel("shards")
    left.set_ylabel("ops/s")
    left.set_xticks(shards)
    left.set_ylim(bottom=0)
    right = left.twinx()
    right.plot(shards, [r["peak_p99_ms"] for r in results], "o-", color="tab:red", label="p99 ms at peak")
    if all("load_p99_ms" in r for r in results):
        right.plot(shards, [r["load_p99_ms"] for r in results], "s--", color="tab:orange", label="p99 ms at the open-loop rate")
    right.set_ylabel("p99 latency (ms)")
    right.set_ylim(bottom=0)
    lines = left.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    labels = left.get_legend_handles_labels()[1] + right.get_legend_handles_labels()[1]
    left.legend(lines, labels, loc="upper left", fontsize=8)
    left.set_title(title or "coreshard: throughput and p99 against shard count")
    fig.tight_layout()
    fig.savefig(path)
    print(f"scaling: wrote {path}")


if __name__ == "__main__":
    main()
