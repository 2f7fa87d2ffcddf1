"""./dashboard: a live web page of a real raftkv cluster (docs/dashboard.md).

    ./dashboard [--port 8080] [--host 127.0.0.1] [--base-port 7001] [--dir DIR] [--keep]
    ./dashboard --attach configs-proxied [--port 8080]

Without --attach it starts 5 nodes behind the fault proxy in a directory of
its own (own_cluster.py) and stops them all on Ctrl-C. With --attach DIR it
watches a cluster started from the proxied config dir DIR (`make cluster
PROXY=1` writes configs-proxied/), as harness/run_scenario.py --attach does.

Exit codes: 0 stopped by Ctrl-C / SIGTERM; 1 the cluster could not be
started or attached; 2 bad usage.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import shutil
import signal
import sys
import tempfile

from aiohttp import web

from harness.lib.attach import AttachedCluster, AttachError

from .controls import Controls, ProcessWorker, WorkerTarget
from .monitor import Events, Monitor
from .own_cluster import OwnCluster, StartError
from .web import make_app
from .workload import Workload


def parse_args(argv):
    p = argparse.ArgumentParser(prog="dashboard", description="A live web dashboard of a raftkv cluster.",
                                epilog="exit codes: 0 stopped, 1 cannot start or attach, 2 bad usage")
    p.add_argument("--port", type=int, default=8080, help="HTTP port (default 8080)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to serve on (default 127.0.0.1; anything else must be asked for)")
    p.add_argument("--attach", metavar="CONFIG_DIR", help="watch a running proxied cluster instead of starting one")
    p.add_argument("--base-port", type=int, default=7001, help="own cluster: port of n1's public address (default 7001)")
    p.add_argument("--private-offset", type=int, default=10000,
                   help="own cluster: nodes listen on public port + N (default 10000)")
    p.add_argument("--control", metavar="HOST:PORT", help="own cluster: the proxy's control address (default base + 99)")
    p.add_argument("--dir", metavar="DIR", help="own cluster: work directory (default: a fresh one in /tmp, removed at exit)")
    p.add_argument("--keep", action="store_true", help="own cluster: keep the work directory at exit")
    args = p.parse_args(argv)
    if not 0 < args.port < 65536:
        p.error(f"--port {args.port} is not a port")
    try:
        ipaddress.IPv4Address(args.host)
    except ValueError:
        p.error(f"--host {args.host!r} is not an IPv4 address")
    if args.attach and (args.dir or args.keep or args.control):
        p.error("--dir, --keep and --control are for the dashboard's own cluster, not --attach")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    say = lambda text: print(text, flush=True)  # noqa: E731

    def on_signal(signum, frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)
    # Also SIGINT: a shell without job control starts `./dashboard &` with SIGINT ignored.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    own = None
    target = None
    attach_checks = None  # attach mode: where the checked histories go, removed at exit
    worker = ProcessWorker()
    monitor = workload = None
    try:
        if args.attach:
            config_dir = args.attach
            checks_dir = attach_checks = tempfile.mkdtemp(prefix="raftkv-dashboard-checks-")
        else:
            own = OwnCluster(repo, base_port=args.base_port, private_offset=args.private_offset,
                             control=args.control, work_dir=args.dir, keep=args.keep, say=say)
            say(f"starting 5 nodes behind the fault proxy in {own.dir}")
            own.start()
            config_dir = own.proxied
            checks_dir = os.path.join(own.dir, "checks")
        target = AttachedCluster(config_dir, log_dir=own.log_dir if own else None, say=say)
        events = Events(target.t0)
        events.add("process", f"attached to {target.dir}: {', '.join(target.ids)}")
        wtarget = WorkerTarget(target, worker, events)
        controls = Controls(wtarget, events, repo)
        workload = Workload(wtarget, events, checks_dir)

        def extra():
            return dict(workload.view(), scenario=controls.scenario_view())

        def on_tick():
            workload.tick()
            controls.tidy()
            if own is not None:
                own.reap()
        monitor = Monitor(target, events, extra=extra, on_tick=on_tick,
                          observing=lambda: controls.scenario["running"])
        monitor.start()
        app = make_app(monitor, controls, workload, checks_dir)
        say(f"dashboard: http://{args.host}:{args.port}/  (Ctrl-C stops it"
            + (" and every process it started)" if own else "; the attached cluster keeps running)"))
        web.run_app(app, host=args.host, port=args.port, print=None, handle_signals=False,
                    shutdown_timeout=1.0)
        return 0
    except (StartError, AttachError) as e:
        print(f"dashboard: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # the HTTP port is taken
        print(f"dashboard: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        if workload is not None:
            try:
                workload.stop_load()
            except Exception as e:
                say(f"dashboard: stopping the load: {e}")
        if monitor is not None:
            monitor.stop()
        if target is not None:
            for line in worker.run(target.close):
                say(f"dashboard: {line}")
        worker.shutdown()
        if own is not None:
            for line in own.stop():
                say(f"dashboard: {line}")
        if attach_checks is not None:
            shutil.rmtree(attach_checks, ignore_errors=True)
