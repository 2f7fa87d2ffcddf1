"""A space-time message diagram of a proxy journal, as one self-contained HTML page (inline SVG, no scripts).

    html = render_diagram(load_journal(path), around_us=t_fail_us, title="test_x failed",
                          notes=[(t_us, "partition n1 | n2 n3"), ...], t0_us=cluster_start_us)

One vertical line per endpoint (the nodes, then "client"), time flowing
down. Each datagram is an arrow from its sender at the send time to its
receiver at the delivery time:

* black: delivered at once; purple: held in the delay queue (its delay in the
  tooltip); orange, dashed: the extra copy of a duplicated datagram;
* red, ending in a cross half way: dropped (random loss); grey, ending in a
  bar: blocked by a partition or block (or lost later: blocked while
  delayed, queue overflow, send failed);
* thin grey with "×N": N routine messages folded into one, drawn at the
  first of them (heartbeats, i.e. append_entries with no entries, and
  successful append replies, on one link within one FOLD_SLOT_MS slot).

Only a window of time is drawn: by default WINDOW_BEFORE_MS before the
given moment and WINDOW_AFTER_MS after it; if it still holds more than
MAX_ARROWS arrows after folding, the window shrinks toward the moment until
it fits. A strip at the top shows the message rate over the whole journal,
the window, the notes (fault timeline) and the moment (a red line). Every
arrow has a tooltip (SVG <title>) with the message's time, link, fate and
summary; labels are printed where there is room.
"""

from __future__ import annotations

import html as htmlmod
from dataclasses import dataclass
from typing import Optional, Sequence

from .journal import Journal, Message

WINDOW_BEFORE_MS = 1500.0
WINDOW_AFTER_MS = 300.0
MAX_ARROWS = 1500
MAX_HEIGHT_PX = 5000
FOLD_SLOT_MS = 250.0       # routine messages on one link within one such slot become one arrow
FOLD_SLOT_PX = 14          # ... or within this many pixels, if that is longer (a zoomed-out window)
LANE_PX = 170
TOP_PX = 40
OVERVIEW_BINS = 300


@dataclass
class Arrow:
    src: str
    dst: str
    t0_us: int
    t1_us: Optional[int]     # None: did not arrive (dropped / blocked / lost)
    style: str               # ok / delayed / dup / drop / block / lost / folded
    label: str
    tip: str
    count: int = 1
    last_us: int = 0         # folded: the send time of the last message folded in


def _esc(text: str) -> str:
    return htmlmod.escape(text, quote=True)


