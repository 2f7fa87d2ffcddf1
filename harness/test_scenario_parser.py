"""The scenario format (harness/lib/scenario.py, docs/faults.md): parser, runner logic, CLI.

None of these tests needs a binary: the parser is pure, the runner is driven
against a fake cluster, and the command line is only asked to check files.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from .lib.client import OK, Result
from .lib.scenario import (DOWN, UP, Link, Runner, ScenarioError, Step, parse, parse_file, parse_time)

# Tests of the harness's own code: they run in `make test` but never count toward a node's score.
pytestmark = pytest.mark.harness_self_test

REPO = Path(__file__).resolve().parent.parent


def S(t, line, action, **kw):
    return Step(time=t, line=line, action=action, **kw)


# -- good files -----------------------------------------------------------------------------------

EXAMPLE = """\
# Leader crash and recovery
nodes 5
at 0s    write-load 4          # background clients writing (optional)
at 2s    kill leader
at 4s    partition n1,n2 | n3,n4,n5
at 5s    loss 0.2 n1->*

at 6s    delay 30ms jitter 20ms *->*
at 7s    duplicate 0.1 client->*
at 8s    heal
at 9s    restart all
at 12s   expect leader within 3s
at 12s   expect converged within 5s
"""


def test_the_example_parses_to_its_steps():
    sc = parse(EXAMPLE, "example.scenario")
    assert sc.title == "Leader crash and recovery"
    assert sc.nodes == 5 and sc.ids == ["n1", "n2", "n3", "n4", "n5"]
    assert sc.name == "example"
    assert sc.steps == [
        S(0.0, 3, "write-load", value=4),
        S(2.0, 4, "kill", targets=("leader",)),
        S(4.0, 5, "partition", groups=(("n1", "n2"), ("n3", "n4", "n5"))),
        S(5.0, 6, "loss", value=0.2, link=Link("n1", "*")),
        S(6.0, 8, "delay", value=30.0, jitter=20.0, link=Link("*", "*")),
        S(7.0, 9, "duplicate", value=0.1, link=Link("client", "*")),
        S(8.0, 10, "heal"),
        S(9.0, 11, "restart", targets=("all",)),
        S(12.0, 12, "expect-leader", within=3.0),
        S(12.0, 13, "expect-converged", within=5.0),
    ]
    assert sc.expectations == 2
    assert sc.duration == 12.0
    assert sc.steps[1].text == "kill leader"
    assert [s.is_expectation for s in sc.steps[-2:]] == [True, True]


def test_every_action_and_its_options():
    sc = parse("""\
