"""report.json and report.html agree, the low-fidelity note appears, and the page renders
in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.image import imread

from eval import RunConfig, run_evaluation
from eval.report import write_report
from eval.report_html import fmt
from tests.fakes.openai_server import FakeOpenAI

from .conftest import endpoint


class MetricCells(HTMLParser):
    """Collects the text of every element carrying ``data-metric``."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[str, str] = {}
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open = dict(attrs).get("data-metric")

    def handle_data(self, data: str) -> None:
        if self._open:
            self.cells[self._open] = self.cells.get(self._open, "") + data

    def handle_endtag(self, tag: str) -> None:
        self._open = None


def lookup(report: dict[str, Any], key: str) -> Any:
    node: Any = report
    parts = key.split(".")
    if parts[0] == "per_country" and parts[2] != "n":
        parts = [parts[0], parts[1], "metrics", *parts[2:]]
    if parts[0] == "overall" and parts[1] != "n":
        parts = [parts[0], "metrics", *parts[1:]]
    if parts[0] == "comparisons":
        parts = [parts[0], parts[1], "metrics", *parts[2:]]
    for part in parts:
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node["value"] if isinstance(node, dict) and "value" in node else node


@pytest.fixture(scope="module")
def two_runs(mini_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    import asyncio

    out = tmp_path_factory.mktemp("runs")
    with FakeOpenAI() as server:
        def cfg(condition: str, run_id: str) -> RunConfig:
            return RunConfig.model_validate({
                "data_dir": mini_data, "target": endpoint(server, "t"),
                "judge": endpoint(server, "j"), "per_kind": 4, "out_dir": out,
                "run_id": run_id, "condition": condition, "judge_embedded": True})
        a = asyncio.run(run_evaluation(cfg("plain", "plain"), report=False))
        b = asyncio.run(run_evaluation(cfg("inject-gold", "gold"), report=False))
    write_report(b.run_dir, compare_with=[a.run_dir])
    return a.run_dir, b.run_dir


def test_html_numbers_match_report_json(two_runs: tuple[Path, Path]) -> None:
    run_dir = two_runs[1]
    report = json.loads((run_dir / "report.json").read_text())
    parser = MetricCells()
    parser.feed((run_dir / "report.html").read_text())
    assert len(parser.cells) > 60
    for key, shown in parser.cells.items():
        value = lookup(report, key)
        expected = fmt(value) if isinstance(value, float) or value is None else str(value)
        assert shown.strip() == expected, key
    assert any(k.startswith("comparisons.0.") for k in parser.cells)
    assert any(k.startswith("per_country.thailand.") for k in parser.cells)


def test_report_has_every_section_and_the_low_fidelity_note(two_runs: tuple[Path, Path]
                                                           ) -> None:
    html = (two_runs[1] / "report.html").read_text()
    report = json.loads((two_runs[1] / "report.json").read_text())
    assert report["judge"]["low_fidelity"] is True
    assert 'id="low-fidelity"' in html and "low-fidelity" in html
    # per country, intent matrix, scatter, comparison (the ordinary-traffic plot needs a
    # CultureSafe target: test_ordinary_gateway)
    assert len(re.findall(r'src="data:image/png;base64,', html)) == 4
    assert 'id="ordinary-table"' in html and 'id="intent-matrix"' in html
    assert report["ordinary"]["n"] > 0 and report["intent"]["n"] == report["progress"]["done"]
    assert "Worst-scoring responses" in html and len(report["worst_responses"]) == 10
    assert "http://" not in html.split("<pre>")[0].replace('http://127.0.0.1', '')
    cmp = report["comparisons"][0]
    assert cmp["a"] == "plain" and cmp["b"] == "gold" and cmp["n_items"] > 0
    for metric in cmp["metrics"].values():
        lo, hi = metric["ci95"]
        assert lo is None or lo <= metric["diff"] <= hi


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.browser
def test_report_renders_in_headless_chromium(two_runs: tuple[Path, Path],
                                             tmp_path: Path) -> None:
    binary = chromium()
    if binary is None:
        print("chromium is not installed: apt-get install -y chromium")  # noqa: T201
        pytest.skip("chromium is not installed")
    shot = tmp_path / "shot.png"
    cmd = [binary, "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
           "--window-size=1200,2400", f"--screenshot={shot}",
           (two_runs[1] / "report.html").resolve().as_uri()]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    pixels = imread(shot)
    assert pixels.shape[0] >= 2000 and pixels.shape[1] >= 1000
    rgb = pixels[..., :3].reshape(-1, 3)
    assert float(rgb.std()) > 0.05  # not a blank page
    colors = np.unique((rgb * 255).astype(np.uint8), axis=0)
    assert len(colors) > 50  # text and plots, not a flat fill
