#!/usr/bin/env python3
"""Run fault-injection scenarios (faults/*.scenario) and print their timeline.

    python3 harness/run_scenario.py faults/leader_crash.scenario [--seed N]
            [--node-bin PATH | --node-cmd CMD] [--proxy-bin PATH] [--keep-logs]
    python3 harness/run_scenario.py --attach configs-proxied faults/leader_crash.scenario
    python3 harness/run_scenario.py --check faults/*.scenario      # parse only

Without --attach, each scenario gets a fresh cluster (a temporary directory,
the fault proxy, one node per `nodes N`), started and torn down by this
program: everything it starts it kills by PID when it ends, on Ctrl-C too.

With --attach DIR it drives a cluster that is already running from the
proxied config dir DIR (see docs/faults.md and harness/proxied_configs.py).

Exit codes: 0 every expectation passed; 1 an expectation failed (or a step
could not be done, or the cluster did not come up); 2 a bad scenario file
or bad usage; 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
import signal
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from harness.lib.attach import AttachedCluster, AttachError  # noqa: E402
from harness.lib.cluster import Cluster, Timing  # noqa: E402
from harness.lib.scenario import HarnessTarget, Runner, ScenarioError, parse_file, run, start_cluster  # noqa: E402


def say(text: str = "") -> None:
    print(text, flush=True)


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="run_scenario.py", description="Run fault-injection scenarios against a cluster.",
        epilog="exit codes: 0 all expectations passed, 1 some failed, 2 bad scenario file or usage")
    p.add_argument("scenarios", nargs="+", metavar="SCENARIO", help="scenario files (faults/*.scenario)")
    p.add_argument("--seed", type=int, default=None, help="seed of every random choice (default: random, printed)")
    p.add_argument("--node-bin", metavar="PATH", help="node binary (default: <repo>/node)")
    p.add_argument("--node-cmd", metavar="CMD", help='node command, e.g. "python3 node.py"; the config path is appended')
    p.add_argument("--proxy-bin", metavar="PATH", help="fault proxy binary (default: <repo>/proxy)")
    p.add_argument("--keep-logs", action="store_true", help="keep each cluster's directory (configs, data, logs)")
    p.add_argument("--attach", metavar="CONFIG_DIR",
                   help="drive a running cluster started from this proxied config dir instead of starting one")
    p.add_argument("--log-dir", metavar="DIR",
                   help="attach mode: where nodes restarted by the runner log (default: CONFIG_DIR/logs)")
    p.add_argument("--leave-running", action="store_true",
                   help="attach mode: leave the nodes the runner restarted running when it ends")
    p.add_argument("--check", action="store_true", help="only parse the scenario files")
    args = p.parse_args(argv)
    if args.node_bin and args.node_cmd:
        p.error("--node-bin and --node-cmd exclude each other")
    if not args.attach and (args.log_dir or args.leave_running):
        p.error("--log-dir and --leave-running apply to --attach only")
    if args.attach and (args.node_cmd or args.proxy_bin or args.keep_logs):
        p.error("--node-cmd, --proxy-bin and --keep-logs do not apply to --attach "
                "(--node-bin: the binary to restart a node with when none was running at attach time)")
    return args


def node_logs(cluster: Cluster, lines: int = 15) -> str:
    return cluster.log_tails(lines)


def run_own_cluster(scenario, args, seed: int) -> bool:
    rng = random.Random(f"{seed}:{scenario.name}")
    if args.node_cmd:
        node_argv = shlex.split(args.node_cmd)
    else:
        node_argv = [os.path.abspath(args.node_bin) if args.node_bin else str(REPO / "node")]
    proxy_bin = os.path.abspath(args.proxy_bin) if args.proxy_bin else str(REPO / "proxy")
    cluster = Cluster(scenario.nodes, node_argv, proxy_bin=proxy_bin, rng=random.Random(rng.random()),
                      timing=Timing(), keep_files=args.keep_logs, name=scenario.name,
                      peer_auth=not args.node_cmd)
    try:
        began = time.monotonic()
        try:
            leader = start_cluster(cluster)
        except Exception as e:  # ClusterError (no leader), ProxyError, RuntimeError (cannot start)
            say(f"FAIL: the cluster did not come up: {e}")
            say(node_logs(cluster))
            return False
        say(f"cluster up in {time.monotonic() - began:.2f}s, leader {leader}"
            + (f"; files in {cluster.dir}" if args.keep_logs else ""))
        outcome = run(scenario, HarnessTarget(cluster), rng=rng, out=say)
        if not outcome.passed:
            say(node_logs(cluster))
            if args.keep_logs:
                say(f"files kept in {cluster.dir}")
        return outcome.passed
    finally:
        cluster.teardown()


def run_attached(scenario, args, seed: int) -> bool:
    rng = random.Random(f"{seed}:{scenario.name}")
    target = AttachedCluster(args.attach, node_bin=args.node_bin, log_dir=args.log_dir,
                             leave_running=args.leave_running, rng=random.Random(rng.random()))
    try:
        if sorted(target.ids) != sorted(scenario.ids):
            raise AttachError(f"{scenario.path} is written for nodes {', '.join(scenario.ids)}, "
                              f"the cluster in {args.attach} has {', '.join(target.ids)}")
        say(f"attached to {target.dir}: proxy control {target.control_addr[0]}:{target.control_addr[1]}, network reset")
        for line in target.describe_nodes():
            say(f"  {line}")
        target.start_monitor()
        probe = Runner(scenario, target)
        leader, _ = probe.current_leader(target.timing.startup_bound)
        say(f"leader: {leader}" if leader else
            f"no leader within {target.timing.startup_bound:g}s: running the scenario anyway")
        outcome = run(scenario, target, rng=rng, out=say)
        return outcome.passed
    finally:
        for line in target.close():
            say(f"attach: {line}")


def main(argv=None) -> int:
    args = parse_args(argv)
    scenarios = []
    bad = False
    for path in args.scenarios:
        try:
            scenarios.append(parse_file(path))
        except ScenarioError as e:
            print(f"run_scenario: {e}", file=sys.stderr)
            bad = True
    if bad:
        return 2
    if args.check:
        for sc in scenarios:
            say(f"{sc.path}: ok ({sc.nodes} nodes, {len(sc.steps)} steps, {sc.expectations} expectations)")
        return 0
    if not args.attach:
        binaries = [] if args.node_cmd else [args.node_bin or str(REPO / "node")]
        binaries.append(args.proxy_bin or str(REPO / "proxy"))
        for b in binaries:
            if not os.access(b, os.X_OK) or os.path.isdir(b):
                print(f"run_scenario: {b} is missing or not executable: build it (make) "
                      f"or pass --node-bin / --proxy-bin", file=sys.stderr)
                return 2
    if threading.current_thread() is threading.main_thread():
        def on_term(signum, frame):
            raise KeyboardInterrupt("SIGTERM")
        signal.signal(signal.SIGTERM, on_term)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**6)
    results = []
    try:
        for sc in scenarios:
            say(f"== {sc.path}: {sc.title or sc.name} ({sc.nodes} nodes, seed {seed}; "
                f"replay with --seed {seed})")
            try:
                ok = run_attached(sc, args, seed) if args.attach else run_own_cluster(sc, args, seed)
            except AttachError as e:
                print(f"run_scenario: {e}", file=sys.stderr)
                return 2
            results.append((sc, ok))
            say()
    except KeyboardInterrupt:
        print("run_scenario: interrupted; everything it started has been stopped", file=sys.stderr)
        return 130
    if len(results) > 1:
        for sc, ok in results:
            say(f"{'PASS' if ok else 'FAIL'}  {sc.path}")
    return 0 if all(ok for _, ok in results) else 1


if __name__ == "__main__":
    sys.exit(main())
