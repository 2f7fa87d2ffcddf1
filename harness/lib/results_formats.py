"""Results files in the formats courses use, written from the run model (lib/run_model.py).

to_gradescope(model)     Gradescope autograder `results.json`
to_prairielearn(model)   PrairieLearn external grading `results.json`
validate_*(doc)          the checks of docs/harness.md "Results files", written from
                         the platforms' documented formats (no schema library: the
                         harness needs only Debian's Python); each returns a list of
                         problems, empty when the document is valid
check_junit(path)        pytest's --junitxml output carries points and seed per test case

Harness self-tests never appear in the platforms' files: they say nothing
about the submission. Skipped tests do (score 0 of max 0), so a student
sees why they did not run.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import xml.etree.ElementTree as ET

# Gradescope truncates nothing but shows everything; keep each test's text readable.
PLATFORM_OUTPUT_LIMIT = 8000
GRADESCOPE_VISIBILITY = ("hidden", "after_due_date", "after_published", "visible")
GRADESCOPE_FORMATS = ("text", "html", "simple_format", "md", "ansi")


def write_json(path: str, doc: dict) -> None:
    """Write atomically, so a reader never sees half a file."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".results-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        finally:
            raise


def _graded(model: dict) -> list[dict]:
    return [t for t in model["tests"] if not t.get("self_test")]


def _test_text(t: dict) -> str:
    """What a student reads for one test: the outcome, why, how to replay it, and the figures."""
    lines = []
    runs = t.get("runs") or []
    if len(runs) > 1:
        passed = sum(1 for r in runs if r["outcome"] == "passed")
        lines.append(f"passed {passed} of {len(runs)} runs")
    if t["outcome"] == "skipped":
        lines.append(f"skipped: {t.get('message') or ''}")
    elif t["outcome"] == "failed":
        lines.append(t.get("message") or "failed")
        lines.append(f"replay: {t.get('reproduce')}")
    if t.get("metrics"):
        lines.append("figures: " + ", ".join(f"{k} = {v:g}" for k, v in sorted(t["metrics"].items())))
    text = "\n".join(lines)
    if t["outcome"] == "failed" and t.get("output"):
        room = PLATFORM_OUTPUT_LIMIT - len(text)
        if room > 200:
            out = t["output"]
            text += "\n\n" + (out if len(out) <= room else "...\n" + out[-room:])
    return text


def _header(model: dict) -> str:
    runs = model.get("runs", 1)
    parts = [f"score {model['score']} / {model['max_score']}", f"seed {model.get('seed')}"]
    if runs > 1:
        parts.append(f"{runs} runs per test (seeds {', '.join(str(s) for s in model.get('seeds', []))}), "
                     f"policy '{model.get('policy')}'")
    if model.get("cpu_budget"):
        parts.append(f"CPU budget {model['cpu_budget']}")
    return "; ".join(parts)


def to_gradescope(model: dict) -> dict:
    tests = []
    for t in _graded(model):
        counted = t["outcome"] != "skipped"
        entry = {
            "name": t["nodeid"],
            "score": t["earned"] if counted else 0,
            "max_score": t["points"] if counted else 0,
            "output": _test_text(t),
            "output_format": "text",
            "visibility": "visible",
            "extra_data": {"seed": t.get("seed"), "outcome": t["outcome"], "pass_rate": t.get("pass_rate")},
        }
        if counted:  # a skipped test (0 of 0) is neither: its output says why it did not run
            entry["status"] = "passed" if t["outcome"] == "passed" else "failed"
        tests.append(entry)
    return {
        "score": model["score"],
        "execution_time": int(math.ceil(model.get("duration_s") or 0)),
        "output": _header(model),
        "output_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
    }