nodes 3
at 500ms  stop n1,n2
at .5s    pause random
at 1.5s   resume follower
at 2s     start n1
at 2s     isolate leader
at 2s     partition leader, follower | rest | n3      # spaces after commas; n3 in two groups: a bridge
at 2s     block n1 -> n2
at 2s     unblock n1->n2
at 2s     loss 25% leader->client
at 2s     delay 1s random->*
at 2s     clear leader->client
at 2s     reset
at 2s     write-load 0
at 2s     expect writes-ok
at 2s     expect progress within 1.5s
at 2s     expect leader
at 2s     expect one-leader-per-term
at 3s     end
""")
    assert sc.title == ""
    assert sc.steps == [
        S(0.5, 2, "stop", targets=("n1", "n2")),
        S(0.5, 3, "pause", targets=("random",)),
        S(1.5, 4, "resume", targets=("follower",)),
        S(2.0, 5, "start", targets=("n1",)),
        S(2.0, 6, "isolate", targets=("leader",)),
        S(2.0, 7, "partition", groups=(("leader", "follower"), ("rest",), ("n3",))),
        S(2.0, 8, "block", link=Link("n1", "n2")),
        S(2.0, 9, "unblock", link=Link("n1", "n2")),
        S(2.0, 10, "loss", value=0.25, link=Link("leader", "client")),
        S(2.0, 11, "delay", value=1000.0, jitter=0.0, link=Link("random", "*")),
        S(2.0, 12, "clear", link=Link("leader", "client")),
        S(2.0, 13, "reset"),
        S(2.0, 14, "write-load", value=0),
        S(2.0, 15, "expect-writes-ok", within=5.0),
        S(2.0, 16, "expect-progress", within=1.5),
        S(2.0, 17, "expect-leader", within=5.0),
        S(2.0, 18, "expect-one-leader-per-term"),
        S(3.0, 19, "end"),
    ]


def test_defaults_bare_end_and_comments():
    sc = parse("# title line\n# more comment\n\n  at 1s kill n5 # trailing\nend\n", "x")
    assert sc.nodes == 5 and sc.title == "title line"
    assert sc.steps == [S(1.0, 4, "kill", targets=("n5",)), S(1.0, 5, "end")]


@pytest.mark.parametrize("token,seconds", [("2s", 2.0), ("500ms", 0.5), ("1.5s", 1.5), ("0s", 0.0),
                                           (".25s", 0.25), ("12ms", 0.012)])
def test_times(token, seconds):
    assert parse_time(token) == pytest.approx(seconds)


def test_shipped_scenarios_parse():
    files = sorted((REPO / "faults").glob("*.scenario"))
    assert files, "no faults/*.scenario files"
    for f in files:
        sc = parse_file(str(f))
        assert sc.title, f"{f.name}: the first comment line should say what it is about"
        assert sc.expectations > 0, f"{f.name}: a scenario without expectations checks nothing"


# -- bad files: each error names file:line and what was expected ---------------------------------------

BAD = [
    ("at 2 kill leader", 1, "expected a time such as 2s"),
    ("at 2s kill n9", 1, "unknown node 'n9' (this scenario has nodes n1..n5"),
    ("nodes 3\nat 1s partition n1 | n4", 2, "unknown node 'n4' (this scenario has nodes n1..n3"),
    ("at 1s block client->n7", 1, "unknown node 'n7'"),
    ("at 2s explode n1", 1, "unknown action 'explode' (expected one of: kill, stop"),
    ("at 3s kill n1\n# comment\nat 2s heal", 3, "before the time of line 1 (3s): steps must be in time order"),
    ("nodes 0", 1, "expected 'nodes N' with N from 1 to 64"),
    ("nodes 65", 1, "expected 'nodes N' with N from 1 to 64"),
    ("nodes five", 1, "expected 'nodes N'"),
    ("nodes 3\nnodes 3", 2, "'nodes' given twice (first on line 1)"),
    ("at 1s heal\nnodes 3", 2, "'nodes N' must come before the first step"),
    ("at 1s loss 1.5 n1->n2", 1, "the probability must be in [0,1]"),
    ("at 1s loss much n1->n2", 1, "expected a probability such as 0.2 or 20%"),
    ("at 1s loss 0.2 n1-n2", 1, "expected a link A->B"),
    ("at 1s loss 0.2", 1, "expected 'loss P A->B'"),
    ("at 1s duplicate 0.1 n1->n2->n3", 1, "expected a link A->B"),
    ("at 1s delay 70s *->*", 1, "at most 60000ms"),
    ("at 1s delay 10 *->*", 1, "delay: expected a time such as 30ms"),
    ("at 1s delay 10ms jitter *->*", 1, "expected 'delay D jitter J A->B'"),
    ("at 1s delay 10ms jitter 5 *->*", 1, "jitter: expected a time"),
    ("at 1s partition n1,n2 |", 1, "group 2 is empty"),
    ("at 1s partition", 1, "partition: expected groups such as n1,n2 | n3,n4,n5"),
    ("at 1s partition n1,n1 | n2", 1, "a node is named twice in group 1"),
    ("at 1s partition rest | rest", 1, "'rest' may appear only once"),
    ("at 1s partition all | n1", 1, "unknown node 'all'"),
    ("at 1s heal now", 1, "heal takes no arguments"),
    ("at 1s write-load -1", 1, "write-load: expected a number of writer clients"),
    ("at 1s write-load 100", 1, "at most 64 writers"),
    ("at 1s expect sunshine", 1, "expect: expected one of leader, converged"),
    ("at 1s expect leader in 3s", 1, "expected 'within T'"),
    ("at 1s expect leader within 0s", 1, "'within' must be more than 0"),
    ("at 1s expect leader within 3", 1, "expected a time"),
    ("at 1s expect one-leader-per-term within 2s", 1, "takes no arguments"),
    ("kill leader", 1, "expected 'nodes N', 'at TIME ACTION ...' or 'end', got 'kill'"),
    ("at 1s end\nat 2s heal", 2, "nothing may follow 'end' (line 1)"),
    ("at 1s", 1, "expected 'at TIME ACTION ...'"),
    ("at 1s kill", 1, "kill: expected one target"),
    ("at 1s kill n1 n2", 1, "kill: expected one target"),
    ("at 1s kill n1,,n2", 1, "empty name"),
    ("at 1s restart n1,n1", 1, "a node is named twice"),
    ("at 1s isolate n1,n2", 1, "unknown node 'n1,n2'"),
    ("at 1s isolate", 1, "isolate: expected one node"),
    ("at 1s end now", 1, "end takes no arguments"),
    ("end now", 1, "expected 'end' or 'at TIME end'"),
]


@pytest.mark.parametrize("text,line,message", BAD, ids=[b[0].replace("\n", "/") for b in BAD])
def test_bad_lines_name_file_line_and_what_was_expected(text, line, message):
    with pytest.raises(ScenarioError) as info:
        parse(text, "faults/bad.scenario")
    e = info.value
    assert (e.path, e.line) == ("faults/bad.scenario", line)
    assert str(e).startswith(f"faults/bad.scenario:{line}: ")
    assert message in str(e)


def test_empty_file_and_missing_file(tmp_path):
    with pytest.raises(ScenarioError, match=r"^empty\.scenario: no steps"):
        parse("# only a comment\nnodes 3\n", "empty.scenario")
    missing = tmp_path / "nope.scenario"
    with pytest.raises(ScenarioError, match="cannot read"):
        parse_file(str(missing))


# -- the runner, against a fake cluster --------------------------------------------------------------


class FakeTarget:
    """Nodes that answer status as told; crashing the leader elects the next node up."""

    def __init__(self, n=5, leader="n2"):
        self.ids = [f"n{i}" for i in range(1, n + 1)]
        self.majority = n // 2 + 1
        self.resolve_timeout = 0.2
        self.states = {x: UP for x in self.ids}
        self.leader = leader
        self.term = 1
        self.calls = []
        self.elect = True

    def state(self, n):
        return self.states[n]

    def _down(self, nodes):
        for n in nodes:
            self.states[n] = DOWN
        if self.leader in nodes:
            up = [x for x in self.ids if self.states[x] == UP]
            self.leader = up[0] if up and self.elect else None
            self.term += 1

    def kill(self, nodes):
        self.calls.append(("kill", list(nodes)))
        self._down(nodes)

    def stop(self, nodes):
        self.calls.append(("stop", list(nodes)))
        self._down(nodes)

    def pause(self, nodes):
        self.calls.append(("pause", list(nodes)))
        for n in nodes:
            self.states[n] = "paused"

    def resume(self, nodes):
        self.calls.append(("resume", list(nodes)))
        for n in nodes:
            self.states[n] = UP

    def start(self, nodes):
        self.calls.append(("start", list(nodes)))
        for n in nodes:
            self.states[n] = UP
        if self.leader is None and self.elect:
            self.leader = [x for x in self.ids if self.states[x] == UP][0]

    def statuses(self, nodes, timeout=0.2):
        return {n: {"role": "leader" if n == self.leader else "follower", "term": self.term,
                    "leader": self.leader, "commit_index": 7, "last_applied": 7} for n in nodes}

    def proxy(self, description, cmd, **fields):
        self.calls.append((cmd, fields))
        return {"ok": True, "removed": True}

    def client(self, **kw):
        raise AssertionError("no client expected in this test")

    def observed(self):
        return []

    def note(self, text):
        pass


def run_fake(text, target=None, seed=1):
    target = target or FakeTarget()
    import random
    outcome = Runner(parse(text, "t.scenario"), target, rng=random.Random(seed)).run()
    return outcome, target


def test_runner_resolves_names_and_merges_rules():
    outcome, t = run_fake("""\
