"""pytest wiring for the black-box harness: options, fixtures, failure reports.

Options (see `pytest harness --help`, section "raftkv"):
  --node-bin PATH    the node binary (default: <repo>/node)
  --node-cmd "CMD"   or any command; the config path is appended
                     (e.g. --node-cmd "python3 my_node.py")
  --proxy-bin PATH   the fault proxy (default: <repo>/proxy)
  --seed N           seed of every random choice the tests make (default: random, shown in the header)
  --nodes N          cluster size for the tests that use a default size
  --keep-logs        keep each test's directory (configs, data, logs)
  --reference        the node is the reference node (or a mutant of it): run the tests
                     marked `reference` too; an explicit choice, never inferred from a path
  --snapshots        the node compacts its log (PROTOCOL.md v1.1 "Snapshots"): run
                     test_snapshot.py against it (always run for the reference node)

A test gets `make_cluster` and calls it in its body, so that a node that
never elects a leader makes the test FAIL with a readable reason (not error
out in a fixture). Every test has its own RNG (`rng`), derived from the
session seed and the test's id: the same seed replays the same schedule of
faults.
"""

from __future__ import annotations

import os
import random
import shlex
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest

from .lib.artifacts import node_peak_rss_kb, save_failure_artifacts, slug
from .lib.cluster import Cluster, Timing
from .lib.message_artifacts import keep_message_artifacts

REPO = Path(__file__).resolve().parent.parent

# Score table and JSON report (lib/grading.py); campaign and mutant options (lib/campaign_options.py).
pytest_plugins = ["harness.lib.grading", "harness.lib.campaign_options"]

# A backstop: every wait in the harness has its own, much shorter bound.
TEST_TIME_LIMIT_S = 90


@dataclass
class Settings:
    node_argv: list
    node_description: str
    is_reference: bool
    not_reference_reason: str
    proxy_bin: str
    seed: int
    nodes: Optional[int]
    keep_logs: bool
    rerun_options: str
    snapshots: bool = False  # --snapshots: the node claims log compaction (test_snapshot.py)
    # > 1 when ./grade confines the run to a fraction of a CPU (--cpu-budget): the time a test may spend
    # gathering enough evidence (e.g. a volume of writes) and the watchdog scale by it. Protocol
    # bounds (a leader within 3 s, catch-up within 5 s) never do: they are what the tests check.
    evidence_time_factor: float = 1.0


def pytest_addoption(parser):
    g = parser.getgroup("raftkv", "Raft key-value store harness")
    g.addoption("--node-bin", metavar="PATH", default=None,
                help="node binary, started as PATH CONFIG (default: <repo>/node)")
    g.addoption("--node-cmd", metavar="CMD", default=None,
                help='node command, e.g. "python3 node.py"; the config path is appended '
                     "(excludes --node-bin)")
    g.addoption("--proxy-bin", metavar="PATH", default=None,
                help="fault proxy binary (default: <repo>/proxy)")
    g.addoption("--seed", type=int, default=None, help="session seed (default: random, printed)")
    g.addoption("--nodes", type=int, default=None,
                help="cluster size for tests that use a default size (3 or 5)")
    g.addoption("--keep-logs", action="store_true", default=False,
                help="keep every test's temporary directory (configs, data_dirs, logs)")
    g.addoption("--artifacts-dir", metavar="DIR", default=None,
                help="keep each failing test's fault timeline, node logs and lincheck HTML here and attach "
                     "them to its result (./grade sets it; default: none)")
    g.addoption("--reference", action="store_true", default=False,
                help="the node is the reference node or a mutant of it: also run the tests marked 'reference' "
                     "(its log lines, peer authentication, mutants); never inferred from the path. "
                     "Implied when neither --node-bin nor --node-cmd is given (the repository's ./node)")
    g.addoption("--snapshots", action="store_true", default=False,
                help="the node compacts its log (PROTOCOL.md v1.1 'Snapshots'): run the snapshot lab, "
                     "harness/test_snapshot.py (always run for the reference node)")


def _evidence_time_factor() -> float:
    """1 / the CPU fraction ./grade --cpu-budget set (RAFTKV_CPU_FRACTION), at least 1."""
    try:
        fraction = float(os.environ.get("RAFTKV_CPU_FRACTION", "1"))
    except ValueError:
        return 1.0
    return 1.0 / fraction if 0.05 <= fraction < 1 else 1.0


