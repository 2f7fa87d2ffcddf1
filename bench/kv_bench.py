#!/usr/bin/python3
"""`make bench`: raftkv against etcd on one machine, in one run (bench/README.md).

Starts a 3-node raftkv cluster (and, when etcd is installed, a 3-member
etcd cluster with the same heartbeat and election timeout) on 127.0.0.1
with fsync on, loads --keys keys, then for put-only and linearizable
get-only load at each --clients count runs --reps closed-loop runs of
--duration s, alternating the systems run by run; medians of the runs.
Then --failover-trials times: kill -9 the leader and time until a put
through a survivor is acknowledged. Prints one table and writes JSON lines.
Every process it starts is stopped by PID when it ends, also on Ctrl-C.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
from types import SimpleNamespace
from typing import Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from snapshot_figures import (HOST, BenchError, Cluster, LoadGen, log, now, reap, sha256_of,  # noqa: E402
                              spawn, stop_all_children)
import etcd_side  # noqa: E402

HEARTBEAT_MS = 50
ELECTION_MS = (150, 300)  # raftkv draws from [150, 300]; etcd from [E, 2E) with E = 150


def percentile(sorted_ms: list[float], p: float) -> float:
    if not sorted_ms:
        return 0.0
    rank = max(1, int(-(-p * len(sorted_ms) // 1)))  # nearest rank, as ./client bench
    return sorted_ms[min(len(sorted_ms), rank) - 1]


# ------------------------------------------------------------ raftkv ----

class Raftkv:
    def __init__(self, name: str, node_bin: str, client_bin: str, seed: int):
        self.name = name
        self.kind = "raftkv"
        self.node_bin = node_bin
        self.client_bin = client_bin
        args = SimpleNamespace(nodes=3, params={"heartbeat_interval_ms": HEARTBEAT_MS,
                                               "election_timeout_ms": list(ELECTION_MS)},
                               no_peer_auth=False, keep=False, node_bin=node_bin, stop_grace=10.0, seed=seed,
                               proxy_bin=None)
        self.cluster = Cluster(args, f"bench-{name}")
        self.seed = seed

    def start(self, keys: int, value_bytes: int) -> float:
        self.cluster.start()
        self.cluster.wait_leader(30)
        t0 = now()
        gen = LoadGen(self.cluster.private, concurrency=64, keys=keys, value_bytes=value_bytes,
                      request_timeout=1.0, seed=self.seed, key_prefix="bench-key-")
        try:
            res = gen.run(total=keys, hard_timeout=300, progress=1e9)
        finally:
            gen.close()
        if res.get("ok", 0) < keys:
            raise BenchError(f"{self.name}: loaded only {res.get('ok')} of {keys} keys")
        return now() - t0

    def run(self, *, clients: int, duration_s: float, write: bool, keys: int, value_bytes: int,
            seed: int) -> dict:
        argv = [self.client_bin, "--config", self.cluster.path("configs", "client.json"), "--json", "bench",
                "--clients", str(clients), "--duration", str(duration_s), "--write-ratio", "1" if write else "0",
                "--keys", str(keys), "--value-bytes", str(value_bytes), "--seed", str(seed)]
        p = spawn(argv, self.cluster.path("logs", "client-bench.log"), self.cluster.dir, stdout=subprocess.PIPE)
        try:
            out, _ = p.communicate(timeout=duration_s + 60)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait(10)
            reap(p)
        try:
            r = json.loads(out.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise BenchError(f"{self.name}: client bench printed no JSON (exit {p.returncode})")
        lat = r["latency_ms"]
        return {"ops_per_s": r["throughput"], "p50_ms": lat["p50"], "p99_ms": lat["p99"],
                "p999_ms": lat["p99.9"], "errors": sum(r["errors"].values())}

    def failover(self, timeout_s: float = 30.0) -> float:
        c = self.cluster
        leader, _ = c.wait_leader(30)
        c.wait_converged(60)
        survivors = [n for n in c.ids if n != leader]
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((HOST, 0))
        sock.settimeout(0.01)
        client_id = f"failover-{os.urandom(4).hex()}"
        p = c.procs[leader]
        t0 = now()
        p.kill()  # SIGKILL to the leader's PID only
        p.wait(10)
        reap(p)
        c.procs[leader] = None
        took = None
        try:
            while took is None and now() - t0 < timeout_s:
                for n in survivors:  # the same seq each time: the session applies it once
                    msg = {"type": "client_request", "src": client_id, "dest": n, "seq": 1, "op": "set",
                           "key": "bench-failover", "value": client_id}
                    sock.sendto(json.dumps(msg).encode(), c.private[n])
                end = now() + 0.01
                while now() < end:
                    try:
                        doc = json.loads(sock.recv(65535))
                    except (socket.timeout, ValueError, OSError):
                        break
                    if doc.get("type") == "client_reply" and doc.get("seq") == 1 and doc.get("ok") is True:
                        took = now() - t0
                        break
        finally:
            sock.close()
        c.start([leader])  # rejoins from its own data dir
        if took is None:
            raise BenchError(f"{self.name}: no put acknowledged within {timeout_s:.0f} s of killing {leader}")
        c.wait_leader(30)
        return took

    def teardown(self) -> None:
        self.cluster.teardown()


# -------------------------------------------------------------- etcd ----

class Etcd:
    def __init__(self, seed: int):
        self.name = "etcd"
        self.kind = "etcd"
        # etcd refuses an election timeout under 5 heartbeats: 30 ms beats keep
        # its election timeout equal to ours.
        self.cluster = etcd_side.EtcdCluster(heartbeat_ms=min(HEARTBEAT_MS, ELECTION_MS[0] // 5),
                                             election_ms=ELECTION_MS[0])
        self.seed = seed

    def start(self, keys: int, value_bytes: int) -> float:
        self.cluster.start_all()
        self.cluster.leader(30)
        return etcd_side.load_keys(self.cluster, keys, value_bytes)

    def run(self, *, clients: int, duration_s: float, write: bool, keys: int, value_bytes: int,
            seed: int) -> dict:
        lat, errors = etcd_side.run_load(self.cluster, clients=clients, duration_s=duration_s, write=write,
                                         keys=keys, value_bytes=value_bytes, seed=seed)
        lat.sort()
        return {"ops_per_s": len(lat) / duration_s, "p50_ms": percentile(lat, 0.5),
                "p99_ms": percentile(lat, 0.99), "p999_ms": percentile(lat, 0.999), "errors": errors}

    def failover(self) -> float:
        return etcd_side.failover_trial(self.cluster)

    def teardown(self) -> None:
        self.cluster.teardown()


# ------------------------------------------------------------- table ----

def fmt(v: Optional[float], unit: str) -> str:
    if v is None:
        return "-"
    if unit == "ops":
        return f"{v:,.0f}"
    return f"{v:.2f}"


def print_table(systems: list, summary: dict, clients: list[int], workloads: list[str], trials: int) -> None:
    """One column per system, then the first system's ratio to each other one."""
    names = [s.name for s in systems]
    first, others = names[0], names[1:]
    head = f"{'':34}" + "".join(f"{n:>14}" for n in names) + "".join(f"{first + '/' + o:>17}" for o in others)
    print(head)
    rows = []
    for wl, label in (("put", "puts"), ("get", "linearizable gets")):
        if wl not in workloads:
            continue
        for c in clients:
            rows.append((f"{label}/s, {c} clients", (wl, c), "ops_per_s", "ops"))
            rows.append(("  p50 ms", (wl, c), "p50_ms", "ms"))
            rows.append(("  p99.9 ms", (wl, c), "p999_ms", "ms"))
    if trials > 0:
        rows.append((f"failover median ms ({trials} trials)", ("failover",), "ms", "ms"))
    for title, key, field, unit in rows:
        vals = {n: summary.get((n, *key), {}).get(field) for n in names}
        line = f"{title:34}" + "".join(f"{fmt(vals[n], unit):>14}" for n in names)
        for o in others:
            r = vals[first] / vals[o] if vals[first] is not None and vals[o] else None
            line += f"{(f'{r:.2f}x' if r is not None else '-'):>17}"
        print(line)


