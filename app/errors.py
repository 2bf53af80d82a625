"""The gateway's error hierarchy and the one place that maps it to OpenAI-shaped bodies.

Every error the gateway answers on purpose is a :class:`GatewayError`. The general ones
live here; each package keeps its own in its ``errors.py`` (``app.backends.errors``:
upstream unreachable, timed out, busy; ``app.grounding.errors``: retrieval failed;
``app.http.errors``: key, size and rate refusals). Code raises a typed error
(``UpstreamTimeout``, ``InvalidRequest``...), or lets through one of the few errors of
the packages the gateway calls that mean the server itself is misconfigured
(``eval``'s :class:`~eval.config.EvalDataError`); the handlers
registered by ``register_error_handlers`` turn it into a status code and the body
``{"error": {"message", "type", "param", "code"}}``. Details go to the log; the client
never sees a traceback or a raw exception string.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.protocol import ErrorInfo, ErrorResponse

log = logging.getLogger(__name__)


class GatewayError(Exception):
    """Base of every error the gateway answers on purpose."""

    status_code = 500
    type = "internal_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code or type(self).code
        self.headers = dict(headers or {})

    def info(self) -> ErrorInfo:
        return ErrorInfo(message=self.message, type=self.type, param=self.param, code=self.code)


class InvalidRequest(GatewayError):
    status_code = 400
    type = "invalid_request_error"


class NotFound(GatewayError):
    status_code = 404
    type = "not_found_error"


class ServiceNotReady(GatewayError):
    status_code = 503
    type = "service_unavailable"
    code = "not_ready"


class EvaluationDataUnavailable(GatewayError):
    """The server's evaluation dataset cannot be loaded: its operator must fix it (the
    client names no data path), so 503 without a ``Retry-After``."""

    status_code = 503
    type = "service_unavailable"
    code = "evaluation_data_unavailable"


def error_response(error: GatewayError) -> JSONResponse:
    body = ErrorResponse(error=error.info()).model_dump()
    return JSONResponse(body, status_code=error.status_code, headers=error.headers)


_UNION_TAGS = ("str", "int", "float", "bool", "dict", "list", "none")


def _param(loc: Sequence[int | str]) -> str | None:
    # Drop the request section and pydantic's union-branch tags ("str", "list[...]").
    parts = [
        p
        for p in loc
        if p not in ("body", "query", "path", "header", *_UNION_TAGS)
        and not (isinstance(p, str) and ("[" in p or "-" in p))
    ]
    if not parts:
        return None
    text = str(parts[0])
    for part in parts[1:]:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def validation_error(exc: RequestValidationError) -> InvalidRequest:
    """The first validation problem, with the offending field as ``param``."""
    errors: Sequence[Any] = exc.errors()
    if not errors:
        return InvalidRequest("Invalid request body.")
    first = errors[0]
    if first.get("type") == "json_invalid":
        return InvalidRequest("The request body is not valid JSON.", code="invalid_json")
    param = _param(first.get("loc", ()))
    if param is None:
        return InvalidRequest(f"Invalid request body: {first.get('msg', 'invalid')}.")
    return InvalidRequest(
        f"Invalid value for '{param}': {first.get('msg', 'invalid')}.", param=param
    )


async def _gateway_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GatewayError)
    if exc.status_code >= 500:
        log.warning("request failed: %s %s", type(exc).__name__, exc.message)
    return error_response(exc)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(validation_error(exc))


async def _evaluation_data(_: Request, exc: Exception) -> JSONResponse:
    # An EvalDataError: its path is the server's, for the log only.
    log.error("evaluation data unavailable: %s", exc)
    return error_response(EvaluationDataUnavailable(
        "The evaluation dataset configured on this server cannot be loaded (missing, "
        "unreadable or invalid); an operator must check CULTURESAFE_DATA_DIR."))


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    error = GatewayError(str(exc.detail), headers=exc.headers)
    error.status_code = exc.status_code
    error.type = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
    return error_response(error)


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return error_response(GatewayError("The server had an internal error.", code="internal_error"))


def register_error_handlers(app: FastAPI) -> None:
    """Map every error type to its OpenAI-shaped response (the only place that does)."""
    from eval.config import EvalDataError  # not at import time: eval loads the openai client

    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(EvalDataError, _evaluation_data)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
