#!/usr/bin/env python3
"""Replication lag under a steady write load: coreshard against redis-server.

A primary and its replica of each kind run at once, all four on
--server-cpus (default CPU 0). In turn (redis first in rounds 1, 3, 5 ...),
each primary takes --rate SETs per second (default 50,000) from a fixed-rate
writer: a separate process on --client-cpus (default CPU 1) that sends a
pipelined batch of --batch SETs (random keys of a 100,000-key space, 32-byte
values) on one connection at fixed times, batch k at start + k * batch /
rate whatever the replies do, and reads the replies as they come. Its
achieved rate (replies over its whole window) and how late it sent its
batches are printed: a run whose rate falls short of --rate is marked.

Meanwhile the probe, on the same CPUs, writes `SET probe:<n> <ns>` to the
primary every --probe-ms and polls the replica with `GET probe:<n>` (no
pause between polls) until it returns that value. A sample is the time
from the primary's reply to the SET to the replica's reply with the value.
After each run the replica must catch up and have its primary's DEBUG
DIGEST. Prints p50, p99, p99.9 and max per server over all rounds (at least
--min-samples each), the per-round p99s, and whether p99 is under 5 ms.

  cargo build --release -p coreshard
  bench/repl-lag.py --rounds 5 --seconds 10

redis-server runs with `--save "" --appendonly no --enable-debug-command yes`
(the primary also with `--repl-diskless-sync yes --repl-diskless-sync-delay
0`), coreshard with `--threads 1` (--threads for more).
"""
import argparse, math, multiprocessing, os, random, select, shutil, socket, time
from benchlib import Resp, RespError, Servers, encode, fail, free_port, wait_replica

REPLY_OK = b"+OK\r\n"
# Batches prepared in advance and sent in turn (random keys, fixed seed).
BATCHES = 2048
# Replies the writer may have outstanding before it waits for them (a
# server that falls that far behind shows as a writer short of its rate).
OUTSTANDING_MAX = 50_000


