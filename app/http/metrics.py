"""Prometheus metrics, one registry per app (tests build many apps in one process).

``MetricsMiddleware`` counts every HTTP request by route template and status, and times
it until the last byte (so a stream is timed to its end). The grounding and upstream code
record retrieval latency, grounding decisions and upstream latency/errors directly.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_MAX_CACHED_CHILDREN = 512
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    """The service's metrics, registered in their own ``CollectorRegistry``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "culturesafe_http_requests", "HTTP requests", ["route", "method", "status"], registry=r
        )
        self.request_latency = Histogram(
            "culturesafe_http_request_duration_seconds",
            "HTTP request duration until the last byte",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.retrieval_latency = Histogram(
            "culturesafe_retrieval_duration_seconds",
            "Knowledge retrieval time per request",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.grounding = Counter(
            "culturesafe_grounding_requests",
            "Chat requests by grounding mode and whether grounding was applied",
            ["mode", "applied"],
            registry=r,
        )
        self.intents = Counter(
            "culturesafe_intent_requests",
            "Grounded-mode chat requests by intent (the gate's or the client's; unknown: "
            "no gate) and its source",
            ["intent", "source"],
            registry=r,
        )
        self.upstream_latency = Histogram(
            "culturesafe_upstream_duration_seconds",
            "Upstream time to response headers (streams) or full body",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_errors = Counter(
            "culturesafe_upstream_errors", "Upstream failures by kind", ["kind"], registry=r
        )
        self.upstream_retries = Counter(
            "culturesafe_upstream_retries", "Connection retries to the upstream", registry=r
        )


class MetricsMiddleware:
    """Pure ASGI middleware (no buffering) that records request count and duration."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # Labelled children by (route, method, status): ``labels()`` takes a lock and
        # builds a key on every call. Bounded, since a client chooses the method.
        self._children: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            key = (template, scope.get("method", "GET"), str(status))
            children = self._children.get(key)
            if children is None:
                children = (
                    self.metrics.requests.labels(*key),
                    self.metrics.request_latency.labels(*key[:2]),
                )
                if len(self._children) < _MAX_CACHED_CHILDREN:
                    self._children[key] = children
            children[0].inc()
            children[1].observe(time.perf_counter() - start)
