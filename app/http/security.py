"""API-key access control: ``Authorization: Bearer <key>`` on every route but health.

Keys come from ``Settings.api_keys`` and ``Settings.api_keys_file`` (chat keys) and
``Settings.admin_api_keys``. With no keys configured the gateway is open. With chat keys,
every route but ``/healthz`` and ``/readyz`` needs a chat or an admin key. With admin keys,
``/evaluate`` needs an admin key (a valid chat key there gets 403); without them it takes
chat keys like any other route.

Only SHA-256 digests of the keys are held, and a presented key is compared with every one
of them with :func:`hmac.compare_digest`, so the time taken does not depend on how much of
a key matched or which key it was. The matched key is remembered by label (``chat:0``,
``admin:1``) in the request state, for the rate limiter and the access log; the key itself
is never logged.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from app.config import Settings
from app.errors import GatewayError, error_response
from app.http.errors import AdminKeyRequired, AuthenticationFailed

OPEN_PATHS = frozenset({"/healthz", "/readyz"})
ADMIN_PREFIX = "/evaluate"


def read_keys_file(path: Path) -> tuple[str, ...]:
    """One key per line; blank lines and ``#`` comments skipped.

    Raises:
        ValueError: the file cannot be read or holds no key (an empty file must not
            silently turn authentication off).
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ValueError(f"CULTURESAFE_API_KEYS_FILE={path} cannot be read: {exc}") from exc
    keys = tuple(k for k in (line.strip() for line in lines) if k and not k.startswith("#"))
    if not keys:
        raise ValueError(f"CULTURESAFE_API_KEYS_FILE={path} holds no key")
    return keys


def chat_keys(settings: Settings) -> tuple[str, ...]:
    """Every chat key: ``api_keys`` then the keys file's (for code that calls the gateway
    itself, such as evaluation jobs)."""
    keys = tuple(k.get_secret_value() for k in settings.api_keys)
    if settings.api_keys_file is not None:
        keys += read_keys_file(settings.api_keys_file)
    return keys


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


@dataclass(frozen=True)
class KeyRing:
    """Digests of the configured chat and admin keys."""

    chat: tuple[bytes, ...] = ()
    admin: tuple[bytes, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        chat = list(chat_keys(settings))
        admin = [k.get_secret_value() for k in settings.admin_api_keys]
        if any(not k.strip() for k in [*chat, *admin]):
            raise ValueError("API keys must not be empty or blank")
        return cls(tuple(map(_digest, chat)), tuple(map(_digest, admin)))

    @property
    def enabled(self) -> bool:
        return bool(self.chat or self.admin)

    def identify(self, presented: str) -> str | None:
        """The label of the key presented (``chat:N`` or ``admin:N``), or None."""
        digest = _digest(presented)
        found: str | None = None
        # No early exit: every configured key is compared whatever matches first.
        for kind, digests in (("chat", self.chat), ("admin", self.admin)):
            for index, known in enumerate(digests):
                if hmac.compare_digest(digest, known) and found is None:
                    found = f"{kind}:{index}"
        return found

    def check(self, path: str, authorization: str | None) -> str | None:
        """The label of the key allowed on ``path``; None when the route is open.

        Raises:
            AuthenticationFailed: no key, a malformed header, or an unknown key (401).
            AdminKeyRequired: a valid chat key on an admin route (403).
        """
        admin_route = path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")
        required = self.admin if admin_route and self.admin else self.chat
        if path in OPEN_PATHS or not required:
            return None
        scheme, _, presented = (authorization or "").partition(" ")
        presented = presented.strip()
        if scheme.lower() != "bearer" or not presented:
            raise AuthenticationFailed(
                "Missing API key: send it as 'Authorization: Bearer <key>'.",
                code="missing_api_key",
                headers={"WWW-Authenticate": "Bearer"},
            )
        label = self.identify(presented)
        if label is None:
            raise AuthenticationFailed("Invalid API key.", headers={"WWW-Authenticate": "Bearer"})
        if admin_route and self.admin and not label.startswith("admin:"):
            raise AdminKeyRequired("This route requires an admin API key.")
        return label


class ApiKeyMiddleware:
    """Refuses requests without an acceptable key before any route code runs (pure ASGI)."""

    def __init__(self, app: ASGIApp, *, keys: KeyRing) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys.enabled:
            await self.app(scope, receive, send)
            return
        try:
            label = self.keys.check(scope["path"], Headers(scope=scope).get("authorization"))
        except GatewayError as error:
            await error_response(error)(scope, receive, send)
            return
        scope.setdefault("state", {})["api_key_id"] = label
        await self.app(scope, receive, send)
