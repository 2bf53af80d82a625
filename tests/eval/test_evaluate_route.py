"""``POST /evaluate`` and its status/report routes on the real app under real uvicorn,
with the fake model server; bad input answered in the OpenAI error shape."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import Settings
from app.main import create_app
from eval.run_log import SAMPLES_FILE, read_records
from retrieval.models import Passage
from tests.app.conftest import serve
from tests.fakes.openai_server import FakeOpenAI


class NoPassages:
    """A retriever that finds nothing (these tests are about /evaluate, not grounding)."""

    def search(self, query: str, k: int, location: str | None = None) -> list[Passage]:
        return []


def gateway(upstream: str, data: Path, runs: Path) -> Any:
    settings = Settings(backend="upstream", upstream_base_url=upstream, upstream_model="up",
                        data_dir=data, runs_dir=runs, index_dir=Path("unused"))
    return create_app(settings, retriever=NoPassages())


def wait_for(client: httpx.Client, run_id: str, status: str = "finished") -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state: dict[str, Any] = client.get(f"/evaluate/{run_id}").json()
        if state["status"] == status:
            return state
        assert state["status"] not in ("failed", "incomplete"), state
        time.sleep(0.1)
    raise AssertionError(f"{run_id} never reached {status}")


def test_post_evaluate_runs_in_the_background_and_serves_the_report(
    mini_data: Path, tmp_path: Path, loopback: FakeOpenAI
) -> None:
    with serve(gateway(loopback.base_url, mini_data, tmp_path)) as url, \
            httpx.Client(base_url=url, timeout=30) as client:
        body = {"target_url": loopback.base_url, "judge_url": loopback.base_url,
                "condition": "plain", "per_kind": 1, "countries": ["spain", "china"],
                "run_id": "api-run"}
        accepted = client.post("/evaluate", json=body)
        assert accepted.status_code == 202, accepted.text
        # per country: knowledge, shuffled, safety and an ordinary prompt naming it
        assert accepted.json()["id"] == "api-run" and accepted.json()["total"] == 8
        state = wait_for(client, "api-run")
        assert state["done"] == 8 and state["metrics"]["respectfulness"] is not None
        assert state["metrics"]["ordinary_grounded"] is None  # the loopback is not CultureSafe
        wait_for_report = time.monotonic() + 60
        while not client.get("/evaluate/api-run").json()["report_ready"]:
            assert time.monotonic() < wait_for_report
            time.sleep(0.1)
        html = client.get("/evaluate/api-run/report")
        assert html.status_code == 200 and "text/html" in html.headers["content-type"]
        assert "api-run" in html.text
        report = client.get("/evaluate/api-run/report.json").json()
        assert report["progress"]["done"] == 8 and report["ordinary"]["n"] == 2
        assert "Ordinary traffic (no harm)" in html.text


def test_default_target_is_the_gateway_itself_with_the_grounding_mode(
    mini_data: Path, tmp_path: Path, loopback: FakeOpenAI
) -> None:
    with serve(gateway(loopback.base_url, mini_data, tmp_path)) as url, \
            httpx.Client(base_url=url, timeout=30) as client:
        accepted = client.post("/evaluate", json={"per_kind": 1, "countries": ["india"],
                                                  "kinds": ["safety"], "mode": "inject"})
        assert accepted.status_code == 202, accepted.text
        state = wait_for(client, accepted.json()["id"])
    records = list(read_records(tmp_path / accepted.json()["id"] / SAMPLES_FILE))
    assert state["done"] == len(records) == 1
    assert records[0]["judgement"] is not None
    # the judge request went through the gateway with grounding off, to the same upstream
    assert loopback.last_body["model"] == "up"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"countries": ["atlantis"]}, "countries"),
        ({"per_kind": -1}, "per_kind"),
        ({"per_kind": 0}, "per_kind"),
        ({"run_id": "../../etc"}, "run_id"),
        ({"run_id": "a/b"}, "run_id"),
        ({"condition": "telepathy"}, "condition"),
        ({"target_url": "file:///etc/passwd"}, "target_url"),
        ({"target_url": "http://127.0.0.1:9/v1"}, "target_url"),
        ({"unknown_field": 1}, "unknown_field"),
    ],
)
def test_bad_requests_get_an_openai_error_before_any_work(
    mini_data: Path, tmp_path: Path, loopback: FakeOpenAI, body: dict[str, Any],
    param: str
) -> None:
    with serve(gateway(loopback.base_url, mini_data, tmp_path)) as url:
        base = {"target_url": loopback.base_url, "judge_url": loopback.base_url,
                "condition": "plain"}
        response = httpx.post(f"{url}/evaluate", json={**base, **body}, timeout=30)
    assert response.status_code in (400, 422), response.text
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    assert error["param"] == param
    assert list(tmp_path.iterdir()) == []


ORDINARY = [{"id": "kyiv", "text": "Is it cold in Kyiv in May?", "places": ["Ukraine"]},
            {"id": "code", "text": "Sort a list in Go.", "places": []},
            {"id": "seville", "text": "Best tapas near Seville cathedral?", "places": ["Spain"]}]


def test_the_ordinary_kind_against_the_gateway_itself_with_inline_prompts(
    mini_data: Path, tmp_path: Path, loopback: FakeOpenAI
) -> None:
    with serve(gateway(loopback.base_url, mini_data, tmp_path)) as url, \
            httpx.Client(base_url=url, timeout=30) as client:
        body = {"kinds": ["ordinary"], "ordinary_prompts": ORDINARY, "run_id": "no-harm"}
        accepted = client.post("/evaluate", json=body)
        assert accepted.status_code == 202, accepted.text
        assert accepted.json()["total"] == 3
        state = wait_for(client, "no-harm")
    # the gateway (no passages: nothing to ground) forwards each prompt untouched, so the
    # loopback model answers it as it does with grounding off
    assert state["metrics"]["ordinary_grounded"] == 0.0
    assert state["metrics"]["ordinary_differs_from_off"] == 0.0
    records = list(read_records(tmp_path / "no-harm" / SAMPLES_FILE))
    assert sorted(r["id"] for r in records) == ["ordinary:code", "ordinary:kyiv",
                                                "ordinary:seville"]
    assert all(r["culturesafe"] and r["off_response"] == r["response"] for r in records)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"kinds": ["ordinary", "telepathy"]}, "kinds[1]"),
        ({"kinds": []}, "kinds"),
        ({"kinds": "ordinary"}, "kinds"),
        ({"ordinary_prompts": []}, "ordinary_prompts"),
        ({"ordinary_prompts": [{"id": "a"}]}, "ordinary_prompts[0].text"),
        ({"ordinary_prompts": [{"id": "a", "text": ""}]}, "ordinary_prompts[0].text"),
        ({"ordinary_prompts": [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]},
         "ordinary_prompts"),
        ({"ordinary_prompts": {"id": "a", "text": "x"}}, "ordinary_prompts"),
        ({"ordinary_file": "/etc/passwd"}, "ordinary_file"),  # no server paths from clients
    ],
)
def test_bad_ordinary_values_get_a_400_in_the_openai_shape(
    mini_data: Path, tmp_path: Path, loopback: FakeOpenAI, body: dict[str, Any],
    param: str
) -> None:
    with serve(gateway(loopback.base_url, mini_data, tmp_path)) as url:
        base = {"target_url": loopback.base_url, "judge_url": loopback.base_url,
                "condition": "plain"}
        response = httpx.post(f"{url}/evaluate", json={**base, **body}, timeout=30)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert set(error) == {"message", "type", "param", "code"}
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("run_id", ["..", "..%2F..%2Fetc", "a%00b", "nope"])
def test_unknown_or_hostile_run_ids_are_refused(
    mini_data: Path, tmp_path: Path, loopback: FakeOpenAI, run_id: str
) -> None:
    with serve(gateway(loopback.base_url, mini_data, tmp_path)) as url:
        for suffix in ("", "/report", "/report.json"):
            response = httpx.get(f"{url}/evaluate/{run_id}{suffix}", timeout=30)
            assert response.status_code in (400, 404), response.text
            assert "error" in response.json()


def test_a_job_interrupted_by_shutdown_resumes_on_the_next_start(
    mini_data: Path, tmp_path: Path
) -> None:
    with FakeOpenAI(latency_s=0.05) as upstream:
        body = {"target_url": upstream.base_url, "judge_url": upstream.base_url,
                "condition": "plain", "per_kind": 3, "concurrency": 1,
                "judge_concurrency": 1, "run_id": "restart", "kinds": ["knowledge", "safety"]}
        log = tmp_path / "restart" / SAMPLES_FILE
        with serve(gateway(upstream.base_url, mini_data, tmp_path)) as url:
            assert httpx.post(f"{url}/evaluate", json=body, timeout=30).status_code == 202
            deadline = time.monotonic() + 60
            while not (log.exists() and log.read_bytes().count(b"\n") >= 5):
                assert time.monotonic() < deadline
                time.sleep(0.02)
        # the service stopped midway; a new one finds the job and finishes it
        stopped_at = len(list(read_records(log)))
        assert stopped_at < 45
        with serve(gateway(upstream.base_url, mini_data, tmp_path)) as url, \
                httpx.Client(base_url=url, timeout=30) as client:
            state = wait_for(client, "restart")
    records = list(read_records(log))
    ids = [r["id"] for r in records]
    assert state["done"] == state["total"] == 45 == len(ids) == len(set(ids))
    manifest = json.loads((tmp_path / "restart" / "manifest.json").read_text())
    assert manifest["status"] == "finished"