def to_prairielearn(model: dict) -> dict:
    tests = []
    for t in _graded(model):
        counted = t["outcome"] != "skipped"
        tests.append({
            "name": t["nodeid"],
            "description": (t.get("doc") or "").split("\n", 1)[0],
            "points": t["earned"] if counted else 0,
            "max_points": t["points"] if counted else 0,
            "message": t.get("message") or "",
            "output": _test_text(t),
        })
    total = model["max_score"]
    return {
        "gradable": True,
        "score": round(model["score"] / total, 4) if total else 0.0,
        "message": _header(model),
        "output": "",
        "tests": tests,
    }


# -- validation ---------------------------------------------------------------------------


def _is_num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _check_fields(where: str, doc, spec: dict, problems: list) -> None:
    """spec: field -> (required, predicate, description)."""
    if not isinstance(doc, dict):
        problems.append(f"{where}: not an object")
        return
    for field, (required, ok, what) in spec.items():
        if field not in doc:
            if required:
                problems.append(f"{where}: '{field}' missing")
        elif not ok(doc[field]):
            problems.append(f"{where}: '{field}' must be {what}, got {doc[field]!r}")


def validate_gradescope(doc) -> list[str]:
    """Gradescope's results.json: a score or per-test scores; tests[] with the documented fields."""
    p: list[str] = []
    _check_fields("results", doc, {
        "score": (False, _is_num, "a number"),
        "execution_time": (False, lambda x: _is_num(x) and x >= 0, "a non-negative number of seconds"),
        "output": (False, lambda x: isinstance(x, str), "a string"),
        "output_format": (False, lambda x: x in GRADESCOPE_FORMATS, f"one of {GRADESCOPE_FORMATS}"),
        "visibility": (False, lambda x: x in GRADESCOPE_VISIBILITY, f"one of {GRADESCOPE_VISIBILITY}"),
        "stdout_visibility": (False, lambda x: x in GRADESCOPE_VISIBILITY, f"one of {GRADESCOPE_VISIBILITY}"),
        "tests": (True, lambda x: isinstance(x, list), "a list"),
    }, p)
    if p:
        return p
    for i, t in enumerate(doc["tests"]):
        _check_fields(f"tests[{i}]", t, {
            "name": (True, lambda x: isinstance(x, str) and x, "a non-empty string"),
            "score": (True, _is_num, "a number"),
            "max_score": (True, lambda x: _is_num(x) and x >= 0, "a non-negative number"),
            "status": (False, lambda x: x in ("passed", "failed"), "'passed' or 'failed'"),
            "output": (False, lambda x: isinstance(x, str), "a string"),
            "output_format": (False, lambda x: x in GRADESCOPE_FORMATS, f"one of {GRADESCOPE_FORMATS}"),
            "visibility": (False, lambda x: x in GRADESCOPE_VISIBILITY, f"one of {GRADESCOPE_VISIBILITY}"),
            "extra_data": (False, lambda x: isinstance(x, dict), "an object"),
        }, p)
        if isinstance(t, dict) and _is_num(t.get("score")) and _is_num(t.get("max_score")):
            if not 0 <= t["score"] <= t["max_score"]:
                p.append(f"tests[{i}]: score {t['score']} outside [0, max_score {t['max_score']}]")
    if "score" in doc and _is_num(doc["score"]) and not p:
        total = round(sum(t["score"] for t in doc["tests"]), 2)
        if abs(total - doc["score"]) > 0.011:
            p.append(f"results: score {doc['score']} is not the sum of the tests' scores ({total})")
    return p


