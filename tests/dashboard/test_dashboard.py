"""The dashboard in a real headless browser, against a real 5-node cluster.

Everything is done the way a person does it: by clicking the page and
reading what it draws (the ring's data attributes, the table, the form's
result). The HTTP API is used only to set up (heal, restart) and for the
bad-request checks.
"""

from __future__ import annotations

import os
import time
import urllib.request

try:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
except ImportError:  # the fixtures then skip (not root) or fail (root), saying which package is missing
    By = Select = None

from browser import Dashboard
from conftest import api, wait_until

RING = """return [...document.querySelectorAll('#ring g.node')].map(g =>
  ({id: g.id.slice(5), process: g.dataset.process, role: g.dataset.role,
    term: g.dataset.term === '' ? null : Number(g.dataset.term),
    cutoff: g.querySelector('.isolated') !== null}))"""
LINKS = """return [...document.querySelectorAll('#ring line.link')].map(l =>
  ({from: l.dataset.from, to: l.dataset.to, cut: l.dataset.cut}))"""


def ring(driver) -> dict:
    return {n["id"]: n for n in driver.execute_script(RING)}


def leaders(driver) -> list:
    return [n for n, v in ring(driver).items() if v["role"] == "leader" and v["process"] == "up"]


def shown_leader(driver):
    """The node the page names as leader, when the ring agrees: exactly one node drawn as leader."""
    name = driver.find_element(By.ID, "leader-name").text
    ls = leaders(driver)
    return name if ls == [name] else None


def click(driver, element_id: str) -> None:
    driver.find_element(By.ID, element_id).click()


def send_op(driver, op: str, key: str, node: str, value: str = "") -> dict:
    form = driver.find_element(By.ID, "op-form")
    Select(form.find_element(By.NAME, "op")).select_by_visible_text(op)
    for name, text in (("key", key), ("value", value)):
        box = form.find_element(By.NAME, name)
        box.clear()
        box.send_keys(text)
    Select(form.find_element(By.NAME, "node")).select_by_visible_text(node)
    driver.execute_script("document.querySelector('#op-result').dataset.state = 'sent'")
    click(driver, "op-btn")
    out = driver.find_element(By.ID, "op-result")
    wait_until(lambda: out.get_attribute("data-state") not in ("sent", "pending"), 10.0, f"the reply to {op} {key}")
    return {"state": out.get_attribute("data-state"), "value": out.get_attribute("data-value"),
            "node": out.get_attribute("data-node"), "text": out.text}


def test_page_shows_five_nodes_and_one_leader(dashboard, driver, healthy):
    wait_until(lambda: len(ring(driver)) == 5, 5.0, "five nodes in the ring")
    leader = wait_until(lambda: shown_leader(driver), 5.0, "exactly one leader drawn")
    nodes = ring(driver)
    assert all(v["process"] == "up" for v in nodes.values()), nodes
    assert [n for n, v in nodes.items() if v["role"] == "leader"] == [leader]
    assert sorted(v["role"] for n, v in nodes.items() if n != leader) == ["follower"] * 4, nodes
    rows = driver.find_elements(By.CSS_SELECTOR, "#nodes tbody tr")
    assert len(rows) == 5
    # The logs are drawn from log_tail: one row of term-coloured boxes per node.
    wait_until(lambda: all(len(driver.find_elements(By.CSS_SELECTOR, f"#log-n{i} .box:not(.empty)")) >= 1
                           for i in range(1, 6)), 5.0, "a log box in every node's row")


def test_updates_are_pushed_at_least_five_times_a_second(dashboard, driver, healthy):
    rate = wait_until(lambda: int(driver.find_element(By.ID, "update-rate").text or 0) >= 5 and
                      int(driver.find_element(By.ID, "update-rate").text), 5.0, "5 or more updates a second")
    assert rate >= 5


def test_killing_the_leader_from_the_page_shows_a_new_leader_within_3s(dashboard, driver, healthy):
    old = wait_until(lambda: shown_leader(driver), 5.0, "a leader on the page")
    began = time.monotonic()
    click(driver, f"kill-{old}")
    wait_until(lambda: ring(driver)[old]["process"] == "down", 3.0, f"{old} drawn down")
    new = wait_until(lambda: (lambda x: x if x and x != old else None)(shown_leader(driver)), 3.0,
                     f"a new leader after killing {old}")
    took = time.monotonic() - began
    assert new != old and took <= 3.0, f"new leader {new} after {took:.2f} s"
    events = driver.find_element(By.ID, "events").text
    assert f"kill -9 {old}" in events and "leader" in events
    click(driver, f"restart-{old}")
    wait_until(lambda: ring(driver)[old]["process"] == "up" and ring(driver)[old]["role"] == "follower", 8.0,
               f"{old} back as a follower")


def test_set_from_the_form_then_get_from_another_node(dashboard, driver, healthy):
    key, value = f"k{os.getpid()}", f"v{time.time_ns()}"
    r = send_op(driver, "set", key, "n1", value)
    assert r["state"] == "ok", r
    got = send_op(driver, "get", key, "n5")
    assert got["state"] == "ok" and got["value"] == value, got
    assert "answered by" in got["text"]


