"""Proof that the harness catches bugs: each mutant of the reference node must fail it.

A mutant (mutants/*.mutant, built as build/mutants/node-NAME by the CMake
target `mutants`) is the reference node with one classic Raft mistake. For
each one this test runs, in a child pytest against that binary:

- a smoke test, which must PASS: the mutant starts, elects a leader and
  serves requests, so a failure below is not just a broken build;
- the tests chosen to catch it (CATCHERS), of which at least one must FAIL
  with the assertion that describes the wrong behaviour (a pattern of its
  failure message). A failure with any other message does not count.

`--mutants fast` (the default, what `make test` runs) tries each mutant's
first catcher only: its quickest deterministic one. `--mutants full` runs
every catcher of every mutant. `--mutants matrix` runs every mutant against
every test that is a catcher of any mutant (a test catches when it fails
with an assertion it is listed with), so the matrix shows all the tests
that catch each bug, chosen or not. The catching tests run with this run's seed, so `--seed` replays
them. The end of the run prints the matrix mutant x test and writes it to
`--mutants-report` (JSON, default mutants-report.json) and a readable
table beside it (.md). Reproduce one by hand:

    pytest 'harness/test_safety_scripts.py::test_stale_node_is_not_elected' \
        --node-bin build/mutants/node-no_election_restriction --seed S

Marked `mutants` (deselect with -m "not mutants") and `reference` (it tests
the harness, with mutants of the reference node: skipped when grading
another implementation).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / "build"
MUTANT_FILES = sorted((REPO / "mutants").glob("*.mutant"))

# Passes against every mutant: start, elect, answer or redirect, write through the leader.
SMOKE = ["harness/test_client.py::test_every_node_answers_or_redirects"]

LINEARIZABILITY_3 = "harness/test_linearizability.py::test_random_faults_linearizable[3]"

# mutant -> [(test that should catch it, pattern its failure message must match)]. The first
# entry is the mutant's quickest deterministic catcher: the only one the default
# (`--mutants fast`) run tries; `--mutants full` runs them all and fills the matrix.
CATCHERS = {
    "ack_before_commit": [
        ("harness/test_partition.py::test_minority_leader_cannot_commit", r"was acknowledged but must not be"),
        (LINEARIZABILITY_3, r"NOT linearizable"),
    ],
    "apply_before_commit": [
        ("harness/test_partition.py::test_minority_leader_cannot_commit", r"was acknowledged but must not be"),
        (LINEARIZABILITY_3, r"NOT linearizable|saw a value that no correct store could return"),
    ],
    "commit_index_backwards": [
        ("harness/test_replication.py::test_commit_index_never_decreases", r"commit_index went backwards"),
    ],
    "heartbeat_commits_past_match": [
        ("harness/test_partition.py::test_deposed_leader_applies_no_entry_it_does_not_share",
         r"applied entries it never shared with the leader"),
    ],
    "leader_local_reads": [
        ("harness/test_leader_failure.py::test_paused_leader_serves_no_stale_read",
         r"stale read from the paused old leader"),
        ("harness/test_partition.py::test_stale_leader_serves_no_linearizable_reads", r"stale read from the old leader"),
    ],
    "leader_never_steps_down": [
        ("harness/test_partition.py::test_leader_that_hears_nobody_is_replaced",
         r"a leader that hears from no majority must step down"),
    ],
    "local_reads": [
        ("harness/test_partition.py::test_stale_leader_serves_no_linearizable_reads", r"stale read from the old leader"),
        ("harness/test_leader_failure.py::test_paused_leader_serves_no_stale_read",
         r"stale read from the paused old leader"),
        (LINEARIZABILITY_3, r"NOT linearizable"),
    ],
    "no_dedup": [
        ("harness/test_client.py::test_retried_seq_applies_once_with_identical_reply",
         r"applied again|retry answered|retried cas answered"),
        ("harness/test_client.py::test_exactly_once_with_duplicated_datagrams",
         r"applied twice|replies to the same seq differ"),
        (LINEARIZABILITY_3, r"NOT linearizable|replies to the same write seq differ"),
    ],
    "no_election_restriction": [
        ("harness/test_safety_scripts.py::test_stale_node_is_not_elected",
         r"was elected leader .* lacked acknowledged writes"),
    ],
    "figure8_commit": [
        ("harness/test_safety_scripts.py::test_figure8_old_term_entry_not_committed_by_counting",
         r"saw a value that no correct store could return"),
    ],
    "snapshot_without_sessions": [
        ("harness/test_snapshot.py::test_exactly_once_survives_snapshot_and_restart",
         r"the retry must not apply again|retried .* answered"),
    ],
    "snapshot_discards_suffix": [
        ("harness/test_snapshot.py::test_kill_all_nodes_while_snapshotting_loses_no_acked_write",
         r"saw a value that no correct store could return"),
    ],
    "stale_snapshot_rollback": [
        ("harness/test_snapshot.py::test_late_copy_of_an_old_snapshot_changes_nothing",
         r"own state \(local reads\) differs from the cluster's"),
    ],
    "unpersisted_log": [
        ("harness/test_persistence.py::test_restarted_node_recovers_its_own_log", r"recovered \d+ log entries"),
        ("harness/test_persistence.py::test_whole_cluster_crash_mid_stream",
         r"saw a value that no correct store could return|acknowledged write .* lost|NOT linearizable"),
    ],
    "unpersisted_vote": [
        ("harness/test_safety_scripts.py::test_vote_survives_crash", r"was not persisted"),
        ("harness/test_persistence.py::test_restarted_node_recovers_its_own_log", r"recovered vote"),
    ],
    "vote_twice_in_term": [
        ("harness/test_election.py::test_one_vote_per_term", r"voted twice in term"),
    ],
}

# A child run's time limit: start-up plus a generous bound per test (the conftest watchdog
# stops any one test after 90 s; the linearizability campaigns take up to ~40 s).
RUN_BASE_S = 60
RUN_PER_TEST_S = 100


def _binary(name: str) -> Path:
    return BUILD / "mutants" / f"node-{name}"


def describe(path: Path) -> str:
    """The mistake, in one line: the first sentence of the .mutant file's leading comment."""
    words = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.startswith("#"):
                break
            words.append(line[1:].strip())
    text = " ".join(words)
    end = text.find(". ")
    return text if end < 0 else text[:end + 1]


