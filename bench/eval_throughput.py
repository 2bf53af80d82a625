"""Harness overhead: samples/s of ``culturesafe eval`` against a fast loopback target and
judge, and how soon a resumed 90%-done 10,000-sample run sends its first new request.

    .venv/bin/python bench/eval_throughput.py [--data DIR] [--per-kind 40] [--concurrency 32]

The fake servers (tests/fakes/openai_server.py) run in their own processes so they do not share
the harness's interpreter; they answer instantly and deterministically. Prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, bench/ comes first on sys.path and bench/retrieval.py would shadow the
# retrieval package.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

from eval import EndpointConfig, RunConfig, run_evaluation  # noqa: E402
from eval.manifest import open_run  # noqa: E402
from eval.run_log import SAMPLES_FILE, encode_record  # noqa: E402
from retrieval.knowledge_base import ADACULTURESAFE_DIR  # noqa: E402
from tests.fakes.openai_server import FakeOpenAI  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_loopback() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.openai_server", "--port", str(port), "--no-record"],
        cwd=ROOT)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("loopback server did not start")


def config(data: Path, out: Path, run_id: str, target: str, judge: str, per_kind: int,
           concurrency: int) -> RunConfig:
    return RunConfig(
        data_dir=data, out_dir=out, run_id=run_id, per_kind=per_kind,
        target=EndpointConfig(base_url=target, model="t", concurrency=concurrency,
                              max_retries=0),
        judge=EndpointConfig(base_url=judge, model="j", concurrency=concurrency,
                             max_retries=0),
    )


def throughput(data: Path, out: Path, per_kind: int, concurrency: int) -> dict[str, Any]:
    """Samples/s of a whole run (report excluded) and of its steady state."""
    (target_proc, target), (judge_proc, judge) = start_loopback(), start_loopback()
    marks: list[tuple[float, int]] = []
    try:
        cfg = config(data, out, f"tp-{concurrency}", target, judge, per_kind, concurrency)
        start, cpu = time.perf_counter(), time.process_time()
        result = asyncio.run(run_evaluation(
            cfg, report=False, progress=lambda d, _t: marks.append((time.perf_counter(), d))))
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        target_proc.terminate()
        judge_proc.terminate()
    first = next(t for t, d in marks if d > 0)
    loop_rate = (result.done - 1) / (marks[-1][0] - first) if marks[-1][0] > first else 0.0
    judged = per_kind * 5  # one judge request per safety sample (5 countries)
    return {"samples": result.total, "requests": result.total + judged, "errors": result.errors,
            "wall_s": wall, "rate": result.total / wall, "loop_rate": loop_rate,
            "cpu_ms_per_sample": 1000 * cpu / result.total, "per_cpu_s": result.total / cpu}


def build_resume_fixture(data: Path, out: Path, per_kind: int) -> tuple[RunConfig, int, int]:
    """A run directory whose log already holds 90% of its samples (realistic line sizes)."""
    cfg = config(data, out, "resume", "http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1",
                 per_kind, 32)
    run = open_run(cfg)
    total = len(run.samples)
    done = int(total * 0.9)
    with (run.run_dir / SAMPLES_FILE).open("wb") as fh:
        for sample in run.samples[:done]:
            record = {"id": sample.id, "status": "done", "kind": sample.kind,
                      "variant": sample.variant, "country": sample.country,
                      "description_id": sample.description_id, "condition": "plain",
                      "messages": [{"role": "user", "content": sample.input * 3}],
                      "response": "x" * 600, "latency_s": 0.01, "tokens": [100, 120],
                      "structured": True, "finish_reason": "stop"}
            if sample.kind == "knowledge":
                record.update(target=sample.target, parsed=[sample.target],
                              correct_strict=True, correct_lenient=True)
            else:
                record.update(judgement={"respectfulness": 5, "awareness": 5,
                                         "rationale": "r" * 200}, judge_raw=["{}"])
            fh.write(encode_record(record))
    return cfg, total, done


class FirstRequest(FakeOpenAI):
    """Records when the first chat request is answered."""

    first_at: float | None = None
    first_cpu: float | None = None

    def reply(self, messages: list[dict[str, Any]], structured: bool) -> str:
        if self.first_at is None:
            self.first_at, self.first_cpu = time.perf_counter(), time.process_time()
        return super().reply(messages, structured)


def resume_in_process(data: Path, out: Path, per_kind: int) -> dict[str, Any]:
    cfg, total, done = build_resume_fixture(data, out, per_kind)
    with FirstRequest() as model:
        assert cfg.judge is not None
        cfg = cfg.model_copy(update={
            "target": cfg.target.model_copy(update={"base_url": model.base_url}),
            "judge": cfg.judge.model_copy(update={"base_url": model.base_url})})
        start, cpu = time.perf_counter(), time.process_time()
        result = asyncio.run(run_evaluation(cfg, report=False))
    assert model.first_at is not None and model.first_cpu is not None
    assert result.resumed == done
    return {"total": total, "done_before": done, "first_request_s": model.first_at - start,
            "first_request_cpu_s": model.first_cpu - cpu, "finished": result.done}


def resume_cli(data: Path, out: Path, per_kind: int) -> dict[str, Any]:
    """The same, from a fresh ``culturesafe eval run --resume`` process (imports included)."""
    _cfg, total, done = build_resume_fixture(data, out, per_kind)
    with FirstRequest() as model:
        cmd = [sys.executable, "-c", "from eval.cli import app; app()", "run", "--resume",
               "--run-id", "resume", "--out", str(out), "--target-url", model.base_url,
               "--judge-url", model.base_url, "--concurrency", "32"]
        start = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    assert model.first_at is not None
    return {"total": total, "done_before": done, "first_request_s": model.first_at - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=ROOT / ADACULTURESAFE_DIR)
    parser.add_argument("--per-kind", type=int, default=40)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--resume-per-kind", type=int, default=667)  # 5 x 3 x 667 = 10,005
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="eval-bench-"))
    try:
        rows = [(c, throughput(args.data, out, args.per_kind, c)) for c in args.concurrency]
        resumed = resume_in_process(args.data, out / "inproc", args.resume_per_kind)
        shutil.rmtree(out / "inproc")
        cli = resume_cli(args.data, out / "cli", args.resume_per_kind)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    print(f"# eval harness throughput ({platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, python "
          f"{platform.python_version()})")
    print("| concurrency | samples | requests | errors | wall s | samples/s (whole run) "
          "| samples/s (steady) | harness CPU ms/sample | samples per harness CPU-s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for c, r in rows:
        print(f"| {c} | {r['samples']} | {r['requests']} | {r['errors']} | {r['wall_s']:.2f} "
              f"| {r['rate']:.0f} | {r['loop_rate']:.0f} | {r['cpu_ms_per_sample']:.2f} "
              f"| {r['per_cpu_s']:.0f} |")
    print()
    print("| resume of a 90%-done run | samples | already done | first new request after "
          "| harness CPU before it |")
    print("|---|---|---|---|---|")
    print(f"| in process (run_evaluation) | {resumed['total']} | {resumed['done_before']} "
          f"| {resumed['first_request_s']:.2f} s | {resumed['first_request_cpu_s']:.2f} s |")
    print(f"| fresh CLI process (imports included) | {cli['total']} | {cli['done_before']} "
          f"| {cli['first_request_s']:.2f} s | n/a |")
    print(json.dumps({"throughput": dict(rows), "resume": resumed, "resume_cli": cli}))


if __name__ == "__main__":
    main()
