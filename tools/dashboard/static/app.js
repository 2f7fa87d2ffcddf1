// The dashboard page: draws each snapshot pushed on /events (Server-Sent
// Events, 10 a second) and sends what the person clicks to the JSON API.
// Plain browser JavaScript: no build step, no library.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const LOG_WINDOW = 32;
let last = null;            // the latest snapshot
let built = "";             // the node ids the controls were built for
let updates = [];           // arrival times of the last second's snapshots

const $ = (sel) => document.querySelector(sel);
const termColor = (t) => `hsl(${(t * 67) % 360}, 70%, 72%)`;

function el(tag, attrs = {}, text) {
  const e = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function say(text, bad) {
  const m = $("#message");
  m.textContent = text;
  m.style.color = bad ? "#ff8a80" : "#ffd54f";
}

async function post(path, body) {
  try {
    const r = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json"},
                                 body: JSON.stringify(body)});
    const data = await r.json();
    if (!data.ok) say(`${path}: ${data.error}`, true);
    return data;
  } catch (e) {
    say(`${path}: ${e}`, true);
    return {ok: false, error: String(e)};
  }
}

// ---- the ring --------------------------------------------------------------------------

function positions(ids) {
  const c = 240, r = 170, out = {};
  ids.forEach((id, i) => {
    const a = -Math.PI / 2 + (2 * Math.PI * i) / ids.length;
    out[id] = [c + r * Math.cos(a), c + r * Math.sin(a)];
  });
  return out;
}

function linkStyle(l) {
  if (l.cut) return {stroke: "#d32f2f", dash: "6 4", width: 2};
  const faulty = l.loss > 0 || l.delay_ms > 0 || l.duplicate > 0 || l.jitter_ms > 0;
  return {stroke: faulty ? "#ef6c00" : "#78909c", dash: "", width: 1 + Math.min(4, l.rate / 20)};
}

function faultText(l) {
  if (l.cut) return `cut (${l.cut})`;
  const parts = [];
  if (l.loss > 0) parts.push(`loss ${Math.round(l.loss * 100)}%`);
  if (l.delay_ms > 0) parts.push(`delay ${l.delay_ms}ms`);
  if (l.jitter_ms > 0) parts.push(`±${l.jitter_ms}`);
  if (l.duplicate > 0) parts.push(`dup ${Math.round(l.duplicate * 100)}%`);
  return parts.join(" ");
}

function drawRing(s) {
  const svg = $("#ring");
  svg.replaceChildren();
  const pos = positions(s.ids);
  const byPair = {};
  for (const l of s.links) byPair[`${l.from}>${l.to}`] = l;
  s.ids.forEach((a, i) => s.ids.slice(i + 1).forEach((b) => {
    const [x1, y1] = pos[a], [x2, y2] = pos[b];
    const len = Math.hypot(x2 - x1, y2 - y1), nx = -(y2 - y1) / len * 4, ny = (x2 - x1) / len * 4;
    for (const [from, to, sign] of [[a, b, 1], [b, a, -1]]) {
      const l = byPair[`${from}>${to}`];
      const st = linkStyle(l);
      svg.append(el("svg:line", {x1: x1 + sign * nx, y1: y1 + sign * ny, x2: x2 + sign * nx, y2: y2 + sign * ny,
        stroke: st.stroke, "stroke-width": st.width, "stroke-dasharray": st.dash, class: "link",
        "data-from": from, "data-to": to, "data-cut": l.cut || "", "data-rate": l.rate}));
    }
    const ab = byPair[`${a}>${b}`], ba = byPair[`${b}>${a}`];
    const mx = (x1 + x2) / 2, my = (y1 + y2) / 2;
    svg.append(el("svg:text", {x: mx, y: my - 2, class: "rate", "text-anchor": "middle", "font-size": 10,
      fill: "#37474f"}, `${Math.round(ab.rate)}|${Math.round(ba.rate)}/s`));
    const f = [faultText(ab), faultText(ba)].filter((x) => x);
    if (f.length) {
      svg.append(el("svg:text", {x: mx, y: my + 10, "text-anchor": "middle", "font-size": 10,
        fill: ab.cut || ba.cut ? "#d32f2f" : "#ef6c00"}, f[0] === f[1] || f.length === 1 ? f[0] : f.join(" / ")));
    }
  }));
  for (const n of s.nodes) {
    const [x, y] = pos[n.id];
    const st = n.status || {};
    const role = n.process === "down" ? "down" : n.status ? st.role : "silent";
    const fill = {leader: "#ffca28", candidate: "#81d4fa", follower: "#e0e0e0", down: "#424242",
                  silent: "#b0bec5"}[role] || "#e0e0e0";
    const g = el("svg:g", {class: "node", id: `ring-${n.id}`, "data-process": n.process, "data-role": role,
                            "data-term": st.term ?? ""});
    g.append(el("svg:circle", {cx: x, cy: y, r: 40, fill, stroke: n.process === "paused" ? "#546e7a" : "#333",
      "stroke-width": role === "leader" ? 4 : 2, "stroke-dasharray": n.process === "paused" ? "5 4" : ""}));
    const color = role === "down" ? "#eee" : "#222";
    g.append(el("svg:text", {x, y: y - 12, "text-anchor": "middle", "font-weight": "bold", "font-size": 15, fill: color}, n.id));
    const line2 = n.process === "down" ? "down" : n.process === "paused" ? "paused" : n.status ? `${st.role}` : "no reply";
    g.append(el("svg:text", {x, y: y + 4, "text-anchor": "middle", "font-size": 11, fill: color}, line2));
    if (n.status) {
      g.append(el("svg:text", {x, y: y + 18, "text-anchor": "middle", "font-size": 11, fill: color},
        `term ${st.term} · ${st.commit_index}`));
    }
    const isolated = s.links.filter((l) => (l.from === n.id || l.to === n.id) && l.cut).length === 2 * (s.ids.length - 1);
    if (isolated) {
      g.append(el("svg:text", {x, y: y + 55, "text-anchor": "middle", "font-size": 11, fill: "#d32f2f",
        class: "isolated"}, "cut off"));
    }
    svg.append(g);
  }
}