def validate_prairielearn(doc) -> list[str]:
    """PrairieLearn's external grading results.json: score in [0, 1]; tests with points and max_points."""
    p: list[str] = []
    _check_fields("results", doc, {
        "gradable": (False, lambda x: isinstance(x, bool), "true or false"),
        "score": (True, lambda x: _is_num(x) and 0 <= x <= 1, "a number in [0, 1]"),
        "message": (False, lambda x: isinstance(x, str), "a string"),
        "output": (False, lambda x: isinstance(x, str), "a string"),
        "tests": (False, lambda x: isinstance(x, list), "a list"),
    }, p)
    if p:
        return p
    points = max_points = 0.0
    for i, t in enumerate(doc.get("tests", [])):
        _check_fields(f"tests[{i}]", t, {
            "name": (True, lambda x: isinstance(x, str) and x, "a non-empty string"),
            "description": (False, lambda x: isinstance(x, str), "a string"),
            "points": (True, _is_num, "a number"),
            "max_points": (True, lambda x: _is_num(x) and x >= 0, "a non-negative number"),
            "message": (False, lambda x: isinstance(x, str), "a string"),
            "output": (False, lambda x: isinstance(x, str), "a string"),
        }, p)
        if isinstance(t, dict) and _is_num(t.get("points")) and _is_num(t.get("max_points")):
            if not 0 <= t["points"] <= t["max_points"]:
                p.append(f"tests[{i}]: points {t['points']} outside [0, max_points {t['max_points']}]")
            points += t["points"]
            max_points += t["max_points"]
    if not p and max_points > 0 and abs(points / max_points - doc["score"]) > 0.0001:
        p.append(f"results: score {doc['score']} is not points / max_points ({points} / {max_points})")
    return p


def validate_harness_report(doc) -> list[str]:
    """harness-report.json, the run model itself (lib/run_model.py)."""
    p: list[str] = []
    _check_fields("report", doc, {
        "score": (True, _is_num, "a number"),
        "max_score": (True, _is_num, "a number"),
        "seed": (True, lambda x: x is None or isinstance(x, int), "an integer"),
        "runs": (True, lambda x: isinstance(x, int) and x >= 1, "a positive integer"),
        "tests": (True, lambda x: isinstance(x, list), "a list"),
    }, p)
    if p:
        return p
    outcomes = ("passed", "failed", "skipped")
    for i, t in enumerate(doc["tests"]):
        _check_fields(f"tests[{i}]", t, {
            "nodeid": (True, lambda x: isinstance(x, str) and "::" in x, "a pytest node id"),
            "outcome": (True, lambda x: x in outcomes, f"one of {outcomes}"),
            "points": (True, lambda x: isinstance(x, int) and x >= 0, "a non-negative integer"),
            "earned": (True, _is_num, "a number"),
            "counted": (True, lambda x: isinstance(x, bool), "true or false"),
            "self_test": (True, lambda x: isinstance(x, bool), "true or false"),
            "duration_s": (True, _is_num, "a number"),
            "reproduce": (True, lambda x: isinstance(x, str) and x.startswith("pytest "), "a pytest command"),
            "artifacts": (True, lambda x: isinstance(x, list) and all(
                isinstance(a, dict) and isinstance(a.get("kind"), str) and isinstance(a.get("path"), str)
                for a in x), "a list of {kind, path}"),
            "metrics": (True, lambda x: isinstance(x, dict), "an object"),
            "runs": (True, lambda x: isinstance(x, list) and len(x) >= 1, "a non-empty list"),
        }, p)
        if isinstance(t, dict) and t.get("counted") and (t.get("self_test") or t.get("outcome") == "skipped"):
            p.append(f"tests[{i}]: a skipped test or a self-test must not count")
    if not p:
        counted = [t for t in doc["tests"] if t["counted"]]
        if abs(sum(t["earned"] for t in counted) - doc["score"]) > 0.011:
            p.append("report: score is not the sum of the counted tests' earned points")
        if sum(t["points"] for t in counted) != doc["max_score"]:
            p.append("report: max_score is not the sum of the counted tests' points")
    return p


def check_junit(path: str) -> list[str]:
    """Every test case of pytest's JUnit XML carries `points` and `seed` properties."""
    p: list[str] = []
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        return [f"{path}: {e}"]
    cases = list(root.iter("testcase"))
    if not cases:
        p.append(f"{path}: no testcase elements")
    for case in cases:
        props = {q.get("name"): q.get("value") for q in case.iter("property")}
        name = f"{case.get('classname')}::{case.get('name')}"
        if not (props.get("points") or "").isdigit():
            p.append(f"{name}: no integer 'points' property ({props.get('points')!r})")
        if "seed" not in props:
            p.append(f"{name}: no 'seed' property")
    return p
