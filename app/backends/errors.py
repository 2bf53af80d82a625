"""The errors a model backend raises (subclasses of :class:`app.errors.GatewayError`):
unreachable (502), timed out (504), busy (503) or answering with an error status."""

from __future__ import annotations

from collections.abc import Mapping

from app.errors import GatewayError


class Overloaded(GatewayError):
    """Every upstream slot stayed busy for the whole queue timeout (back-pressure)."""

    status_code = 503
    type = "server_overloaded"
    code = "upstream_queue_timeout"


class UpstreamUnavailable(GatewayError):
    """The model server could not be reached, or broke the protocol (502)."""

    status_code = 502
    type = "upstream_error"
    code = "upstream_unavailable"


class UpstreamTimeout(GatewayError):
    status_code = 504
    type = "upstream_error"
    code = "upstream_timeout"


class UpstreamStatusError(GatewayError):
    """The upstream answered with an error status; 4xx pass through with its own body."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        type: str = "upstream_error",
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, param=param, code=code, headers=headers)
        self.status_code = status_code
        self.type = type
