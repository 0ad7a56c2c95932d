"""The Starlette app: the page, the static files, ``/api/*``, the recording WebSocket and the watch stream.

Routes (documented in the README):
    GET  /                  the page (files, record, watch)
    GET  /static/...        its scripts and styles (served here: no CDN)
    GET  /api/health        status, labels, limits (no token needed; it holds no data)
    POST /api/score         multipart field ``file`` -> {"summary": {...}, "windows": [...]} (score --format jsonl)
    WS   /ws/record         binary s16le PCM in (?rate=16000&channels=1), JSON messages out; text "stop" ends it
    GET  /api/mic/events    Server-Sent Events of the server's own microphone session (serve --mic)
With a token set, everything but /api/health and /static needs it: ``Authorization: Bearer T`` or ``?token=T``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import sys
import tempfile
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from monitor import __version__
from monitor.config import Config
from monitor.errors import MonitorError
from monitor.web.cli import is_loopback
from monitor.web.live import Hub, LiveSession
from monitor.web.scoring import UploadScoring
from monitor.web.uploads import UploadError, receive_upload

STATIC = Path(__file__).resolve().parent / "static"


@dataclass
class ServerState:
    cfg: Config
    scoring: UploadScoring
    token: str = ""  # "" = open
    mic: bool = False  # run a session on the server's own microphone (serve --mic)
    tmpdir: str = ""  # uploads and recording CSVs; "" = the system's temporary folder
    model: str = ""
    text: str = ""  # the transcriber used for uploads


def _token_of(conn: HTTPConnection) -> str:
    auth = conn.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return conn.query_params.get("token", "")


def _host_name(value: str) -> str:
    """The host of a Host header or an Origin's netloc, without its port ("[::1]:8765" -> "::1")."""
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _auth_error(conn: HTTPConnection, state: ServerState) -> tuple[int, str] | None:
    """Why ``conn`` is refused (status, message), or None. Without a token (a loopback server) the Host must be
    a loopback name, so a web page on another site cannot reach the server through DNS rebinding; a WebSocket
    must come from a page of this server (browsers do not apply CORS to WebSockets)."""
    origin = conn.headers.get("origin", "")
    if conn.scope["type"] == "websocket" and origin and origin != "null":
        if urlsplit(origin).netloc.lower() != conn.headers.get("host", "").lower():
            return 403, "a WebSocket from another site's page is refused"
    if not state.token:
        if not is_loopback(_host_name(conn.headers.get("host", "").lower())):
            return 403, ("this server answers only as 127.0.0.1 or localhost; to reach it from elsewhere, "
                         "use --host and a token")
        return None
    given = _token_of(conn)
    if not given:
        return 401, "this server needs its token: open the address printed at its start (…/?token=…)"
    if not secrets.compare_digest(given.encode(), state.token.encode()):
        return 403, "wrong token: open the address printed at the server's start (…/?token=…)"
    return None


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status)


