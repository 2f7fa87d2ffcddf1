"""pytest plugin: points per test, a score table at the end, and the results files.

Registered by harness/conftest.py (`pytest_plugins`).

    @pytest.mark.points(3)        # what the test is worth (default 1 when unmarked)
    def test_something(...): ...

    pytestmark = pytest.mark.harness_self_test   # a test of the harness's own code: runs, never scores

At the end of a run the terminal shows one row per test that ran (test,
points, PASS / FAIL / SKIP, seed) and `score: X / Y`, where Y sums the
points of the tests that count: not skipped (a reference-only test skipped
for another implementation, say, counts for nothing either way) and not a
test of the harness itself (`harness_self_test`: it says nothing about the
node). A test passes when its setup, call and teardown all pass; an error
in setup or teardown is a failure worth 0, never a missing row.

All results come from one model of the run (lib/run_model.py):
`--report PATH` (default `harness-report.json`; `--report ''` for none),
`--gradescope PATH` and `--prairielearn PATH` (lib/results_formats.py).
JUnit XML comes from pytest itself (`--junitxml PATH`); each test case
carries its points, the seed and its artifacts as properties there.

A test attaches a file to its result with
`request.node.user_properties.append(("artifact:KIND", "/absolute/path"))`
and a figure with `("metric:NAME", number)`; both land in the model.
"""

from __future__ import annotations

import os
import shlex
import time

import pytest

from . import results_formats
from .run_model import finish_test, totals

DEFAULT_POINTS = 1
_STATE = "_raftkv_grading"
OUTPUT_LIMIT = 30000  # characters of a failure's output kept per test (Gradescope shows it all)
SELF_TEST = "harness_self_test"


def pytest_addoption(parser):
    g = parser.getgroup("raftkv", "Raft key-value store harness")
    g.addoption("--report", metavar="PATH", default="harness-report.json",
                help="write the graded results as JSON here (default: harness-report.json; '' for none)")
    g.addoption("--gradescope", metavar="PATH", default=None,
                help="also write Gradescope's results.json here")
    g.addoption("--prairielearn", metavar="PATH", default=None,
                help="also write PrairieLearn's external-grading results.json here")


def pytest_configure(config):
    config.addinivalue_line("markers", "points(n): what the test is worth in the score table (default 1)")
    config.addinivalue_line("markers", f"{SELF_TEST}: tests the harness's own code; runs, but never counts "
                                       "toward a node's score")
    setattr(config, _STATE, {"order": [], "tests": {}, "points": {}, "items": {}, "started": time.time()})


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


def _doc(item) -> str:
    fn = getattr(item, "function", None)
    doc = getattr(fn, "__doc__", None) or ""
    lines = doc.expandtabs().splitlines()
    indent = min((len(x) - len(x.lstrip()) for x in lines[1:] if x.strip()), default=0)
    return "\n".join([lines[0].strip()] + [x[indent:].rstrip() for x in lines[1:]]).strip() if lines else ""


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
             "self_test": item.get_closest_marker(SELF_TEST) is not None, "duration_s": 0.0, "message": None,
             "output": "", "doc": _doc(item)}
        state["tests"][item.nodeid] = t
        state["order"].append(item.nodeid)
        state["items"][item.nodeid] = item  # its user_properties (artifacts, metrics) are read at the end
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
            t["failed_in"] = rep.when
        t["outcome"] = "failed"
        t["output"] = (t["output"] + "\n" + _failure_output(rep)).strip()[-OUTPUT_LIMIT:]


def _failure_message(rep, limit: int = 2000) -> str:
    crash = getattr(rep.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(rep.longrepr)
    if rep.when != "call":
        text = f"error in {rep.when}: {text}"
    return text if len(text) <= limit else text[:limit] + " ..."


def _failure_output(rep) -> str:
    parts = [f"[{rep.when}] " + (rep.longreprtext or "")]
    for title, content in rep.sections:
        parts.append(f"----- {title} -----\n{content}")
    return "\n".join(parts)


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


def _attachments(item) -> tuple[list, dict]:
    artifacts, metrics = [], {}
    for name, value in getattr(item, "user_properties", []):
        if not isinstance(name, str):
            continue
        if name.startswith("artifact:") and isinstance(value, str) and value:
            artifacts.append({"kind": name[len("artifact:"):], "path": value})
        elif name.startswith("metric:") and isinstance(value, (int, float)) and not isinstance(value, bool):
            metrics[name[len("metric:"):]] = value
    return artifacts, metrics


def results(config) -> dict:
    """The model of this run so far (lib/run_model.py): what every results file is written from."""
    state = getattr(config, _STATE)
    settings = getattr(config, "_raftkv", None)
    tests = []
    for nodeid in state["order"]:
        t = dict(state["tests"][nodeid])
        t["seed"] = _seed(config)
        t["duration_s"] = round(t["duration_s"], 3)
        t["reproduce"] = _reproduce(config, nodeid)
        t["artifacts"], t["metrics"] = _attachments(state["items"].get(nodeid))
        tests.append(finish_test(t))
    budget = os.environ.get("RAFTKV_CPU_BUDGET") or None
    model = totals(tests)
    model.update({
        "seed": _seed(config),
        "seeds": [_seed(config)],
        "runs": 1,
        "policy": "all",
        "node": getattr(settings, "node_description", None),
        "reference_node": getattr(settings, "is_reference", None),
        "cpu_budget": budget,
        "cwd": str(config.invocation_params.dir),
        "duration_s": round(time.time() - state["started"], 1),
        "tests": tests,
    })
    return model


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
        if t["self_test"]:
            shown = "self"
        else:
            shown = f"{t['earned']}/{t['points']}" if t["outcome"] != "skipped" else f"-/{t['points']}"
        markup = {"passed": {"green": True}, "failed": {"red": True}, "skipped": {"yellow": True}}[t["outcome"]]
        name = t["nodeid"] if len(t["nodeid"]) <= width else "..." + t["nodeid"][-(width - 3):]
        tr.write(f"{name:<{width}}  {shown:>6}  ")
        tr.write(f"{word:<6}", **markup)
        tr.write_line(f"  {t['seed']}")
    selfs = sum(1 for t in r["tests"] if t["self_test"])
    tr.write_line(f"score: {r['score']} / {r['max_score']}  ({r['passed']} passed, {r['failed']} failed, "
                  f"{r['skipped']} skipped; skipped tests and {selfs} harness self-tests do not count)", bold=True)
    writers = [("report", "report", lambda m: m), ("gradescope", "gradescope", results_formats.to_gradescope),
               ("prairielearn", "prairielearn", results_formats.to_prairielearn)]
    for option, label, convert in writers:
        path = config.getoption(option)
        if not path:
            continue
        path = os.path.abspath(path)
        try:
            results_formats.write_json(path, convert(r))
            tr.write_line(f"{label}: {path}")
        except OSError as e:
            tr.write_line(f"{label}: could not write {path}: {e}", red=True)
