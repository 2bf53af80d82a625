"""The errors grounding raises (subclasses of :class:`app.errors.GatewayError`)."""

from __future__ import annotations

from app.errors import GatewayError


class RetrievalFailed(GatewayError):
    """The knowledge base could not be searched; the request was not sent (503)."""

    status_code = 503
    type = "service_unavailable"
    code = "retrieval_failed"