def chosen_catchers(name: str, mode: str) -> list:
    """The catchers to run: the first (quickest deterministic) one (fast), all of the mutant's own
    (full), or its own and then every other mutant's catching test (matrix). A test counts as
    catching when it fails with any assertion it is listed with, for this mutant or another."""
    own = CATCHERS.get(name, [])
    if mode == "fast":
        return own[:1]
    if mode == "full" or not own:
        return own
    patterns: dict = {}
    for catchers in CATCHERS.values():
        for test, pattern in catchers:
            patterns.setdefault(test, []).append(pattern)
    ordered = [t for t, _ in own] + sorted(t for t in patterns if t not in {t for t, _ in own})
    return [(t, "|".join(f"(?:{p})" for p in dict.fromkeys(patterns[t]))) for t in ordered]


@pytest.fixture
def mutant_binary(request):
    """build/mutants/node-NAME, built with `cmake --build build --target node-NAME` if missing."""
    name = request.param
    binary = _binary(name)
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        if not (BUILD / "CMakeCache.txt").is_file():
            pytest.skip(f"no build directory {BUILD} to build the mutant node-{name} in (run make first)")
        proc = subprocess.run(["cmake", "--build", str(BUILD), "--target", f"node-{name}"], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
        if proc.returncode != 0 or not binary.is_file():
            pytest.fail(f"building mutant node-{name} failed:\n{proc.stdout[-3000:]}", pytrace=False)
    return name, binary


def _extend_time_limit(seconds: float) -> None:
    """The conftest watchdog stops a test after 90 s; a child pytest run may take longer on a busy machine."""
    if threading.current_thread() is threading.main_thread():
        signal.setitimer(signal.ITIMER_REAL, seconds)


def _run_child(binary: Path, tests: list, settings, workdir: str, limit_s: float) -> tuple[dict, str]:
    report = os.path.join(workdir, "report.json")
    cmd = [sys.executable, "-m", "pytest", *tests, "--node-bin", str(binary), "--reference",
           "--proxy-bin", settings.proxy_bin,
           "--seed", str(settings.seed), "-q", "-p", "no:cacheprovider", "--report", report,
           "--reports-dir", os.path.join(workdir, "reports")]
    try:
        proc = subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=limit_s)
        output = proc.stdout
    except subprocess.TimeoutExpired as e:
        output = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        output += f"\n(child pytest killed after {limit_s:.0f} s)"
    try:
        with open(report, encoding="utf-8") as f:
            return json.load(f), output
    except (OSError, ValueError):
        return {}, output


