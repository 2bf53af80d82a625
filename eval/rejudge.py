"""Re-judge a finished run with another judge, reusing its stored answers.

The new run gets the source run's configuration with the new judge, and a log seeded with
the source's records: knowledge answers as done, safety answers as "awaiting judgement".
The ordinary resume path then asks the judge only (it reuses a stored response), so the
target is never called again.
"""

from __future__ import annotations

import json
from pathlib import Path

from eval.config import EvalConfigError, RunConfig
from eval.endpoint import EndpointConfig
from eval.manifest import open_run
from eval.run_log import MANIFEST_FILE, SAMPLES_FILE, encode_record, latest_records

_JUDGE_FIELDS = ("judgement", "judge_raw", "judge_latency_s", "error")


def prepare_rejudge(source: Path, judge: EndpointConfig, run_id: str,
                    *, judge_embedded: bool = False) -> RunConfig:
    """Create run ``run_id`` next to ``source``, ready to be run to judge it again."""
    manifest = json.loads((source / MANIFEST_FILE).read_text(encoding="utf-8"))
    config = RunConfig.model_validate(manifest["config"]).model_copy(update={
        "judge": judge, "run_id": run_id, "out_dir": source.parent,
        "judge_embedded": judge_embedded,
    })
    if (source.parent / run_id / SAMPLES_FILE).exists():
        raise EvalConfigError(f"run {run_id} already exists", param="run_id")
    run = open_run(config)
    with (run.run_dir / SAMPLES_FILE).open("wb") as fh:
        for record in latest_records(source / SAMPLES_FILE).values():
            if record.get("status") != "done":
                continue  # never answered: the new run asks the target for it
            if record["kind"] == "safety":
                record = {k: v for k, v in record.items() if k not in _JUDGE_FIELDS}
                record.update(status="error", error="awaiting judgement (re-judge)")
            fh.write(encode_record(record))
    return config
