"""Request ids and structured logs.

Every HTTP request gets an id: the client's ``X-Request-ID`` when it is a sane token,
otherwise a fresh one. The id is returned in the response header, held in a context
variable for the whole request (streamed bodies included) so every log line written while
serving it carries it, and closes the request with one JSON access line. Logs never hold
message content (unless ``Settings.log_content``) and never hold keys: the access line
names the key by its label (``chat:0``), set by :mod:`app.http.security`.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings

REQUEST_ID_HEADER = "x-request-id"
# Letters, digits and ._:- only: a client-chosen id must not inject text into log lines.
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_request_id: ContextVar[str | None] = ContextVar("culturesafe_request_id", default=None)

access_log = logging.getLogger("culturesafe.access")

# LogRecord's own attributes; anything else on a record came from ``extra=`` and is logged.
# (uvicorn's ``color_message`` only repeats the message with terminal colours.)
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "color_message",
}


def current_request_id() -> str | None:
    """The id of the request being served in this context, if any."""
    return _request_id.get()


def request_id_from(header: str | None) -> str:
    """The client's id when it is safe to log and echo, else a new random one."""
    if header is not None and _SAFE_REQUEST_ID.match(header):
        return header
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Stamps ``record.request_id`` so both formatters can print it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or current_request_id(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(settings: Settings) -> None:
    """Route every log line (uvicorn's included) through one request-id-aware handler.

    Idempotent: calling it again (one app per test) replaces the handler it installed.
    uvicorn's own access line is silenced because ours carries the request id.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    if settings.log_json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    handler.set_name("culturesafe")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "culturesafe"]:
        root.removeHandler(old)
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    # httpx logs every upstream call at INFO: a second line per request that our access
    # line already covers, and a measurable share of the pass-through CPU.
    logging.getLogger("httpx").setLevel(logging.WARNING)


class RequestContextMiddleware:
    """Outermost middleware: assigns the request id, echoes it, writes the access line.

    Pure ASGI, so streamed responses pass through unbuffered.
    """

    def __init__(self, app: ASGIApp, *, log_content: bool = False) -> None:
        self.app = app
        self.log_content = log_content

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(Headers(scope=scope).get(REQUEST_ID_HEADER))
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        token = _request_id.set(request_id)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            fields: dict[str, Any] = {
                "method": scope["method"],
                "path": scope["path"],
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                "client": (scope.get("client") or ("", 0))[0],
                "key_id": state.get("api_key_id"),
                "messages": state.get("message_count"),
                "chars": state.get("message_chars"),
            }
            if self.log_content and "request_messages" in state:
                fields["content"] = state["request_messages"]
            access_log.info("request", extra=fields)
            _request_id.reset(token)
