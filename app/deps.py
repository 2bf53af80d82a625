"""Typed dependencies: routes declare what they need (``ModelDep``, ``GroundingDep``...).

The long-lived objects are built once by the lifespan (``app.main``) and handed to
Starlette as lifespan state; these functions read them back per request. They are
``async def`` on purpose: FastAPI runs a plain ``def`` dependency in a worker thread, and
that hop (three per chat request) was a tenth of the gateway's CPU on the ``off`` path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from app.backends.base import ChatModel
from app.config import Settings
from app.grounding.service import GroundingService
from app.http.metrics import Metrics
from retrieval.protocols import Retriever


@dataclass(frozen=True)
class Services:
    """Everything the lifespan owns, as one lifespan-state entry."""

    settings: Settings
    metrics: Metrics
    model: ChatModel
    retriever: Retriever
    grounding: GroundingService


async def get_services(request: Request) -> Services:
    services = getattr(request.state, "services", None)
    if not isinstance(services, Services):
        raise RuntimeError("the app's lifespan did not run (use `with TestClient(app)`)")
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_settings(services: ServicesDep) -> Settings:
    return services.settings


async def get_model(services: ServicesDep) -> ChatModel:
    return services.model


async def get_retriever(services: ServicesDep) -> Retriever:
    return services.retriever


async def get_grounding(services: ServicesDep) -> GroundingService:
    return services.grounding


async def get_metrics(services: ServicesDep) -> Metrics:
    return services.metrics


SettingsDep = Annotated[Settings, Depends(get_settings)]
ModelDep = Annotated[ChatModel, Depends(get_model)]
RetrieverDep = Annotated[Retriever, Depends(get_retriever)]
GroundingDep = Annotated[GroundingService, Depends(get_grounding)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
