"""Message diagrams and ShiViz logs from the proxy's journal (harness/lib/diagram.py, journal.py).

The renderer is checked on synthetic journals (10,000 messages: it stays
bounded and readable, the window works), the ShiViz export is parsed back
with the regex docs/proxy.md documents, and a real proxy in front of a real
cluster is checked end to end, including what a failing test keeps.
"""

from __future__ import annotations

import json
import os
import random
import re
import time
from types import SimpleNamespace

import pytest

from .lib.diagram import MAX_ARROWS, render_diagram
from .lib.journal import SHIVIZ_REGEX, SHIVIZ_REGEX_PY, JournalError, load_journal, shiviz_events, write_shiviz
from .lib.message_artifacts import keep_message_artifacts

NODES = ["n1", "n2", "n3", "n4", "n5"]


class FakeProxy:
    """Writes a journal the way the proxy does (same record layout, same vector clock rules)."""

    def __init__(self, endpoints):
        self.endpoints = endpoints
        self.clock = {e: {} for e in endpoints}
        self.records = []
        self.msg = 0

    def _tick(self, e):
        self.clock[e][e] = self.clock[e].get(e, 0) + 1

    def send(self, t_us, src, dst, summary, fate="pass", delays=(0,), arrive_us=None, copies=1):
        self.msg += 1
        self._tick(src)
        sent_clock = dict(self.clock[src])
        rec = {"t_us": t_us, "ev": "send", "msg": self.msg, "from": src, "to": dst, "size": 100, "fate": fate,
               "sum": summary, "vc": sent_clock}
        if fate in ("pass", "dup"):
            rec["delay_us"] = list(delays)
        self.records.append(rec)
        deliveries = []
        if fate in ("pass", "dup"):
            for copy in range(copies):
                deliveries.append((arrive_us if arrive_us is not None else t_us + 100 + delays[copy], self.msg, copy,
                                   src, dst, sent_clock))
        return deliveries

    def deliver(self, t_us, msg, copy, src, dst, sent_clock):
        for k, v in sent_clock.items():
            self.clock[dst][k] = max(self.clock[dst].get(k, 0), v)
        self._tick(dst)
        self.records.append({"t_us": t_us, "ev": "deliver", "msg": msg, "from": src, "to": dst, "size": 100,
                             "copy": copy, "vc": dict(self.clock[dst])})

    def write(self, path, evicted=0):
        with open(path, "w") as f:
            f.write(json.dumps({"journal": 1, "endpoints": self.endpoints, "clock": "CLOCK_MONOTONIC us",
                                "records": len(self.records), "evicted": evicted, "capacity": 100000}) + "\n")
            for r in self.records:
                f.write(json.dumps(r) + "\n")


def synthetic(path, messages=10_000, seed=7):
    """A leader n1 heartbeating 4 followers every 50 ms, replies, some client traffic and faults."""
    rng = random.Random(seed)
    p = FakeProxy(NODES + ["client"])
    t = 1_000_000_000
    pending = []
    sent = 0
    while sent < messages:
        t += 50_000
        events = []
        for f in NODES[1:]:
            events.append((t + rng.randrange(0, 300), "n1", f, "append_entries t=3 prev=40 n=0 commit=40"))
            events.append((t + 400 + rng.randrange(0, 300), f, "n1", "append_entries_reply t=3 ok=true match=40"))
        if rng.random() < 0.3:
            events.append((t + 700, "client", "n1", f"client_request seq={sent} set key=k{sent % 7}"))
        for when, src, dst, summary in sorted(events):
            if sent == messages:
                break
            while pending and pending[0][0] <= when:
                p.deliver(*pending.pop(0))
            r = rng.random()
            if r < 0.02:
                pending += p.send(when, src, dst, summary, fate="drop")
            elif r < 0.04:
                pending += p.send(when, src, dst, summary, fate="dup", delays=(0, 3000), copies=2)
            elif r < 0.06 or src == "client":  # client requests always wait 20 ms: never folded
                pending += p.send(when, src, dst, summary, delays=(20_000,))
            else:
                pending += p.send(when, src, dst, summary)
            pending.sort()
            sent += 1
    while pending:
        p.deliver(*pending.pop(0))
    p.write(path)
    return p


def test_ten_thousand_messages_render_bounded_and_folded(tmp_path):
    p = synthetic(tmp_path / "j.jsonl")
    journal = load_journal(str(tmp_path / "j.jsonl"))
    assert len(journal.messages()) == 10_000
    last = journal.records[-1]["t_us"]
    page = render_diagram(journal, around_us=last, title="ten thousand")
    assert len(page.encode()) < 1_500_000, len(page)
    arrows = page.count("<title>msg") + page.count("routine messages")
    assert 0 < arrows <= MAX_ARROWS
    folded = [int(n) for n in re.findall(r"<title>(\d+) routine messages", page)]
    assert folded and max(folded) >= 2  # heartbeats are folded
    assert "DROPPED" in page and "duplicate copy" in page and "delayed 20.0 ms" in page
    assert "the test failed" in page
    assert "<script" not in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    # Even a window over everything stays within the arrow bound (it shrinks toward the moment).
    wide = render_diagram(journal, around_us=last, before_ms=1e9, title="all")
    assert wide.count("<title>") <= MAX_ARROWS + 1
    small = render_diagram(journal, around_us=last, before_ms=1e9, max_arrows=200, title="all, 200 arrows")
    assert small.count("<title>") <= 201 and "(shrunk to fit)" in small
    assert "the test failed" in small  # the moment stays inside the shrunk window
    assert len(p.records) > 19_000  # sends, plus deliveries of all but the dropped