// ---- the table and the logs ---------------------------------------------------------------

function buildControls(s) {
  const key = s.ids.join(",");
  if (key === built) return;
  built = key;
  const tbody = $("#nodes tbody");
  tbody.replaceChildren();
  for (const id of s.ids) {
    const tr = el("tr", {id: `row-${id}`});
    for (const f of ["id", "process", "role", "term", "voted_for", "leader", "commit_index", "last_applied",
                     "last_log_index", "snapshot_index"]) {
      tr.append(el("td", {"data-field": f}));
    }
    const td = el("td");
    for (const a of ["kill", "restart", "pause", "resume", "isolate"]) {
      const b = el("button", {type: "button", "data-action": a, "data-node": id, id: `${a}-${id}`}, a);
      b.addEventListener("click", () => a === "isolate" ? net({action: "isolate", node: id})
                                                        : post("/api/node", {node: id, action: a}));
      td.append(b);
    }
    tr.append(td);
    tbody.append(tr);
  }
  for (const sel of document.querySelectorAll("select.nodes")) {
    sel.replaceChildren(...s.ids.map((id) => el("option", {}, id)));
  }
  for (const sel of document.querySelectorAll("select.endpoints")) {
    sel.replaceChildren(...["*", "client", ...s.ids].map((id) => el("option", {}, id)));
  }
  $("#cut-form [name=to]").value = s.ids[1];
  $("#split-boxes").replaceChildren(...s.ids.map((id) => {
    const l = el("label");
    l.append(el("input", {type: "checkbox", value: id, id: `side-${id}`}), id + " ");
    return l;
  }));
}

function drawTable(s) {
  for (const n of s.nodes) {
    const tr = $(`#row-${n.id}`);
    const st = n.status || {};
    const role = n.process === "down" ? "" : n.status ? st.role : "no reply";
    tr.dataset.process = n.process;
    tr.dataset.role = role;
    const v = {id: n.id, process: n.process, role, term: st.term, voted_for: st.voted_for ?? (n.status ? "-" : ""),
               leader: st.leader ?? (n.status ? "-" : ""), commit_index: st.commit_index, last_applied: st.last_applied,
               last_log_index: st.last_log_index, snapshot_index: st.snapshot_index ?? (n.status ? "-" : "")};
    for (const td of tr.querySelectorAll("td[data-field]")) {
      const x = v[td.dataset.field];
      td.textContent = x === undefined || x === null ? "" : x;
    }
  }
}