def create_app(state: ServerState) -> Starlette:
    recordings = threading.BoundedSemaphore(state.cfg.web.max_recordings)
    counts = {"recordings": 0}
    mic: dict[str, Any] = {}

    def guard(request: Request) -> JSONResponse | None:
        bad = _auth_error(request, state)
        return _error(*bad) if bad else None

    async def page(request: Request) -> Response:
        bad = _auth_error(request, state)
        if bad:
            return HTMLResponse(f"<!doctype html><title>voice-monitor</title><p>{bad[1]}</p>", status_code=bad[0])
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def health(request: Request) -> JSONResponse:
        s = state.scoring
        return JSONResponse({
            "status": "ok", "version": __version__, "labels": list(s.labels), "model": state.model,
            "transcriber": state.text, "max_upload_mb": state.cfg.web.max_upload_mb,
            "max_parallel": s.max_parallel, "scoring": s.scoring, "waiting": s.waiting,
            "recordings": counts["recordings"], "max_recordings": state.cfg.web.max_recordings,
            "mic": "hub" in mic, "token_required": bool(state.token),
        })

    async def score(request: Request) -> Response:
        refused = guard(request)
        if refused:
            return refused
        limit = int(state.cfg.web.max_upload_mb * 2**20)
        try:
            upload = await receive_upload(request.headers.get("content-type", ""),
                                          request.headers.get("content-length"), request.stream(),
                                          state.tmpdir or tempfile.gettempdir(), limit)
        except UploadError as exc:
            return _error(exc.status, exc.message)
        try:
            scored = await state.scoring.score(upload.path, upload.name)
        finally:
            upload.discard()
        if scored.failed:
            return _error(422, scored.error)
        return JSONResponse({"summary": scored.summary, "windows": scored.windows})

    async def record(ws: WebSocket) -> None:
        bad = _auth_error(ws, state)
        if bad:
            await ws.close(code=1008, reason=bad[1][:120])
            return
        await ws.accept()
        try:
            rate = int(ws.query_params.get("rate", "16000"))
            channels = int(ws.query_params.get("channels", "1"))
        except ValueError:
            await _ws_fail(ws, "rate and channels must be integers")
            return
        if not recordings.acquire(blocking=False):
            await _ws_fail(ws, f"{state.cfg.web.max_recordings} recordings are running already; try again later")
            return
        counts["recordings"] += 1
        try:
            await _record_session(ws, state, rate, channels)
        finally:
            counts["recordings"] -= 1
            recordings.release()

    async def mic_events(request: Request) -> Response:
        refused = guard(request)
        if refused:
            return refused
        hub: Hub | None = mic.get("hub")
        if hub is None:
            return _error(404, "no microphone session: start the server with `voice-monitor serve --mic`")
        return StreamingResponse(_sse(request, hub, mic), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def not_found(request: Request, exc: HTTPException) -> Response:
        if request.url.path.startswith("/api/"):
            return _error(exc.status_code, str(exc.detail))
        return HTMLResponse(f"<p>{exc.status_code}: {exc.detail}</p>", status_code=exc.status_code)

    async def server_error(request: Request, exc: Exception) -> Response:
        return _error(500, f"internal error ({type(exc).__name__}); see the server's log")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if state.mic:
            await _start_mic(state, mic)
        try:
            yield
        finally:
            if "session" in mic:
                end = await run_in_threadpool(mic["session"].stop, True)
                mic["hub"].close()
                csv_note = f"; CSV {mic['session'].csv.path} ({end['rows']} rows)" if end["rows"] is not None else ""
                print(f"voice-monitor serve: microphone session stopped after {end['position_s']:.1f} s: "
                      f"{end['windows']} windows{csv_note}", file=sys.stderr, flush=True)

    routes = [
        Route("/", page),
        Route("/api/health", health),
        Route("/api/score", score, methods=["POST"]),
        Route("/api/mic/events", mic_events),
        WebSocketRoute("/ws/record", record),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes, lifespan=lifespan,
                     exception_handlers={HTTPException: not_found, Exception: server_error})


async def _ws_fail(ws: WebSocket, message: str) -> None:
    with contextlib.suppress(Exception):
        await ws.send_json({"type": "error", "error": message})
        await ws.close(code=1011)


async def _record_session(ws: WebSocket, state: ServerState, rate: int, channels: int) -> None:
    from monitor.audio.push_source import PushSource

    loop = asyncio.get_running_loop()
    hub = Hub(loop)
    fd, csv_path = tempfile.mkstemp(prefix="recording-", suffix=".csv", dir=state.tmpdir or None)
    os.close(fd)
    try:
        try:
            source = PushSource(rate, channels, state.cfg.audio.ring_seconds, description="browser microphone")
            session = await run_in_threadpool(LiveSession, state.cfg, source, hub.publish, csv_path)
        except MonitorError as exc:
            await _ws_fail(ws, str(exc))
            return
        except Exception as exc:  # a bug must cost this recording only, with a message
            await _ws_fail(ws, f"the recording could not start (internal error: {type(exc).__name__}: {exc})")
            return
        queue = hub.listen(replay=False)
        await ws.send_json(session.hello())
        session.start()
        sender = asyncio.create_task(_forward(ws, queue))
        ticker = asyncio.create_task(_tick(session, hub))
        stopped = False
        try:
            while True:
                msg = await ws.receive()
                if msg["type"] == "websocket.disconnect":
                    break
                if msg.get("bytes"):
                    source.push(msg["bytes"])
                elif (msg.get("text") or "").strip() == "stop":
                    stopped = True
                    break
        except WebSocketDisconnect:
            pass
        finally:
            ticker.cancel()
            end = await run_in_threadpool(session.stop, not stopped)
            hub.close()
            await asyncio.gather(sender, return_exceptions=True)
        if stopped:
            end["csv"] = Path(csv_path).read_text(encoding="utf-8")
            with contextlib.suppress(Exception):
                await ws.send_json(end)
                await ws.close()
    finally:
        with contextlib.suppress(OSError):
            os.unlink(csv_path)


async def _forward(ws: WebSocket, queue: asyncio.Queue) -> None:
    with contextlib.suppress(Exception):
        while (m := await queue.get()) is not None:
            await ws.send_json(m)


async def _tick(session: LiveSession, hub: Hub, every_s: float = 0.5) -> None:
    while True:
        await asyncio.sleep(every_s)
        hub.publish(session.status())


async def _start_mic(state: ServerState, mic: dict[str, Any]) -> None:
    from monitor.audio.sources import MicSource

    a = state.cfg.audio
    hub = Hub(asyncio.get_running_loop())
    source = MicSource(a.device or None, block_ms=a.block_ms, ring_seconds=a.ring_seconds)
    out = state.cfg.output
    session = await run_in_threadpool(LiveSession, state.cfg, source, hub.publish, out.csv or None,
                                      out.csv_dir or None)
    hub.hello = session.hello()
    session.start()
    mic.update(hub=hub, session=session, ticker=asyncio.create_task(_tick(session, hub)))


async def _sse(request: Request, hub: Hub, mic: dict[str, Any]) -> AsyncIterator[str]:
    queue = hub.listen(replay=True)
    try:
        while True:
            try:
                m = await asyncio.wait_for(queue.get(), timeout=15.0)
            except TimeoutError:
                if await request.is_disconnected():
                    return
                yield ": keep-alive\n\n"
                continue
            if m is None:
                return
            yield f"data: {json.dumps(m, ensure_ascii=False)}\n\n"
    finally:
        hub.unlisten(queue)