at 0s kill leader
at 0s expect leader within 1s
at 0s partition leader,follower | rest
at 0s isolate n5
at 0s loss 0.2 leader->*
at 0s delay 5ms jitter 1ms leader->*
at 0s block client->leader
at 0s heal
at 0s reset
at 0s duplicate 0.1 n1->n3
at 0s restart all
at 0s expect converged within 1s
""")
    assert outcome.passed, outcome.text
    assert outcome.expectations == outcome.expectations_passed == 2
    calls = t.calls
    assert calls[0] == ("kill", ["n2"])              # the leader was n2; the fake elects n1
    cmd, fields = calls[1]
    assert cmd == "partition" and fields["groups"][0][0] == "n1" and len(fields["groups"][0]) == 2
    assert sorted(fields["groups"][0] + fields["groups"][1]) == ["n1", "n2", "n3", "n4", "n5"]
    assert calls[2] == ("partition", {"groups": [["n5"], ["n1", "n2", "n3", "n4"]]})
    assert calls[3] == ("set", {"from": "n1", "to": "*", "drop": 0.2, "delay_ms": 0.0, "jitter_ms": 0.0,
                                "duplicate": 0.0})
    assert calls[4] == ("set", {"from": "n1", "to": "*", "drop": 0.2, "delay_ms": 5.0, "jitter_ms": 1.0,
                                "duplicate": 0.0})   # rules on one pair combine
    assert calls[5] == ("block", {"from": "client", "to": "n1"})
    assert calls[6] == ("heal", {}) and calls[7] == ("reset", {})
    assert calls[8] == ("set", {"from": "n1", "to": "n3", "drop": 0.0, "delay_ms": 0.0, "jitter_ms": 0.0,
                                "duplicate": 0.1})
    assert calls[9] == ("kill", ["n1", "n3", "n4", "n5"])   # n2 was down already: only started
    assert calls[10] == ("start", ["n1", "n2", "n3", "n4", "n5"])
    assert any(line.startswith("t=0.00s   kill leader  (n2)") for line in outcome.lines), outcome.text


def test_runner_reports_failed_expectations_and_impossible_steps():
    t = FakeTarget(n=3)
    t.elect = False
    outcome, t = run_fake("""\
