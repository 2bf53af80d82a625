"""``create_app(settings)``: the FastAPI application, its lifespan and error handlers.

The lifespan owns everything long-lived: the embedded model server (when
``backend=embedded``), the retriever (embedder + FAISS index), and the pooled
``httpx.AsyncClient`` to the model server. The model server and the retriever start
concurrently, in worker threads, since both are slow and blocking. Nothing heavy happens
at import time, and each app has its own metrics registry.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import httpx
from fastapi import FastAPI

from app.backends.embedded import EmbeddedLlamaServer
from app.backends.upstream import UpstreamChatModel
from app.config import Settings
from app.deps import Services
from app.errors import register_error_handlers
from app.grounding.service import GroundingService
from app.http.metrics import Metrics, MetricsMiddleware
from app.http.middleware import add_protective_middleware
from app.routes import chat, evaluate, health, models
from app.routes import metrics as metrics_route
from retrieval.protocols import Retriever

if TYPE_CHECKING:
    from retrieval.remote_embedder import RemoteEmbedder

log = logging.getLogger(__name__)


def _http_client(settings: Settings, base_url: str) -> httpx.AsyncClient:
    headers = {}
    if settings.upstream_api_key is not None and settings.backend == "upstream":
        headers["Authorization"] = f"Bearer {settings.upstream_api_key.get_secret_value()}"
    return httpx.AsyncClient(
        base_url=base_url,
        headers=headers,
        timeout=httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s),
        limits=httpx.Limits(max_connections=settings.max_concurrent_upstream + 8),
    )


def _remote_embedder(settings: Settings) -> RemoteEmbedder:
    """The remote query embedder (blocking: asks the service for its dimension)."""
    from retrieval.remote_embedder import RemoteEmbedder

    assert settings.embedder_url is not None
    key = settings.embedder_api_key
    return RemoteEmbedder(
        settings.embedder_url,
        settings.embedder_remote_model,
        api_key=key.get_secret_value() if key is not None else None,
        timeout_s=settings.embedder_timeout_s,
        truncate_tokens=settings.embedder_truncate_tokens,
    )


def _lifespan(settings: Settings, metrics: Metrics, retriever: Retriever | None) -> Any:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with AsyncExitStack() as stack:
            base_url, model_name = settings.upstream_base_url, settings.upstream_model
            built: dict[str, Any] = {"retriever": retriever}
            # torch threads, before any worker thread encodes; the onnx backends never
            # import torch on the request path (their threads are set per session).
            remote = settings.embedder_url is not None
            if settings.embedder_threads and settings.embedder_backend == "torch" and not remote:
                from retrieval.embedding_cache import set_torch_threads

                set_torch_threads(settings.embedder_threads)
            server: EmbeddedLlamaServer | None = None
            if settings.backend == "embedded":
                server = EmbeddedLlamaServer(
                    settings.embedded_model_path,
                    model_name=settings.embedded_model_name,
                    ctx_size=settings.embedded_ctx_size,
                    threads=settings.embedded_threads,
                    parallel=settings.embedded_parallel,
                )
                stack.push_async_callback(anyio.to_thread.run_sync, server.stop)

            async def start_server() -> None:
                if server is not None:
                    built["base_url"] = await anyio.to_thread.run_sync(
                        server.start, settings.embedded_startup_timeout_s
                    )
                    log.info("embedded model ready in %.1f s", server.startup_s or 0.0)

            async def load_retriever() -> None:
                if built["retriever"] is None:
                    built["retriever"] = await anyio.to_thread.run_sync(_build_retriever)

            def _build_retriever() -> Retriever:
                from retrieval.build import build_retriever
                from retrieval.multilingual import build_routed_retriever

                if remote:  # the index too is built through it, so all vectors agree
                    built["embedder"] = _remote_embedder(settings)
                    stack.callback(built["embedder"].close)
                options: dict[str, Any] = {
                    "data_dir": settings.data_dir,
                    "index_dir": settings.index_dir,
                    "embedder_model": settings.embedder_model,
                    "threshold": settings.similarity_threshold,
                    "rebuild": settings.rebuild_index,
                    "embedder_backend": settings.embedder_backend,
                    "embedder_cache_dir": settings.embedder_cache_dir,
                    "embedder_threads": settings.embedder_threads,
                    "query_cache_size": settings.query_cache_size,
                    "embedder": built.get("embedder"),
                    "intent_gate": settings.intent_gate,
                }
                if settings.multilingual_retrieval:  # non-English text on e5 (+ USE)
                    return build_routed_retriever(
                        multilingual_threshold=settings.multilingual_threshold, **options
                    )
                return build_retriever(**options)

            try:
                async with anyio.create_task_group() as group:
                    group.start_soon(start_server)
                    group.start_soon(load_retriever)
            except BaseExceptionGroup as failed:  # report the cause, not the group
                raise failed.exceptions[0] from None
            if server is not None:
                base_url, model_name = built["base_url"], settings.embedded_model_name
            client = await stack.enter_async_context(_http_client(settings, base_url))
            model = UpstreamChatModel(
                client,
                model_name=model_name,
                retries=settings.upstream_retries,
                max_concurrent=settings.max_concurrent_upstream,
                queue_timeout_s=settings.upstream_queue_timeout_s,
                metrics=metrics,
            )
            services = Services(
                settings=settings,
                metrics=metrics,
                model=model,
                retriever=built["retriever"],
                grounding=GroundingService(built["retriever"], settings, metrics),
            )
            yield {"services": services}

    return lifespan


def create_app(settings: Settings | None = None, *, retriever: Retriever | None = None) -> FastAPI:
    """Build the gateway.

    Args:
        settings: the configuration; ``None`` reads ``CULTURESAFE_*`` from the environment.
        retriever: an already-built retriever to share (tests, several apps in one
            process); ``None`` builds one from the settings in the lifespan.
    """
    settings = settings or Settings()
    metrics = Metrics()
    app = FastAPI(
        title="CultureSafe",
        summary="An OpenAI-compatible gateway that grounds answers in verified cultural knowledge.",
        version="0.1.0",
        lifespan=_lifespan(settings, metrics, retriever),
    )
    app.state.settings = settings
    app.state.metrics = metrics
    register_error_handlers(app)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    # Outside the metrics: request id, CORS, API keys and limits (see app/http/middleware.py).
    add_protective_middleware(app, settings)
    for module in (chat, models, health, metrics_route, evaluate):
        app.include_router(module.router)
    return app
