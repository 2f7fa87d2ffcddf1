"""When a test fails: its message diagram and ShiViz log, kept where the failure's evidence is kept.

For each cluster of the failed test that ran behind the fault proxy, the
proxy writes its journal (the `journal` control command), and this module
writes, under the reports dir (`--reports-dir`, default harness-reports/,
the same place as lincheck's evidence, so they survive the test's temporary
directory):

    <reports dir>/<test id>-seed<seed>/[<cluster>-]messages.html    the diagram (harness/lib/diagram.py)
    <reports dir>/<test id>-seed<seed>/[<cluster>-]messages.shiviz   the ShiViz log (harness/lib/journal.py)
    <reports dir>/<test id>-seed<seed>/[<cluster>-]journal.jsonl     the raw journal

The diagram's window ends just after the moment of the failure (when the
report is made). The paths are printed in the failure output and attached
for ./grade (the artifact convention agreed with its author):
    item.user_properties += [("artifact:message_diagram", html), ("artifact:shiviz", log)]
A failure here never hides the test's own failure: it becomes a line of text.
"""

from __future__ import annotations

import os
import re
import shutil
import time

from .diagram import render_diagram
from .journal import load_journal, write_shiviz


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", name).strip("_")[:120] or "test"


def keep_message_artifacts(item, report, clusters, reports_dir: str, seed) -> list:
    """Renders and keeps the artifacts of each proxied cluster; returns lines for the failure output."""
    lines = []
    failed_at_us = int(time.monotonic() * 1e6)
    out_dir = os.path.abspath(os.path.join(reports_dir, _slug(f"{item.nodeid}-seed{seed}")))
    for c in clusters:
        proxy = getattr(c, "proxy", None)
        if proxy is None or not getattr(proxy, "journal_path", None):
            continue
        prefix = "" if len(clusters) == 1 else _slug(c.name) + "-"
        try:
            path = proxy.write_journal()
            journal = load_journal(path)
            os.makedirs(out_dir, exist_ok=True)
            kept_journal = os.path.join(out_dir, prefix + "journal.jsonl")
            shutil.copyfile(path, kept_journal)
            t0_us = int(c.t0 * 1e6)
            notes = [(t0_us + int(t * 1e6), text) for t, text in sorted(c.timeline, key=lambda e: e[0])]
            html_path = os.path.join(out_dir, prefix + "messages.html")
            with open(html_path, "w", encoding="utf-8") as f:
                f.write(render_diagram(journal, around_us=failed_at_us, title=f"{item.nodeid}: {c.name} (seed {seed})",
                                       notes=notes, t0_us=t0_us))
            shiviz_path = os.path.join(out_dir, prefix + "messages.shiviz")
            events = write_shiviz(journal, shiviz_path, around_us=failed_at_us)
        except Exception as e:  # evidence is a bonus: never let it mask the failure
            lines.append(f"{c.name}: no message diagram ({type(e).__name__}: {e})")
            continue
        for prop in (("artifact:message_diagram", html_path), ("artifact:shiviz", shiviz_path)):
            item.user_properties.append(prop)
            if report is not None and report.user_properties is not item.user_properties:
                report.user_properties.append(prop)
        lines.append(f"{c.name}: message diagram {html_path} (open it in a browser)")
        lines.append(f"{c.name}: ShiViz log {shiviz_path} ({events} events; load it at "
                     f"https://bestchai.bitbucket.io/shiviz/), raw journal {kept_journal}")
    return lines