at 0s kill leader
at 0s expect leader within 0.2s
at 0s kill leader
at 0s expect writes-ok
at 0s expect progress within 0.1s
""", t)
    assert not outcome.passed
    assert outcome.expectations == 3 and outcome.expectations_passed == 0
    assert [f.split(":")[0] for f in outcome.failures] == ["line 2", "line 3", "line 4", "line 5"]
    assert "no leader followed by a majority within 0.2s" in outcome.failures[0]
    assert "could not be done: no leader to name" in outcome.failures[1]
    assert "no write-load ran before this step" in outcome.failures[2]
    assert "no write-load is running" in outcome.failures[3]
    assert outcome.lines[-1].startswith("  line 5")
    assert any(line.startswith("FAIL: 0 of 3 expectations passed") for line in outcome.lines)


def test_runner_skips_what_does_not_apply_and_random_is_seeded():
    text = "at 0s pause random\nat 0s resume n1,n2,n3,n4,n5\nat 0s start n1\n"
    first, t1 = run_fake(text, seed=7)
    second, t2 = run_fake(text, seed=7)
    assert first.passed and t1.calls == t2.calls
    paused = t1.calls[0][1]
    assert t1.calls[0][0] == "pause" and len(paused) == 1
    assert t1.calls[1] == ("resume", paused)           # only the paused one is resumed
    assert all(c[0] != "start" for c in t1.calls)       # n1 is running already
    assert any("already running" in line for line in first.lines)


class FakeStore:
    """A key-value store for FakeClient; `forgetful` loses every key's latest write after a while."""

    def __init__(self, forgetful=False):
        self.values = {}
        self.previous = {}
        self.forgetful = forgetful
        self.lock = threading.Lock()


