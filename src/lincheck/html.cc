#include "lincheck/html.h"

#include <nlohmann/json.hpp>

namespace lincheck {

namespace {

using nlohmann::json;

json optional_json(const std::optional<std::string>& value) {
  return value ? json(*value) : json(nullptr);
}

json ids_json(const std::vector<std::size_t>& indexes) {
  json array = json::array();
  for (std::size_t i : indexes) array.push_back(i);
  return array;
}

double relative_ms(std::int64_t us, std::int64_t origin) {
  return static_cast<double>(us - origin) / 1000.0;
}

json page_data(const History& history, const CheckResult& result, const Explanation* explanation,
               const std::string& source) {
  const std::int64_t origin = origin_us(history);
  json data;
  data["source"] = source;
  data["verdict"] = to_string(result.verdict);
  data["op_count"] = result.ops;
  data["checked_ops"] = result.checked_ops;
  data["seconds"] = result.seconds;
  data["origin_us"] = origin;

  json ops = json::array();
  for (const Op& op : history.ops) {
    json o;
    o["id"] = op.id;
    o["client"] = op.client;
    o["op"] = to_string(op.type);
    o["key"] = op.key;
    o["args"] = describe_args(op);
    o["res"] = describe_result(op);
    o["outcome"] = to_string(op.outcome);
    o["invoke"] = relative_ms(op.invoke_us, origin);
    o["complete"] = op.complete_us ? json(relative_ms(*op.complete_us, origin)) : json(nullptr);
    if (op.value) o["value"] = *op.value;
    if (op.type == OpType::Cas) o["expected"] = optional_json(op.expected);
    if (op.has_result) o["result"] = optional_json(op.result);
    if (!op.error.empty()) o["error"] = op.error;
    o["line"] = op.line;
    o["dropped"] = op.is_irrelevant();
    ops.push_back(std::move(o));
  }
  data["ops"] = std::move(ops);

  json keys = json::array();
  for (const KeyResult& key : result.keys) {
    json k;
    k["key"] = key.key;
    k["verdict"] = to_string(key.search.verdict);
    k["checked"] = key.ops.size();
    k["order"] = ids_json(key.search.order);
    k["seconds"] = key.seconds;
    if (!key.search.why_unknown.empty()) k["why_unknown"] = key.search.why_unknown;
    keys.push_back(std::move(k));
  }
  data["keys"] = std::move(keys);
  data["bad_key"] = result.bad_key ? json(*result.bad_key) : json(nullptr);

  if (explanation) {
    json e;
    e["key"] = explanation->key;
    e["minimal"] = ids_json(explanation->minimal);
    e["one_minimal"] = explanation->one_minimal;
    e["partial"] = ids_json(explanation->partial);
    e["state_after"] = optional_json(explanation->state_after_partial);
    json stuck = json::array();
    for (const StuckOp& s : explanation->stuck) stuck.push_back({{"op", s.op}, {"reason", s.reason}});
    e["stuck"] = std::move(stuck);
    data["explanation"] = std::move(e);
  } else {
    data["explanation"] = nullptr;
  }
  return data;
}

// The page. DATA is replaced by the JSON above; everything else is static.
constexpr const char* kPage = R"PAGE(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>lincheck</title>
<style>
:root { --red:#d0342c; --red-fill:#fbd9d5; --blue:#3b6db3; --blue-fill:#d9e6f6; --grey:#8d96a0;
        --green:#1b8a4b; --ink:#1d232b; --muted:#5b6570; --line:#dfe3e8; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
       color:var(--ink); background:#f4f6f8; }
code, .mono { font-family: ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace; font-size:12.5px; }
header { padding:14px 24px 4px; }
h1 { font-size:20px; margin:0; font-weight:650; }
h2 { font-size:16px; margin:0 0 6px; }
.badge { display:inline-block; padding:1px 10px; border-radius:12px; font-weight:600; font-size:13px;
         color:#fff; margin-right:10px; vertical-align:2px; }
.badge.violation { background:var(--red); } .badge.ok { background:var(--green); } .badge.unknown { background:#b26b00; }
.meta { color:var(--muted); font-size:13px; }
main { padding:0 24px 24px; }
.card { background:#fff; border:1px solid var(--line); border-radius:8px; padding:12px 18px; margin:10px 0; }
.card p { margin:4px 0 8px; max-width:980px; }
.muted { color:var(--muted); }
table.ops { border-collapse:collapse; margin:6px 0 10px; font-size:13px; }
table.ops th { text-align:left; font-weight:600; color:var(--muted); padding:3px 12px 3px 0; border-bottom:1px solid var(--line); }
table.ops td { padding:3px 12px 3px 0; border-bottom:1px solid #f0f2f4; white-space:nowrap; }
table.ops tr.bad td { color:#8c1d16; }
ol.order { margin:2px 0 8px; padding-left:26px; } ol.order li { margin:1px 0; }
ul.stuck { margin:2px 0 8px; padding-left:22px; } ul.stuck li { margin:2px 0; }
.chip { display:inline-block; padding:0 6px; border-radius:4px; background:var(--blue-fill); cursor:default;
        font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace; font-size:12.5px; }
.chip.red { background:var(--red-fill); color:#7d1a14; }
.controls { display:flex; gap:18px; align-items:center; flex-wrap:wrap; margin-bottom:8px; }
.controls select, .controls button { font:inherit; font-size:13px; }
.seg button { border:1px solid #b9c1ca; background:#fff; padding:3px 10px; cursor:pointer; margin-right:-1px; }
.seg button:first-child { border-radius:5px 0 0 5px; } .seg button:last-child { border-radius:0 5px 5px 0; }
.seg button.active { background:var(--ink); color:#fff; border-color:var(--ink); }
.zoom button { border:1px solid #b9c1ca; background:#fff; border-radius:5px; padding:2px 9px; cursor:pointer; }
.legend { display:flex; gap:20px; flex-wrap:wrap; font-size:13px; color:var(--muted); align-items:center; }
.legend svg { vertical-align:-3px; margin-right:6px; }
.timeline { display:flex; border:1px solid var(--line); border-radius:8px; background:#fff; overflow:hidden; }
.lanes { flex:0 0 auto; border-right:1px solid var(--line); }
.scroll { flex:1 1 auto; overflow-x:auto; overflow-y:hidden; }
svg text { font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif; }
g.op { cursor:default; }
g.op.hl rect.bar { stroke-width:3; }
#tip { position:fixed; pointer-events:none; background:#1d232b; color:#fff; padding:8px 11px; border-radius:6px;
       font-size:12.5px; max-width:460px; display:none; z-index:10; box-shadow:0 4px 14px rgba(0,0,0,.25); }
#tip td { padding:0 10px 0 0; vertical-align:top; } #tip td:first-child { color:#aab4bf; }
#tip .head { font-weight:600; margin-bottom:4px; }
#empty { padding:30px; color:var(--muted); }
</style>
</head>
<body>
<header><h1 id="title"></h1><div class="meta" id="meta"></div></header>
<main>
<div class="card" id="explain"></div>
<div class="card">
  <div class="controls">
    <label>Key <select id="key"></select></label>
    <span class="seg" id="mode"></span>
    <label><input type="checkbox" id="compress"> compress idle time</label>
    <span class="zoom">Zoom <button id="zout" title="zoom out">−</button> <button id="zfit" title="fit to width">fit</button> <button id="zin" title="zoom in">+</button></span>
  </div>
  <div class="legend" id="legend"></div>
</div>
<div class="timeline"><svg class="lanes" id="lanes"></svg><div class="scroll" id="scroll"><svg id="chart"></svg></div></div>
<div class="card" id="details" style="display:none"></div>
<div class="card muted" id="help">
  <b>How to read this chart.</b> Each row is a client. Each bar is one operation on the key, from the moment
  the client sent the request (left end) to the moment it got the reply (right end). The store may apply the
  operation at any single instant inside its bar. The history is <i>linearizable</i> if one such instant can be
  chosen for every bar so that replaying the operations in that order, on a single copy of the key, gives every
  client exactly the result it saw. A bar that fades out to the right timed out: it may take effect at any time
  after it started, or never. Bars that merely touch count as overlapping. Times are in milliseconds since the
  first operation of the history. Hover over a bar for details.
</div>
</main>
<div id="tip"></div>
<script type="application/json" id="lincheck-data">DATA</script>
<script>
(function () {
'use strict';
const D = JSON.parse(document.getElementById('lincheck-data').textContent);
const ops = D.ops, E = D.explanation;
const NS = 'http://www.w3.org/2000/svg';
const $ = id => document.getElementById(id);
function svg(tag, attrs, parent) {
  const e = document.createElementNS(NS, tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (parent) parent.appendChild(e);
  return e;
}
const esc = s => String(s).replace(/[&<>"]/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
function ms(t) {
  if (t === null || t === undefined) return '—';
  let s = t.toFixed(3).replace(/0+$/, '').replace(/\.$/, '');
  return s + ' ms';
}
const natural = (a, b) => a.localeCompare(b, undefined, {numeric: true});
function opText(o, withId) {
  return (withId ? '#' + o.id + ' ' : '') + o.op + (o.args ? '(' + o.args + ')' : '') + ' → ' + o.res;
}
function show(v) { return v === null || v === undefined ? 'absent' : JSON.stringify(v); }

const byKey = new Map();
ops.forEach((o, i) => { if (!byKey.has(o.key)) byKey.set(o.key, []); byKey.get(o.key).push(i); });
const minimal = new Set(E ? E.minimal : []);
const stuckReason = new Map(E ? E.stuck.map(s => [s.op, s.reason]) : []);
const S = { key: D.bad_key !== null ? D.bad_key : 0, mode: E ? 'minimal' : 'all', zoom: 1, compress: !!E };
// The view can be chosen in the address: #key=NAME&mode=all&zoom=2.
for (const part of location.hash.replace(/^#/, '').split('&')) {
  const [name, value] = part.split('=').map(decodeURIComponent);
  if (name === 'key') { const k = D.keys.findIndex(x => x.key === value); if (k >= 0) S.key = k; }
  if (name === 'mode' && (value === 'all' || value === 'minimal')) S.mode = value;
  if (name === 'zoom' && +value > 0) S.zoom = +value;
}
if (!E || !D.keys[S.key] || D.keys[S.key].key !== E.key) S.mode = 'all';
S.compress = S.mode === 'minimal';
if (E && S.mode === 'all' && D.keys[S.key].key === E.key && !/zoom=/.test(location.hash)) S.zoom = contextZoom();

// ---- header and explanation ------------------------------------------------
const verdictText = { ok: 'Linearizable', violation: 'NOT linearizable', unknown: 'Undecided (time budget ran out)' };
$('title').innerHTML = '<span class="badge ' + D.verdict + '">' + esc(D.verdict) + '</span>' +
  esc(verdictText[D.verdict] || D.verdict);
document.title = 'lincheck: ' + (verdictText[D.verdict] || D.verdict) + ' — ' + D.source;
$('meta').textContent = D.source + ' · ' + D.op_count + ' operations (' + D.checked_ops + ' checked) · ' +
  D.keys.length + ' key' + (D.keys.length === 1 ? '' : 's') + ' · checked in ' + D.seconds.toFixed(3) + ' s';

function chip(i, red) {
  const o = ops[i];
  return '<span class="chip' + (red ? ' red' : '') + '" data-op="' + i + '">' + esc('#' + o.id + ' ' + o.client + ': ' + opText(o, false)) + '</span>';
}
function opTable(list) {
  let h = '<table class="ops"><tr><th>id</th><th>client</th><th>operation</th><th>result</th><th>invoked at</th><th>completed at</th></tr>';
  for (const i of list) {
    const o = ops[i];
    h += '<tr class="bad"><td>#' + o.id + '</td><td>' + esc(o.client) + '</td><td class="mono">' + esc(o.op + (o.args ? '(' + o.args + ')' : '')) +
      '</td><td class="mono">' + esc(o.res) + '</td><td>' + ms(o.invoke) + '</td><td>' +
      (o.outcome === 'unknown' ? 'never (timed out)' : ms(o.complete)) + '</td></tr>';
  }
  return h + '</table>';
}
function explainHtml() {
  if (D.verdict === 'violation' && E) {
    const n = E.minimal.length, k = E.key;
    const keyInfo = D.keys.find(x => x.key === k);
    let h = '<h2>Key <code>' + esc(k) + '</code> is not linearizable</h2>';
    const phrase = 'cannot be ordered in any way consistent with a single copy of the key';
    h += '<p>' + (n === 1 ? 'This <b>operation</b> (red in the chart) ' : 'These <b>' + n + ' operations</b> (red in the chart) ') +
      phrase + ': in every order, either an operation comes before one that had already finished when it started, ' +
      'or some operation gets a result that the key could not give at that point.</p>';
    if (E.partial.length) {
      h += '<p><b>The checker’s best attempt.</b> It could place ' + E.partial.length + ' of them in a valid order' +
        ' (green numbers in the chart):</p><ol class="order">';
      for (const i of E.partial) h += '<li>' + chip(i, false) + '</li>';
      h += '</ol><p>After these the key holds <code>' + esc(show(E.state_after)) + '</code>, and no remaining operation can come next:</p>';
    } else {
      h += '<p><b>The checker’s best attempt.</b> Not even the first operation can be placed: on the empty key (which holds <code>absent</code>)</p>';
    }
    h += '<ul class="stuck">';
    for (const s of E.stuck) h += '<li>' + chip(s.op, true) + ' — ' + esc(s.reason) + '.</li>';
    h += '</ul>';
    h += '<p class="muted">' + (E.one_minimal
      ? 'The set is minimal: without any one of these operations (and the reads that depend on it), the rest can be ordered.'
      : 'The time budget ran out while shrinking, so this set may not be minimal.') +
      (keyInfo ? ' Over all ' + keyInfo.checked + ' checked operations of key <code>' + esc(k) + '</code>, the longest partial ' +
       'linearization found has ' + keyInfo.order.length + ' operations; choose “All operations of the key” to see it.' : '') + '</p>';
    return h;
  }
  if (D.verdict === 'ok') {
    return '<h2>All ' + D.checked_ops + ' checked operations can be ordered</h2><p>Every key is linearizable: for each key there is an ' +
      'order of its operations, each taking effect at one instant inside its bar, in which a single copy of the key gives every ' +
      'client the result it saw. The green numbers show the order found for the selected key.</p>';
  }
  const undecided = D.keys.filter(x => x.verdict === 'unknown').map(x => '<code>' + esc(x.key) + '</code>');
  return '<h2>Undecided</h2><p>The checker ran out of its budget before it could decide key' + (undecided.length === 1 ? ' ' : 's ') +
    undecided.slice(0, 20).join(', ') + (undecided.length > 20 ? ', …' : '') + '. No violation was found in the keys it finished, ' +
    'but that does not prove the history linearizable. The green numbers show the longest partial order found.</p>';
}
$('explain').innerHTML = explainHtml();
if (D.verdict === 'violation' && E) {
  $('details').style.display = '';
  $('details').innerHTML = '<h2>The ' + E.minimal.length + ' operation' + (E.minimal.length === 1 ? '' : 's') +
    ' in detail</h2>' + opTable(E.minimal);
}

// ---- controls --------------------------------------------------------------
const keySelect = $('key');
D.keys.forEach((k, i) => {
  const opt = document.createElement('option');
  const label = { ok: 'linearizable', violation: 'NOT linearizable', unknown: 'undecided' }[k.verdict];
  opt.value = i;
  opt.textContent = k.key + ' — ' + label + ' (' + (byKey.get(k.key) || []).length + ' ops)';
  keySelect.appendChild(opt);
});
keySelect.value = S.key;
keySelect.onchange = () => { S.key = +keySelect.value; S.zoom = 1; S.mode = isBadKey() ? 'minimal' : 'all'; S.compress = S.mode === 'minimal'; render(true); };
$('compress').onchange = e => { S.compress = e.target.checked; render(); };
$('zin').onclick = () => { S.zoom *= 1.6; render(); };
$('zout').onclick = () => { S.zoom = Math.max(0.05, S.zoom / 1.6); render(); };
$('zfit').onclick = () => { S.zoom = 1; render(); };
window.addEventListener('resize', () => render());
// Zoom of the "all operations" view that shows the minimal set with some
// context around it rather than the whole key.
function contextZoom() {
  const all = byKey.get(E.key) || [];
  const end = o => (o.complete !== null ? o.complete : o.invoke);
  const span = Math.max(...all.map(i => end(ops[i]))) - Math.min(...all.map(i => ops[i].invoke));
  const m = E.minimal.map(i => ops[i]);
  const mspan = Math.max(...m.map(end)) - Math.min(...m.map(o => o.invoke));
  return Math.max(1, Math.min(1000, span / Math.max(3 * mspan, 1e-3)));
}
function isBadKey() { return !!E && D.keys[S.key] && D.keys[S.key].key === E.key; }
function renderMode() {
  const box = $('mode');
  box.innerHTML = '';
  if (!isBadKey()) return;
  const all = (byKey.get(E.key) || []).length;
  [['minimal', 'Minimal violating set (' + E.minimal.length + ')'], ['all', 'All operations of the key (' + all + ')']].forEach(([m, label]) => {
    const b = document.createElement('button');
    b.textContent = label;
    if (S.mode === m) b.className = 'active';
    b.onclick = () => { S.mode = m; S.zoom = m === 'all' ? contextZoom() : 1; S.compress = m === 'minimal'; render(true); };
    box.appendChild(b);
  });
}

// ---- legend ----------------------------------------------------------------
function legend() {
  const items = [];
  const swatch = (draw) => { const s = svg('svg', {width: 34, height: 16}); draw(s); return s; };
  items.push([swatch(s => svg('rect', {x: 1, y: 2, width: 32, height: 12, rx: 3, fill: 'var(--blue-fill)', stroke: 'var(--blue)', 'stroke-width': 1.5}, s)),
    'operation (sent → reply)']);
  if (E) items.push([swatch(s => svg('rect', {x: 1, y: 2, width: 32, height: 12, rx: 3, fill: 'var(--red-fill)', stroke: 'var(--red)', 'stroke-width': 2}, s)),
    'in the minimal violating set']);
  items.push([swatch(s => svg('rect', {x: 1, y: 2, width: 32, height: 12, rx: 3, fill: 'url(#lg-fade)'}, s)),
    'timed out: may take effect any time after it started, or never']);
  items.push([swatch(s => svg('rect', {x: 1, y: 2, width: 32, height: 12, rx: 3, fill: 'url(#lg-hatch)', stroke: 'var(--grey)', 'stroke-dasharray': '3 2'}, s)),
    'failed: did not happen (ignored)']);
  items.push([swatch(s => { svg('circle', {cx: 17, cy: 8, r: 7, fill: 'var(--green)'}, s);
    const t = svg('text', {x: 17, y: 11.5, 'text-anchor': 'middle', 'font-size': 10, 'font-weight': 700, fill: '#fff'}, s); t.textContent = '1'; }),
    'order found by the checker (linearization point)']);
  if (E) items.push([swatch(s => { svg('circle', {cx: 17, cy: 8, r: 7, fill: 'var(--red)'}, s);
    const t = svg('text', {x: 17, y: 11.5, 'text-anchor': 'middle', 'font-size': 10, 'font-weight': 700, fill: '#fff'}, s); t.textContent = '✗'; }),
    'cannot come next']);
  const box = $('legend');
  box.innerHTML = '';
  // Shared gradient and pattern for the legend swatches.
  const defs = svg('svg', {width: 0, height: 0, style: 'position:absolute'});
  defineShared(svg('defs', {}, defs), 'lg-');
  box.appendChild(defs);
  for (const [s, text] of items) {
    const span = document.createElement('span');
    span.appendChild(s);
    span.appendChild(document.createTextNode(text));
    box.appendChild(span);
  }
}
function defineShared(defs, prefix) {
  const grad = (id, color, from, to) => {
    const g = svg('linearGradient', {id: prefix + id, x1: 0, x2: 1, y1: 0, y2: 0}, defs);
    svg('stop', {offset: 0, 'stop-color': color, 'stop-opacity': from}, g);
    svg('stop', {offset: 1, 'stop-color': color, 'stop-opacity': to}, g);
  };
  // A timed-out bar: a head that fades, then a faint tail to the edge.
  grad('fade', '#a9c4e8', 0.95, 0.3);
  grad('fade-red', '#f19a91', 0.95, 0.3);
  grad('tail', '#a9c4e8', 0.3, 0);
  grad('tail-red', '#f19a91', 0.3, 0);
  const p = svg('pattern', {id: prefix + 'hatch', width: 6, height: 6, patternUnits: 'userSpaceOnUse', patternTransform: 'rotate(45)'}, defs);
  svg('rect', {width: 6, height: 6, fill: '#f3f4f6'}, p);
  svg('line', {x1: 0, y1: 0, x2: 0, y2: 6, stroke: '#cfd4da', 'stroke-width': 2}, p);
}

// ---- the timeline ----------------------------------------------------------
const tip = $('tip');
function showTip(ev, i, point) {
  const o = ops[i];
  const rows = [['client', esc(o.client)], ['operation', '<span class="mono">' + esc(o.op + ' ' + o.key) + '</span>']];
  if (o.value !== undefined) rows.push(['value', '<span class="mono">' + esc(show(o.value)) + '</span>']);
  if (o.expected !== undefined) rows.push(['expected', '<span class="mono">' + esc(show(o.expected)) + '</span>']);
  rows.push(['outcome', esc(o.outcome) + (o.error ? ' (' + esc(o.error) + ')' : '')]);
  if (o.result !== undefined) rows.push(['result', '<span class="mono">' + esc(show(o.result)) + '</span>']);
  rows.push(['invoked', ms(o.invoke)]);
  rows.push(['completed', o.outcome === 'unknown' ? 'never: timed out' + (o.complete !== null ? ' (client gave up at ' + ms(o.complete) + ')' : '') : ms(o.complete)]);
  if (o.complete !== null && o.outcome !== 'unknown') rows.push(['duration', ms(o.complete - o.invoke)]);
  if (point) rows.push(['order', 'no. ' + point.n + ' (taking effect at about ' + ms(point.t) + ')']);
  if (minimal.has(i)) rows.push(['', '<b style="color:#ff9d94">in the minimal violating set</b>']);
  if (stuckReason.has(i)) rows.push(['stuck', esc(stuckReason.get(i))]);
  if (o.dropped) rows.push(['', 'ignored: it did not happen']);
  if (o.line) rows.push(['line', String(o.line)]);
  tip.innerHTML = '<div class="head">#' + o.id + ' ' + esc(opText(o, false)) + '</div><table>' +
    rows.map(r => '<tr><td>' + r[0] + '</td><td>' + r[1] + '</td></tr>').join('') + '</table>';
  tip.style.display = 'block';
  moveTip(ev);
}
function moveTip(ev) {
  const w = tip.offsetWidth, h = tip.offsetHeight;
  let x = ev.clientX + 14, y = ev.clientY + 14;
  if (x + w > window.innerWidth - 8) x = ev.clientX - w - 14;
  if (y + h > window.innerHeight - 8) y = ev.clientY - h - 14;
  tip.style.left = Math.max(4, x) + 'px';
  tip.style.top = Math.max(4, y) + 'px';
}
function hideTip() { tip.style.display = 'none'; }

function niceStep(raw) {
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

let bars = new Map();
let view = null;  // the last drawing's time -> x mapping, to keep the centre in view
function render(scrollToMinimal) {
  const scroll = $('scroll');
  let centre = null;
  if (view && view.key === S.key && view.mode === S.mode && !scrollToMinimal) {
    centre = view.T(scroll.scrollLeft + scroll.clientWidth / 2);
  }
  renderMode();
  $('compress').checked = S.compress;
  const K = D.keys[S.key];
  const chart = $('chart'), lanes = $('lanes');
  chart.innerHTML = ''; lanes.innerHTML = '';
  bars = new Map();
  if (!K) return;
  const bad = isBadKey();
  const onlyMinimal = bad && S.mode === 'minimal';
  let idx = (byKey.get(K.key) || []).slice();
  if (onlyMinimal) idx = idx.filter(i => minimal.has(i));
  const shown = new Set(idx);
  const order = onlyMinimal ? E.partial : K.order;

  if (!idx.length) { svg('text', {x: 20, y: 30, fill: '#5b6570'}, chart).textContent = 'No operations on this key.'; return; }
  let t0 = Infinity, t1 = -Infinity;
  for (const i of idx) {
    const o = ops[i];
    t0 = Math.min(t0, o.invoke);
    t1 = Math.max(t1, o.complete !== null && o.outcome !== 'unknown' ? o.complete : o.invoke);
  }
  if (t1 - t0 < 1e-3) t1 = t0 + 1;

  // Linearization points: midway between the earliest and the latest
  // instants consistent with the order (both sequences are monotone).
  const point = new Map();
  {
    const early = [], late = [];
    let last = -Infinity;
    order.forEach((i, n) => { last = Math.max(last, ops[i].invoke); early[n] = last; });
    let next = Infinity;
    for (let n = order.length - 1; n >= 0; --n) {
      const o = ops[order[n]];
      const end = o.outcome === 'unknown' || o.complete === null ? Infinity : o.complete;
      next = Math.min(next, end);
      late[n] = next === Infinity ? Math.max(early[n], t1) : next;
    }
    order.forEach((i, n) => { if (shown.has(i)) point.set(i, {n: n + 1, t: (early[n] + late[n]) / 2}); });
  }

  // Time → x: active stretches get one scale; with "compress", long idle
  // gaps (no bar of this view is open) shrink to a fixed width.
  const GAP = 46, PADL = 16, TAIL = 90;
  const spans = idx.map(i => { const o = ops[i]; return [o.invoke, o.outcome === 'unknown' || o.complete === null ? o.invoke : o.complete]; })
    .concat([...point.values()].map(p => [p.t, p.t])).sort((a, b) => a[0] - b[0]);
  const merged = [];
  for (const s of spans) {
    if (merged.length && s[0] <= merged[merged.length - 1][1]) merged[merged.length - 1][1] = Math.max(merged[merged.length - 1][1], s[1]);
    else merged.push([s[0], s[1]]);
  }
  const pieces = [];  // {a, b, gap}
  // Compress only gaps much longer than a typical operation.
  const durations = idx.map(i => ops[i]).filter(o => o.outcome !== 'unknown' && o.complete !== null)
    .map(o => o.complete - o.invoke).sort((a, b) => a - b);
  const typical = durations.length ? durations[durations.length >> 1] : 0;
  const minGap = Math.max(4 * typical, 0.15 * (t1 - t0));
  for (let k = 0; k < merged.length; ++k) {
    pieces.push({a: merged[k][0], b: merged[k][1], gap: false});
    if (k + 1 < merged.length) {
      const a = merged[k][1], b = merged[k + 1][0];
      pieces.push({a, b, gap: S.compress && b - a > minGap});
    }
  }
  const linearSpan = pieces.reduce((s, p) => s + (p.gap ? 0 : p.b - p.a), 0) || 1;
  const gaps = pieces.filter(p => p.gap).length;
  const avail = Math.max(300, scroll.clientWidth - PADL - TAIL - 4);
  const scale = Math.max(1e-6, (avail - gaps * GAP) / linearSpan) * S.zoom;  // px per ms
  let x = PADL;
  for (const p of pieces) { p.x = x; p.w = p.gap ? GAP : (p.b - p.a) * scale; x += p.w; }
  const width = Math.ceil(x + TAIL);
  function T(x) {  // the inverse of X
    for (const p of pieces) {
      if (x <= p.x + p.w) return p.gap ? p.a + (x - p.x) / p.w * (p.b - p.a) : p.a + (x - p.x) / scale;
    }
    const p = pieces[pieces.length - 1];
    return p.b + (x - p.x - p.w) / scale;
  }
  function X(t) {
    if (t <= pieces[0].a) return PADL + (t - pieces[0].a) * scale;
    let lo = 0, hi = pieces.length - 1;
    while (lo < hi) { const m = (lo + hi + 1) >> 1; if (pieces[m].a <= t) lo = m; else hi = m - 1; }
    const p = pieces[lo];
    if (t >= p.b) return p.x + p.w + (lo === pieces.length - 1 ? (t - p.b) * scale : 0);
    return p.x + (p.b > p.a ? (t - p.a) / (p.b - p.a) * p.w : 0);
  }

  // Where a bar ends: its completion; a timed-out op that matters never
  // ends; one that is ignored (an unknown get) gets a short stub.
  const STUB = 70;
  function visibleEnd(o) {
    if (o.outcome !== 'unknown' && o.complete !== null) return o.complete;
    return o.dropped ? o.invoke + STUB / scale : Infinity;
  }

  // Lanes: one per client, with extra rows when its bars overlap (a
  // timed-out op stays open forever).
  const clients = [...new Set(idx.map(i => ops[i].client))].sort(natural);
  const ROW = 42, AXIS = 38, LPAD = 2, BAR = 22, BAR_TOP = 13;  // room above a bar for its order marker
  const laneOf = new Map();
  let y = AXIS;
  const laneBoxes = [];
  for (const c of clients) {
    const mine = idx.filter(i => ops[i].client === c).sort((a, b) => ops[a].invoke - ops[b].invoke);
    const rowEnd = [];
    for (const i of mine) {
      const o = ops[i];
      const end = visibleEnd(o);
      let r = rowEnd.findIndex(e => e < o.invoke);
      if (r < 0) { r = rowEnd.length; rowEnd.push(end); } else rowEnd[r] = end;
      laneOf.set(i, y + LPAD + r * ROW);
    }
    const h = Math.max(1, rowEnd.length) * ROW + 2 * LPAD;
    laneBoxes.push({c, y, h});
    y += h;
  }
  const height = y + 8;
  const LW = 96;
  lanes.setAttribute('width', LW); lanes.setAttribute('height', height);
  chart.setAttribute('width', width); chart.setAttribute('height', height);
  const defs = svg('defs', {}, chart);
  defineShared(defs, '');
  laneBoxes.forEach((b, k) => {
    const fill = k % 2 ? '#f7f9fb' : '#ffffff';
    svg('rect', {x: 0, y: b.y, width, height: b.h, fill}, chart);
    svg('rect', {x: 0, y: b.y, width: LW, height: b.h, fill}, lanes);
    const t = svg('text', {x: LW - 12, y: b.y + b.h / 2 + 5, 'text-anchor': 'end', 'font-size': 13, 'font-weight': 600, fill: '#1d232b'}, lanes);
    t.textContent = b.c;
  });
  const keyLabel = svg('text', {x: 10, y: 24, 'font-size': 12, fill: '#5b6570'}, lanes);
  keyLabel.textContent = 'key ' + K.key;

  // Axis: ticks per active stretch, a marker per compressed gap.
  const step = niceStep(90 / scale);
  const gapCentres = pieces.filter(p => p.gap).map(p => p.x + p.w / 2);
  svg('line', {x1: 0, x2: width, y1: AXIS - 0.5, y2: AXIS - 0.5, stroke: '#c6ccd3'}, chart);
  for (const p of pieces) {
    if (p.gap) {
      svg('rect', {x: p.x + 4, y: AXIS, width: p.w - 8, height: height - AXIS, fill: 'url(#hatch)', opacity: 0.8}, chart);
      const t = svg('text', {x: p.x + p.w / 2, y: 13, 'text-anchor': 'middle', 'font-size': 10, fill: '#8d96a0'}, chart);
      t.textContent = '⋯ ' + ms(p.b - p.a) + ' ⋯';
      continue;
    }
    const last = p === pieces[pieces.length - 1];
    const end = last ? p.b + TAIL / scale : p.b;
    for (let t = Math.ceil(p.a / step) * step; last ? t <= end + 1e-9 : t < end - 1e-9; t += step) {
      const tx = X(t);
      svg('line', {x1: tx, x2: tx, y1: AXIS - 6, y2: height, stroke: '#eceff2'}, chart);
      svg('line', {x1: tx, x2: tx, y1: AXIS - 6, y2: AXIS, stroke: '#9aa3ad'}, chart);
      // No label where it would collide with a compressed gap's label.
      if (gapCentres.some(c => Math.abs(c - tx) < 60)) continue;
      const lbl = svg('text', {x: tx, y: AXIS - 10, 'text-anchor': 'middle', 'font-size': 11, fill: '#5b6570'}, chart);
      lbl.textContent = +t.toFixed(6) + ' ms';
    }
  }

  // Bars.
  const withId = onlyMinimal;
  for (const i of idx) {
    const o = ops[i];
    const red = minimal.has(i) && bad;
    const unknown = o.outcome === 'unknown';
    const x0 = X(o.invoke);
    const end = visibleEnd(o);
    const x1 = end === Infinity ? width - 2 : Math.max(X(end), x0 + 3);
    const by = laneOf.get(i) + BAR_TOP;
    const g = svg('g', {class: 'op'}, chart);
    const attrs = {class: 'bar', x: x0, y: by, width: x1 - x0, height: BAR, rx: 3};
    if (o.dropped) Object.assign(attrs, {fill: 'url(#hatch)', stroke: '#8d96a0', 'stroke-dasharray': '4 3', 'stroke-width': 1.2});
    else if (unknown) Object.assign(attrs, {width: Math.min(x1 - x0, 180), fill: red ? 'url(#fade-red)' : 'url(#fade)', stroke: 'none'});
    else Object.assign(attrs, {fill: red ? 'var(--red-fill)' : 'var(--blue-fill)', stroke: red ? 'var(--red)' : 'var(--blue)', 'stroke-width': red ? 2 : 1.3});
    svg('rect', attrs, g);
    if (unknown && !o.dropped && x1 - x0 > 180) {
      svg('rect', {x: x0 + 180, y: by, width: x1 - x0 - 180, height: BAR, fill: red ? 'url(#tail-red)' : 'url(#tail)'}, g);
    }
    if (unknown && !o.dropped) svg('line', {x1: x0, x2: x0, y1: by, y2: by + BAR, stroke: red ? 'var(--red)' : 'var(--blue)', 'stroke-width': 2}, g);
    // Label, if it fits.
    const full = opText(o, withId) + (o.dropped ? ' (did not happen)' : '');
    const text = svg('text', {x: x0 + 6, y: by + BAR / 2 + 4.5, 'font-size': 12, fill: o.dropped ? '#6b7580' : (red ? '#7d1a14' : '#1d3b66'),
      'font-weight': red ? 600 : 400, 'pointer-events': 'none'}, g);
    text.textContent = full;
    const room = x1 - x0 - 10;
    if (text.getComputedTextLength() > room) {
      text.textContent = (withId ? '#' + o.id + ' ' : '') + o.op;
      if (text.getComputedTextLength() > room) text.textContent = '';
    }
    const p = point.get(i);
    g.addEventListener('mouseenter', ev => showTip(ev, i, p));
    g.addEventListener('mousemove', moveTip);
    g.addEventListener('mouseleave', hideTip);
    bars.set(i, g);
  }

  // Linearization points, joined in order.
  const pts = order.filter(i => point.has(i)).map(i => ({i, x: X(point.get(i).t), y: laneOf.get(i) + BAR_TOP - 1, n: point.get(i).n}));
  if (pts.length > 1 && pts.length <= 80) {
    svg('polyline', {points: pts.map(p => p.x + ',' + p.y).join(' '), fill: 'none', stroke: 'var(--green)', 'stroke-width': 1.5,
      'stroke-dasharray': '5 4', opacity: 0.75, 'pointer-events': 'none'}, chart);
  }
  // A numbered marker where there is room, else a dot (hover for the number).
  const lastLabel = new Map();  // row y -> x of the last numbered marker
  for (const p of pts) {
    const g = svg('g', {'pointer-events': 'none'}, chart);
    const r = p.n >= 1000 ? 11.5 : p.n >= 100 ? 10 : 8.5;
    const prior = lastLabel.has(p.y) ? lastLabel.get(p.y) : -Infinity;
    if (p.x - prior < 2 * r + 2) {
      svg('circle', {cx: p.x, cy: p.y, r: 3.5, fill: 'var(--green)', stroke: '#fff', 'stroke-width': 1}, g);
      continue;
    }
    lastLabel.set(p.y, p.x);
    svg('circle', {cx: p.x, cy: p.y, r, fill: 'var(--green)', stroke: '#fff', 'stroke-width': 1.5}, g);
    const t = svg('text', {x: p.x, y: p.y + 3.8, 'text-anchor': 'middle', 'font-size': p.n >= 1000 ? 8 : p.n >= 100 ? 8.5 : 10.5, 'font-weight': 700, fill: '#fff'}, g);
    t.textContent = p.n;
  }
  // The ops the checker could not place next: a red cross on each.
  if (onlyMinimal) {
    for (const s of E.stuck) {
      if (!shown.has(s.op)) continue;
      const o = ops[s.op];
      const x0 = X(o.invoke);
      const x1 = o.outcome === 'unknown' ? Math.min(width - 2, x0 + 160) : Math.max(X(o.complete), x0 + 3);
      const g = svg('g', {'pointer-events': 'none'}, chart);
      const cx = (x0 + x1) / 2, cy = laneOf.get(s.op) + BAR_TOP - 1;
      svg('circle', {cx, cy, r: 8.5, fill: 'var(--red)', stroke: '#fff', 'stroke-width': 1.5}, g);
      const t = svg('text', {x: cx, y: cy + 4, 'text-anchor': 'middle', 'font-size': 11, 'font-weight': 700, fill: '#fff'}, g);
      t.textContent = '✗';
    }
  }

  view = {key: S.key, mode: S.mode, T};
  if (centre !== null) scroll.scrollLeft = Math.max(0, X(centre) - scroll.clientWidth / 2);
  if (scrollToMinimal && bad && S.mode === 'all') {
    const first = Math.min(...E.minimal.map(i => ops[i].invoke));
    const last = Math.max(...E.minimal.map(i => ops[i].complete !== null ? ops[i].complete : ops[i].invoke));
    scroll.scrollLeft = Math.max(0, X((first + last) / 2) - scroll.clientWidth / 2);
  }
}

// Hovering an op in the text highlights its bar.
$('explain').addEventListener('mouseover', ev => {
  const c = ev.target.closest('[data-op]');
  if (c && bars.has(+c.dataset.op)) bars.get(+c.dataset.op).classList.add('hl');
});
$('explain').addEventListener('mouseout', ev => {
  const c = ev.target.closest('[data-op]');
  if (c && bars.has(+c.dataset.op)) bars.get(+c.dataset.op).classList.remove('hl');
});

legend();
render(true);
})();
</script>
</body>
</html>
)PAGE";

}  // namespace

std::string render_html(const History& history, const CheckResult& result,
                        const Explanation* explanation, const std::string& source) {
  std::string data = page_data(history, result, explanation, source)
                         .dump(-1, ' ', false, json::error_handler_t::replace);
  // Inside <script> the data may not contain "</script>" or "<!--": '<' only
  // occurs inside JSON strings, where \u003c means the same.
  std::string safe;
  safe.reserve(data.size());
  for (char c : data) {
    if (c == '<') safe += "\\u003c";
    else safe += c;
  }
  std::string page = kPage;
  const std::string marker = "DATA</script>";
  page.replace(page.find(marker), 4, safe);
  return page;
}

}  // namespace lincheck
