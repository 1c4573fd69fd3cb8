#!/usr/bin/env python3
"""The migration target's clients in the snapshot phase, per round of a
bench/migration.sh run: node 1's (127.0.0.1:7101) requests outside the
moving slots due between the migration's start and its CUTOVER, from the
report (latency counted from when each request was due) and from
roundN/samples.csv, the requests on node 1's shard 0 (slots 5461-8191, the
shard that applies the stream of slots 0-299) with their service time
(from sending to the reply: latency_us - late_us).

    bench/migration-target.py [D]    (D: the run's directory, default
                                      /tmp/coreshard-migration)
"""
import csv, json, sys


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))] if values else 0


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "/tmp/coreshard-migration"
    n = 1
    while True:
        try:
            with open(f"{d}/report-{n}.json") as f:
                report = json.load(f)
        except FileNotFoundError:
            break
        m = report["migration"]
        start, cutover = m["started_unix_us"], m["cutover_unix_us"]
        node = next(x for x in report["outside_by_node"] if x["node"].endswith(":7101"))
        snap = next(w for w in node["windows"] if w["name"] == "snapshot")["outside"]
        service = []
        with open(f"{d}/round{n}/samples.csv") as f:
            for row in csv.DictReader(f):
                due, slot = int(row["due_unix_us"]), int(row["slot"])
                if row["inside"] == "0" and 5461 <= slot <= 8191 and start <= due < cutover:
                    service.append(int(row["latency_us"]) - int(row["late_us"]))
        print(
            f"round={n} wall_s={m['seconds']:.2f} node1_out_snapshot_p50_us={snap['p50_us']} "
            f"node1_out_snapshot_p99_us={snap['p99_us']} shard0_n={len(service)} "
            f"shard0_svc_p50_us={pct(service, .5)} shard0_svc_p90_us={pct(service, .9)} "
            f"shard0_svc_p99_us={pct(service, .99)} shard0_svc_max_us={max(service, default=0)}"
        )
        n += 1


if __name__ == "__main__":
    main()
