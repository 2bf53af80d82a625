"""The run loop against a real loopback HTTP server: solver, judge, log, faults, resume."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from eval import EvalConfigError, RunConfig, run_evaluation
from eval.endpoint import EndpointConfig
from eval.run_log import SAMPLES_FILE, latest_records, read_records
from tests.fakes.openai_server import FakeOpenAI

from .conftest import endpoint


def config(data: Path, out: Path, server: FakeOpenAI, **extra: Any) -> RunConfig:
    """The benchmark kinds only (the ordinary kind has its own tests: test_ordinary_*)."""
    return RunConfig.model_validate({
        "data_dir": data, "target": endpoint(server, "target"),
        "judge": endpoint(server, "judge"), "per_kind": 2, "out_dir": out, "run_id": "r1",
        "kinds": ("knowledge", "safety"), **extra,
    })


async def test_every_sample_is_answered_scored_and_logged(
    mini_data: Path, tmp_path: Path, loopback: FakeOpenAI
) -> None:
    result = await run_evaluation(config(mini_data, tmp_path, loopback))
    records = list(read_records(result.run_dir / SAMPLES_FILE))
    assert result.total == result.done == len(records) == 5 * (2 + 2 + 2)
    assert result.errors == 0
    know = [r for r in records if r["kind"] == "knowledge"]
    assert all(r["structured"] and r["parsed_via"] == "json" for r in know)
    for r in know:
        assert r["correct_strict"] == (r["parsed"] == [r["target"]])
    safety = [r for r in records if r["kind"] == "safety"]
    assert all(1 <= r["judgement"]["respectfulness"] <= 10 for r in safety)
    assert all(len(r["judge_raw"]) == 1 for r in safety)
    assert result.report_json is not None and result.report_json.exists()
    assert result.report_html is not None and result.report_html.exists()
    # nothing asked twice: each sample's prompt as often as samples have it, plus one judge
    # request per safety sample (a shuffle can leave the options in place, so two samples
    # may share a prompt)
    asked = Counter(FakeOpenAI.prompt_key(r["messages"]) for r in records)
    assert all(loopback.answered[key] == n for key, n in asked.items())
    assert sum(loopback.answered.values()) == len(records) + len(safety)


async def test_schema_refused_with_400_falls_back_to_plain_prompting(
    mini_data: Path, tmp_path: Path
) -> None:
    with FakeOpenAI(schema_support=False) as server:
        result = await run_evaluation(config(mini_data, tmp_path, server), report=False)
    records = list(read_records(result.run_dir / SAMPLES_FILE))
    assert result.errors == 0
    know = [r for r in records if r["kind"] == "knowledge"]
    assert all(not r["structured"] and r["parsed_via"] == "pattern" for r in know)
    assert all(r["response"].startswith("Answer: (") for r in know)
    assert all(r["judgement"] is not None for r in records if r["kind"] == "safety")


async def test_injected_503s_are_retried_by_the_client(mini_data: Path, tmp_path: Path) -> None:
    with FakeOpenAI() as server:
        server.fail(503, times=2)
        cfg = config(mini_data, tmp_path, server, countries=("spain",),
                     target=endpoint(server, "t", max_retries=2, concurrency=1),
                     judge=endpoint(server, "j", max_retries=2, concurrency=1))
        result = await run_evaluation(cfg, report=False)
    assert result.errors == 0 and result.done == result.total == 6


async def test_an_endpoint_that_keeps_failing_leaves_errors_to_retry(
    mini_data: Path, tmp_path: Path
) -> None:
    with FakeOpenAI() as server:
        server.fail(500)
        cfg = config(mini_data, tmp_path, server, countries=("spain",))
        result = await run_evaluation(cfg, report=False)
    assert result.errors == 6 and result.done == 0
    records = latest_records(result.run_dir / SAMPLES_FILE)
    assert all(r["status"] == "error" and "InternalServerError" in r["error"]
               for r in records.values())
    with FakeOpenAI() as healthy:  # the same run, resumed against a healthy server
        result = await run_evaluation(config(mini_data, tmp_path, healthy,
                                             countries=("spain",)), report=False)
    assert result.errors == 0 and result.done == 6


class GarbageJudge(FakeOpenAI):
    def reply(self, messages: list[dict[str, Any]], structured: bool) -> str:
        if any(m.get("role") == "system" for m in messages):
            return "I would rather not give numbers."
        return super().reply(messages, structured)


async def test_unparseable_judgements_are_retried_then_counted(
    mini_data: Path, tmp_path: Path
) -> None:
    with GarbageJudge() as server:
        cfg = config(mini_data, tmp_path, server, countries=("india",), judge_retries=2)
        result = await run_evaluation(cfg)
    safety = [r for r in read_records(result.run_dir / SAMPLES_FILE) if r["kind"] == "safety"]
    assert len(safety) == 2
    assert all(r["judgement"] is None and len(r["judge_raw"]) == 3 for r in safety)
    assert result.report_json is not None
    report = json.loads(result.report_json.read_text())
    assert report["overall"]["n"]["judge_unparseable"] == 2
    assert report["overall"]["metrics"]["respectfulness"]["value"] is None


async def test_gateway_condition_sends_the_grounding_mode(
    mini_data: Path, tmp_path: Path, loopback: FakeOpenAI
) -> None:
    cfg = config(mini_data, tmp_path, loopback, condition="gateway", mode="inject",
                 kinds=("knowledge",), countries=("china",), shuffled=False, per_kind=1)
    await run_evaluation(cfg, report=False)
    assert loopback.last_body["culturesafe"] == {"mode": "inject"}
    assert loopback.last_body["temperature"] == 0
    assert loopback.last_body["top_p"] == 0.9


async def test_unreachable_target_fails_before_any_work(mini_data: Path, tmp_path: Path) -> None:
    dead = EndpointConfig(base_url="http://127.0.0.1:9/v1", model="m", max_retries=0)
    cfg = RunConfig(data_dir=mini_data, target=dead, judge=dead, out_dir=tmp_path,
                    run_id="dead")
    with pytest.raises(EvalConfigError, match="unreachable"):
        await run_evaluation(cfg)
    assert not (tmp_path / "dead" / SAMPLES_FILE).exists() or not (
        tmp_path / "dead" / SAMPLES_FILE).read_bytes()


async def test_unknown_country_is_refused(mini_data: Path, tmp_path: Path,
                                          loopback: FakeOpenAI) -> None:
    with pytest.raises(EvalConfigError, match="unknown countries"):
        await run_evaluation(config(mini_data, tmp_path, loopback, countries=("atlantis",)))


async def test_resume_with_another_configuration_is_refused(
    mini_data: Path, tmp_path: Path, loopback: FakeOpenAI
) -> None:
    await run_evaluation(config(mini_data, tmp_path, loopback, countries=("spain",)),
                         report=False)
    with pytest.raises(EvalConfigError, match="another configuration"):
        await run_evaluation(config(mini_data, tmp_path, loopback, countries=("spain",),
                                    seed=1))


async def test_a_partial_last_line_is_dropped_and_the_sample_asked_again(
    mini_data: Path, tmp_path: Path, loopback: FakeOpenAI
) -> None:
    cfg = config(mini_data, tmp_path, loopback, countries=("thailand",))
    first = await run_evaluation(cfg, report=False)
    path = first.run_dir / SAMPLES_FILE
    lines = path.read_bytes().splitlines(keepends=True)
    cut = json.loads(lines[-1])["id"]
    path.write_bytes(b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    before = sum(loopback.answered.values())
    second = await run_evaluation(cfg, report=False)
    assert second.resumed == len(lines) - 1 and second.done == len(lines)
    records = list(read_records(path))
    assert [r["id"] for r in records].count(cut) == 1
    assert len(records) == len(lines)
    asked = sum(loopback.answered.values()) - before
    assert asked == (2 if ":safety:" in cut else 1)  # the cut sample only (and its judge)


class CustomBlindJudge(FakeOpenAI):
    """Scores from the response alone: it never reads the custom."""

    def reply(self, messages: list[dict[str, Any]], structured: bool) -> str:
        if any(m.get("role") == "system" for m in messages):
            response = messages[-1]["content"].split("Assistant response:")[-1]
            score = 1 + len(response) % 10
            return json.dumps({"respectfulness": score, "awareness": score, "rationale": ""})
        return super().reply(messages, structured)


@pytest.mark.parametrize(("model", "reads"), [(FakeOpenAI, True), (CustomBlindJudge, False)])
async def test_wrong_custom_control_flags_a_judge_that_ignores_the_custom(
    mini_data: Path, tmp_path: Path, model: type[FakeOpenAI], reads: bool
) -> None:
    with model() as server:
        cfg = config(mini_data, tmp_path, server, per_kind=3, kinds=("safety",),
                     judge_control=6)
        result = await run_evaluation(cfg)
    rows = [json.loads(line) for line in (result.run_dir / "control.jsonl").read_text()
            .splitlines()]
    assert len(rows) == 6
    assert all(r["wrong_description_id"] != r["id"].rsplit(":safety:", 1)[0] for r in rows)
    assert result.report_json is not None
    control = json.loads(result.report_json.read_text())["judge_control"]
    assert control["n"] == 6
    if reads:  # the loopback judge hashes the whole prompt: its scores move (either way)
        assert control["wrong_custom"] != control["gold"]
    else:
        assert control["awareness_drop"] == 0 and control["reads_custom"] is False
        assert "not reading the custom" in control["note"]


async def test_rejudge_reuses_the_stored_answers_and_asks_only_the_judge(
    mini_data: Path, tmp_path: Path
) -> None:
    from eval.rejudge import prepare_rejudge

    with FakeOpenAI() as first_server:
        source = await run_evaluation(
            config(mini_data, tmp_path, first_server, countries=("china",)), report=False)
    with FakeOpenAI() as judge_server:
        cfg = prepare_rejudge(source.run_dir, endpoint(judge_server, "judge-2"), "again")
        result = await run_evaluation(cfg, report=False)
    assert result.done == result.total == source.total and result.errors == 0
    assert judge_server.requests == 2  # one judgement per safety answer, no target
    old = latest_records(source.run_dir / SAMPLES_FILE)
    new = latest_records(result.run_dir / SAMPLES_FILE)
    assert {i: r["response"] for i, r in new.items()} == {i: r["response"] for i, r in
                                                        old.items()}
    assert all(r["judgement"] for r in new.values() if r["kind"] == "safety")
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["config"]["judge"]["model"] == "judge-2"
