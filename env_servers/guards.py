"""What every server here puts in front of its routes, written once: an optional bearer token, a
request body limit, and validation errors that name the problem without echoing the input.

``guard(app, ...)`` wraps a FastAPI app in an ASGI middleware that, before any route runs:
  - answers 401 when a token is set and the request (other than ``GET /health``) lacks it;
  - answers 413 when the body is over ``max_request_bytes``, declared (Content-Length) or streamed
    (chunked). The whole body is read here first, so FastAPI never sees a cut-off body (which it
    would answer with a 400).
It also installs a 422 handler listing each validation error's location, message and type: never the
input, which may be megabytes, or values (NaN, 1e999) that JSON cannot even encode.

``serve(app, ...)`` runs such an app with uvicorn, keeping idle connections open ``KEEP_ALIVE_S``.
"""
from __future__ import annotations

import json
import os
import secrets
from collections import Counter
from typing import Any

from sdar_gym.core import ConfigError

MAX_REQUEST_BYTES = 1 << 20
"""Default body limit of the servers."""
OPEN_PATHS = frozenset({"/health"})
"""Paths served without the token."""
MAX_MESSAGE_CHARS = 300
"""Longest validation message sent back."""
LOOPBACK = ("127.0.0.1", "localhost", "::1")
KEEP_ALIVE_S = 75
"""Seconds an idle keep-alive connection stays open (nginx's default). It must outlast both the time
clients keep a connection for reuse (httpx 5 s, aiohttp 15 s) and any stall of the server's event loop:
uvicorn's default, 5 s, equals httpx's, and after a loop stall of 5 s (an ALFWorld server on busy
cores) uvicorn ran its due close before reading requests already waiting on those connections, which
the kernel then reset (ReadError on the client)."""


def resolve_token(token: str | None, host: str) -> str | None:
    """The token a server runs with: the argument, else $SDAR_GYM_TOKEN; warns off loopback without one."""
    token = token or os.environ.get("SDAR_GYM_TOKEN") or None
    if host not in LOOPBACK and token is None:
        print("sdar-gym: warning: serving on a non-loopback interface without a token", flush=True)
    return token


def check_port(port: int) -> None:
    if not 0 < port < 65536:
        raise ConfigError(f"port must be in 1..65535, got {port}")


def serve(app: Any, host: str, port: int, log_level: str) -> None:
    """Run ``app`` with uvicorn on ``host:port``, idle connections kept ``KEEP_ALIVE_S``."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_keep_alive=KEEP_ALIVE_S)


def guard(app: Any, *, token: str | None = None, max_request_bytes: int = MAX_REQUEST_BYTES,
          counters: Counter | None = None) -> Any:
    """``app`` behind the token check and body limit, with input-free 422s. ``counters`` (optional)
    counts ``requests``, ``unauthorized``, ``too_large`` and ``client_errors``."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    counters = counters if counters is not None else Counter()

    async def invalid_request(request: Any, error: RequestValidationError) -> JSONResponse:
        counters["client_errors"] += 1
        detail = [{"loc": [str(part) for part in e.get("loc", ())], "msg": str(e.get("msg", ""))[:MAX_MESSAGE_CHARS],
                   "type": str(e.get("type", ""))} for e in error.errors()]
        return JSONResponse(status_code=422, content={"detail": detail})

    app.add_exception_handler(RequestValidationError, invalid_request)
    return _Guard(app, token, max_request_bytes, counters)


class _Guard:
    """The ASGI middleware of :func:`guard`."""

    def __init__(self, app: Any, token: str | None, max_bytes: int, counters: Counter) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode() if token is not None else None
        self.max_bytes = max_bytes
        self.counters = counters

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        self.counters["requests"] += 1
        headers = dict(scope["headers"])
        if self.expected is not None and scope["path"] not in OPEN_PATHS:
            if not secrets.compare_digest(headers.get(b"authorization", b""), self.expected):
                self.counters["unauthorized"] += 1
                return await _reply(send, 401, "missing or wrong bearer token")
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            return await self._too_large(send)
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                return await self._too_large(send)
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, send: Any) -> None:
        self.counters["too_large"] += 1
        await _reply(send, 413, f"request body over {self.max_bytes} bytes")


async def _reply(send: Any, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
