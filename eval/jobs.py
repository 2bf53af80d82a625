"""Background evaluation jobs for a long-running service (``POST /evaluate``).

A job is a run directory plus ``job.json`` (the configuration and the API keys it needs,
readable by the owner only), so a job interrupted by a restart or a crash is found and
resumed by ``resume_unfinished`` on the next start. Framework-free: the service's routes
wrap it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from eval.config import EvalConfigError, EvalError, RunConfig
from eval.endpoint import Endpoint, EndpointConfig
from eval.manifest import select_samples
from eval.prompt_files import prompts_digest
from eval.report import REPORT_HTML, REPORT_JSON, current_metrics
from eval.run_log import MANIFEST_FILE, SAMPLES_FILE, scan_status, valid_run_id
from eval.runner import run_evaluation

JOB_FILE = "job.json"
RESUME_WAIT_S = 120.0
log = logging.getLogger(__name__)


@dataclass
class Job:
    """A job known to this process."""

    run_id: str
    run_dir: Path
    total: int
    done: int = 0
    status: str = "queued"  # queued | running | finished | incomplete | failed
    error: str | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class JobManager:
    """Starts, tracks, resumes and cancels evaluation jobs under ``runs_dir``."""

    def __init__(self, runs_dir: Path) -> None:
        self.runs_dir = runs_dir
        self.jobs: dict[str, Job] = {}

    async def submit(self, config: RunConfig) -> Job:
        """Validate (countries, reachability) before any work, then start in the background.

        Raises:
            EvalConfigError: the request cannot run; nothing was started.
        """
        samples, data_hash = await asyncio.to_thread(select_samples, config)
        run_id = config.run_id or config.default_run_id(
            config.fingerprint(data_hash, prompts_digest()))
        if not valid_run_id(run_id):
            raise EvalConfigError(f"invalid run id {run_id!r}", param="run_id")
        if run_id in self.jobs and self.jobs[run_id].status in ("queued", "running"):
            raise EvalConfigError(f"run {run_id} is already running", param="run_id")
        config = config.model_copy(update={"run_id": run_id, "out_dir": self.runs_dir})
        await _check_reachable(config.target_endpoint(), "target")
        if config.judge is not None and "safety" in config.kinds:
            await _check_reachable(config.judge, "judge")
        run_dir = self.runs_dir / run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        _write_job_file(run_dir, config)
        return self._start(config, run_dir, len(samples))

    def _start(
        self, config: RunConfig, run_dir: Path, total: int, wait_ready_s: float = 0.0
    ) -> Job:
        assert config.run_id is not None
        job = Job(run_id=config.run_id, run_dir=run_dir, total=total)

        def progress(done: int, total_now: int) -> None:
            job.done, job.total, job.status = done, total_now, "running"

        async def run() -> None:
            try:
                if wait_ready_s:
                    await _wait_reachable(config, wait_ready_s)
                result = await run_evaluation(config, progress=progress)
            except EvalError as exc:
                job.status, job.error = "failed", str(exc)
                log.warning("evaluation %s failed: %s", job.run_id, exc)
            except asyncio.CancelledError:
                job.status = "interrupted"
                raise
            except Exception as exc:  # a job must not take the service down
                job.status, job.error = "failed", f"internal error ({type(exc).__name__})"
                log.exception("evaluation %s crashed", job.run_id)
            else:
                job.done = result.done
                job.status = "finished" if result.errors == 0 else "incomplete"
                if result.errors:
                    job.error = f"{result.errors} samples failed; POST again to retry them"

        job.task = asyncio.create_task(run(), name=f"evaluate-{job.run_id}")
        self.jobs[job.run_id] = job
        return job

    async def resume_unfinished(self) -> list[str]:
        """Restart every job whose run did not finish (after a restart or a crash)."""
        resumed = []
        for job_file in sorted(self.runs_dir.glob(f"*/{JOB_FILE}")):
            run_dir = job_file.parent
            manifest = run_dir / MANIFEST_FILE
            status = json.loads(manifest.read_text())["status"] if manifest.exists() else None
            if status == "finished" or run_dir.name in self.jobs:
                continue
            try:
                config = _read_job_file(job_file)
                samples, _ = await asyncio.to_thread(select_samples, config)
            except (OSError, ValueError, EvalError) as exc:
                log.warning("cannot resume evaluation %s: %s", run_dir.name, exc)
                continue
            # At start-up the service may be our own target: wait for it to listen.
            self._start(config, run_dir, len(samples), wait_ready_s=RESUME_WAIT_S)
            resumed.append(run_dir.name)
        return resumed

    def status(self, run_id: str) -> dict[str, Any] | None:
        """Status, progress and metrics so far; ``None`` when there is no such run."""
        run_dir = self.runs_dir / run_id
        job = self.jobs.get(run_id)
        if job is None and not (run_dir / MANIFEST_FILE).exists():
            return None
        manifest = json.loads((run_dir / MANIFEST_FILE).read_text()) if (
            run_dir / MANIFEST_FILE).exists() else {}
        if job is not None:
            state: dict[str, Any] = {"status": job.status, "done": job.done,
                                     "total": job.total, "error": job.error}
        else:
            states = scan_status(run_dir / SAMPLES_FILE)
            state = {"status": manifest.get("status", "unknown"),
                     "done": sum(s == "done" for s in states.values()),
                     "total": len(manifest.get("sample_ids", [])), "error": None}
        return {"id": run_id, **state, "metrics": current_metrics(run_dir),
                "report_ready": (run_dir / REPORT_HTML).exists()
                and (run_dir / REPORT_JSON).exists()}

    def report_path(self, run_id: str, name: str = REPORT_HTML) -> Path | None:
        path = self.runs_dir / run_id / name
        return path if path.exists() else None

    async def shutdown(self) -> None:
        """Cancel running jobs; their finished samples are on disk and resume next start."""
        tasks = [j.task for j in self.jobs.values() if j.task and not j.task.done()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _check_reachable(config: EndpointConfig, which: str) -> None:
    import openai

    try:
        endpoint = Endpoint(config)
    except (ValueError, httpx.InvalidURL) as exc:  # a URL that httpx cannot even parse
        raise EvalConfigError(f"{which} endpoint {config.base_url!r} is not a valid URL",
                              param=f"{which}_url") from exc
    try:
        await endpoint.check_reachable()
    except openai.APIConnectionError as exc:
        raise EvalConfigError(f"{which} endpoint {config.base_url} is unreachable",
                              param=f"{which}_url") from exc
    finally:
        await endpoint.aclose()


async def _wait_reachable(config: RunConfig, limit_s: float) -> None:
    """Poll the target until it answers (or ``limit_s`` passes; the run then reports it)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    delay = 0.5
    while True:
        try:
            await _check_reachable(config.target_endpoint(), "target")
            return
        except EvalConfigError:
            if loop.time() > deadline:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)  # a target that is gone should not keep the loop busy


def _write_job_file(run_dir: Path, config: RunConfig) -> None:
    data = {"config": config.model_dump(mode="json"),
            "target_api_key": config.target.api_key,
            "judge_api_key": config.judge.api_key if config.judge else None}
    tmp = run_dir / (JOB_FILE + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, run_dir / JOB_FILE)


def _read_job_file(path: Path) -> RunConfig:
    data = json.loads(path.read_text(encoding="utf-8"))
    config = RunConfig.model_validate(data["config"])
    target = config.target.model_copy(update={"api_key": data.get("target_api_key") or "none"})
    judge = config.judge.model_copy(update={"api_key": data.get("judge_api_key") or "none"}) \
        if config.judge else None
    return config.model_copy(update={"target": target, "judge": judge})
