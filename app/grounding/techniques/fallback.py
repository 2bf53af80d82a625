"""Upstreams that cannot continue a prefill or follow a JSON schema refuse the request
(HTTP 400/422); the gateway then sends the prompt-only ``grounded`` request and says so in
``culturesafe.technique_fallback``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TypeVar

from app.backends.base import JSON
from app.backends.errors import UpstreamStatusError
from app.grounding.plan import GroundingPlan

T = TypeVar("T")


async def send_with_fallback(
    send: Callable[[JSON], Awaitable[T]],
    body_for: Callable[[GroundingPlan], JSON],
    plan: GroundingPlan,
) -> tuple[T, GroundingPlan]:
    """``send(body_for(plan))``; on a refusal of the technique, the prompt-only plan."""
    try:
        return await send(body_for(plan)), plan
    except UpstreamStatusError as exc:
        technique = plan.technique
        if technique is None or technique.fallback_messages is None:
            raise
        if exc.status_code not in (400, 422):
            raise
        fallback = replace(
            plan,
            messages=technique.fallback_messages,
            technique=None,
            technique_fallback=(
                f"the upstream refused the {technique.technique} request "
                f"(HTTP {exc.status_code}); the prompt-only method was used"
            ),
        )
        return await send(body_for(fallback)), fallback
