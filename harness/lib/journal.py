"""The fault proxy's message journal (docs/proxy.md, "Message journal"): reading it, and a ShiViz log.

    j = load_journal("logs/journal.jsonl")
    msgs = j.messages()                      # one Message per datagram, send joined with its fates
    write_shiviz(j, "messages.shiviz", around_us=t_fail_us)

The journal is JSON lines: a header {"journal":1,"endpoints":[...],"records":N,
"evicted":M,...}, then one record per event (send / deliver / lost), oldest
first, times in CLOCK_MONOTONIC microseconds (the clock of Python's
time.monotonic() on Linux). Bad lines raise JournalError naming the line.

ShiViz (https://bestchai.bitbucket.io/shiviz/) reads the exported file as:
line 1 the parser regex SHIVIZ_REGEX, line 2 the (empty) multiple-executions
delimiter, then two lines per event: the event text, then `host {vector
clock}`. ShiViz wants each host's first event to have its own clock entry
1, growing by exactly 1; the proxy's clocks are renumbered so (entries that
point before the exported window become 0 and are left out).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Optional

# ShiViz's named groups are written (?<name>...); Python spells them (?P<name>...).
SHIVIZ_REGEX = r"(?<event>.*)\n(?<host>\S*) (?<clock>{.*})"
SHIVIZ_REGEX_PY = r"(?P<event>.*)\n(?P<host>\S*) (?P<clock>\{.*\})"

MAX_JOURNAL_BYTES = 512 << 20  # refuse to read anything bigger (the proxy's bound is below this)


class JournalError(ValueError):
    pass


@dataclass
class Message:
    """One datagram the proxy saw: its send record and what became of each copy."""
    msg: int
    src: str
    dst: str
    t_send_us: int
    size: int
    fate: str                      # pass / dup / drop / block
    summary: str
    delay_us: list = field(default_factory=list)
    why: str = ""                  # block: partition / block / rule
    # per copy: (copy, "deliver" | "lost", t_us, why)
    copies: list = field(default_factory=list)

    @property
    def kind(self) -> str:
        return self.summary.split(" ", 1)[0] if self.summary else "?"

    @property
    def routine(self) -> bool:
        """A heartbeat or its successful reply, delivered once (delayed or not): folded in diagrams.
        Dropped, blocked, duplicated or lost ones are never routine."""
        if self.fate != "pass":
            return False
        if not self.copies or self.copies[0][1] != "deliver":
            return False
        words = self.summary.split()
        if words[:1] == ["append_entries"]:
            return "n=0" in words
        if words[:1] == ["append_entries_reply"]:
            return "ok=true" in words
        return False


@dataclass
class Journal:
    endpoints: list
    records: list
    evicted: int = 0
    capacity: int = 0

    def messages(self) -> list:
        """Messages in send order. Copies whose send was evicted are left out."""
        by_msg: dict = {}
        out = []
        for r in self.records:
            if r["ev"] == "send":
                m = Message(r["msg"], r["from"], r["to"], r["t_us"], r.get("size", 0), r.get("fate", "pass"),
                            r.get("sum", ""), list(r.get("delay_us", [])), r.get("why", ""))
                by_msg[m.msg] = m
                out.append(m)
            else:
                m = by_msg.get(r["msg"])
                if m is not None:
                    m.copies.append((r.get("copy", 0), r["ev"], r["t_us"], r.get("why", "")))
        return out

    def time_span_us(self) -> tuple:
        if not self.records:
            return (0, 0)
        return (self.records[0]["t_us"], self.records[-1]["t_us"])


def load_journal(path: str) -> Journal:
    """Reads a journal file; raises JournalError (naming the line) if it is not one."""
    import os
    size = os.path.getsize(path)
    if size > MAX_JOURNAL_BYTES:
        raise JournalError(f"{path}: {size} bytes, more than the {MAX_JOURNAL_BYTES} this reader accepts")
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    if not lines:
        raise JournalError(f"{path}: empty (not even a header)")
    try:
        header = json.loads(lines[0])
    except ValueError as e:
        raise JournalError(f"{path}: line 1: not JSON ({e})") from None
    if not isinstance(header, dict) or header.get("journal") != 1 or not isinstance(header.get("endpoints"), list):
        raise JournalError(f"{path}: line 1: not a journal header")
    records = []
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
        except ValueError as e:
            raise JournalError(f"{path}: line {n}: not JSON ({e})") from None
        if not isinstance(r, dict) or r.get("ev") not in ("send", "deliver", "lost") \
                or not isinstance(r.get("t_us"), int) or not isinstance(r.get("msg"), int):
            raise JournalError(f"{path}: line {n}: not a journal record")
        records.append(r)
    return Journal(list(header["endpoints"]), records, int(header.get("evicted", 0)), int(header.get("capacity", 0)))


def _event_text(r: dict, t0_us: int) -> str:
    t_ms = (r["t_us"] - t0_us) / 1000.0
    if r["ev"] == "send":
        fate = r.get("fate", "pass")
        extra = {"drop": " [DROPPED]", "block": f" [BLOCKED by {r.get('why', '?')}]", "dup": " [DUPLICATED]"}.get(fate, "")
        delays = [d for d in r.get("delay_us", []) if d > 0]
        if delays:
            extra += " [delayed " + "/".join(f"{d / 1000:.1f}ms" for d in delays) + "]"
        return f"{t_ms:.3f}ms send {r.get('sum', '')} -> {r['to']}{extra} (msg {r['msg']})"
    return f"{t_ms:.3f}ms recv from {r['from']}" + (" (duplicate copy)" if r.get("copy") else "") + f" (msg {r['msg']})"


def shiviz_events(journal: Journal, first: int = 0, last: Optional[int] = None) -> list:
    """(host, clock, text) for the send/deliver records in records[first:last], clocks renumbered for ShiViz."""
    chosen = [r for r in journal.records[first:last] if r["ev"] in ("send", "deliver") and "vc" in r]
    if not chosen:
        return []
    t0 = chosen[0]["t_us"]
    base: dict = {}
    for r in chosen:
        host = r["from"] if r["ev"] == "send" else r["to"]
        if host not in base:
            base[host] = r["vc"].get(host, 1) - 1
    events = []
    for r in chosen:
        host = r["from"] if r["ev"] == "send" else r["to"]
        clock = {}
        for h, v in r["vc"].items():
            v2 = v - base.get(h, v)  # a host with no event in the window: its entries point outside it
            if v2 > 0:
                clock[h] = v2
        events.append((host, clock, _event_text(r, t0)))
    return events


def write_shiviz(journal: Journal, path: str, *, around_us: Optional[int] = None, max_events: int = 5000) -> int:
    """Writes a ShiViz log of at most max_events events (the ones nearest before around_us, or the last
    ones); returns the number written."""
    if not 1 <= max_events <= 1_000_000:
        raise ValueError("max_events must be in 1..1000000")
    records = journal.records
    end = len(records)
    if around_us is not None:
        # Keep a little after the moment too: the replies in flight when the test failed.
        end = next((i for i, r in enumerate(records) if r["t_us"] > around_us + 200_000), len(records))
    first, count = end, 0
    while first > 0 and count < max_events:
        first -= 1
        if records[first]["ev"] in ("send", "deliver"):
            count += 1
    events = shiviz_events(journal, first, end)
    with open(path, "w", encoding="utf-8") as f:
        f.write(SHIVIZ_REGEX + "\n\n")
        for host, clock, text in events:
            f.write(f"{text}\n{host} {json.dumps(clock, separators=(',', ':'))}\n")
    return len(events)
