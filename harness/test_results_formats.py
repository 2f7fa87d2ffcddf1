"""The results files and the HTML report, checked against their documented formats.

A child pytest runs a small suite of made-up tests through the grading
plugin (one passes, one fails, one errors in setup, one in teardown, one is
skipped, one is a harness self-test, one attaches a file as D's message
diagram will), and every file it writes must validate; then the
validators must reject broken documents, and --repeat's merge must score by
its policy. These test the harness itself: marked harness_self_test, they
never count toward a node's score.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from .conftest import REPO
from .lib import report_html, results_formats
from .lib.run_model import merge_runs

pytestmark = pytest.mark.harness_self_test

FAKE_SUITE = '''
import pytest

@pytest.fixture
def broken_setup():
    raise RuntimeError("the node never started")

@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("teardown failed")

@pytest.mark.points(3)
def test_passes(request):
    """Always passes."""
    request.node.user_properties.append(("metric:datagrams_per_write", 4.5))

@pytest.mark.points(2)
def test_fails(request, tmp_path):
    """Checks something and fails, attaching a diagram."""
    diagram = tmp_path / "diagram.html"
    diagram.write_text("<html><body>fake message diagram</body></html>")
    request.node.user_properties.append(("artifact:message_diagram", str(diagram)))
    assert 1 == 2, "one is not two"

def test_setup_error(broken_setup):
    pass

def test_teardown_error(broken_teardown):
    pass

def test_skipped():
    pytest.skip("not for this node")

@pytest.mark.harness_self_test
def test_self():
    pass
'''


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("fake-suite")
    (d / "test_fake.py").write_text(textwrap.dedent(FAKE_SUITE))
    (d / "conftest.py").write_text(f"import sys\nsys.path.insert(0, {str(REPO)!r})\n"
                                   "pytest_plugins = ['harness.lib.grading']\n")
    out = {name: str(d / name) for name in ("report.json", "gs.json", "pl.json", "junit.xml")}
    proc = subprocess.run([sys.executable, "-m", "pytest", str(d / "test_fake.py"), "-p", "no:cacheprovider",
                           "--rootdir", str(d), "-q", "--report", out["report.json"], "--gradescope", out["gs.json"],
                           "--prairielearn", out["pl.json"], "--junitxml", out["junit.xml"]],
                          cwd=d, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    docs = {}
    for name in ("report.json", "gs.json", "pl.json"):
        with open(out[name], encoding="utf-8") as f:
            docs[name] = json.load(f)
    return d, out, docs, proc.stdout


def test_every_results_file_validates(fake_run):
    _, out, docs, output = fake_run
    assert results_formats.validate_harness_report(docs["report.json"]) == [], output
    assert results_formats.validate_gradescope(docs["gs.json"]) == []
    assert results_formats.validate_prairielearn(docs["pl.json"]) == []
    assert results_formats.check_junit(out["junit.xml"]) == []


def test_setup_and_teardown_errors_score_zero_and_self_tests_never_count(fake_run):
    _, _, docs, output = fake_run
    report = docs["report.json"]
    by_name = {t["nodeid"].split("::")[1]: t for t in report["tests"]}
    assert set(by_name) == {"test_passes", "test_fails", "test_setup_error", "test_teardown_error",
                            "test_skipped", "test_self"}, output
    assert by_name["test_setup_error"]["outcome"] == "failed" and by_name["test_setup_error"]["failed_in"] == "setup"
    assert by_name["test_teardown_error"]["outcome"] == "failed"
    assert by_name["test_teardown_error"]["failed_in"] == "teardown"
    assert by_name["test_self"]["self_test"] and not by_name["test_self"]["counted"]
    assert (report["score"], report["max_score"]) == (3, 3 + 2 + 1 + 1)
    gs_names = {t["name"].split("::")[1] for t in docs["gs.json"]["tests"]}
    assert "test_self" not in gs_names and "test_setup_error" in gs_names
    assert docs["gs.json"]["score"] == 3
    assert docs["pl.json"]["score"] == round(3 / 7, 4)
    assert by_name["test_passes"]["metrics"] == {"datagrams_per_write": 4.5}
    assert by_name["test_fails"]["doc"].startswith("Checks something")
    assert "one is not two" in by_name["test_fails"]["message"]


def test_junit_carries_points(fake_run):
    _, out, _, _ = fake_run
    text = open(out["junit.xml"], encoding="utf-8").read()
    assert '<property name="points" value="3"' in text and '<property name="points" value="2"' in text


def test_html_report_shows_attached_files(fake_run, tmp_path):
    """An attached message diagram (as engineer D's tests will attach) is copied and linked."""
    _, _, docs, _ = fake_run
    index = report_html.write_report(docs["report.json"], str(tmp_path / "report"))
    page = open(index, encoding="utf-8").read()
    assert "one is not two" in page and "Checks something and fails" in page
    assert "message diagram" in page and "open the message diagram" in page
    copied = list((tmp_path / "report" / "artifacts").rglob("*diagram.html"))
    assert len(copied) == 1 and "fake message diagram" in copied[0].read_text()
    rel = copied[0].relative_to(tmp_path / "report").as_posix()
    assert f"href='{rel}'" in page
    assert "<script" not in page and "http://" not in page and "https://" not in page


def test_validators_reject_broken_documents(fake_run):
    _, _, docs, _ = fake_run
    gs = json.loads(json.dumps(docs["gs.json"]))
    gs["tests"][0]["score"] = gs["tests"][0]["max_score"] + 1
    gs["tests"][1]["visibility"] = "everyone"
    del gs["tests"][2]["name"]
    problems = results_formats.validate_gradescope(gs)
    assert len(problems) >= 3, problems
    pl = dict(docs["pl.json"], score=1.5)
    assert results_formats.validate_prairielearn(pl)
    report = json.loads(json.dumps(docs["report.json"]))
    report["score"] += 1
    assert results_formats.validate_harness_report(report)
    assert results_formats.validate_gradescope([]) and results_formats.validate_prairielearn({"tests": []})


def _model(outcomes: list[str], seed: int) -> dict:
    tests = [{"nodeid": f"t.py::test_{i}", "outcome": o, "points": 2, "earned": 2 if o == "passed" else 0,
              "counted": o != "skipped", "self_test": False, "duration_s": 1.0, "seed": seed, "message": None,
              "reproduce": f"pytest t.py::test_{i} --seed {seed}", "artifacts": [], "metrics": {"x": seed},
              "runs": [{"seed": seed, "outcome": o}]} for i, o in enumerate(outcomes)]
    return {"score": sum(t["earned"] for t in tests), "max_score": 4, "passed": 0, "failed": 0, "skipped": 0,
            "seed": seed, "tests": tests, "duration_s": 2.0}


def test_repeat_scores_by_policy():
    runs = [_model(["passed", "passed"], 1), _model(["passed", "failed"], 2), _model(["passed", "passed"], 3),
            _model(["passed", "passed"], 4)]
    strict = merge_runs(runs, "all")
    assert strict["tests"][0]["pass_rate"] == 1.0 and strict["tests"][1]["pass_rate"] == 0.75
    assert (strict["score"], strict["max_score"], strict["runs"]) == (2, 4, 4)
    assert strict["tests"][1]["outcome"] == "failed" and strict["tests"][1]["seed"] == 2  # the failing run's seed
    assert strict["tests"][0]["metrics"] == {"x": 4}  # the worst figure over the runs
    assert merge_runs(runs, "fraction")["score"] == 3.5
    assert results_formats.validate_gradescope(results_formats.to_gradescope(strict)) == []
    with pytest.raises(ValueError):
        merge_runs(runs, "best")
