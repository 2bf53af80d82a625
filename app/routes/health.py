"""``GET /healthz`` (the process is alive) and ``GET /readyz`` (it can serve)."""

from __future__ import annotations

from fastapi import APIRouter

from app.deps import ModelDep, RetrieverDep
from app.protocol import ErrorResponse, HealthStatus

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthStatus)
async def healthz() -> HealthStatus:
    """Alive: the process answers HTTP."""
    return HealthStatus(status="ok")


@router.get("/readyz", response_model=HealthStatus, responses={503: {"model": ErrorResponse}})
async def readyz(model: ModelDep, retriever: RetrieverDep) -> HealthStatus:
    """Ready: the index is loaded (the lifespan built it) and the upstream answers."""
    await model.check_ready()  # raises ServiceNotReady (503)
    return HealthStatus(
        status="ready", checks={"retriever": type(retriever).__name__, "upstream": "ok"}
    )
