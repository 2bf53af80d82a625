"""The protective middleware around every route, in one place because order matters.

From the outside in: request id and access log (so even refused requests are logged with
an id), CORS (only when ``cors_origins`` is set; outside auth, so browser preflights are
answered without a key), API keys, then limits (which need the key for per-key rates).
All are pure ASGI: streamed responses are never buffered.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from app.config import Settings
from app.http.limits import LimitsMiddleware
from app.http.request_context import REQUEST_ID_HEADER, RequestContextMiddleware, configure_logging
from app.http.security import ApiKeyMiddleware, KeyRing


def add_protective_middleware(app: FastAPI, settings: Settings) -> None:
    """Configure logging and install request context, CORS, API keys and limits.

    Raises:
        ValueError: the keys file cannot be read or holds no key.
    """
    configure_logging(settings)
    keys = KeyRing.from_settings(settings)
    # add_middleware wraps what is there: the last one added is the outermost.
    app.add_middleware(LimitsMiddleware, settings=settings)
    app.add_middleware(ApiKeyMiddleware, keys=keys)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", REQUEST_ID_HEADER],
            expose_headers=[REQUEST_ID_HEADER, "Retry-After"],
        )
    app.add_middleware(RequestContextMiddleware, log_content=settings.log_content)
