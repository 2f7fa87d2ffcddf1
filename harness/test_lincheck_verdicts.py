"""How the harness reads lincheck's verdicts (harness/lib/linearizability.py), without a cluster.

An empty history must FAIL a test (a recorder that wrote nothing would
otherwise pass), and an ordinary one-operation history must pass.
"""

from __future__ import annotations

import pytest

from .lib.linearizability import assert_linearizable, check_history, find_lincheck

SET_LINE = ('{"id":1,"client":"c","op":"set","key":"x","value":"a","invoke_us":0,'
            '"complete_us":10,"outcome":"ok"}\n')


@pytest.fixture
def need_lincheck():
    if find_lincheck() is None:
        pytest.fail("lincheck not found: build it (make) or set RAFTKV_LINCHECK", pytrace=False)


def test_empty_history_is_its_own_verdict_and_fails(tmp_path, need_lincheck):
    history = tmp_path / "history.jsonl"
    history.write_text("")
    v = check_history(str(history), budget_s=5)
    assert v.verdict == "empty"
    assert v.details.get("empty") is True
    with pytest.raises(AssertionError, match="EMPTY"):
        assert_linearizable(str(history), reports_dir=str(tmp_path / "reports"), name="empty", budget_s=5)
    assert (tmp_path / "reports" / "empty" / "lincheck.txt").exists()


def test_one_operation_passes(tmp_path, need_lincheck):
    history = tmp_path / "history.jsonl"
    history.write_text(SET_LINE)
    v = assert_linearizable(str(history), reports_dir=str(tmp_path / "reports"), name="one", budget_s=5)
    assert v.verdict == "ok" and v.details.get("empty") is False


def test_bad_input_is_an_error_not_a_pass(tmp_path, need_lincheck):
    history = tmp_path / "history.jsonl"
    history.write_text(SET_LINE.replace('"complete_us":10', '"complete_us":10,"complete_us":20'))
    v = check_history(str(history), budget_s=5)
    assert v.verdict == "error"
    assert "more than once" in v.text
    assert check_history(str(tmp_path), budget_s=5).verdict == "error"  # a directory
