"""Background evaluation jobs for a long-running service (``POST /evaluate``).

A job is a run directory (``eval/job_store.py``: its configuration, its state, its
samples) that every worker and replica sees, and a lease (``eval/job_lease.py``) that one
process at a time holds while it runs the job. So exactly one process runs or resumes a
job; a second ``POST`` of a running id is refused wherever it lands; a job whose holder
crashed is resumed by the first process that takes its lease (:meth:`JobManager.watch`
polls for such jobs, and every process does so once at start); and any process answers
the status of any job from its files. Framework-free: the service's routes wrap it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from eval.config import EvalConfigError, EvalError, RunConfig
from eval.endpoint import Endpoint, EndpointConfig
from eval.job_lease import FileLeases, Lease, Leases, RedisLeases, keep_alive
from eval.job_store import (
    JOB_FILE,
    disk_status,
    read_job_file,
    report_fields,
    resumable,
    write_job_file,
    write_state,
)
from eval.manifest import prompts_digest, select_samples
from eval.report import REPORT_HTML
from eval.run_log import valid_run_id
from eval.runner import run_evaluation

RESUME_WAIT_S = 120.0
log = logging.getLogger(__name__)


@dataclass
class Job:
    """A job this process runs (or ran)."""

    run_id: str
    run_dir: Path
    total: int
    done: int = 0
    status: str = "queued"  # queued | running | finished | incomplete | failed | interrupted
    error: str | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def live(self) -> bool:
        return self.task is not None and not self.task.done()


class JobManager:
    """Starts, tracks, resumes and cancels evaluation jobs under ``runs_dir``.

    Args:
        runs_dir: the run store, shared by every process of the deployment.
        redis_url: leases in Redis (any host); None: ``flock`` on the shared volume.
        lease_ttl_s: how long a Redis lease outlives its last renewal (a crashed
            holder's job is taken over after at most this plus one :meth:`watch` poll).
    """

    def __init__(self, runs_dir: Path, *, redis_url: str | None = None,
                 lease_ttl_s: float = 30.0) -> None:
        self.runs_dir = runs_dir
        self.jobs: dict[str, Job] = {}
        self.leases: Leases = RedisLeases(redis_url, lease_ttl_s) if redis_url else FileLeases()

    async def submit(self, config: RunConfig) -> Job:
        """Validate (countries, reachability) before any work, then start in the background.

        Raises:
            EvalConfigError: the request cannot run (or the job runs elsewhere already).
            LeaseUnavailable: the lease store is down; nothing was started.
        """
        samples, data_hash = await asyncio.to_thread(select_samples, config)
        run_id = config.run_id or config.default_run_id(
            config.fingerprint(data_hash, prompts_digest()))
        if not valid_run_id(run_id):
            raise EvalConfigError(f"invalid run id {run_id!r}", param="run_id")
        if run_id in self.jobs and self.jobs[run_id].live:
            raise _already_running(run_id)
        config = config.model_copy(update={"run_id": run_id, "out_dir": self.runs_dir})
        await _check_reachable(config.target_endpoint(), "target")
        if config.judge is not None and "safety" in config.kinds:
            await _check_reachable(config.judge, "judge")
        run_dir = self.runs_dir / run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        lease = await self.leases.try_acquire(run_id, run_dir)
        if lease is None:  # another worker or replica runs it
            raise _already_running(run_id)
        write_job_file(run_dir, config)
        write_state(run_dir, "running", len(samples))
        return self._start(config, run_dir, len(samples), lease)

    def _start(self, config: RunConfig, run_dir: Path, total: int, lease: Lease,
               wait_ready_s: float = 0.0) -> Job:
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
            except asyncio.CancelledError:  # shutdown or a lost lease: resumable
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
            write_state(run_dir, job.status, job.total, job.error)

        async def hold() -> None:
            runner = asyncio.create_task(run(), name=f"evaluate-{job.run_id}")
            heartbeat = asyncio.create_task(keep_alive(lease, runner))
            try:
                await runner
            finally:
                heartbeat.cancel()
                await lease.release()

        job.task = asyncio.create_task(hold(), name=f"evaluate-lease-{job.run_id}")
        self.jobs[job.run_id] = job
        return job

    async def resume_unfinished(self) -> list[str]:
        """Resume every interrupted job whose lease is free (after a restart or a crash)."""
        resumed = []
        for job_file in sorted(self.runs_dir.glob(f"*/{JOB_FILE}")):
            run_dir = job_file.parent
            known = self.jobs.get(run_dir.name)
            if (known is not None and known.live) or not resumable(run_dir):
                continue
            lease = await self.leases.try_acquire(run_dir.name, run_dir)
            if lease is None:
                continue  # its holder is alive
            if not resumable(run_dir):  # it ended between the check and the lease
                await lease.release()
                continue
            try:
                config = read_job_file(job_file)
                samples, _ = await asyncio.to_thread(select_samples, config)
            except (OSError, ValueError, EvalError) as exc:
                log.warning("cannot resume evaluation %s: %s", run_dir.name, exc)
                write_state(run_dir, "failed", 0, f"cannot resume: {exc}")
                await lease.release()
                continue
            log.info("resuming evaluation %s", run_dir.name)
            # At start-up the service may be our own target: wait for it to listen.
            self._start(config, run_dir, len(samples), lease, wait_ready_s=RESUME_WAIT_S)
            resumed.append(run_dir.name)
        return resumed

    async def watch(self, poll_s: float) -> None:
        """Resume interrupted jobs every ``poll_s`` (a holder elsewhere may die); never
        returns. A failing store is logged and tried again next time."""
        while True:
            try:
                await self.resume_unfinished()
            except EvalError as exc:
                log.warning("job takeover scan failed: %s", exc)
            await asyncio.sleep(poll_s)

    def status(self, run_id: str) -> dict[str, Any] | None:
        """Status, progress and metrics so far; ``None`` when there is no such run."""
        run_dir = self.runs_dir / run_id
        job = self.jobs.get(run_id)
        if job is None or not job.live:  # ended here, or run by another process
            return disk_status(run_dir)
        return {"id": run_id, "status": job.status, "done": job.done, "total": job.total,
                "error": job.error, **report_fields(run_dir)}

    def report_path(self, run_id: str, name: str = REPORT_HTML) -> Path | None:
        path = self.runs_dir / run_id / name
        return path if path.exists() else None

    async def shutdown(self) -> None:
        """Cancel running jobs and give their leases up: their finished samples are on
        disk, and another process (or this one, next start) resumes them."""
        tasks = [j.task for j in self.jobs.values() if j.task and not j.task.done()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.leases.aclose()


def _already_running(run_id: str) -> EvalConfigError:
    return EvalConfigError(f"run {run_id} is already running", param="run_id")


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
