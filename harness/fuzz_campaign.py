#!/usr/bin/env python3
"""Datagram fuzz campaign: hostile datagrams at a live cluster under load.

    python3 harness/fuzz_campaign.py                          # 1,000,000 datagrams at a 3-node cluster
    python3 harness/fuzz_campaign.py --datagrams 50000 --seed 7 --keep-logs

Starts its own cluster of the reference node (no proxy), runs two client
workers that write and read, sends the datagrams (see harness/lib/fuzz.py
for the kinds), and then checks: no crash, no hang, no term change, no lost
acknowledged write. Prints the figures; exits 0 only if all hold. Bounded by
--datagrams and --max-seconds; everything it starts is stopped by PID.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness.lib import fuzz  # noqa: E402
from harness.lib.cluster import Cluster, Timing  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(prog="fuzz_campaign.py", description=__doc__.splitlines()[0])
    p.add_argument("--datagrams", type=int, default=1_000_000)
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--rate", type=float, default=20000, help="datagrams per second at most (default 20000)")
    p.add_argument("--max-seconds", type=float, default=600)
    p.add_argument("--node-bin", default=str(REPO / "node"))
    p.add_argument("--keep-logs", action="store_true")
    args = p.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**6)
    print(f"fuzz campaign: seed {seed}, {args.datagrams} datagrams at {args.nodes} nodes", flush=True)
    cluster = Cluster(args.nodes, [args.node_bin], rng=random.Random(seed), timing=Timing(),
                      keep_files=args.keep_logs, name="fuzz")
    try:
        cluster.start()
        cluster.wait_for_leader(cluster.timing.startup_bound)
        figures = fuzz.run(cluster, args.datagrams, seed, args.max_seconds, rate_per_s=args.rate,
                           progress=lambda i, t: print(f"  {t:6.1f} s  {i} sent", flush=True)
                           if int(t * 2) % 20 == 0 else None)
        print(figures.summary())
        if args.keep_logs:
            print(f"logs kept in {cluster.dir}")
        print("PASS" if figures.ok() else "FAIL")
        return 0 if figures.ok() else 1
    finally:
        cluster.teardown()


if __name__ == "__main__":
    sys.exit(main())
