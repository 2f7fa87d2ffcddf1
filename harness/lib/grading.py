"""pytest plugin: points per test, a score table at the end, and a JSON report.

Registered by harness/conftest.py (`pytest_plugins`).

    @pytest.mark.points(3)        # what the test is worth (default 1 when unmarked)
    def test_something(...): ...

At the end of a run the terminal shows one row per test that ran (test,
points, PASS / FAIL / SKIP, seed) and `score: X / Y`, where Y sums the
points of the tests that were not skipped (a reference-only test skipped
for another implementation, say, counts for nothing either way). A test
passes when its setup, call and teardown all pass.

`--report PATH` (default `harness-report.json` in the current directory;
`--report ''` writes none) gets the same as JSON, with a reproduction
command per test. JUnit XML comes from pytest itself (`--junitxml PATH`);
each test case carries its points and the seed as properties there.
"""

from __future__ import annotations

import json
import os
import shlex
import time

import pytest

DEFAULT_POINTS = 1
_STATE = "_raftkv_grading"


def pytest_addoption(parser):
    g = parser.getgroup("raftkv", "Raft key-value store harness")
    g.addoption("--report", metavar="PATH", default="harness-report.json",
                help="write the graded results as JSON here (default: harness-report.json; '' for none)")


def pytest_configure(config):
    config.addinivalue_line("markers", "points(n): what the test is worth in the score table (default 1)")
    setattr(config, _STATE, {"order": [], "tests": {}, "points": {}, "started": time.time()})


def points_of(item) -> int:
    m = item.get_closest_marker("points")
    if m is None or not m.args:
        return DEFAULT_POINTS
    value = m.args[0]
    if not isinstance(value, int) or value < 0:
        raise pytest.UsageError(f"{item.nodeid}: points must be a non-negative integer, got {value!r}")
    return value


def _seed(config):
    settings = getattr(config, "_raftkv", None)
    return getattr(settings, "seed", None)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    state = getattr(config, _STATE)
    for item in items:
        p = points_of(item)
        state["points"][item.nodeid] = p
        item.user_properties.append(("points", p))
        item.user_properties.append(("seed", _seed(config)))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    state = getattr(item.config, _STATE)
    t = state["tests"].get(item.nodeid)
    if t is None:
        t = {"nodeid": item.nodeid, "outcome": "passed", "points": state["points"].get(item.nodeid, points_of(item)),
             "duration_s": 0.0, "message": None}
        state["tests"][item.nodeid] = t
        state["order"].append(item.nodeid)
    t["duration_s"] += getattr(rep, "duration", 0.0) or 0.0
    if rep.skipped and t["outcome"] == "passed":
        t["outcome"] = "skipped"
        longrepr = rep.longrepr
        if isinstance(longrepr, tuple) and len(longrepr) == 3:
            t["message"] = str(longrepr[2])
        elif hasattr(rep, "wasxfail"):
            t["message"] = f"xfail: {rep.wasxfail}"
    elif rep.failed:
        if t["outcome"] != "failed":
            t["message"] = _failure_message(rep)
        t["outcome"] = "failed"
        t["failed_in"] = rep.when


def _failure_message(rep, limit: int = 2000) -> str:
    crash = getattr(rep.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(rep.longrepr)
    return text if len(text) <= limit else text[:limit] + " ..."


def _reproduce(config, nodeid: str) -> str:
    settings = getattr(config, "_raftkv", None)
    path, sep, rest = nodeid.partition("::")
    here = str(config.invocation_params.dir)
    rel = os.path.relpath(os.path.join(str(config.rootpath), path), here)
    parts = ["pytest", shlex.quote(rel + sep + rest)]
    if settings is not None:
        parts += ["--seed", str(settings.seed)]
        if settings.rerun_options:
            parts.append(settings.rerun_options)
    soak = config.getoption("soak", None)
    if soak:
        parts += ["--soak", f"{soak:g}"]
    return " ".join(parts)


def results(config) -> dict:
    """The graded results so far (what the JSON report holds)."""
    state = getattr(config, _STATE)
    settings = getattr(config, "_raftkv", None)
    tests = []
    for nodeid in state["order"]:
        t = dict(state["tests"][nodeid])
        t["earned"] = t["points"] if t["outcome"] == "passed" else 0
        t["seed"] = _seed(config)
        t["duration_s"] = round(t["duration_s"], 3)
        t["reproduce"] = _reproduce(config, nodeid)
        tests.append(t)
    counted = [t for t in tests if t["outcome"] != "skipped"]
    return {
        "score": sum(t["earned"] for t in counted),
        "max_score": sum(t["points"] for t in counted),
        "passed": sum(1 for t in tests if t["outcome"] == "passed"),
        "failed": sum(1 for t in tests if t["outcome"] == "failed"),
        "skipped": sum(1 for t in tests if t["outcome"] == "skipped"),
        "seed": _seed(config),
        "node": getattr(settings, "node_description", None),
        "reference_node": getattr(settings, "is_reference", None),
        "cwd": str(config.invocation_params.dir),
        "duration_s": round(time.time() - state["started"], 1),
        "tests": tests,
    }


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    state = getattr(config, _STATE, None)
    if state is None or not state["order"]:
        return
    r = results(config)
    tr = terminalreporter
    tr.section("raftkv score")
    width = min(max(len(t["nodeid"]) for t in r["tests"]), 100)
    tr.write_line(f"{'test':<{width}}  {'points':>6}  {'result':<6}  seed")
    for t in r["tests"]:
        word = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}[t["outcome"]]
        shown = f"{t['earned']}/{t['points']}" if t["outcome"] != "skipped" else f"-/{t['points']}"
        markup = {"passed": {"green": True}, "failed": {"red": True}, "skipped": {"yellow": True}}[t["outcome"]]
        name = t["nodeid"] if len(t["nodeid"]) <= width else "..." + t["nodeid"][-(width - 3):]
        tr.write(f"{name:<{width}}  {shown:>6}  ")
        tr.write(f"{word:<6}", **markup)
        tr.write_line(f"  {t['seed']}")
    tr.write_line(f"score: {r['score']} / {r['max_score']}  ({r['passed']} passed, {r['failed']} failed, "
                  f"{r['skipped']} skipped; skipped tests do not count)", bold=True)
    path = config.getoption("report")
    if path:
        path = os.path.abspath(path)
        try:
            with open(path, "w", encoding="utf-8") as f:
                json.dump(r, f, indent=2)
                f.write("\n")
            tr.write_line(f"report: {path}")
        except OSError as e:
            tr.write_line(f"report: could not write {path}: {e}", red=True)