# -------------------------------------------------------------- main ----

def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--node-bin", default="build/node")
    ap.add_argument("--client-bin", default="build/client")
    ap.add_argument("--also", action="append", default=[], metavar="NAME=NODE_BIN",
                    help="another raftkv node binary to measure in the same run (e.g. a base commit)")
    ap.add_argument("--no-etcd", action="store_true", help="skip etcd even when installed")
    ap.add_argument("--clients", default="1,16,64")
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--keys", type=int, default=10000)
    ap.add_argument("--value-bytes", type=int, default=100)
    ap.add_argument("--failover-trials", type=int, default=5)
    ap.add_argument("--workloads", default="put,get")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", default="bench-results.jsonl", help="JSON lines output (appended to)")
    args = ap.parse_args(argv)
    clients = [int(c) for c in args.clients.split(",")]
    workloads = args.workloads.split(",")
    bins = [("raftkv", args.node_bin)] + [tuple(a.split("=", 1)) for a in args.also]
    for _, b in bins + [("client", args.client_bin)]:
        if not (os.path.isfile(b) and os.access(b, os.X_OK)):
            print(f"kv_bench: {b}: not an executable file (run make first)", file=sys.stderr)
            return 2

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    t_start = now()
    run_id = time.strftime("%Y%m%dT%H%M%S")
    out = open(args.json, "a")

    def emit(doc: dict) -> None:
        doc = {"run": run_id, **doc}
        out.write(json.dumps(doc) + "\n")
        out.flush()

    emit({"kind": "machine", "cpus": os.cpu_count(), "kernel": platform.release(),
          "node_bins": {n: {"path": os.path.abspath(b), "sha256": sha256_of(b)} for n, b in bins},
          "clients": clients, "duration_s": args.duration, "reps": args.reps, "keys": args.keys,
          "value_bytes": args.value_bytes, "heartbeat_ms": HEARTBEAT_MS, "election_ms": ELECTION_MS})
    systems: list = []
    code = 0
    summary: dict = {}
    try:
        for n, b in bins:
            systems.append(Raftkv(n, os.path.abspath(b), os.path.abspath(args.client_bin), args.seed))
        if not args.no_etcd:
            why = etcd_side.install_if_root()
            if why is None:
                systems.append(Etcd(args.seed))
            else:
                log(f"etcd skipped: {why}")
                emit({"kind": "etcd_skipped", "why": why})
        for s in systems:
            log(f"{s.name}: starting 3 members, loading {args.keys} keys")
            took = s.start(args.keys, args.value_bytes)
            emit({"kind": "load", "system": s.name, "keys": args.keys, "seconds": round(took, 3)})
        for wl in workloads:
            for c in clients:
                runs: dict = {s.name: [] for s in systems}
                for rep in range(args.reps):
                    for s in systems:  # alternate the systems run by run: noise hits all alike
                        r = s.run(clients=c, duration_s=args.duration, write=(wl == "put"), keys=args.keys,
                                  value_bytes=args.value_bytes, seed=args.seed + rep)
                        runs[s.name].append(r)
                        emit({"kind": "run", "system": s.name, "workload": wl, "clients": c, "rep": rep + 1, **r})
                        log(f"{s.name} {wl} x{c} #{rep + 1}: {r['ops_per_s']:,.0f}/s p50 {r['p50_ms']:.2f} ms "
                            f"p99.9 {r['p999_ms']:.2f} ms errors {r['errors']}")
                for s in systems:
                    med = {k: statistics.median(r[k] for r in runs[s.name])
                           for k in ("ops_per_s", "p50_ms", "p99_ms", "p999_ms")}
                    summary[(s.name, wl, c)] = med
                    emit({"kind": "median", "system": s.name, "workload": wl, "clients": c, **med})
        for s in systems:
            trials = []
            for t in range(args.failover_trials):
                took = s.failover()
                trials.append(took)
                emit({"kind": "failover", "system": s.name, "trial": t + 1, "ms": round(took * 1000, 1)})
                log(f"{s.name} failover #{t + 1}: {took * 1000:.0f} ms")
            if trials:
                summary[(s.name, "failover")] = {"ms": statistics.median(trials) * 1000}
                emit({"kind": "failover_median", "system": s.name, "ms": round(statistics.median(trials) * 1000, 1)})
    except BenchError as e:
        log(f"bench failed: {e}")
        code = 1
    except KeyboardInterrupt:
        log("interrupted")
        code = 130
    finally:
        for s in systems:
            try:
                s.teardown()
            except Exception as e:  # keep stopping the others
                log(f"teardown of {s.name}: {e}")
        stop_all_children()
        out.close()
    print()
    print(f"{len(systems)} systems, 3 members each on {HOST}, fsync on, {args.keys} keys, {args.value_bytes}-byte "
          f"values, closed loop; medians of {args.reps} x {args.duration:g} s; {os.cpu_count()} CPUs")
    print_table(systems, summary, clients, workloads, args.failover_trials)
    wall = now() - t_start
    print(f"\nwall time {wall:.0f} s; JSON lines in {args.json} (run {run_id}). "
          "Absolute figures vary between machines: compare ratios within one run.")
    return code


if __name__ == "__main__":
    sys.exit(main())
