"""Small slices of the real AdaCultureSafe dataset, in its own JSON format, for tests that
start a gateway or a benchmark on "a data directory" and are not about the full KB (which
takes minutes to index and fit the intent gate on two cores)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrieval.knowledge_base import ADACULTURESAFE_DIR

DATASET = Path(__file__).resolve().parents[1] / ADACULTURESAFE_DIR


def tiny_dataset(out: Path, countries: int = 1, per_country: int = 2) -> Path:
    """The first ``per_country`` items of the first ``countries`` countries, written to
    ``out`` (created); skips the test when the dataset is not there."""
    if not DATASET.is_dir():
        pytest.skip(f"dataset not found at {DATASET}")
    out.mkdir(parents=True, exist_ok=True)
    for src in sorted(DATASET.glob("*.json"))[:countries]:
        items = json.loads(src.read_text(encoding="utf-8"))
        keep = dict(list(items.items())[:per_country])
        (out / src.name).write_text(json.dumps(keep, ensure_ascii=False), encoding="utf-8")
    return out