def test_isolating_a_node_shows_it_cut_off_and_its_term_stays(dashboard, driver, healthy):
    leader = wait_until(lambda: shown_leader(driver), 5.0, "a leader")
    victim = next(n for n in sorted(ring(driver)) if n != leader)
    term_before = ring(driver)[victim]["term"]
    click(driver, f"isolate-{victim}")
    wait_until(lambda: ring(driver)[victim]["cutoff"], 3.0, f"{victim} drawn cut off")
    cut = [l for l in driver.execute_script(LINKS) if victim in (l["from"], l["to"])]
    assert len(cut) == 8 and all(l["cut"] == "partition" for l in cut), cut
    others = [l for l in driver.execute_script(LINKS) if victim not in (l["from"], l["to"])]
    assert all(l["cut"] == "" for l in others), others
    # Several election timeouts (150-300 ms) cut off: with pre-vote the node
    # campaigns without raising its term, and the majority keeps its leader.
    time.sleep(2.0)
    v = ring(driver)[victim]
    assert v["role"] in ("candidate", "follower") and v["term"] == term_before, v
    assert shown_leader(driver) == leader
    click(driver, "heal-btn")
    wait_until(lambda: not ring(driver)[victim]["cutoff"] and ring(driver)[victim]["role"] == "follower"
               and ring(driver)[victim]["term"] == ring(driver)[leader]["term"], 5.0, f"{victim} back as a follower")
    assert shown_leader(driver) == leader, "rejoining must not depose the leader (pre-vote)"


def test_check_button_reports_linearizable_for_the_pages_load(dashboard, driver, healthy):
    clients = driver.find_element(By.ID, "load-clients")
    clients.clear()
    clients.send_keys("4")
    click(driver, "load-start")
    text = driver.find_element(By.ID, "load-text")
    wait_until(lambda: "4 clients" in text.text and int(text.text.split(";")[-1].split()[0]) >= 200, 15.0,
               "200 operations of load recorded")
    click(driver, "check-btn")
    result = driver.find_element(By.ID, "check-result")
    wait_until(lambda: result.get_attribute("data-verdict"), 40.0, "lincheck's verdict")
    assert result.get_attribute("data-verdict") == "ok", result.text
    assert result.text.startswith("linearizable:"), result.text
    assert "stopped" in text.text, "the check stops the load first"
    link = driver.find_element(By.ID, "check-link").get_attribute("href")
    with urllib.request.urlopen(link, timeout=10) as r:
        assert r.status == 200 and b"<html" in r.read(2000).lower()


def test_bad_requests_get_4xx_and_change_nothing(dashboard, healthy):
    before = healthy
    bad = [("/api/node", {"node": "n9", "action": "kill"}, 400, "unknown node"),
           ("/api/node", {"node": "n1", "action": "explode"}, 400, "unknown action"),
           ("/api/net", {"action": "rule", "from": "n1", "to": "n2", "loss": 1.5}, 400, "loss"),
           ("/api/net", {"action": "split", "side": ["n1", "n2", "n3", "n4", "n5"]}, 400, "each side"),
           ("/api/net", {"action": "cut", "from": "n1", "to": "nope"}, 400, "'to'"),
           ("/api/op", {"op": "set", "key": "x", "node": "n1"}, 400, "'value'"),
           ("/api/load", {"action": "start", "clients": 1000}, 400, "clients"),
           ("/api/scenario", {"name": "../../etc/passwd"}, 400, "unknown scenario"),
           ("/api/node", {"node": before["leader"], "action": "restart"}, 409, "kill it before")]
    for path, body, code, words in bad:
        status, reply = api(dashboard, path, body)
        assert status == code and reply["ok"] is False and words in reply["error"], (path, body, status, reply)
    status, reply = api(dashboard, "/api/net", raw=b"{not json")
    assert status == 400 and "not JSON" in reply["error"]
    _, after = api(dashboard, "/api/state")
    assert after["proxy"]["rules"] == [] and after["proxy"]["partition"] is None and after["proxy"]["blocks"] == []
    assert all(n["process"] == "up" for n in after["nodes"])
    assert not after["load"]["running"]


def test_ctrl_c_stops_every_process_it_started():
    from conftest import _require_browser
    _require_browser()  # only for the packages (aiohttp); no browser is used here
    d = Dashboard().start()
    try:
        pid = d.proc.pid
        children = set()
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                children |= {int(x) for x in f.read().split()}
        assert len(children) == 6, f"expected the proxy and 5 nodes, found pids {children}"
    finally:
        status = d.stop()
    assert status == 0, d.final_log
    alive = [p for p in children if os.path.exists(f"/proc/{p}") and
             open(f"/proc/{p}/stat").read().split(") ")[1][0] not in "ZX"]
    assert not alive, f"left running: {alive}"


def test_a_scenario_runs_from_the_page_and_its_steps_show(dashboard, driver, healthy):
    Select(driver.find_element(By.ID, "scenario-name")).select_by_visible_text("leader_crash.scenario")
    click(driver, "scenario-btn")
    state = driver.find_element(By.ID, "scenario-state")
    wait_until(lambda: "running" in state.text, 5.0, "the scenario to start")
    wait_until(lambda: state.text.endswith(("PASS", "FAIL")), 40.0, "the scenario to end")
    lines = driver.find_element(By.ID, "scenario-lines").text
    assert state.text == "leader_crash.scenario: PASS", lines
    assert "kill leader" in lines and "expect writes-ok: PASS" in lines, lines
