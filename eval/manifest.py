"""Opening a run directory: a new run writes its manifest; an existing one is resumed.

The manifest records the configuration (without API keys), the versions of what ran, the
seed, the fingerprint and the sample ids. A run resumes only with the same fingerprint.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata as md
import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval.config import EvalConfigError, EvalDataError, RunConfig
from eval.ordinary import load_prompts, ordinary_samples
from eval.run_log import (
    MANIFEST_FILE,
    SAMPLES_FILE,
    read_records,
    scan_status,
    valid_run_id,
    write_json_atomic,
)
from eval.samples import Sample, known_countries, stratified_samples
from prompts import prompts_digest as digest_of
from retrieval.errors import KnowledgeBaseError
from retrieval.knowledge_base import KnowledgeBase, load_knowledge_base

# The templates a run's answers and scores depend on: a change to one changes the fingerprint.
EVAL_PROMPTS = (
    "eval_knowledge",
    "eval_elicit_knowledge",
    "eval_elicit_safety",
    "eval_inject_gold",
    "judge_system",
    "judge_user",
)


def prompts_digest() -> str:
    """A short hash of the evaluation's templates, recorded in the manifest."""
    return digest_of(EVAL_PROMPTS)


def versions() -> dict[str, str]:
    """Versions of the pieces that shape the numbers."""
    out = {"python": platform.python_version()}
    for dist in ("culturesafe", "openai", "numpy", "scipy"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = "unknown"
    return out


@dataclass
class OpenRun:
    """A run directory ready to receive samples."""

    run_id: str
    run_dir: Path
    manifest: dict[str, Any]
    samples: list[Sample]
    done_ids: set[str]
    errored: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def pending(self) -> list[Sample]:
        return [s for s in self.samples if s.id not in self.done_ids]

    def finish(self, status: str, at: str) -> None:
        self.manifest.update(status=status, finished_at=at)
        write_json_atomic(self.run_dir / MANIFEST_FILE, self.manifest)


def select_samples(config: RunConfig) -> tuple[list[Sample], str]:
    """The run's samples and the hash of the data they come from (the knowledge base's
    content, and the ordinary prompts' when that kind is asked for); unknown countries
    raise."""
    kb = _knowledge_base(config.data_dir)
    present = known_countries(kb.descriptions)
    unknown = sorted({c.lower() for c in config.countries} - present)
    if unknown:
        raise EvalConfigError(
            f"unknown countries {unknown}; the data has {sorted(present)}", param="countries"
        )
    samples = stratified_samples(
        kb.descriptions, per_kind=config.per_kind, countries=config.countries or None,
        kinds=config.kinds, shuffled=config.shuffled, seed=config.seed,
    )
    data_hash = kb.content_hash
    if "ordinary" in config.kinds:
        prompts, prompts_hash = load_prompts(config)
        samples += ordinary_samples(prompts, per_kind=config.per_kind, kb_countries=present,
                                    countries=config.countries or None, seed=config.seed)
        data_hash = f"{data_hash}+ordinary:{prompts_hash}"
    if not samples:
        raise EvalConfigError(f"no benchmark items in {config.data_dir}", param="data_dir")
    return samples, data_hash


def _knowledge_base(data_dir: Path) -> KnowledgeBase:
    """The run's data, or an :class:`EvalDataError` (which every caller of the evaluation
    handles as it handles its other errors) instead of the retrieval package's."""
    try:
        return load_knowledge_base(data_dir)
    except KnowledgeBaseError as exc:
        raise EvalDataError(data_dir, str(exc)) from exc
    except OSError as exc:  # a directory that cannot be looked at (the loader reads files)
        raise EvalDataError(data_dir, f"{data_dir}: cannot read: {exc.strerror or exc}") from exc


def _errored_records(path: Path, ids: set[str]) -> dict[str, dict[str, Any]]:
    if not ids:
        return {}
    return {r["id"]: r for r in read_records(path) if r.get("id") in ids}


def open_run(config: RunConfig) -> OpenRun:
    """Create the run directory, or resume it when it exists with the same fingerprint."""
    samples, data_hash = select_samples(config)
    fingerprint = config.fingerprint(data_hash, prompts_digest())
    run_id = config.run_id or config.default_run_id(fingerprint)
    if not valid_run_id(run_id):
        raise EvalConfigError(f"invalid run id {run_id!r}", param="run_id")
    run_dir = config.out_dir / run_id
    manifest_path = run_dir / MANIFEST_FILE
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if manifest.get("fingerprint") != fingerprint:
            raise EvalConfigError(
                f"run {run_id} exists with another configuration "
                f"(fingerprint {manifest.get('fingerprint')} != {fingerprint}); "
                "choose another --run-id", param="run_id")
        manifest.update(status="running", resumed_at=dt.datetime.now(dt.UTC).isoformat())
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        manifest = {
            "run_id": run_id, "fingerprint": fingerprint,
            "fingerprint_fields": config.fingerprint_fields(data_hash, prompts_digest()),
            "config": config.model_dump(mode="json"), "versions": versions(),
            "seed": config.seed, "status": "running",
            "created_at": dt.datetime.now(dt.UTC).isoformat(),
            "sample_ids": [s.id for s in samples],
        }
    write_json_atomic(manifest_path, manifest)
    status = scan_status(run_dir / SAMPLES_FILE)
    done = {i for i, s in status.items() if s == "done"}
    errored_ids = {i for i, s in status.items() if s == "error"}
    return OpenRun(run_id=run_id, run_dir=run_dir, manifest=manifest, samples=samples,
                   done_ids=done, errored=_errored_records(run_dir / SAMPLES_FILE, errored_ids))
