"""Checking a recorded history with `lincheck` (docs/lincheck.md), and keeping the evidence.

    verdict = check_history("history.jsonl", html="timeline.html", budget_s=10)
    assert_linearizable(path, reports_dir=..., name=..., context=...)

`lincheck` is found as $RAFTKV_LINCHECK, <repo>/lincheck or <repo>/build/lincheck.

Verdicts: `ok`, `violation` (definite), `unknown` (the time budget or the
memory cap stopped the check before a decision: `details["stopped_by"]`
says which), `empty` (the history holds no operation, so nothing was
checked: a recorder that wrote nothing must not pass, and
assert_linearizable fails on it) and `error` (bad history, missing checker,
crash).

The budget policy (assert_linearizable): an `unknown` verdict is never
taken as a pass. The check is run once more with four times the budget;
if the checker still cannot decide, the test FAILS with a message saying
that the history could not be checked (not that it is wrong), and the
history is kept for a longer offline run (`lincheck HISTORY --timeout-s 600`).
The campaigns keep histories small enough (a few thousand operations on a
few keys) that the reference node's histories are decided in milliseconds.

On a violation (or an undecided / failed check), the history, lincheck's
explanation and its HTML timeline are copied to a directory that outlives
the test's temporary files:

    <reports dir>/<test name>-seed<seed>/history.jsonl, timeline.html, lincheck.txt

The reports dir is `--reports-dir` (default `harness-reports/` in the
current directory). The assertion message names the files.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parent.parent.parent


def find_lincheck() -> Optional[str]:
    env = os.environ.get("RAFTKV_LINCHECK")
    candidates = [env] if env else []
    candidates += [str(REPO / "lincheck"), str(REPO / "build" / "lincheck")]
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return None


@dataclass
class Verdict:
    verdict: str                     # ok / violation / unknown / empty / error
    text: str = ""                   # lincheck's human-readable explanation
    details: dict = field(default_factory=dict)  # its --json object
    html: Optional[str] = None       # the HTML timeline, when written
    history: Optional[str] = None
    seconds: float = 0.0
    budget_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"


def _run(cmd: list, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)


def check_history(history: str, *, html: Optional[str] = None, budget_s: float = 10.0,
                  lincheck: Optional[str] = None) -> Verdict:
    """Run lincheck on a JSON-lines history; returns the verdict, its explanation and details."""
    binary = lincheck or find_lincheck()
    if binary is None:
        return Verdict("error", "lincheck not found: build it (cmake --build build --target lincheck) "
                                "or set RAFTKV_LINCHECK", history=history, budget_s=budget_s)
    # Shrinking a violation gets the same budget again; allow for both, plus start-up.
    wall = 2 * budget_s + 30
    cmd = [binary, history, "--json", "--timeout-s", f"{budget_s:g}"]
    if html:
        cmd += ["--html", html]
    try:
        proc = _run(cmd, wall)
    except subprocess.TimeoutExpired:
        return Verdict("error", f"lincheck ran longer than {wall:.0f} s (budget {budget_s:g} s) and was killed",
                       history=history, budget_s=budget_s)
    details: dict = {}
    try:
        details = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else {}
    except ValueError:
        details = {}
    verdict = {0: "ok", 1: "violation", 3: "unknown", 4: "empty"}.get(proc.returncode)
    if verdict is None or (details and details.get("verdict") != verdict):
        return Verdict("error", f"lincheck exit status {proc.returncode}: {proc.stderr.strip() or proc.stdout.strip()}",
                       details, history=history, budget_s=budget_s)
    text = ""
    if verdict not in ("ok", "empty"):
        # The text form explains the violation (minimal set, best order, why it is stuck).
        try:
            plain = _run([binary, history, "--timeout-s", f"{budget_s:g}"], wall)
            text = (plain.stdout + plain.stderr).strip()
        except subprocess.TimeoutExpired:
            text = "(lincheck's text explanation timed out)"
    return Verdict(verdict, text, details, html=html if html and os.path.exists(html) else None,
                   history=history, seconds=float(details.get("seconds", 0.0) or 0.0), budget_s=budget_s)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", name).strip("_")[:120] or "test"


def keep_evidence(verdict: Verdict, reports_dir: str, name: str, extra_text: str = "") -> str:
    """Copy history, HTML timeline and explanation to reports_dir/name/; returns that directory."""
    out = os.path.abspath(os.path.join(reports_dir, _slug(name)))
    os.makedirs(out, exist_ok=True)
    if verdict.history and os.path.exists(verdict.history):
        shutil.copyfile(verdict.history, os.path.join(out, "history.jsonl"))
    if verdict.html and os.path.exists(verdict.html):
        shutil.copyfile(verdict.html, os.path.join(out, "timeline.html"))
    with open(os.path.join(out, "lincheck.txt"), "w", encoding="utf-8") as f:
        f.write(f"verdict: {verdict.verdict} (budget {verdict.budget_s:g} s)\n\n{verdict.text}\n")
        if extra_text:
            f.write("\n" + extra_text + "\n")
    return out


def assert_linearizable(history: str, *, reports_dir: str, name: str, budget_s: float = 10.0,
                        context: str = "", note=None) -> Verdict:
    """Check `history` with lincheck; fail with the explanation and the kept files unless it is linearizable.

    context: a line for the message (e.g. the workload's summary).
    note:    a callable taking one string (e.g. cluster.note) to log the verdict on the fault timeline.
    """
    __tracebackhide__ = True
    html = os.path.splitext(history)[0] + ".html"
    v = check_history(history, html=html, budget_s=budget_s)
    if v.verdict == "unknown" and v.details.get("stopped_by") != "memory budget":
        # Never read "undecided" as "linearizable": try once more with a bigger budget
        # (pointless when the memory cap, not the time, stopped it).
        if note:
            note(f"lincheck undecided within {budget_s:g} s; retrying with {4 * budget_s:g} s")
        v = check_history(history, html=html, budget_s=4 * budget_s)
    if note:
        note(f"lincheck: {v.verdict}" + (f" in {v.seconds:.3f} s" if v.ok else ""))
    if v.ok:
        return v
    kept = keep_evidence(v, reports_dir, name, context)
    files = (f"  history:  {os.path.join(kept, 'history.jsonl')}\n"
             + (f"  timeline: {os.path.join(kept, 'timeline.html')}  (open it in a browser)\n"
                if os.path.exists(os.path.join(kept, 'timeline.html')) else "")
             + f"  explanation: {os.path.join(kept, 'lincheck.txt')}")
    if v.verdict == "violation":
        raise AssertionError(f"the history is NOT linearizable ({context}).\n{v.text}\nKept for inspection:\n{files}")
    if v.verdict == "empty":
        raise AssertionError(f"the history is EMPTY: no operation was recorded, so nothing was checked "
                             f"({context}); a test that recorded nothing cannot pass.\n{files}")
    if v.verdict == "unknown" and v.details.get("stopped_by") == "memory budget":
        raise AssertionError(
            f"lincheck stopped at its memory cap before deciding ({context}); this is not a verdict of "
            f"violation, but the history was not checked, so the test cannot pass.\n{v.text}\n"
            f"Re-check it offline with a larger cap: lincheck HISTORY --max-memory-mb 8192\n{files}")
    if v.verdict == "unknown":
        raise AssertionError(
            f"lincheck could not decide within {budget_s:g} s nor {4 * budget_s:g} s ({context}); this is not a "
            f"verdict of violation, but the history was not checked, so the test cannot pass.\n{v.text}\n"
            f"Re-check it offline with a larger budget: lincheck HISTORY --timeout-s 600\n{files}")
    raise AssertionError(f"the history could not be checked: {v.text}\n{files}")
