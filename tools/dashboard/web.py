"""The HTTP side: the page, its JSON API and the Server-Sent Events stream.

    GET  /                    the page (static/index.html; no build step)
    GET  /events              text/event-stream: one `state` event per monitor tick (10 a second)
    GET  /api/state           the same snapshot once, as JSON
    GET  /api/scenarios       the faults/*.scenario files
    POST /api/node            {"node":"n2","action":"kill|restart|pause|resume"}
    POST /api/net             {"action":"cut|uncut","from":"n1","to":"n2","both":true}
                              {"action":"isolate","node":"n3"}  {"action":"split","side":["n1","n2"]}
                              {"action":"heal"} {"action":"reset"}
                              {"action":"rule","from":"n1","to":"*","loss":0.2,"delay_ms":30,"jitter_ms":0,"duplicate":0.1}
                              {"action":"clear","from":"n1","to":"*"}
    POST /api/op              {"op":"get|set|cas|delete","key":"x","value":"1","expected":"0","node":"n1"}
    POST /api/load            {"action":"start","clients":4} or {"action":"stop"}
    POST /api/scenario        {"name":"leader_crash.scenario"}
    POST /api/check           run lincheck on every operation recorded; the HTML timeline is at /checks/...

A bad request gets 400 (409 when valid but impossible now) with {"error": why}
and changes nothing. Blocking work runs on worker threads, never on the loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import re

from aiohttp import web

from .controls import BadRequest, Conflict

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
MAX_BODY_BYTES = 16 * 1024
SSE_CHECK_S = 0.03
MAX_STREAMS = 32          # open pages (event streams) at once


def _json(data, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, separators=(",", ":")))


async def _body(request: web.Request) -> dict:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise BadRequest(f"request body over {MAX_BODY_BYTES} bytes")
    raw = await request.content.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise BadRequest(f"request body over {MAX_BODY_BYTES} bytes")
    try:
        body = json.loads(raw or b"{}")
    except ValueError as e:
        raise BadRequest(f"body is not JSON: {e}") from None
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    return body


def make_app(monitor, controls, workload, checks_dir: str) -> web.Application:
    def blocking(fn):
        """A POST handler that validates and acts on a worker thread."""
        async def handler(request: web.Request) -> web.Response:
            try:
                body = await _body(request)
                result = await asyncio.get_running_loop().run_in_executor(None, fn, body)
                return _json(dict(result or {}, ok=True))
            except BadRequest as e:
                return _json({"ok": False, "error": str(e)}, 400)
            except Conflict as e:
                return _json({"ok": False, "error": str(e)}, 409)
            except Exception as e:  # a proxy that refused, a node that could not start: say so
                return _json({"ok": False, "error": f"{type(e).__name__}: {e}"}, 500)
        return handler

    def load(body: dict) -> dict:
        action = body.get("action")
        if action == "start":
            return workload.start_load(body)
        if action == "stop":
            return workload.stop_load(body)
        raise BadRequest(f"field 'action' must be 'start' or 'stop', got {action!r}")

    async def index(request):
        return web.FileResponse(os.path.join(STATIC, "index.html"), headers={"Cache-Control": "no-store"})

    async def state(request):
        return _json(monitor.snapshot()[1])

    async def scenarios(request):
        return _json({"scenarios": controls.scenarios()})

    streams = {"open": 0}

    async def events(request: web.Request) -> web.StreamResponse:
        if streams["open"] >= MAX_STREAMS:
            return _json({"ok": False, "error": f"{MAX_STREAMS} pages are open already"}, 503)
        streams["open"] += 1
        try:
            return await stream(request)
        finally:
            streams["open"] -= 1

    async def stream(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
        await resp.prepare(request)
        sent = -1
        try:
            while True:
                # Checked on the loop, no thread per page: the monitor publishes 10 times a second.
                version, snap = monitor.snapshot()
                if version == sent:
                    await asyncio.sleep(SSE_CHECK_S)
                    continue
                sent = version
                payload = json.dumps(snap, separators=(",", ":"))
                await resp.write(f"event: state\nid: {sent}\ndata: {payload}\n\n".encode())
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return resp

    async def check_file(request):
        name = request.match_info["name"]
        if not re.fullmatch(r"check-\d+\.(html|jsonl)", name):
            return _json({"ok": False, "error": "no such file"}, 404)
        path = os.path.join(checks_dir, name)
        if not os.path.exists(path):
            return _json({"ok": False, "error": "no such file"}, 404)
        ctype = "text/html" if name.endswith(".html") else "application/x-ndjson"
        return web.FileResponse(path, headers={"Content-Type": ctype})

    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_get("/", index)
    app.router.add_get("/events", events)
    app.router.add_get("/api/state", state)
    app.router.add_get("/api/scenarios", scenarios)
    app.router.add_post("/api/node", blocking(controls.node_action))
    app.router.add_post("/api/net", blocking(controls.net_action))
    app.router.add_post("/api/op", blocking(workload.op))
    app.router.add_post("/api/load", blocking(load))
    app.router.add_post("/api/scenario", blocking(controls.run_scenario))
    app.router.add_post("/api/check", blocking(lambda body: workload.check()))
    app.router.add_get("/checks/{name}", check_file)
    app.router.add_static("/static/", STATIC)
    return app
