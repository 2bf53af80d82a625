"""``POST /evaluate`` (start an evaluation job), ``GET /evaluate/{id}`` (status, progress,
metrics so far) and ``GET /evaluate/{id}/report`` (the HTML report).

A job runs as an asyncio task of the process that holds its lease (``eval/jobs.py``),
writing to ``Settings.runs_dir/<id>``, which every worker and replica shares: any of them
answers for any job, and this router's lifespan resumes jobs whose holder is gone and
cancels its own on shutdown (their finished samples are on disk). By default the target
is this gateway itself (in a grounding mode, with one of its chat keys) and the judge is
the same model with grounding off.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from app.config import GroundingMode, Settings
from app.deps import SettingsDep
from app.errors import GatewayError, InvalidRequest, NotFound
from app.http.security import chat_keys
from app.protocol import ErrorResponse, json_number
from eval.config import RUN_DEFAULTS, EvalConfigError, RunConfig
from eval.endpoint import EndpointConfig
from eval.job_lease import LeaseUnavailable
from eval.jobs import JobManager
from eval.report import REPORT_JSON
from eval.run_log import RUN_ID_PATTERN, valid_run_id
from eval.samples import Kind, OrdinaryPrompt

# Sent in an HTTP header: visible ASCII only (anything else cannot be encoded: a 500).
_API_KEY_PATTERN = r"^[\x21-\x7e]{1,512}$"
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse}, 401: {"model": ErrorResponse}, 403: {"model": ErrorResponse},
}
# A body, only on POST: larger than CULTURESAFE_MAX_BODY_BYTES.
TOO_LARGE: dict[int | str, dict[str, Any]] = {413: {"model": ErrorResponse}}


class JobStoreUnavailable(GatewayError):
    """The job leases' store (Redis) is down: no job can be started safely."""

    status_code = 503
    type = "server_error"
    code = "job_store_unavailable"


class EvaluateRequest(BaseModel):
    """An evaluation to run. Omitted URLs mean this gateway (target) and its model with
    grounding off (judge).

    Defaults are the evaluation's (:data:`eval.config.RUN_DEFAULTS`) but for three that
    suit a request to a running gateway: the gateway condition, 10 items per kind and
    country, and 4 concurrent requests.
    """

    model_config = ConfigDict(extra="forbid")

    target_url: str | None = Field(default=None, pattern=r"^https?://")
    target_model: str | None = None
    target_api_key: str | None = Field(default=None, repr=False, pattern=_API_KEY_PATTERN)
    judge_url: str | None = Field(default=None, pattern=r"^https?://")
    judge_model: str | None = None
    judge_api_key: str | None = Field(default=None, repr=False, pattern=_API_KEY_PATTERN)
    condition: Literal["plain", "elicit", "inject-gold", "gateway"] = "gateway"
    mode: GroundingMode = "grounded"
    per_kind: int = Field(default=10, ge=1, le=100_000)
    countries: list[str] = Field(default_factory=list, max_length=64)
    kinds: list[Kind] = Field(default=list(RUN_DEFAULTS["kinds"]), min_length=1)
    # The ordinary kind's prompts, inline (a server path from a client would let it read
    # the server's files); omitted: the set shipped with the package.
    ordinary_prompts: list[OrdinaryPrompt] | None = Field(default=None, min_length=1,
                                                          max_length=5000)
    shuffled: StrictBool = RUN_DEFAULTS["shuffled"]  # JSON true/false only, as the schema says
    seed: int = RUN_DEFAULTS["seed"]
    run_id: str | None = Field(default=None, pattern=RUN_ID_PATTERN)
    concurrency: int = Field(default=4, ge=1, le=256)
    judge_concurrency: int = Field(default=4, ge=1, le=256)

    _numbers = field_validator("per_kind", "seed", "concurrency", "judge_concurrency",
                               mode="before")(json_number)


class EvaluateAccepted(BaseModel):
    id: str
    status: str
    total: int
    status_url: str
    report_url: str


class EvaluateStatus(BaseModel):
    id: str
    status: str
    done: int
    total: int
    error: str | None = None
    metrics: dict[str, float | None]
    report_ready: bool


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    settings: Settings = app.state.settings
    manager = JobManager(settings.runs_dir, redis_url=settings.redis_url,
                         lease_ttl_s=settings.job_lease_ttl_s)
    # Every process looks for jobs whose holder is gone (after a restart, or another
    # worker's or replica's crash); the lease lets exactly one of them resume each.
    watcher = asyncio.create_task(manager.watch(settings.job_poll_s), name="evaluate-watch")
    try:
        yield {"eval_jobs": manager}
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await manager.shutdown()


