"""End to end on the real embedded model (SmolLM2 under llama.cpp): target and judge.

Small on purpose (one item per kind, one country): it proves the prompts, the JSON-schema
output, the judge and the report work against a real model server, and that running the
same command again asks nothing. Slow on a busy CPU: marked ``slow``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval import EndpointConfig, RunConfig, run_evaluation
from eval.run_log import SAMPLES_FILE, read_records

pytestmark = pytest.mark.slow


async def test_embedded_model_as_target_and_judge(mini_data: Path, tmp_path: Path) -> None:
    from app.backends.embedded import EmbeddedLlamaServer

    with EmbeddedLlamaServer(parallel=2) as base_url:
        endpoint = EndpointConfig(base_url=base_url, model="smollm2-135m-instruct",
                                  max_retries=0, timeout_s=900, concurrency=2)
        cfg = RunConfig(data_dir=mini_data, target=endpoint, judge=endpoint, per_kind=1,
                        countries=("thailand",), kinds=("knowledge", "safety"), shuffled=False,
                        safety_max_tokens=48,
                        judge_max_tokens=96, judge_retries=1, out_dir=tmp_path,
                        run_id="embedded", judge_embedded=True)
        first = await run_evaluation(cfg)
        again = await run_evaluation(cfg, report=False)
    records = list(read_records(first.run_dir / SAMPLES_FILE))
    assert first.errors == 0 and first.done == first.total == len(records) == 2
    know = next(r for r in records if r["kind"] == "knowledge")
    assert know["structured"] is True  # llama.cpp honours the JSON schema
    assert know["parsed"] is not None and len(know["parsed"]) == 1
    safety = next(r for r in records if r["kind"] == "safety")
    assert safety["response"].strip()
    assert safety["judge_raw"]  # a judgement, or unparseable outputs kept and counted
    assert again.resumed == 2 and again.done == 2
    assert len(list(read_records(first.run_dir / SAMPLES_FILE))) == 2  # nothing asked again
    assert first.report_json is not None
    report = json.loads(first.report_json.read_text())
    assert report["judge"]["low_fidelity"] is True
