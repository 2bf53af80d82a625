"""``POST /evaluate`` when the server's dataset cannot be loaded: a 503 in the OpenAI error
shape (the client names no data path; the server's configuration is at fault), the
details in the server log, nothing written; and a job that cannot resume for the same
reason is marked failed instead of stopping the resume loop."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from app.main import create_app
from eval.config import EvalDataError, RunConfig
from eval.endpoint import EndpointConfig
from eval.job_store import disk_status, write_job_file, write_state
from eval.jobs import JobManager
from eval.manifest import select_samples
from retrieval.models import Passage
from tests.app.conftest import serve


class NoPassages:
    """A retriever that finds nothing (these tests are about /evaluate, not grounding)."""

    def search(self, query: str, k: int, location: str | None = None) -> list[Passage]:
        return []


def _removed(data: Path) -> None:
    shutil.rmtree(data)


def _no_data_files(data: Path) -> None:
    (data / "notes.txt").write_text("not a dataset", encoding="utf-8")


def _not_utf8(data: Path) -> None:
    (data / "spain.json").write_bytes(b"\xff\xfe\x00{")


def _cannot_stat(data: Path) -> None:
    # A directory the server cannot look at (as root, permissions do not stop us: a link
    # to a name too long for the file system raises the same kind of OSError).
    data.rmdir()
    data.symlink_to(data.parent / ("x" * 300))


@pytest.mark.parametrize("break_data", [_removed, _no_data_files, _not_utf8, _cannot_stat])
def test_unloadable_server_dataset_is_a_503_in_the_openai_shape(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, break_data: Callable[[Path], None]
) -> None:
    data, runs = tmp_path / "data", tmp_path / "runs"
    data.mkdir()
    runs.mkdir()
    # Settings checks the directory at start; it breaks while the server runs.
    settings = Settings(backend="upstream", upstream_base_url="http://127.0.0.1:9/v1",
                        upstream_model="up", data_dir=data, runs_dir=runs,
                        index_dir=Path("unused"))
    with serve(create_app(settings, retriever=NoPassages())) as url:
        break_data(data)
        with caplog.at_level(logging.ERROR, logger="app.errors"):
            response = httpx.post(f"{url}/evaluate", json={"per_kind": 1}, timeout=30)
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "service_unavailable"
    assert error["code"] == "evaluation_data_unavailable"
    assert "CULTURESAFE_DATA_DIR" in error["message"]
    assert str(tmp_path) not in error["message"]  # server paths stay in the log
    assert str(data) in caplog.text
    assert list(runs.iterdir()) == []


def test_select_samples_names_the_directory(tmp_path: Path) -> None:
    config = RunConfig(data_dir=tmp_path / "gone",
                       target=EndpointConfig(base_url="http://127.0.0.1:9/v1", model="m"))
    with pytest.raises(EvalDataError) as caught:
        select_samples(config)
    assert caught.value.path == tmp_path / "gone"
    assert "does not exist" in str(caught.value)


async def test_a_job_whose_data_is_gone_fails_to_resume_and_the_scan_goes_on(
    tmp_path: Path,
) -> None:
    runs = tmp_path / "runs"
    run_dir = runs / "lost-data"
    run_dir.mkdir(parents=True)
    config = RunConfig(data_dir=tmp_path / "gone", run_id="lost-data", out_dir=runs,
                       target=EndpointConfig(base_url="http://127.0.0.1:9/v1", model="m"))
    write_job_file(run_dir, config)
    write_state(run_dir, "running", 4)
    manager = JobManager(runs)
    try:
        assert await manager.resume_unfinished() == []
    finally:
        await manager.shutdown()
    state = disk_status(run_dir)
    assert state is not None and state["status"] == "failed"
    assert "does not exist" in (state["error"] or "")