def writer(port, rate, batch, keyspace, value_size, stop, results):
    """The fixed-rate writer (runs in its own process until `stop` is set)."""
    rng = random.Random(20261202)
    value = bytes(rng.randrange(97, 123) for _ in range(value_size))
    batches = [b"".join(encode("SET", b"key:%012d" % rng.randrange(keyspace), value) for _ in range(batch))
               for _ in range(BATCHES)]
    period = batch / rate
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # Blocking mode, so that MSG_DONTWAIT returns at once (a socket with a
    # timeout polls first); blocking reads wait in select with a deadline.
    sock.settimeout(None)
    sent = received = errors = 0
    late_max, late_batches = 0.0, 0
    t0 = time.perf_counter()

    def drain(block):
        nonlocal received, errors
        while True:
            if block and not select.select([sock], [], [], 30)[0]:
                raise TimeoutError(f"no reply from the primary in 30s ({sent - received // len(REPLY_OK)} outstanding)")
            try:
                data = sock.recv(1 << 16, 0 if block else socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            if not data:
                raise ConnectionError("primary closed the writer's connection")
            received += len(data)
            errors += data.count(b"-")
            if block:
                return

    try:
        while not stop.is_set():
            due = t0 + sent / batch * period
            now = time.perf_counter()
            if now < due:
                time.sleep(due - now)
                continue
            late = now - due
            late_max = max(late_max, late)
            late_batches += late > 0.001
            sock.sendall(batches[(sent // batch) % BATCHES])
            sent += batch
            drain(False)
            while sent - received // len(REPLY_OK) > OUTSTANDING_MAX:
                drain(True)
        while received < sent * len(REPLY_OK):
            drain(True)
        elapsed = time.perf_counter() - t0
        results.put({"sent": sent, "elapsed": elapsed, "errors": errors, "late_max": late_max,
                     "late_batches": late_batches, "batches": sent // batch})
    except OSError as e:
        results.put({"error": str(e)})


def probe(a, servers, primary, replica, ports, first):
    """Probe samples (seconds) for --seconds, keys numbered from `first`."""
    p, r = Resp(ports[primary], timeout=10), Resp(ports[replica], timeout=10)
    samples = []
    interval = a.probe_ms / 1000
    end = time.perf_counter() + a.seconds
    n = first
    try:
        while time.perf_counter() < end:
            start = time.perf_counter()
            key, value = f"probe:{n}", str(time.time_ns()).encode()
            p.cmd("SET", key, value)
            acked = time.perf_counter()
            while True:
                got = r.cmd("GET", key)
                seen = time.perf_counter()
                if got is not None:
                    break
                if seen - acked > a.timeout:
                    servers.fail(f"{replica} did not show {key} within {a.timeout}s", [primary, replica])
            if got != value:
                servers.fail(f"{replica} returned {got!r} for {key}, the primary was given {value!r}", [replica])
            samples.append(seen - acked)
            n += 1
            pause = start + interval - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
    except (OSError, RespError) as e:
        servers.fail(f"probe of {primary}/{replica} failed: {e}", [primary, replica])
    finally:
        p.close()
        r.close()
    return samples


def percentile(sorted_samples, q):
    """Nearest-rank percentile."""
    return sorted_samples[max(0, math.ceil(q * len(sorted_samples)) - 1)]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=10, help="probing time per server per round")
    p.add_argument("--rate", type=int, default=50_000, help="writes per second to the primary")
    p.add_argument("--batch", type=int, default=50, help="SETs per pipelined batch of the writer")
    p.add_argument("--probe-ms", type=float, default=4)
    p.add_argument("--min-samples", type=int, default=2000)
    p.add_argument("--warmup", type=float, default=1, help="seconds of load before probing")
    p.add_argument("--keyspace", type=int, default=100_000)
    p.add_argument("--data-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=1, help="coreshard shards, primary and replica")
    p.add_argument("--server-cpus", default="0", help="taskset list for the four servers")
    p.add_argument("--client-cpus", default="1", help="CPUs of the writer and the probe")
    p.add_argument("--timeout", type=float, default=30, help="seconds a probe or a catch-up may take")
    p.add_argument("--coreshard", default="target/release/coreshard")
    p.add_argument("--redis", default=shutil.which("redis-server") or "redis-server")
    a = p.parse_args()
    if not shutil.which("taskset"):
        fail("taskset not found (apt-get install util-linux)")
    redis = [a.redis, "--save", "", "--appendonly", "no", "--enable-debug-command", "yes", "--bind", "127.0.0.1"]
    commands = {
        "redis-primary": redis + ["--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"],
        "redis-replica": redis,
        "coreshard-primary": [a.coreshard, "--threads", str(a.threads)],
        "coreshard-replica": [a.coreshard, "--threads", str(a.threads)],
    }
    client_cpus = set()
    for part in a.client_cpus.split(","):
        lo, _, hi = part.partition("-")
        client_cpus.update(range(int(lo), int(hi or lo) + 1))
    os.sched_setaffinity(0, client_cpus)
    servers = Servers()
    samples = {"redis": [], "coreshard": []}
    rounds = {"redis": [], "coreshard": []}
    try:
        ports = {name: free_port() for name in commands}
        for name, cmd in commands.items():
            servers.start(name, a.server_cpus, cmd + ["--port", str(ports[name])], ports[name])
        for kind in samples:
            Resp(ports[f"{kind}-replica"]).cmd("REPLICAOF", "127.0.0.1", ports[f"{kind}-primary"])
            wait_replica(servers, f"{kind}-primary", f"{kind}-replica", ports, a.timeout)
        for rnd in range(a.rounds):
            for kind in (["redis", "coreshard"] if rnd % 2 == 0 else ["coreshard", "redis"]):
                primary, replica = f"{kind}-primary", f"{kind}-replica"
                stop, results = multiprocessing.Event(), multiprocessing.Queue()
                load = multiprocessing.Process(target=writer, args=(
                    ports[primary], a.rate, a.batch, a.keyspace, a.data_size, stop, results))
                load.start()
                try:
                    time.sleep(a.warmup)
                    got = probe(a, servers, primary, replica, ports, len(samples[kind]))
                finally:
                    stop.set()
                    try:
                        w = results.get(timeout=a.timeout)
                    except Exception:
                        w = {"error": f"no report from the writer in {a.timeout}s"}
                    load.join(timeout=5)
                    if load.is_alive():
                        load.kill()
                if "error" in w:
                    servers.fail(f"the writer to {primary} failed: {w['error']}", [primary, replica])
                if w["errors"]:
                    servers.fail(f"{primary} answered {w['errors']} writer commands with errors", [primary])
                caught_up = wait_replica(servers, primary, replica, ports, a.timeout)
                rate = w["sent"] / w["elapsed"]
                s = sorted(got)
                rounds[kind].append({"rate": rate, "p99": percentile(s, 0.99), "samples": len(s)})
                samples[kind].extend(got)
                short = " SHORT OF THE RATE" if rate < 0.98 * a.rate else ""
                print(f"repl-lag: round {rnd + 1} {kind}: writer {rate:,.0f} SET/s{short} "
                      f"(latest batch {w['late_max'] * 1000:.1f} ms late, {w['late_batches']} of {w['batches']} "
                      f"over 1 ms), {len(s)} probes, p50 {percentile(s, 0.5) * 1000:.3f} ms, "
                      f"p99 {percentile(s, 0.99) * 1000:.3f} ms, max {s[-1] * 1000:.3f} ms; "
                      f"replica caught up and digests equal {caught_up:.2f}s after", flush=True)
    finally:
        servers.stop()
    print()
    print("| server | samples | writer SET/s (per round) | p50 ms | p99 ms | p99.9 ms | max ms | p99 ms per round |")
    print("|---|---|---|---|---|---|---|---|")
    verdicts = []
    for kind in ("redis", "coreshard"):
        s = sorted(samples[kind])
        rates = "/".join(f"{r['rate']:,.0f}" for r in rounds[kind])
        p99s = "/".join(f"{r['p99'] * 1000:.2f}" for r in rounds[kind])
        print(f"| {kind} | {len(s):,} | {rates} | {percentile(s, 0.5) * 1000:.3f} | {percentile(s, 0.99) * 1000:.3f} "
              f"| {percentile(s, 0.999) * 1000:.3f} | {s[-1] * 1000:.3f} | {p99s} |")
        enough = "" if len(s) >= a.min_samples else f", only {len(s)} samples (fewer than {a.min_samples})"
        verdicts.append(f"{kind} p99 {percentile(s, 0.99) * 1000:.2f} ms "
                        f"({'under' if percentile(s, 0.99) < 0.005 else 'NOT under'} 5 ms{enough})")
    low = min(r["rate"] for rs in rounds.values() for r in rs)
    print(f"repl-lag: {a.rate:,} SET/s asked, lowest achieved {low:,.0f}; " + "; ".join(verdicts))


if __name__ == "__main__":
    main()
