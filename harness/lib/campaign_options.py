"""pytest plugin: options and markers of the fault campaigns and the mutant test.

Registered by harness/conftest.py (`pytest_plugins`).

  --soak SECONDS      also run test_linearizability.py::test_soak, a campaign this long
                      (skipped unless given)
  --reports-dir DIR   where evidence of a linearizability failure is kept (history,
                      HTML timeline, lincheck's explanation); default harness-reports/
  --mutants fast|full|matrix  which tests test_mutants.py runs per mutant: its quickest
                      deterministic catcher (fast, the default), all its catchers (full), or
                      every mutant's catchers (matrix: the whole mutant x test matrix)
  --mutants-report PATH  where test_mutants.py writes the matrix mutant x test (JSON;
                      a readable table beside it, PATH with .md); default mutants-report.json
  markers: mutants (the mutant test: builds and runs the mutant nodes, a few minutes;
           deselect with -m "not mutants")
"""

from __future__ import annotations

import json
import os

import pytest


def pytest_addoption(parser):
    g = parser.getgroup("raftkv", "Raft key-value store harness")
    g.addoption("--soak", type=float, metavar="SECONDS", default=None,
                help="run the soak campaign (test_linearizability.py::test_soak) for this long")
    g.addoption("--reports-dir", metavar="DIR", default="harness-reports",
                help="where a failed linearizability check keeps its history, HTML timeline and "
                     "explanation (default: harness-reports/ in the current directory)")
    g.addoption("--mutants", dest="mutants_mode", choices=("fast", "full", "matrix"), default="fast",
                help="test_mutants.py: run each mutant's quickest deterministic catcher (fast, default), "
                     "all its catchers (full), or every test that catches any mutant (matrix)")
    g.addoption("--mutants-report", metavar="PATH", default="mutants-report.json",
                help="where test_mutants.py writes the matrix mutant x test as JSON (and PATH.md as a "
                     "table); default mutants-report.json in the current directory")


def pytest_configure(config):
    config.addinivalue_line("markers", "mutants: runs harness tests against the mutant nodes "
                                       "(build/mutants/node-*); deselect with -m 'not mutants'")
    soak = config.getoption("soak", None)
    if soak is not None and soak <= 0:
        raise pytest.UsageError("--soak needs a positive number of seconds")


@pytest.fixture(scope="session")
def reports_dir(pytestconfig) -> str:
    """Absolute path of the directory for kept evidence (created when something is kept)."""
    return os.path.abspath(pytestconfig.getoption("reports_dir"))


@pytest.fixture(scope="session")
def soak_seconds(pytestconfig):
    return pytestconfig.getoption("soak")


def mutant_matrix(rows: list) -> dict:
    """The report of test_mutants.py: per mutant its mistake and, per catching test, what happened.

    A cell is "caught" (failed with an assertion the test is listed with in CATCHERS),
    "failed otherwise", "passed", "skipped", "did not run", or absent: not a
    catcher chosen for that mutant (or not run in --mutants fast).
    """
    tests = sorted({t for r in rows for t in r["cells"]})
    return {"mode": rows[0]["mode"], "seed": rows[0]["seed"], "tests": tests,
            "caught": sum(1 for r in rows if r["caught_by"]), "mutants": len(rows),
            "rows": sorted(rows, key=lambda r: r["mutant"])}


def matrix_markdown(report: dict) -> str:
    tests = report["tests"]
    cols = {t: f"T{i + 1}" for i, t in enumerate(tests)}
    mark = {"caught": "CAUGHT", "passed": "passed", "failed otherwise": "failed (other)", "skipped": "skipped",
            "did not run": "not run"}
    lines = [f"# Mutants x tests ({report['mode']}, seed {report['seed']}): "
             f"{report['caught']} of {report['mutants']} caught", "",
             "| mutant | mistake | " + " | ".join(cols[t] for t in tests) + " | s |",
             "|---|---|" + "---|" * len(tests) + "---|"]
    for r in report["rows"]:
        cells = [mark.get(r["cells"][t], r["cells"][t]) if t in r["cells"] else "" for t in tests]
        lines.append(f"| `{r['mutant']}` | {r['mistake']} | " + " | ".join(cells) + f" | {r['duration_s']} |")
    lines += ["", "Tests:", ""] + [f"- {cols[t]}: `{t}`" for t in tests]
    return "\n".join(lines) + "\n"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """The matrix of test_mutants.py: mutant x test, which tests caught which mutant; also written to files."""
    rows = getattr(config, "_raftkv_mutants", None)
    if not rows:
        return
    report = mutant_matrix(rows)
    tr = terminalreporter
    tr.section("raftkv mutants")
    width = max(len(r["mutant"]) for r in rows)
    for r in report["rows"]:
        tr.write(f"{r['mutant']:<{width}}  ")
        if r["caught_by"]:
            tr.write("CAUGHT  ", green=True)
            tr.write_line("by " + ", ".join(r["caught_by"]))
        else:
            tr.write("SURVIVED", red=True)
            tr.write_line("  " + "; ".join(r["not_by"]))
    tr.write_line("")
    tests = report["tests"]
    tr.write_line("matrix (X caught, . ran and did not catch, blank not run):")
    for i, t in enumerate(tests):
        tr.write_line(f"  T{i + 1:<3} {t}")
    tr.write_line(f"{'':<{width}}  " + " ".join(f"T{i + 1:<3}" for i in range(len(tests))))
    for r in report["rows"]:
        cells = ["X" if r["cells"].get(t) == "caught" else ("." if t in r["cells"] else " ") for t in tests]
        tr.write_line(f"{r['mutant']:<{width}}  " + " ".join(f"{c:<4}" for c in cells))
    tr.write_line(f"{report['caught']} of {report['mutants']} mutants caught ({report['mode']}, seed {report['seed']})")
    path = os.path.abspath(config.getoption("mutants_report"))
    table = os.path.splitext(path)[0] + ".md"
    try:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
            f.write("\n")
        with open(table, "w", encoding="utf-8") as f:
            f.write(matrix_markdown(report))
        tr.write_line(f"mutant matrix: {path} and {table}")
    except OSError as e:
        tr.write_line(f"mutant matrix not written: {e}", red=True)