function drawLogs(s) {
  const box = $("#logs");
  const lasts = s.nodes.filter((n) => n.log).map((n) => n.status ? Math.max(n.status.last_log_index, lastOf(n)) : lastOf(n));
  const top = Math.max(0, ...lasts);
  const from = Math.max(1, top - LOG_WINDOW + 1);
  const rows = [];
  const head = el("div", {class: "lrow"});
  head.append(el("span", {class: "lname"}, "index"));
  for (let i = from; i <= top; i++) head.append(el("span", {class: "box idx"}, i % 5 === 0 || i === from ? i : ""));
  rows.push(head);
  for (const n of s.nodes) {
    const row = el("div", {class: "lrow", id: `log-${n.id}`});
    row.append(el("span", {class: "lname"}, n.id));
    if (!n.log) {
      row.append(el("span", {class: "note"}, n.process !== "up" ? n.process : n.status ? "no log_tail" : "no reply"));
    } else {
      const terms = new Map(n.log);
      const commit = n.status ? n.status.commit_index : 0;
      const end = lastOf(n);
      if (end < from) {  // all of this log is left of the window: say how far behind it is
        row.append(el("span", {class: "note behind"}, `log ends at ${end}: ${top - end} entries behind`));
        rows.push(row);
        continue;
      }
      for (let i = from; i <= top; i++) {
        if (terms.has(i)) {
          const t = terms.get(i);
          row.append(el("span", {class: `box${i > commit ? " uncommitted" : ""}`, style: `background:${termColor(t)}`,
                                 title: `index ${i}, term ${t}${i > commit ? ", not committed" : ""}`}, t));
        } else if (n.base_index !== null && i <= n.base_index) {
          row.append(el("span", {class: "box snap", title: `index ${i}: in the snapshot`}, "s"));
        } else {
          row.append(el("span", {class: "box empty"}));
        }
      }
    }
    rows.push(row);
  }
  box.replaceChildren(...rows);
}

const lastOf = (n) => (n.last_index ?? 0);

function drawNet(s) {
  const p = s.proxy;
  const parts = [];
  if (!p.ok) parts.push("the proxy does not answer");
  if (p.partition) parts.push(`partition: ${p.partition.map((g) => g.join(",")).join(" | ")}`);
  for (const b of p.blocks) parts.push(`cut ${b.from}→${b.to}`);
  for (const r of p.rules) {
    parts.push(`${r.from}→${r.to}: loss ${r.drop}, delay ${r.delay_ms}±${r.jitter_ms} ms, dup ${r.duplicate}`);
  }
  parts.push(`client traffic into the proxy: ${Math.round(p.client_rate)} datagrams/s`);
  $("#net-state").textContent = parts.join("; ");
}

// ---- load chart, check, scenario, events -----------------------------------------------------

function drawLoad(s) {
  const load = s.load;
  const pts = load.series;
  const lastPt = pts[pts.length - 1] || {};
  $("#load-text").textContent = load.running
    ? `${load.clients} clients: ${lastPt.ops_s ?? 0} ops/s, p50 ${lastPt.p50_ms ?? "-"} ms, p99 ${lastPt.p99_ms ?? "-"} ms; ${load.ops} ops recorded`
    : `stopped; ${load.ops} ops recorded`;
  const c = $("#chart"), g = c.getContext("2d");
  g.clearRect(0, 0, c.width, c.height);
  const maxOps = Math.max(10, ...pts.map((p) => p.ops_s));
  const maxLat = Math.max(5, ...pts.map((p) => p.p99_ms || 0));
  const w = c.width / 120, h = c.height - 14;
  pts.forEach((p, i) => {
    g.fillStyle = "#90caf9";
    const bh = (p.ops_s / maxOps) * h;
    g.fillRect(i * w, h - bh + 12, Math.max(1, w - 1), bh);
  });
  for (const [key, color] of [["p50_ms", "#2e7d32"], ["p99_ms", "#c62828"]]) {
    g.strokeStyle = color;
    g.beginPath();
    let started = false;
    pts.forEach((p, i) => {
      if (p[key] === null) { started = false; return; }
      const y = h - (p[key] / maxLat) * h + 12;
      if (started) g.lineTo(i * w + w / 2, y); else g.moveTo(i * w + w / 2, y);
      started = true;
    });
    g.stroke();
  }
  g.fillStyle = "#333";
  g.font = "10px sans-serif";
  g.fillText(`bars: ops/s (max ${maxOps})   green p50, red p99 latency (max ${maxLat} ms)`, 4, 10);
  if (s.check) showCheck(s.check);
}

let shownCheck = 0;
function showCheck(ck) {
  const r = $("#check-result");
  r.textContent = ck.summary;
  r.className = ck.verdict === "ok" ? "ok-text" : "bad-text";
  r.dataset.verdict = ck.verdict;
  if (ck.html && ck.n !== shownCheck) {
    shownCheck = ck.n;
    const a = $("#check-link");
    a.href = ck.html;
    a.hidden = false;
    const f = $("#check-frame");
    f.src = ck.html;
    f.hidden = false;
  }
}

function drawScenario(s) {
  const sc = s.scenario;
  if (!sc.name) return;
  $("#scenario-state").textContent = sc.running ? `${sc.name}: running…`
    : `${sc.name}: ${sc.passed === null ? "" : sc.passed ? "PASS" : "FAIL"}`;
  $("#scenario-lines").textContent = sc.lines.join("\n");
}