def pytest_configure(config):
    config.addinivalue_line("markers", "reference: needs the reference node (looks beyond PROTOCOL.md); "
                                       "run only with --reference")
    config.addinivalue_line("markers", "slow: takes more than ~10 s (deselect with -m 'not slow')")
    opt = config.option
    if opt.node_cmd and opt.node_bin:
        raise pytest.UsageError("--node-cmd and --node-bin exclude each other")
    if opt.nodes is not None and opt.nodes < 1:
        raise pytest.UsageError("--nodes must be at least 1")
    seed = opt.seed if opt.seed is not None else random.SystemRandom().randrange(1, 10**6)
    rerun = []
    if opt.node_cmd:
        argv = shlex.split(opt.node_cmd)
        if not argv:
            raise pytest.UsageError("--node-cmd is empty")
        description = opt.node_cmd
        rerun.append(f"--node-cmd {shlex.quote(opt.node_cmd)}")
    else:
        node_bin = os.path.abspath(opt.node_bin) if opt.node_bin else str(REPO / "node")
        argv = [node_bin]
        description = node_bin
        if opt.node_bin:
            rerun.append(f"--node-bin {shlex.quote(opt.node_bin)}")
    # "Reference" is the grader's explicit statement, never a guess from a path: a submission
    # copied to build/node must not get the reference node's tests and config. Naming no node
    # at all chooses this repository's own ./node, which is the reference node by definition,
    # so `pytest harness` alone grades it as such (with its peer-authentication config).
    default_node = not opt.node_cmd and not opt.node_bin
    is_ref = bool(opt.reference) or default_node
    why = "" if is_ref else "the node is not declared the reference node (--reference)"
    if opt.reference:
        rerun.append("--reference")
    proxy_bin = os.path.abspath(opt.proxy_bin) if opt.proxy_bin else str(REPO / "proxy")
    if opt.proxy_bin:
        rerun.append(f"--proxy-bin {shlex.quote(opt.proxy_bin)}")
    if opt.nodes:
        rerun.append(f"--nodes {opt.nodes}")
    if opt.snapshots:
        rerun.append("--snapshots")
    config._raftkv = Settings(argv, description, is_ref, why, proxy_bin, seed, opt.nodes, opt.keep_logs,
                              " ".join(rerun), snapshots=opt.snapshots,
                              evidence_time_factor=_evidence_time_factor())
    # A SIGTERM to pytest becomes ^C: fixtures tear down and the clusters are killed.
    if threading.current_thread() is threading.main_thread():
        def on_term(signum, frame):
            raise KeyboardInterrupt("SIGTERM")
        signal.signal(signal.SIGTERM, on_term)


def pytest_report_header(config):
    s: Settings = config._raftkv
    proxy_state = "" if os.access(s.proxy_bin, os.X_OK) else "  (MISSING: tests with network faults will fail)"
    return [f"raftkv seed: {s.seed}  (replay the same fault schedule with --seed {s.seed})",
            f"raftkv node: {s.node_description} CONFIG  (reference node: {'yes' if s.is_reference else 'no'})",
            f"raftkv proxy: {s.proxy_bin}{proxy_state}"]


def pytest_collection_modifyitems(config, items):
    s: Settings = config._raftkv
    if s.is_reference:
        return
    skip = pytest.mark.skip(reason=f"reference-only test: {s.not_reference_reason}")
    for item in items:
        if "reference" in item.keywords:
            item.add_marker(skip)


# -- fixtures -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def settings(pytestconfig) -> Settings:
    return pytestconfig._raftkv


@pytest.fixture
def timing() -> Timing:
    """Heartbeat 50 ms, election timeout 150-300 ms, client timeout 0.3 s / deadline 3 s."""
    return Timing()


@pytest.fixture
def rng(request, settings) -> random.Random:
    """This test's RNG: a function of the session seed and the test id only."""
    return random.Random(f"{settings.seed}:{request.node.nodeid}")


