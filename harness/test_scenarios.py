"""Every fault scenario in faults/*.scenario, each against a fresh cluster behind the proxy.

A scenario (docs/faults.md) scripts crashes, pauses, partitions and a bad
network on a timeline, with expectations: a leader within some time, all
running nodes converged, every acknowledged write read back. The test fails
when an expectation fails (or a step cannot be done), and prints the whole
timeline: each step at the time it ran and the cluster's state after it.

Replay one: pytest 'harness/test_scenarios.py::test_scenario[leader_crash]' --seed N
or, outside pytest: python3 harness/run_scenario.py faults/leader_crash.scenario --seed N
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .lib.scenario import HarnessTarget, ScenarioError, parse, run

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = sorted((REPO / "faults").glob("*.scenario"))


@pytest.mark.slow
@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario(make_cluster, rng, path):
    """The scenario's expectations all hold (and each of its steps could be done)."""
    try:
        scenario = parse(path.read_text(encoding="utf-8"), os.path.relpath(path, REPO))
    except ScenarioError as e:
        pytest.fail(f"bad scenario file: {e}", pytrace=False)
    cluster = make_cluster(size=scenario.nodes)
    outcome = run(scenario, HarnessTarget(cluster), rng=rng)
    if not outcome.passed:
        pytest.fail(f"{scenario.path}: {scenario.title}\n{outcome.text}", pytrace=False)
