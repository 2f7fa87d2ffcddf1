"""The report folder of ./grade: index.html and the files it links, from the run model.

write_report(model, out_dir) copies every test's artifacts (lib/run_model.py:
`artifacts` of each run) into out_dir/artifacts/ and writes out_dir/index.html:
the score table; for each failing test what it checks and why (its
docstring), the assertion message, seed and replay command of each failing
run, its fault timeline inline, links to the message diagram, ShiViz log,
lincheck HTML and node logs it attached, and each node's log tail. No
script, no remote resource: the folder opens from disk in any browser.
"""

from __future__ import annotations

import html
import os
import shutil
from typing import Optional

from .artifacts import slug

# What each attached kind is called in the report, in the order shown; unknown kinds follow.
KIND_TITLES = {
    "message_diagram": "message diagram",
    "shiviz": "ShiViz log",
    "lincheck_html": "lincheck timeline (HTML)",
    "timeline": "fault timeline",
    "node_log": "node log",
}
INLINE_TEXT_LIMIT = 60_000     # characters of a timeline shown inline
LOG_TAIL_LINES = 40            # lines of each node log shown inline
MAX_ARTIFACTS_PER_TEST = 64    # bound on copied files per test run

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:1.5em auto;max-width:1200px;padding:0 1em;color:#222}
h1{font-size:1.5em;margin-bottom:.2em} h2{margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%} th,td{padding:3px 8px;border-bottom:1px solid #eee;text-align:left}
th{background:#f4f4f4} td.num{text-align:right;font-variant-numeric:tabular-nums}
.passed{color:#17692b;font-weight:600} .failed{color:#b3261e;font-weight:600} .skipped{color:#8a6d00}
.score{font-size:1.3em;font-weight:700} .meta{color:#555}
pre{background:#f7f7f7;border:1px solid #e3e3e3;padding:8px;overflow:auto;max-height:420px;font-size:12px}
.fail{border:1px solid #e8c4c1;border-left:5px solid #b3261e;padding:.2em 1em 1em;margin:1.2em 0;border-radius:4px}
.doc{white-space:pre-wrap;background:#fbfbf3;border-left:3px solid #c9b458;padding:6px 10px}
pre.msg{white-space:pre-wrap;word-break:break-word;max-height:none}
code{background:#f1f1f1;padding:1px 4px;border-radius:3px}
"""


def _e(text) -> str:
    return html.escape("" if text is None else str(text))


def _copy_artifacts(model: dict, out_dir: str) -> dict:
    """Copy every run's artifacts into out_dir/artifacts/; return {source path: relative link}."""
    links: dict[str, str] = {}
    for t in model["tests"]:
        for i, run in enumerate(t.get("runs") or [], start=1):
            arts = (run.get("artifacts") or [])[:MAX_ARTIFACTS_PER_TEST]
            dest_dir = os.path.join(out_dir, "artifacts", slug(t["nodeid"]), f"run{i}-seed{run.get('seed')}")
            for a in arts:
                src = a["path"]
                if src in links or not os.path.isfile(src):
                    continue
                os.makedirs(dest_dir, exist_ok=True)
                name = f"{slug(a['kind'], 40)}-{slug(os.path.basename(src), 80)}"
                dest = os.path.join(dest_dir, name)
                shutil.copyfile(src, dest)
                links[src] = os.path.relpath(dest, out_dir)
    return links


def _read(path: str, limit: int) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read(limit + 1)
    except OSError as e:
        return f"(cannot read {path}: {e})"
    return text if len(text) <= limit else text[:limit] + "\n... (cut; see the file)"


def _tail(path: str, lines: int) -> str:
    text = _read(path, 4 * INLINE_TEXT_LIMIT)
    return "\n".join(text.splitlines()[-lines:])


def _header(model: dict) -> str:
    runs = model.get("runs", 1)
    rows = [("node", model.get("node")), ("reference node", "yes" if model.get("reference_node") else "no"),
            ("seed", model.get("seed") if runs == 1 else ", ".join(str(s) for s in model.get("seeds", [])))]
    if runs > 1:
        rows.append(("runs per test", f"{runs}; scoring policy '{model.get('policy')}'"))
    rows.append(("CPU budget", model.get("cpu_budget") or "none (all cores of this machine)"))
    thr = model.get("cpu_throttling") or {}
    if "nr_periods" in thr:
        rows.append(("CPU throttling", f"held back in {thr.get('nr_throttled', 0)} of {thr['nr_periods']} periods, "
                                       f"{thr.get('throttled_time', 0) / 1e9:.1f} s in all (the kernel's cpu.stat)"))
    peaks = [t["metrics"].get("node_peak_rss_mb") for t in model["tests"] if t.get("metrics")]
    peaks = [p for p in peaks if isinstance(p, (int, float))]
    if peaks:
        rows.append(("largest node peak RSS", f"{max(peaks):g} MB (one node process, at the end of a test)"))
    rows.append(("duration", f"{model.get('duration_s')} s of tests"
                              + (f", {model['wall_time_s']} s wall clock" if model.get("wall_time_s") else "")))
    cells = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return (f"<h1>raftkv grading report</h1><p class=score>score: {_e(model['score'])} / "
            f"{_e(model['max_score'])}</p><p class=meta>{model['passed']} passed, {model['failed']} failed, "
            f"{model['skipped']} skipped (skipped tests and harness self-tests do not count)</p>"
            f"<table>{cells}</table>")


def _score_table(model: dict) -> str:
    runs = model.get("runs", 1)
    head = "<tr><th>test</th><th>points</th><th>result</th>" + ("<th>pass rate</th>" if runs > 1 else "")
    head += "<th>duration (s)</th><th>seed</th></tr>"
    rows = []
    for t in model["tests"]:
        name = _e(t["nodeid"])
        if t["outcome"] == "failed":
            name = f"<a href='#{_e(slug(t['nodeid']))}'>{name}</a>"
        pts = "self-test" if t.get("self_test") else (
            f"-/{t['points']}" if t["outcome"] == "skipped" else f"{t['earned']:g}/{t['points']}")
        rate = ""
        if runs > 1:
            rate = "<td class=num>-</td>" if t.get("pass_rate") is None else (
                f"<td class=num>{sum(1 for r in t['runs'] if r['outcome'] == 'passed')}/{len(t['runs'])}</td>")
        rows.append(f"<tr><td>{name}</td><td class=num>{pts}</td><td class={t['outcome']}>"
                    f"{t['outcome'].upper()}</td>{rate}<td class=num>{t['duration_s']:.1f}</td>"
                    f"<td class=num>{_e(t.get('seed'))}</td></tr>")
    return f"<h2>Tests</h2><table>{head}{''.join(rows)}</table>"


def _figures(model: dict) -> str:
    rows = []
    for t in model["tests"]:
        for k, v in sorted((t.get("metrics") or {}).items()):
            if k != "node_peak_rss_mb":
                rows.append(f"<tr><td>{_e(t['nodeid'])}</td><td>{_e(k)}</td><td class=num>{v:g}</td></tr>")
    if not rows:
        return ""
    return ("<h2>Efficiency figures</h2><p class=meta>From the fault proxy's counts (test_efficiency.py); "
            "with several runs, the largest value.</p><table><tr><th>test</th><th>figure</th><th>value</th></tr>"
            + "".join(rows) + "</table>")


def _artifact_links(arts: list, links: dict) -> str:
    items = []
    order = {k: i for i, k in enumerate(KIND_TITLES)}
    for a in sorted(arts, key=lambda a: (order.get(a["kind"], len(order)), a["path"])):
        rel = links.get(a["path"])
        title = KIND_TITLES.get(a["kind"], a["kind"].replace("_", " "))
        label = f"{title}: {os.path.basename(a['path'])}"
        items.append(f"<li><a href='{_e(rel)}'>{_e(label)}</a></li>" if rel
                     else f"<li>{_e(label)} (missing: {_e(a['path'])})</li>")
    return f"<ul>{''.join(items)}</ul>" if items else "<p class=meta>no files attached</p>"


def _run_section(run: dict, index: int, links: dict, out_dir: str) -> str:
    arts = run.get("artifacts") or []
    parts = [f"<h4>run {index}: seed {_e(run.get('seed'))}, {_e(run['outcome'])}</h4>",
             f"<p><b>assertion:</b></p><pre class=msg>{_e(run.get('message'))}</pre>",
             f"<p><b>replay:</b> <code>{_e(run.get('reproduce'))}</code></p>",
             "<p><b>attached:</b></p>" + _artifact_links(arts, links)]
    for a in arts:
        rel = links.get(a["path"])
        if not rel:
            continue
        if a["kind"] == "timeline":
            parts.append(f"<p><b>fault timeline</b> ({_e(os.path.basename(a['path']))}):</p>"
                         f"<pre>{_e(_read(os.path.join(out_dir, rel), INLINE_TEXT_LIMIT))}</pre>")
        elif a["kind"] == "node_log":
            parts.append(f"<details><summary>last {LOG_TAIL_LINES} lines of {_e(os.path.basename(a['path']))}"
                         f"</summary><pre>{_e(_tail(os.path.join(out_dir, rel), LOG_TAIL_LINES))}</pre></details>")
        elif a["kind"] == "message_diagram":
            parts.append(f"<p><a href='{_e(rel)}'>open the message diagram</a> (space-time diagram of the "
                         "datagrams around the failure)</p>")
    return "".join(parts)


def _failures(model: dict, links: dict, out_dir: str) -> str:
    out = []
    for t in model["tests"]:
        if t["outcome"] != "failed":
            continue
        failing = [r for r in t.get("runs") or [] if r["outcome"] == "failed"] or [t]
        runs_html = "".join(_run_section(r, i, links, out_dir) for i, r in enumerate(failing, start=1))
        where = f" (error in {t['failed_in']})" if t.get("failed_in") not in (None, "call") else ""
        out.append(f"<div class=fail id='{_e(slug(t['nodeid']))}'><h3>{_e(t['nodeid'])}{_e(where)}</h3>"
                   f"<p><b>what it checks and why it matters:</b></p><div class=doc>{_e(t.get('doc') or '(no docstring)')}"
                   f"</div>{runs_html}<details><summary>full pytest output</summary><pre>{_e(t.get('output'))}"
                   "</pre></details></div>")
    if not out:
        return "<h2>Failures</h2><p>none</p>"
    return "<h2>Failures</h2>" + "".join(out)


def _skips(model: dict) -> str:
    rows = [f"<tr><td>{_e(t['nodeid'])}</td><td>{_e(t.get('message'))}</td></tr>"
            for t in model["tests"] if t["outcome"] == "skipped"]
    if not rows:
        return ""
    return "<h2>Skipped</h2><table><tr><th>test</th><th>why</th></tr>" + "".join(rows) + "</table>"


def write_report(model: dict, out_dir: str, *, extra_files: Optional[dict] = None) -> str:
    """Write out_dir/index.html (and copy artifacts); returns its path.

    extra_files: {label: relative path} of other files in out_dir to link (results files).
    """
    os.makedirs(out_dir, exist_ok=True)
    links = _copy_artifacts(model, out_dir)
    files = "".join(f"<li><a href='{_e(rel)}'>{_e(label)}</a></li>" for label, rel in (extra_files or {}).items())
    body = (_header(model) + (f"<h2>Files</h2><ul>{files}</ul>" if files else "") + _score_table(model)
            + _failures(model, links, out_dir) + _figures(model) + _skips(model))
    page = ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>raftkv grading report: "
            f"{_e(model['score'])} / {_e(model['max_score'])}</title><style>{CSS}</style></head>"
            f"<body>{body}</body></html>\n")
    path = os.path.join(out_dir, "index.html")
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
    return path
