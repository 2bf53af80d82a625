"""The run loop: samples -> solver -> scorer -> judge -> durable log, resumable at any point.

``run_evaluation`` is the Python API (``run_evaluation_sync`` for scripts); the CLI and the
service's ``POST /evaluate`` both call it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
from pydantic import BaseModel

from eval.config import EvalConfigError, RunConfig
from eval.endpoint import Endpoint, pooled_transport
from eval.judge import judge
from eval.manifest import open_run
from eval.run_log import SAMPLES_FILE, SampleLog
from eval.samples import Sample
from eval.scorers import (
    answers_differ,
    parse_answer,
    read_gateway,
    score_lenient,
    score_strict,
)
from eval.solver import ask_off, solve

Progress = Callable[[int, int], None]


class RunResult(BaseModel):
    """Where a run lives and how it ended."""

    run_id: str
    run_dir: Path
    total: int
    done: int
    errors: int
    resumed: int  # samples found already done when the run started
    report_json: Path | None = None
    report_html: Path | None = None


def _knowledge_fields(sample: Sample, text: str) -> dict[str, Any]:
    parsed = parse_answer(text, sample.options or {})
    label = sample.target or ""
    return {
        "target": label,
        "parsed": sorted(parsed.letters) if parsed.letters is not None else None,
        "parsed_via": parsed.via,
        "answer_text": parsed.answer_text,
        "correct_strict": score_strict(parsed, label),
        "correct_lenient": score_lenient(parsed, label),
    }


async def _off_fields(config: RunConfig, target: Endpoint, record: dict[str, Any]
                      ) -> dict[str, Any]:
    """An ordinary prompt asked again with grounding off, when the target is CultureSafe."""
    if not record.get("culturesafe"):
        return {"off_response": None, "differs_from_off": None}  # n/a: no mode to turn off
    off = await ask_off(target, record["messages"], field=config.gateway_field,
                        max_tokens=config.ordinary_max_tokens)
    return {"off_response": off.text, "differs_from_off": answers_differ(record["response"],
                                                                          off.text)}


async def _run_sample(
    config: RunConfig, target: Endpoint, judge_ep: Endpoint | None, sample: Sample,
    previous: dict[str, Any] | None,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": sample.id, "status": "done", "kind": sample.kind, "variant": sample.variant,
        "country": sample.country, "description_id": sample.description_id,
        "condition": config.condition,
    }
    try:
        if previous and previous.get("response") is not None:
            # An earlier attempt got the answer but failed later (judge, or the ordinary
            # kind's second request): reuse it.
            keep = ("messages", "response", "latency_s", "tokens", "structured", "finish_reason",
                    "culturesafe", "grounded", "intent", "intent_score")
            record.update({k: previous.get(k) for k in keep})
        else:
            messages, done = await solve(
                target, sample, config.condition,
                knowledge_max_tokens=config.knowledge_max_tokens,
                safety_max_tokens=config.safety_max_tokens,
                ordinary_max_tokens=config.ordinary_max_tokens,
            )
            record.update(
                messages=messages, response=done.text, latency_s=round(done.latency_s, 4),
                tokens=[done.prompt_tokens, done.completion_tokens],
                structured=done.structured, finish_reason=done.finish_reason,
                **read_gateway(done.culturesafe, done.grounded_header).model_dump(),
            )
        if sample.kind == "knowledge":
            record.update(_knowledge_fields(sample, record["response"]))
        elif sample.kind == "ordinary":
            record.update(await _off_fields(config, target, record))
        elif judge_ep is not None:
            verdict = await judge(
                judge_ep, sample, record["response"], retries=config.judge_retries,
                max_tokens=config.judge_max_tokens,
            )
            record.update(
                judgement=verdict.judgement.model_dump() if verdict.judgement else None,
                judge_raw=verdict.raw, judge_latency_s=round(verdict.latency_s, 4),
            )
    except (TimeoutError, openai.APIError) as exc:
        record.update(status="error", error=f"{type(exc).__name__}: {exc}"[:500])
    return record


async def _preflight(endpoint: Endpoint, which: str) -> None:
    """Fail before any work if the endpoint cannot be reached at all."""
    try:
        await endpoint.check_reachable()
    except openai.APIConnectionError as exc:
        raise EvalConfigError(
            f"{which} endpoint {endpoint.config.base_url} is unreachable: {exc}",
            param=f"{which}_url",
        ) from exc


async def run_evaluation(
    config: RunConfig, *, progress: Progress | None = None, report: bool = True
) -> RunResult:
    """Run (or resume) an evaluation and write its report. See ``RunConfig``."""
    run = open_run(config)
    # One connection pool for target and judge (used where both are plain http).
    pool = pooled_transport(config.target.concurrency
                            + (config.judge.concurrency if config.judge else 0))
    target = Endpoint(config.target_endpoint(), transport=pool)
    judge_ep = (
        Endpoint(config.judge, transport=pool)
        if config.judge and "safety" in config.kinds else None
    )
    log = SampleLog(run.run_dir)
    done_count, errors = len(run.done_ids), 0
    try:
        # A resumed or re-judged run whose answers are all stored never calls the target
        # (but an ordinary prompt may still need its answer with grounding off).
        if any((run.errored.get(s.id) or {}).get("response") is None or s.kind == "ordinary"
               for s in run.pending):
            await _preflight(target, "target")
        if judge_ep is not None:
            await _preflight(judge_ep, "judge")
        queue: asyncio.Queue[Sample] = asyncio.Queue()
        for sample in run.pending:
            queue.put_nowait(sample)
        if progress:
            progress(done_count, len(run.samples))

        async def worker() -> None:
            nonlocal done_count, errors
            while not queue.empty():
                sample = queue.get_nowait()
                record = await _run_sample(
                    config, target, judge_ep, sample, run.errored.get(sample.id)
                )
                await log.append(record)
                if record["status"] == "done":
                    done_count += 1
                else:
                    errors += 1
                if progress:
                    progress(done_count, len(run.samples))

        width = config.target.concurrency + (judge_ep.config.concurrency if judge_ep else 0)
        await asyncio.gather(*(worker() for _ in range(min(width, max(1, queue.qsize())))))
        if judge_ep is not None and config.judge_control > 0:
            from eval.judge_control import run_control
            from eval.run_log import latest_records

            await run_control(
                judge_ep, run.samples, latest_records(run.run_dir / SAMPLES_FILE),
                run.run_dir, count=config.judge_control, retries=config.judge_retries,
                max_tokens=config.judge_max_tokens,
            )
    finally:
        log.close()
        await target.aclose()
        if judge_ep is not None:
            await judge_ep.aclose()
        await pool.aclose()
    run.finish(status="finished" if errors == 0 else "incomplete",
               at=dt.datetime.now(dt.UTC).isoformat())
    result = RunResult(run_id=run.run_id, run_dir=run.run_dir, total=len(run.samples),
                       done=done_count, errors=errors, resumed=len(run.done_ids))
    if report:
        from eval.report import write_report

        paths = await asyncio.to_thread(write_report, run.run_dir)
        result = result.model_copy(update={"report_json": paths[0], "report_html": paths[1]})
    return result


def run_evaluation_sync(config: RunConfig, *, progress: Progress | None = None) -> RunResult:
    """``run_evaluation`` for code without an event loop."""
    return asyncio.run(run_evaluation(config, progress=progress))
