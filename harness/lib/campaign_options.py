"""pytest plugin: options and markers of the fault campaigns and the mutant test.

Registered by harness/conftest.py (`pytest_plugins`).

  --soak SECONDS      also run test_linearizability.py::test_soak, a campaign this long
                      (skipped unless given)
  --reports-dir DIR   where evidence of a linearizability failure is kept (history,
                      HTML timeline, lincheck's explanation); default harness-reports/
  markers: mutants (the mutant test: builds and runs the mutant nodes, a few minutes;
           deselect with -m "not mutants")
"""

from __future__ import annotations

import os

import pytest


def pytest_addoption(parser):
    g = parser.getgroup("raftkv", "Raft key-value store harness")
    g.addoption("--soak", type=float, metavar="SECONDS", default=None,
                help="run the soak campaign (test_linearizability.py::test_soak) for this long")
    g.addoption("--reports-dir", metavar="DIR", default="harness-reports",
                help="where a failed linearizability check keeps its history, HTML timeline and "
                     "explanation (default: harness-reports/ in the current directory)")


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


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """The mutant table of test_mutants.py: mutant -> the test(s) that caught it."""
    rows = getattr(config, "_raftkv_mutants", None)
    if not rows:
        return
    tr = terminalreporter
    tr.section("raftkv mutants")
    width = max(len(r[0]) for r in rows)
    for name, caught, other in sorted(rows):
        if caught:
            tr.write(f"{name:<{width}}  ")
            tr.write("CAUGHT  ", green=True)
            tr.write_line("by " + ", ".join(caught))
        else:
            tr.write(f"{name:<{width}}  ")
            tr.write("SURVIVED", red=True)
            tr.write_line("  " + "; ".join(other))
    tr.write_line(f"{sum(1 for r in rows if r[1])} of {len(rows)} mutants caught")