class FakeClient:
    """Just enough of harness/lib/client.Client for the write-load and writes-ok."""

    def __init__(self, store, history, n):
        self.store, self.history = store, history
        self.client_id, self.seq, self.reply_mismatches = f"fake{n}", 0, []

    def _do(self, op, key, value=None, **kw):
        self.seq += 1
        invoked = time.monotonic()
        with self.store.lock:
            if op == "set":
                self.store.previous[key] = self.store.values.get(key)
                self.store.values[key] = value
                result_value = value
            else:
                result_value = self.store.values.get(key)
                if self.store.forgetful and op == "get" and kw.get("final"):
                    result_value = self.store.previous.get(key)
        time.sleep(0.001)
        result = Result(OK, op, key, self.seq, value=result_value, node="n1", invoked=invoked,
                        completed=time.monotonic())
        if self.history is not None:
            msg = {"seq": self.seq, "op": op, "key": key}
            if value is not None:
                msg["value"] = value
            self.history.record(self.client_id, msg, result)
        return result

    def set(self, key, value, **kw):
        return self._do("set", key, value)

    def get(self, key, deadline=None, **kw):
        # The final read-back of writes-ok passes a deadline; the load's reads do not.
        return self._do("get", key, final=deadline is not None)

    def close(self):
        pass


class StoreTarget(FakeTarget):
    def __init__(self, forgetful=False):
        super().__init__()
        self.store = FakeStore(forgetful)
        self.clients = 0

    def client(self, history=None, deadline=None, **kw):
        self.clients += 1
        return FakeClient(self.store, history, self.clients)


def test_writes_ok_reads_every_key_back_and_checks_the_history():
    text = "at 0s write-load 3\nat 0.3s expect converged within 1s\nat 0.5s expect progress within 1s\n" \
           "at 0.6s expect writes-ok\n"
    outcome, t = run_fake(text, StoreTarget())
    assert outcome.passed, outcome.text
    assert t.clients == 4                     # 3 writers, 1 for the read-back
    line = next(x for x in outcome.lines if "expect writes-ok: PASS" in x)
    assert "keys read back" in line and "(writers held meanwhile)" in outcome.text

    outcome, t = run_fake(text, StoreTarget(forgetful=True))
    assert not outcome.passed
    assert "returned a value that no correct store could return" in outcome.failures[0], outcome.text


# -- the command line -------------------------------------------------------------------------------


def run_cli(*args):
    return subprocess.run([sys.executable, str(REPO / "harness" / "run_scenario.py"), *args],
                          capture_output=True, text=True, timeout=60)


def test_cli_check_accepts_the_shipped_scenarios():
    files = [str(p) for p in sorted((REPO / "faults").glob("*.scenario"))]
    r = run_cli("--check", *files)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count(": ok (") == len(files)


def test_cli_bad_file_exits_2_naming_file_and_line(tmp_path):
    bad = tmp_path / "bad.scenario"
    bad.write_text("nodes 3\nat 1s kill n4\n")
    r = run_cli(str(bad), "--node-bin", "/nonexistent/node")
    assert r.returncode == 2
    assert f"{bad}:2: unknown node 'n4'" in r.stderr


def test_cli_missing_binary_exits_2(tmp_path):
    ok = tmp_path / "ok.scenario"
    ok.write_text("at 1s heal\n")
    r = run_cli(str(ok), "--node-bin", str(tmp_path / "no-such-node"))
    assert r.returncode == 2 and "missing or not executable" in r.stderr