function drawEvents(s) {
  const ol = $("#events");
  ol.replaceChildren(...s.events.slice(-80).reverse().map((e) =>
    el("li", {class: e.kind, "data-kind": e.kind}, `${e.wall}  t=${e.t.toFixed(2)}s  ${e.text}`)));
}

function render(s) {
  last = s;
  buildControls(s);
  const leader = s.leader ? s.nodes.find((n) => n.id === s.leader) : null;
  $("#leader-name").textContent = s.leader || "none";
  $("#leader-term").textContent = leader && leader.status ? leader.status.term : "-";
  $("#clock").textContent = s.t.toFixed(1);
  drawRing(s);
  drawTable(s);
  drawLogs(s);
  drawNet(s);
  drawLoad(s);
  drawScenario(s);
  drawEvents(s);
}

// ---- actions -----------------------------------------------------------------------------

async function net(body) {
  const r = await post("/api/net", body);
  if (r.ok) say(`network: ${body.action} done`);
  return r;
}

function formValues(form) {
  return Object.fromEntries(new FormData(form).entries());
}

function wire() {
  for (const b of document.querySelectorAll("#cut-form [data-net]")) {
    b.addEventListener("click", () => {
      const v = formValues($("#cut-form"));
      net({action: b.dataset.net, from: v.from, to: v.to, both: v.both === "on"});
    });
  }
  $("#split-btn").addEventListener("click", () => {
    const side = [...document.querySelectorAll("#split-boxes input:checked")].map((i) => i.value);
    net({action: "split", side});
  });
  $("#heal-btn").addEventListener("click", () => net({action: "heal"}));
  $("#reset-btn").addEventListener("click", () => net({action: "reset"}));
  $("#rule-btn").addEventListener("click", () => {
    const v = formValues($("#rule-form"));
    net({action: "rule", from: v.from, to: v.to, loss: Number(v.loss) / 100, delay_ms: Number(v.delay_ms),
         jitter_ms: Number(v.jitter_ms), duplicate: Number(v.duplicate) / 100});
  });
  $("#clear-btn").addEventListener("click", () => {
    const v = formValues($("#rule-form"));
    net({action: "clear", from: v.from, to: v.to});
  });
  $("#op-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const v = formValues($("#op-form"));
    const body = {op: v.op, key: v.key, node: v.node};
    if (v.op === "set" || v.op === "cas") body.value = v.value;
    if (v.op === "cas") body.expected = v.expected;
    const out = $("#op-result");
    out.textContent = `${v.op} ${v.key} → ${v.node} …`;
    out.dataset.state = "pending";
    const r = await post("/api/op", body);
    if (!r.ok) {
      out.textContent = `refused: ${r.error}`;
    } else {
      out.textContent = `${r.op} ${r.key} sent to ${r.sent_to}: ${r.outcome}` +
        (r.outcome === "ok" || r.outcome === "cas_failed" ? ` value ${JSON.stringify(r.value)}` : "") +
        `\nanswered by ${r.node ?? "nobody"} in ${r.latency_ms} ms` +
        (r.attempts.length > 1 ? `\nattempts: ${r.attempts.join("; ")}` : "");
    }
    out.dataset.state = r.ok ? r.outcome : "error";
    out.dataset.value = r.ok && r.value !== null && r.value !== undefined ? r.value : "";
    out.dataset.node = r.ok && r.node ? r.node : "";
  });
  $("#load-start").addEventListener("click", () => post("/api/load", {action: "start", clients: Number($("#load-clients").value)}));
  $("#load-stop").addEventListener("click", () => post("/api/load", {action: "stop"}));
  $("#check-btn").addEventListener("click", async () => {
    const r = $("#check-result");
    r.textContent = "checking…";
    r.dataset.verdict = "";
    const ck = await post("/api/check", {});
    if (ck.ok) showCheck(ck); else r.textContent = ck.error;
  });
  $("#scenario-btn").addEventListener("click", () => post("/api/scenario", {name: $("#scenario-name").value}));
  fetch("/api/scenarios").then((r) => r.json()).then((d) => {
    $("#scenario-name").replaceChildren(...d.scenarios.map((n) => el("option", {}, n)));
  });
}

function connect() {
  const es = new EventSource("/events");
  es.addEventListener("open", () => { $("#conn").textContent = "live"; $("#conn").className = "ok"; });
  es.addEventListener("error", () => { $("#conn").textContent = "disconnected (retrying)"; $("#conn").className = "bad"; });
  es.addEventListener("state", (ev) => {
    const now = performance.now();
    updates.push(now);
    while (updates.length && updates[0] < now - 1000) updates.shift();
    $("#update-rate").textContent = updates.length;
    render(JSON.parse(ev.data));
  });
}

wire();
connect();