def _arrows(messages: Sequence[Message], start_us: int, end_us: int, fold_us: int) -> tuple:
    """Arrows for the messages sent in [start_us, end_us]; routine ones folded per link and slot."""
    arrows: list = []
    folds: dict = {}
    folded = 0
    for m in messages:
        if m.t_send_us < start_us or m.t_send_us > end_us:
            continue
        base_tip = f"msg {m.msg}: {m.src} → {m.dst}, {m.size} B, {m.summary}"
        if m.routine:
            key = (m.src, m.dst, m.summary.split(" ", 1)[0], (m.t_send_us - start_us) // max(1, fold_us))
            a = folds.get(key)
            t1 = m.copies[0][2]
            if a is None:
                a = Arrow(m.src, m.dst, m.t_send_us, t1, "folded", "", base_tip)
                folds[key] = a
                arrows.append(a)
            else:  # drawn as the slot's first message, labelled with the count
                a.count += 1
                folded += 1
                a.last_us = m.t_send_us
            continue
        if m.fate == "drop":
            arrows.append(Arrow(m.src, m.dst, m.t_send_us, None, "drop", m.summary, base_tip + " — DROPPED"))
            continue
        if m.fate == "block":
            arrows.append(Arrow(m.src, m.dst, m.t_send_us, None, "block", m.summary,
                                base_tip + f" — BLOCKED by {m.why or '?'}"))
            continue
        for copy, ev, t_us, why in (m.copies or [(0, "lost", m.t_send_us, "no record")]):
            delay = m.delay_us[copy] if copy < len(m.delay_us) else 0
            tip = base_tip + (" — duplicate copy" if copy else "") + (f" — delayed {delay / 1000:.1f} ms" if delay else "")
            if ev == "lost":
                arrows.append(Arrow(m.src, m.dst, m.t_send_us, None, "lost", m.summary, tip + f" — LOST ({why})"))
            else:
                style = "dup" if copy else ("delayed" if delay else "ok")
                arrows.append(Arrow(m.src, m.dst, m.t_send_us, t_us, style, m.summary if copy == 0 else "", tip))
    for a in folds.values():
        if a.count > 1:
            a.label = f"×{a.count}"
            a.tip = (f"{a.count} routine messages {a.src} → {a.dst} folded (sent over "
                     f"{(a.last_us - a.t0_us) / 1000:.0f} ms), e.g. {a.tip}")
    return arrows, folded


STYLE = {
    "ok": ("#222", ""), "delayed": ("#7b2cbf", ""), "dup": ("#e67e00", "6,4"), "drop": ("#d00000", ""),
    "block": ("#888", "3,3"), "lost": ("#888", "3,3"), "folded": ("#bbb", ""),
}


def render_diagram(journal: Journal, *, around_us: Optional[int] = None, title: str = "message diagram",
                   notes: Sequence[tuple] = (), t0_us: Optional[int] = None,
                   before_ms: float = WINDOW_BEFORE_MS, after_ms: float = WINDOW_AFTER_MS,
                   max_arrows: int = MAX_ARROWS) -> str:
    """The HTML page. around_us: the moment to centre on (default: the last record). notes: (t_us, text)
    pairs drawn as horizontal marks. t0_us: times are shown in ms since this (default: the window start)."""
    if before_ms < 0 or after_ms < 0 or not 10 <= max_arrows <= 100_000:
        raise ValueError("window sizes must be >= 0 and max_arrows in 10..100000")
    messages = journal.messages()
    first_us, last_us = journal.time_span_us()
    moment = around_us if around_us is not None else last_us
    start_us, end_us = int(moment - before_ms * 1000), int(moment + after_ms * 1000)
    # Nothing happened before the first record or after the last (and the moment):
    # drawing that time would only push the messages off the first screen.
    if first_us is not None:
        start_us = max(start_us, min(int(first_us), int(moment)))
    if last_us is not None:
        end_us = min(end_us, max(int(last_us), int(moment)) + 50_000)
    shrunk = False
    while True:
        span_ms = max(1.0, (end_us - start_us) / 1000)
        px_per_ms = min(4.0, MAX_HEIGHT_PX / span_ms)
        fold_us = int(max(FOLD_SLOT_MS, FOLD_SLOT_PX / px_per_ms) * 1000)
        arrows, folded = _arrows(messages, start_us, end_us, fold_us)
        if len(arrows) <= max_arrows or end_us - start_us < 20_000:
            break
        # Too many even after folding: shrink the window toward the moment.
        start_us = int(moment - (moment - start_us) * 0.7)
        end_us = int(moment + (end_us - moment) * 0.7)
        shrunk = True
    origin = t0_us if t0_us is not None else start_us

    lanes = list(journal.endpoints)
    x_of = {name: 60 + LANE_PX * i + LANE_PX // 2 for i, name in enumerate(lanes)}
    width = 60 + LANE_PX * len(lanes) + 260
    height = TOP_PX + int((end_us - start_us) / 1000 * px_per_ms) + 40

    def y(t_us: int) -> float:
        return TOP_PX + (t_us - start_us) / 1000 * px_per_ms

    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="monospace" font-size="11">',
           '<defs>' + "".join(
               f'<marker id="h-{k}" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto">'
               f'<path d="M0,0 L8,4 L0,8 z" fill="{c}"/></marker>' for k, (c, _) in STYLE.items()) + '</defs>']
    # time grid every 50 / 100 / 250 ms depending on the scale
    step_ms = 50 if px_per_ms >= 2 else 100 if px_per_ms >= 0.8 else 250 if px_per_ms >= 0.3 else 1000
    step_us = step_ms * 1000
    t = origin + ((start_us - origin) // step_us + 1) * step_us  # round figures since the origin
    while t < end_us:
        yy = y(t)
        svg.append(f'<line x1="0" x2="{width}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#eee"/>'
                   f'<text x="2" y="{yy - 2:.1f}" fill="#999">{(t - origin) / 1000:.0f} ms</text>')
        t += step_us
    for name in lanes:
        x = x_of[name]
        svg.append(f'<line x1="{x}" x2="{x}" y1="{TOP_PX - 8}" y2="{height - 10}" stroke="#4a6fa5" stroke-width="2"/>'
                   f'<text x="{x}" y="{TOP_PX - 14}" text-anchor="middle" font-size="14" font-weight="bold">{_esc(name)}</text>')
    note_text_y = -1e9  # notes close in time get their labels stacked, not printed over each other
    for t_us, text in sorted(notes, key=lambda n: n[0]):
        if start_us <= t_us <= end_us:
            yy = y(t_us)
            note_text_y = max(yy + 4, note_text_y + 13)
            svg.append(f'<line x1="40" x2="{width - 250}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#2a9d8f" stroke-dasharray="8,4"/>'
                       f'<text x="{width - 245}" y="{note_text_y:.1f}" fill="#2a9d8f">{(t_us - origin) / 1000:.0f} ms {_esc(text[:40])}</text>')
    if start_us <= moment <= end_us:
        yy = y(moment)
        svg.append(f'<line x1="0" x2="{width}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#d00000" stroke-width="2"/>'
                   f'<text x="{width - 245}" y="{yy - 4:.1f}" fill="#d00000" font-weight="bold">'
                   f'{(moment - origin) / 1000:.0f} ms: the test failed</text>')
    placed: dict = {}  # label row -> [(x0, x1)] already printed
    for a in sorted(arrows, key=lambda a: a.t0_us):
        color, dash = STYLE[a.style]
        x0, x1 = x_of.get(a.src, 0), x_of.get(a.dst, 0)
        y0 = y(a.t0_us)
        if a.t1_us is None:  # did not arrive: stop half way
            xe, ye = x0 + (x1 - x0) * 0.45, y0 + 6
        else:
            xe, ye = x1, y(a.t1_us)
        if x0 == x1:
            xe = x0 + 30
        widthpx = 1 if a.style == "folded" else 1.4
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        marker = "" if a.t1_us is None else f' marker-end="url(#h-{a.style})"'
        svg.append(f'<g><title>{_esc(a.tip)}</title><line x1="{x0}" y1="{y0:.1f}" x2="{xe:.1f}" y2="{ye:.1f}" '
                   f'stroke="{color}" stroke-width="{widthpx}"{dash_attr}{marker}/>')
        if a.style == "drop":
            svg.append(f'<path d="M{xe - 5:.1f},{ye - 5:.1f} l10,10 m0,-10 l-10,10" stroke="{color}" stroke-width="2"/>')
        elif a.style in ("block", "lost"):
            svg.append(f'<line x1="{xe:.1f}" y1="{ye - 6:.1f}" x2="{xe:.1f}" y2="{ye + 6:.1f}" stroke="{color}" stroke-width="3"/>')
        if a.label:
            # Printed only where it overlaps no other label (12 px rows, ~6.6 px per character);
            # the tooltip always has it.
            text = a.label[:48]
            span = 6.6 * len(text)
            lx0 = x0 + 6 if x1 >= x0 else x0 - 6 - span
            row = int(y0 // 12)
            taken = [iv for r in (row - 1, row, row + 1) for iv in placed.get(r, [])]
            if all(lx0 + span < b0 or lx0 > b1 for b0, b1 in taken):
                placed.setdefault(row, []).append((lx0, lx0 + span))
                svg.append(f'<text x="{lx0:.1f}" y="{y0 - 2:.1f}" fill="{color}">{_esc(text)}</text>')
        svg.append("</g>")
    svg.append("</svg>")

    overview = _overview(messages, first_us, last_us, start_us, end_us, moment, notes)
    counts = (f"{len(journal.records)} journal records ({journal.evicted} older ones evicted by the proxy's bound), "
              f"{len(messages)} messages; window {(start_us - origin) / 1000:.0f} … {(end_us - origin) / 1000:.0f} ms"
              f"{' (shrunk to fit)' if shrunk else ''}: {len(arrows)} arrows, {folded} routine messages folded")
    legend = " ".join(f'<span style="color:{c}">■ {k}</span>' for k, (c, _) in STYLE.items())
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + _esc(title) + "</title>"
            "<style>body{font-family:sans-serif;margin:12px} .meta{color:#444;font-size:13px;margin:4px 0}</style>"
            "</head><body>"
            f"<h2>{_esc(title)}</h2><div class=\"meta\">{_esc(counts)}</div>"
            f"<div class=\"meta\">{legend} — hover an arrow for details; times in ms since the cluster started"
            f"{'' if t0_us is not None else ' (here: since the window start)'}</div>"
            + overview + "\n" + "\n".join(svg) + "</body></html>\n")


def _overview(messages: Sequence[Message], first_us: int, last_us: int, start_us: int, end_us: int,
              moment: int, notes: Sequence[tuple]) -> str:
    """A strip: messages per time bin over the whole journal, with the window and the moment marked."""
    lo = min(first_us, start_us)
    hi = max(last_us, end_us, lo + 1)
    width, height = 900, 60
    bins = [0] * OVERVIEW_BINS
    for m in messages:
        bins[min(OVERVIEW_BINS - 1, int((m.t_send_us - lo) / (hi - lo) * OVERVIEW_BINS))] += 1
    peak = max(bins) or 1
    bar_w = width / OVERVIEW_BINS
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 16}" font-family="sans-serif" font-size="10">',
           f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fafafa" stroke="#ddd"/>']
    for i, c in enumerate(bins):
        if c:
            h = c / peak * (height - 4)
            out.append(f'<rect x="{i * bar_w:.1f}" y="{height - h:.1f}" width="{bar_w:.2f}" height="{h:.1f}" fill="#9bb"/>')

    def x(t: int) -> float:
        return (t - lo) / (hi - lo) * width

    out.append(f'<rect x="{x(start_us):.1f}" y="0" width="{max(1.0, x(end_us) - x(start_us)):.1f}" height="{height}" '
               f'fill="#4a6fa5" fill-opacity="0.15" stroke="#4a6fa5"/>')
    for t_us, _ in notes:
        out.append(f'<line x1="{x(t_us):.1f}" x2="{x(t_us):.1f}" y1="0" y2="{height}" stroke="#2a9d8f"/>')
    out.append(f'<line x1="{x(moment):.1f}" x2="{x(moment):.1f}" y1="0" y2="{height}" stroke="#d00000" stroke-width="2"/>')
    out.append(f'<text x="0" y="{height + 12}">whole journal: {len(messages)} messages over '
               f'{(hi - lo) / 1e6:.1f} s (blue: the window drawn below; green: fault timeline; red: the failure)</text>')
    out.append("</svg>")
    return "\n".join(out)
