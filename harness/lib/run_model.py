"""The one internal model of a graded run, and how several runs (--repeat) combine.

Every results file (harness-report.json, Gradescope's and PrairieLearn's
results.json, the HTML report) is written from this model, never from
pytest directly, so they cannot disagree. A model is a plain dict:

    {"score", "max_score", "passed", "failed", "skipped", "seed", "seeds", "node",
     "reference_node", "cwd", "duration_s", "runs", "policy", "cpu_budget", "tests": [TEST, ...]}

and a TEST is

    {"nodeid", "outcome": passed|failed|skipped, "failed_in": setup|call|teardown (failures),
     "points", "earned", "counted", "self_test", "duration_s", "seed", "message", "output",
     "doc", "reproduce", "artifacts": [{"kind", "path"}], "metrics": {name: number},
     "runs": [{"seed", "outcome", "message", "reproduce", "duration_s", "artifacts", "metrics"}],
     "pass_rate"}

`counted` is false for skipped tests and for the harness's tests of its own
code (`self_test`): they never add to score or max_score. A test that
errored in setup or teardown is `failed` and earns 0: it never vanishes.
This module imports nothing from pytest.
"""

from __future__ import annotations

from typing import Iterable

# How --repeat scores a test that passed some runs and failed others.
POLICIES = {
    "all": "a test earns its points only if every run passed",
    "fraction": "a test earns its points times the fraction of runs that passed (rounded to 0.01)",
}


def totals(tests: list[dict]) -> dict:
    counted = [t for t in tests if t["counted"]]
    return {
        "score": round(sum(t["earned"] for t in counted), 2),
        "max_score": sum(t["points"] for t in counted),
        "passed": sum(1 for t in tests if t["outcome"] == "passed"),
        "failed": sum(1 for t in tests if t["outcome"] == "failed"),
        "skipped": sum(1 for t in tests if t["outcome"] == "skipped"),
    }


def finish_test(t: dict) -> dict:
    """Fill `earned`, `counted`, `runs` and `pass_rate` of one run's test record."""
    t["counted"] = t["outcome"] != "skipped" and not t.get("self_test", False)
    t["earned"] = t["points"] if (t["outcome"] == "passed" and t["counted"]) else 0
    t.setdefault("artifacts", [])
    t.setdefault("metrics", {})
    t["runs"] = [{k: t.get(k) for k in ("seed", "outcome", "message", "reproduce", "duration_s",
                                         "artifacts", "metrics")}]
    t["pass_rate"] = None if t["outcome"] == "skipped" else (1.0 if t["outcome"] == "passed" else 0.0)
    return t


def merge_runs(models: list[dict], policy: str = "all") -> dict:
    """Combine K models of the same suite (K seeds) into one, scoring by `policy`."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; one of {', '.join(POLICIES)}")
    if not models:
        raise ValueError("no runs to merge")
    if len(models) == 1:
        m = dict(models[0])
        m.update(runs=1, policy=policy, seeds=[m.get("seed")])
        return m
    order: list[str] = []
    by_id: dict[str, list[dict]] = {}
    for m in models:
        for t in m["tests"]:
            if t["nodeid"] not in by_id:
                order.append(t["nodeid"])
                by_id[t["nodeid"]] = []
            by_id[t["nodeid"]].append(t)
    tests = [_merge_test(by_id[n], len(models), policy) for n in order]
    first = models[0]
    out = {k: first.get(k) for k in ("node", "reference_node", "cwd", "cpu_budget")}
    out.update(totals(tests))
    out.update(seed=first.get("seed"), seeds=[m.get("seed") for m in models], runs=len(models), policy=policy,
               duration_s=round(sum(m.get("duration_s") or 0 for m in models), 1), tests=tests)
    return out


def _merge_test(records: list[dict], runs: int, policy: str) -> dict:
    ran = [r for r in records if r["outcome"] != "skipped"]
    passed = [r for r in ran if r["outcome"] == "passed"]
    # A run in which the test did not appear at all (a crash of the run) counts as a failed run.
    missing = runs - len(records)
    attempts = len(ran) + missing
    first_failure = next((r for r in records if r["outcome"] == "failed"), None)
    base = dict(first_failure or records[0])
    base["runs"] = [run for r in records for run in r.get("runs", [])]
    base["duration_s"] = round(sum(r["duration_s"] for r in records), 3)
    if attempts == 0:
        base["outcome"], base["pass_rate"] = "skipped", None
    else:
        base["pass_rate"] = round(len(passed) / attempts, 4)
        base["outcome"] = "passed" if len(passed) == attempts else "failed"
        if missing and first_failure is None:
            base["message"] = f"missing from {missing} of {runs} runs (the run stopped early)"
    base["counted"] = base["outcome"] != "skipped" and not base.get("self_test", False)
    if not base["counted"]:
        base["earned"] = 0
    elif policy == "all":
        base["earned"] = base["points"] if base["outcome"] == "passed" else 0
    else:
        base["earned"] = round(base["points"] * base["pass_rate"], 2)
    base["metrics"] = _merge_metrics(r.get("metrics", {}) for r in records)
    return base


def _merge_metrics(all_metrics: Iterable[dict]) -> dict:
    """The worst (largest) value of each figure over the runs: limits are upper bounds."""
    out: dict = {}
    for metrics in all_metrics:
        for k, v in metrics.items():
            if isinstance(v, (int, float)):
                out[k] = max(out.get(k, v), v)
    return out