@pytest.mark.mutants
@pytest.mark.reference
@pytest.mark.points(1)
@pytest.mark.parametrize("mutant_binary", [p.stem for p in MUTANT_FILES], indirect=True,
                         ids=[p.stem for p in MUTANT_FILES])
def test_mutant_is_caught(mutant_binary, settings, request):
    """The harness fails the mutant, by a named test whose assertion describes the mistake."""
    name, binary = mutant_binary
    mode = request.config.getoption("mutants_mode")
    catchers = chosen_catchers(name, mode)
    assert catchers, (f"no tests are chosen to catch mutant {name!r}: add an entry to CATCHERS in "
                      f"{os.path.relpath(__file__, REPO)}")
    tests = SMOKE + [t for t, _ in catchers]
    limit_s = RUN_BASE_S + RUN_PER_TEST_S * len(tests)
    _extend_time_limit(limit_s + 30)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"raftkv-mutant-{name}-") as workdir:
        report, output = _run_child(binary, tests, settings, workdir, limit_s)
    took_s = time.monotonic() - started
    results = {t["nodeid"]: t for t in report.get("tests", [])}
    tail = "\n".join(output.splitlines()[-40:])
    assert results, f"the run against mutant {name} produced no report; its output ends:\n{tail}"

    broken = [f"{n}: {results[n]['outcome'] if n in results else 'did not run'}"
              f"{' - ' + (results[n].get('message') or '')[:300] if n in results else ''}"
              for n in SMOKE if n not in results or results[n]["outcome"] != "passed"]
    assert not broken, (f"mutant {name} fails the smoke test, so a failure of the catching tests would prove "
                        f"nothing: {broken}")

    caught, other, cells = [], [], {}
    for nodeid, pattern in catchers:
        t = results.get(nodeid)
        short = nodeid.replace("harness/", "")
        if t is None:
            cells[short] = "did not run"
            other.append(f"{short}: did not run")
        elif t["outcome"] == "failed" and re.search(pattern, t.get("message") or "", re.S):
            cells[short] = "caught"
            caught.append(short)
        elif t["outcome"] == "failed":
            cells[short] = "failed otherwise"
            other.append(f"{short}: failed for another reason: {(t.get('message') or '')[:200]}")
        else:
            cells[short] = t["outcome"]
            other.append(f"{short}: {t['outcome']}")
    rows = getattr(request.config, "_raftkv_mutants", None)
    if rows is None:
        rows = request.config._raftkv_mutants = []
    rows.append({"mutant": name, "mistake": describe(REPO / "mutants" / f"{name}.mutant"), "mode": mode,
                 "seed": settings.seed, "duration_s": round(took_s, 1), "caught_by": caught, "not_by": other,
                 "own_catchers": [t.replace("harness/", "") for t, _ in CATCHERS[name]], "cells": cells})
    request.node.user_properties.append(("caught_by", ", ".join(caught) or "SURVIVED"))
    print(f"mutant {name}: caught by {', '.join(caught) or 'nothing'}; not by: {other}")
    assert caught, (f"mutant {name} SURVIVED: none of its catching tests failed with the expected assertion "
                    f"(seed {settings.seed}):\n  " + "\n  ".join(other) + f"\nchild output ends:\n{tail}")