def test_window_shows_only_messages_around_the_moment(tmp_path):
    p = FakeProxy(["n1", "n2", "client"])
    for d in p.send(1_000_000, "n1", "n2", "request_vote t=2 last=5"):
        p.deliver(*d)
    for d in p.send(9_000_000, "n2", "n1", "request_vote t=9 last=7"):
        p.deliver(*d)
    p.write(tmp_path / "j.jsonl")
    journal = load_journal(str(tmp_path / "j.jsonl"))
    early = render_diagram(journal, around_us=1_000_500)
    late = render_diagram(journal, around_us=9_000_500)
    assert "request_vote t=2" in early and "request_vote t=9" not in early
    assert "request_vote t=9" in late and "request_vote t=2" not in late


def test_shiviz_log_parses_back_with_the_documented_regex(tmp_path):
    synthetic(tmp_path / "j.jsonl", messages=3000)
    journal = load_journal(str(tmp_path / "j.jsonl"))
    out = tmp_path / "m.shiviz"
    written = write_shiviz(journal, str(out), around_us=journal.records[-1]["t_us"], max_events=2000)
    assert written == 2000
    text = out.read_text()
    first, second, body = text.split("\n", 2)
    assert first == SHIVIZ_REGEX and second == ""
    events = [m.groupdict() for m in re.finditer(SHIVIZ_REGEX_PY, body)]
    assert len(events) == written
    last_own: dict = {}
    for e in events:
        clock = json.loads(e["clock"])
        host = e["host"]
        # ShiViz: the host is in its own clock, starting at 1 and growing by exactly 1.
        assert clock[host] == last_own.get(host, 0) + 1, (host, clock)
        last_own[host] = clock[host]
        assert all(isinstance(v, int) and v > 0 for v in clock.values())
    assert set(last_own) <= set(journal.endpoints) and len(last_own) >= 5
    # Happens-before: a delivery's clock dominates its send's.
    sends = {}
    for host, clock, text_ in shiviz_events(journal, len(journal.records) - 3000):
        msg = re.search(r"\(msg (\d+)\)$", text_).group(1)
        if " send " in text_:
            sends[msg] = clock
        elif msg in sends:
            assert all(clock.get(h, 0) >= v for h, v in sends[msg].items())


def test_bad_journal_is_a_clear_error(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_text('{"journal":1,"endpoints":["n1"]}\n{"ev":"send"}\n')
    with pytest.raises(JournalError, match="line 2"):
        load_journal(str(path))
    path.write_text("")
    with pytest.raises(JournalError, match="empty"):
        load_journal(str(path))


def test_real_proxy_journal_and_failure_artifacts(make_cluster, tmp_path):
    """A real cluster behind the real proxy: its journal has summaries, fates and clocks, and what a
    failing test keeps is there, attached by the artifact convention."""
    cluster = make_cluster(3)
    client = cluster.client()
    for i in range(5):
        client.set(f"k{i}", str(i))
    cluster.set_link("client", "*", drop=1.0)  # a client request that is surely dropped
    try:
        cluster.client(request_timeout=0.2, deadline=0.5).set("lost", "x")
    except Exception:
        pass
    cluster.clear_link("client", "*")
    path = cluster.proxy.write_journal()
    journal = load_journal(path)
    msgs = journal.messages()
    assert any(m.summary.startswith("client_request") and "key=k3" in m.summary for m in msgs)
    assert any(m.summary.startswith("append_entries ") and " n=0" in m.summary for m in msgs)
    assert any(m.fate == "drop" and m.src == "client" and "key=lost" in m.summary for m in msgs)
    delivered = [r for r in journal.records if r["ev"] == "deliver"]
    assert delivered and all(r["vc"].get(r["to"], 0) >= 1 for r in delivered)

    item = SimpleNamespace(nodeid="harness/test_diagram.py::fake_failure", user_properties=[])
    report = SimpleNamespace(user_properties=[])
    lines = keep_message_artifacts(item, report, [cluster], str(tmp_path / "reports"), 42)
    props = dict(item.user_properties)
    assert set(props) == {"artifact:message_diagram", "artifact:shiviz"}, lines
    assert report.user_properties == item.user_properties
    for p in props.values():
        assert os.path.isabs(p) and os.path.getsize(p) > 0 and str(tmp_path / "reports") in p
    page = open(props["artifact:message_diagram"]).read()
    assert "client_request" in page and "the test failed" in page
    assert any(props["artifact:message_diagram"] in line for line in lines)
