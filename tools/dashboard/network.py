"""What the proxy does to each link, computed from its `state` and `stats`
replies with the proxy's own rules (docs/proxy.md "Faults"), so the page
shows what a datagram on that link meets now.
"""

from __future__ import annotations

from typing import Optional


def _matches(pattern: str, endpoint: str) -> bool:
    return pattern == "*" or pattern == endpoint


def rule_for(rules: list, a: str, b: str) -> Optional[dict]:
    """The most specific rule for a>b: (a,b), (a,*), (*,b), (*,*), as the proxy picks it."""
    by_pair = {(r.get("from"), r.get("to")): r for r in rules}
    for key in ((a, b), (a, "*"), ("*", b), ("*", "*")):
        if key in by_pair:
            return by_pair[key]
    return None


def link_view(state: dict, a: str, b: str) -> dict:
    """{cut: why or None, loss, delay_ms, jitter_ms, duplicate} for the node link a>b."""
    why = None
    partition = state.get("partition")
    if partition is not None and not any(a in g and b in g for g in partition):
        why = "partition"
    for blk in state.get("blocks") or []:
        if _matches(blk.get("from"), a) and _matches(blk.get("to"), b):
            why = why or "block"
    rule = rule_for(state.get("rules") or [], a, b) or {}
    if rule.get("blocked"):
        why = why or "rule"
    return {"cut": why, "loss": rule.get("drop", 0.0), "delay_ms": rule.get("delay_ms", 0.0),
            "jitter_ms": rule.get("jitter_ms", 0.0), "duplicate": rule.get("duplicate", 0.0)}


class RateMeter:
    """Datagrams delivered per second on each link (forwarded: a cut link shows 0), from the proxy's counters
    averaged over about one second (a window of the last samples)."""

    def __init__(self, window: int = 10):
        self.window = window
        self.samples: list = []   # [(t, {link: received})], at most `window` + 1

    def update(self, t: float, links: dict) -> dict:
        counts = {k: v.get("forwarded", 0) for k, v in links.items() if isinstance(v, dict)}
        self.samples.append((t, counts))
        del self.samples[:-(self.window + 1)]
        t0, first = self.samples[0]
        dt = t - t0
        if dt <= 0:
            return {k: 0.0 for k in counts}
        # A counter that went down was reset (stats reset): no rate for it this window.
        return {k: max(0.0, (c - first.get(k, c)) / dt) for k, c in counts.items()}
