"""A job's files in its run directory, the store every worker and replica reads.

- ``job.json``: the configuration and the API keys the job needs (owner-only, 0600), so
  any process can resume it.
- ``job_state.json``: ``status`` (``running`` until the runner ends; then ``finished``,
  ``incomplete`` or ``failed``), ``error`` and ``total``. A job whose state still says
  ``running`` while nobody holds its lease (``eval/job_lease.py``) was interrupted, and is
  resumed by whichever process takes the lease first.

Progress (``done``) is never written here: it is counted from ``samples.jsonl``, so any
process answers ``GET /evaluate/{id}`` with what is on disk.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from eval.config import RunConfig
from eval.report import REPORT_HTML, REPORT_JSON, current_metrics
from eval.run_log import MANIFEST_FILE, SAMPLES_FILE, scan_status, write_json_atomic

JOB_FILE = "job.json"
STATE_FILE = "job_state.json"
ENDED = frozenset({"finished", "incomplete", "failed"})


def write_job_file(run_dir: Path, config: RunConfig) -> None:
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


def read_job_file(path: Path) -> RunConfig:
    data = json.loads(path.read_text(encoding="utf-8"))
    config = RunConfig.model_validate(data["config"])
    target = config.target.model_copy(update={"api_key": data.get("target_api_key") or "none"})
    judge = config.judge.model_copy(update={"api_key": data.get("judge_api_key") or "none"}) \
        if config.judge else None
    return config.model_copy(update={"target": target, "judge": judge})


def write_state(run_dir: Path, status: str, total: int, error: str | None = None) -> None:
    write_json_atomic(run_dir / STATE_FILE, {"status": status, "total": total, "error": error})


def read_state(run_dir: Path) -> dict[str, Any] | None:
    """The job's state; for a run of an older version (no state file), its manifest's."""
    try:
        state: dict[str, Any] = json.loads((run_dir / STATE_FILE).read_text(encoding="utf-8"))
        return state
    except FileNotFoundError:
        pass
    except (OSError, ValueError):
        return None
    manifest = _manifest(run_dir)
    if not manifest:
        return None
    return {"status": manifest.get("status", "running"),
            "total": len(manifest.get("sample_ids", [])), "error": None}


def resumable(run_dir: Path) -> bool:
    """A job was started here and its runner has not ended (it was interrupted)."""
    if not (run_dir / JOB_FILE).exists():
        return False
    state = read_state(run_dir)
    return state is None or state.get("status") not in ENDED


def disk_status(run_dir: Path) -> dict[str, Any] | None:
    """Status, progress and metrics of a run from its files; None when there is no run."""
    state = read_state(run_dir)
    if state is None:
        return None
    manifest = _manifest(run_dir)
    states = scan_status(run_dir / SAMPLES_FILE)
    return {"id": run_dir.name, "status": state.get("status", "unknown"),
            "done": sum(s == "done" for s in states.values()),
            "total": len(manifest.get("sample_ids", [])) or int(state.get("total") or 0),
            "error": state.get("error"), **report_fields(run_dir)}


def report_fields(run_dir: Path) -> dict[str, Any]:
    return {"metrics": current_metrics(run_dir),
            "report_ready": (run_dir / REPORT_HTML).exists()
            and (run_dir / REPORT_JSON).exists()}


def _manifest(run_dir: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((run_dir / MANIFEST_FILE).read_text())
        return manifest
    except (OSError, ValueError):
        return {}