router = APIRouter(tags=["evaluate"], lifespan=_lifespan)


def _jobs(request: Request) -> JobManager:
    manager = getattr(request.state, "eval_jobs", None)
    if not isinstance(manager, JobManager):
        raise RuntimeError("the evaluate router's lifespan did not run")
    return manager


def _run_config(body: EvaluateRequest, settings: Settings, own_url: str) -> RunConfig:
    # A key the gateway accepts on its chat routes (inline or from the keys file).
    own_key = next(iter(chat_keys(settings)), "none")
    model = settings.upstream_model if settings.backend == "upstream" else None
    model = model or settings.embedded_model_name
    target = EndpointConfig(
        base_url=body.target_url or own_url, model=body.target_model or model,
        api_key=body.target_api_key or (own_key if body.target_url is None else "none"),
        concurrency=body.concurrency)
    judge = EndpointConfig(
        base_url=body.judge_url or own_url, model=body.judge_model or model,
        api_key=body.judge_api_key or (own_key if body.judge_url is None else "none"),
        concurrency=body.judge_concurrency,
        extra_body=None if body.judge_url else {"culturesafe": {"mode": "off"}})
    data_dir = settings.data_dir or RUN_DEFAULTS["data_dir"]
    return RunConfig(
        data_dir=data_dir, target=target, judge=judge, condition=body.condition,
        mode=body.mode, per_kind=body.per_kind, countries=tuple(body.countries),
        kinds=tuple(body.kinds), shuffled=body.shuffled, seed=body.seed,
        ordinary_prompts=tuple(body.ordinary_prompts or ()),
        run_id=body.run_id, out_dir=settings.runs_dir)


def _checked_id(run_id: str) -> str:
    if not valid_run_id(run_id):
        raise InvalidRequest(f"Invalid run id {run_id[:80]!r}.", param="run_id")
    return run_id


@router.post("/evaluate", status_code=202, response_model=EvaluateAccepted,
             responses={**ERRORS, **TOO_LARGE, 503: {"model": ErrorResponse}})
async def start_evaluation(
    body: EvaluateRequest, request: Request, settings: SettingsDep
) -> EvaluateAccepted:
    """Start an evaluation job in the background; poll ``status_url``."""
    own_url = str(request.base_url).rstrip("/") + "/v1"
    try:
        job = await _jobs(request).submit(_run_config(body, settings, own_url))
    except EvalConfigError as exc:
        raise InvalidRequest(str(exc), param=exc.param) from exc
    except LeaseUnavailable as exc:
        raise JobStoreUnavailable("The job store is unreachable; retry shortly.",
                                  headers={"Retry-After": "5"}) from exc
    return EvaluateAccepted(id=job.run_id, status=job.status, total=job.total,
                            status_url=f"/evaluate/{job.run_id}",
                            report_url=f"/evaluate/{job.run_id}/report")


@router.get("/evaluate/{run_id}", response_model=EvaluateStatus,
            responses={**ERRORS, 404: {"model": ErrorResponse}})
async def evaluation_status(run_id: str, request: Request) -> EvaluateStatus:
    """Status, progress and the metrics over the samples finished so far."""
    state = _jobs(request).status(_checked_id(run_id))
    if state is None:
        raise NotFound(f"No evaluation {run_id!r}.", param="run_id")
    return EvaluateStatus.model_validate(state)


# Not response_class=HTMLResponse: that would document the JSON errors as text/html.
@router.get("/evaluate/{run_id}/report", responses={
    200: {"content": {"text/html": {}}, "description": "The HTML report"},
    **ERRORS, 404: {"model": ErrorResponse}})
async def evaluation_report(run_id: str, request: Request) -> FileResponse:
    """The self-contained HTML report (once the run has finished)."""
    path = _jobs(request).report_path(_checked_id(run_id))
    if path is None:
        raise NotFound(f"No report for {run_id!r} yet.", param="run_id")
    return FileResponse(path, media_type="text/html")


@router.get("/evaluate/{run_id}/report.json", responses={**ERRORS, 404: {"model": ErrorResponse}})
async def evaluation_report_json(run_id: str, request: Request) -> FileResponse:
    """Every metric of the report, with n and CIs, as JSON."""
    path = _jobs(request).report_path(_checked_id(run_id), REPORT_JSON)
    if path is None:
        raise NotFound(f"No report for {run_id!r} yet.", param="run_id")
    return FileResponse(path, media_type="application/json")
