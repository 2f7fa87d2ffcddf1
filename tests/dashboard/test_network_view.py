"""What the page says the proxy does to a link must be what the proxy does
(docs/proxy.md "Faults"): the most specific rule as a whole, blocks with
`*`, partitions with isolated nodes and bridges; and the rates it shows."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tools.dashboard.network import RateMeter, link_view, rule_for  # noqa: E402


def rule(a, b, **kw):
    return dict({"from": a, "to": b, "drop": 0.0, "delay_ms": 0.0, "jitter_ms": 0.0, "duplicate": 0.0,
                 "blocked": False}, **kw)


def test_the_most_specific_rule_applies_whole():
    rules = [rule("*", "*", drop=0.5), rule("n1", "*", delay_ms=30.0), rule("*", "n2", duplicate=0.2),
             rule("n1", "n2", jitter_ms=5.0)]
    assert rule_for(rules, "n1", "n2")["jitter_ms"] == 5.0
    assert rule_for(rules, "n1", "n3")["delay_ms"] == 30.0
    assert rule_for(rules, "n3", "n2")["duplicate"] == 0.2
    assert rule_for(rules, "n3", "n4")["drop"] == 0.5
    view = link_view({"rules": rules}, "n1", "n2")
    assert view == {"cut": None, "loss": 0.0, "delay_ms": 0.0, "jitter_ms": 5.0, "duplicate": 0.0}, \
        "fields are never merged across rules"
    assert link_view({}, "n1", "n2") == {"cut": None, "loss": 0.0, "delay_ms": 0.0, "jitter_ms": 0.0,
                                         "duplicate": 0.0}


def test_partitions_isolate_and_bridge():
    state = {"partition": [["n1", "n2", "n3"], ["n3", "n4"]]}
    assert link_view(state, "n1", "n2")["cut"] is None
    assert link_view(state, "n3", "n4")["cut"] is None          # n3 is a bridge
    assert link_view(state, "n1", "n4")["cut"] == "partition"
    assert link_view(state, "n5", "n1")["cut"] == "partition"   # in no group: isolated
    assert link_view({"partition": []}, "n1", "n2")["cut"] == "partition"
    assert link_view({"partition": None}, "n1", "n2")["cut"] is None


def test_blocks_are_one_way_and_match_stars():
    state = {"blocks": [{"from": "n1", "to": "n2"}, {"from": "*", "to": "n5"}]}
    assert link_view(state, "n1", "n2")["cut"] == "block"
    assert link_view(state, "n2", "n1")["cut"] is None
    assert link_view(state, "n3", "n5")["cut"] == "block"
    assert link_view({"rules": [rule("n4", "n3", blocked=True)]}, "n4", "n3")["cut"] == "rule"


def test_rates_are_delivered_datagrams_per_second_over_the_window():
    m = RateMeter(window=10)
    assert m.update(0.0, {"n1>n2": {"forwarded": 100, "received": 150}}) == {"n1>n2": 0.0}
    for i in range(1, 11):
        rates = m.update(i * 0.1, {"n1>n2": {"forwarded": 100 + 20 * i, "received": 1000 * i}})
    assert abs(rates["n1>n2"] - 200.0) < 1e-6   # 200 forwarded in 1 s; received is not delivered
    rates = m.update(1.1, {"n1>n2": {"forwarded": 0}})  # counters reset: no negative rate
    assert rates["n1>n2"] == 0.0