@pytest.fixture
def make_cluster(request, settings, rng, timing):
    """make_cluster(size=None, *, default=3, minimum=1, proxy=True, start=True, params=None) -> Cluster

    size:    a fixed size (ignores --nodes), e.g. for tests parametrized by size;
    default: the size when --nodes is not given; minimum: floor for --nodes;
    proxy:   route traffic through the fault proxy (needed for network faults);
    start:   start it and wait for the first leader (a failure fails the test);
    params:  more server config `params`, e.g. {"snapshot_threshold_entries": 20}.
    Everything is torn down after the test, whatever happens.
    """
    clusters: list[Cluster] = []
    request.node._raftkv_clusters = clusters

    def make(size: Optional[int] = None, *, default: int = 3, minimum: int = 1, proxy: bool = True,
             start: bool = True, params: Optional[dict] = None) -> Cluster:
        __tracebackhide__ = True
        n = size if size is not None else max(minimum, settings.nodes or default)
        if len(settings.node_argv) == 1 and not os.access(settings.node_argv[0], os.X_OK):
            pytest.fail(f"node binary {settings.node_argv[0]} is missing or not executable: "
                        "build it (make) or pass --node-bin / --node-cmd", pytrace=False)
        if proxy and not os.access(settings.proxy_bin, os.X_OK):
            pytest.fail(f"fault proxy {settings.proxy_bin} is missing or not executable: "
                        "build it (make) or pass --proxy-bin", pytrace=False)
        c = Cluster(n, settings.node_argv, proxy_bin=settings.proxy_bin if proxy else None,
                    rng=random.Random(rng.random()), timing=timing, keep_files=settings.keep_logs,
                    name=f"cluster {len(clusters) + 1}" if clusters else "cluster",
                    peer_auth=settings.is_reference, params=params)
        clusters.append(c)
        if start:
            c.start()
            c.wait_for_leader(timing.startup_bound)
        return c

    yield make
    peaks = []
    for c in clusters:
        try:
            peaks.append(node_peak_rss_kb(c))
        except OSError:
            pass
        c.teardown()
    peaks = [p for p in peaks if p]
    if peaks:
        request.node.user_properties.append(("metric:node_peak_rss_mb", round(max(peaks) / 1024, 1)))


# -- reports and the watchdog -------------------------------------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed or call.when == "teardown":
        return
    s: Settings = item.config._raftkv
    lines = [f"seed {s.seed}; replay: pytest '{item.nodeid}' --seed {s.seed} {s.rerun_options}".rstrip()]
    for c in getattr(item, "_raftkv_clusters", []):
        try:
            lines.append(c.report())
        except Exception as e:  # a report must never hide the failure itself
            lines.append(f"(no report for {c.name}: {e})")
    # Message diagram + ShiViz log of each proxied cluster, kept under --reports-dir (lib/message_artifacts.py).
    lines += keep_message_artifacts(item, rep, getattr(item, "_raftkv_clusters", []),
                                    item.config.getoption("reports_dir"), s.seed)
    rep.sections.append(("raftkv: seed, fault timeline, node logs", "\n".join(lines)))
    artifacts_dir = item.config.getoption("artifacts_dir")
    if artifacts_dir and not getattr(item, "_raftkv_artifacts_saved", False):
        item._raftkv_artifacts_saved = True  # once per test, from the first failing phase
        directory = os.path.join(os.path.abspath(artifacts_dir), f"{slug(item.nodeid)}-seed{s.seed}")
        for c in getattr(item, "_raftkv_clusters", []):
            try:
                for kind, path in save_failure_artifacts(c, directory):
                    item.user_properties.append((f"artifact:{kind}", path))
            except Exception as e:  # evidence is a help; it must never hide the failure itself
                rep.sections.append(("raftkv: artifacts", f"could not save artifacts of {c.name}: {e}"))


class TimeLimitExceeded(Exception):
    """Raised in a test that runs longer than TEST_TIME_LIMIT_S (a harness backstop)."""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    armed = threading.current_thread() is threading.main_thread()
    if armed:
        limit_s = TEST_TIME_LIMIT_S * item.config._raftkv.evidence_time_factor

        def on_alarm(signum, frame):
            raise TimeLimitExceeded(f"test ran longer than {limit_s:g} s: something waited without a bound")
        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, limit_s)
    try:
        yield
    finally:
        if armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
