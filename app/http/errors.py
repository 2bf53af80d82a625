"""The errors the HTTP plumbing answers before any route runs (subclasses of
:class:`app.errors.GatewayError`): a missing or wrong key, a refused admin route, a body
too large, a rate limit."""

from __future__ import annotations

from app.errors import GatewayError


class AuthenticationFailed(GatewayError):
    status_code = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PayloadTooLarge(GatewayError):
    status_code = 413
    type = "invalid_request_error"
    code = "request_too_large"


class RateLimited(GatewayError):
    status_code = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class AdminKeyRequired(GatewayError):
    status_code = 403
    type = "permission_error"
    code = "admin_key_required"
