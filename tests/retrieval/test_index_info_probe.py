"""``culturesafe index info`` summarises the manifest's probe vector (dimension, leading
values, digest) instead of printing its hundreds of floats; through typer's CliRunner on an
index built by ``index build`` with the real embedder."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from retrieval.index_cli import index_app, probe_summary
from retrieval.index_store import read_manifest

runner = CliRunner()
FLOAT = re.compile(r"-?\d+\.\d+")


def test_info_prints_the_probe_as_dimension_leading_values_and_digest(
    tmp_path: Path, tiny_kb_file: Path
) -> None:
    out = tmp_path / "index"
    built = runner.invoke(index_app, ["build", "--data", str(tiny_kb_file), "--out", str(out),
                                      "--no-multilingual", "--no-intent-gate"])
    assert built.exit_code == 0, built.output
    probe = read_manifest(out).embedder_probe
    assert probe is not None and len(probe) == 384

    info = runner.invoke(index_app, ["info", "--dir", str(out)])
    assert info.exit_code == 0, info.output
    [line] = [x for x in info.output.splitlines() if x.startswith("embedder_probe:")]
    assert "dimension 384" in line and "sha256 " in line
    assert len(FLOAT.findall(line)) <= 3 and len(line) < 120
    assert line == f"embedder_probe: {probe_summary(probe)}"
    assert len(FLOAT.findall(info.output)) < 10  # the vector is nowhere else either
    assert "checksums match" in info.output


def test_probe_summary_tells_vectors_apart_and_names_a_missing_probe() -> None:
    one = probe_summary((0.1234, -0.5, 0.25, 0.75))
    assert re.fullmatch(r"dimension 4: 0\.1234, -0\.5000, 0\.2500, \.\.\. "
                        r"\(sha256 [0-9a-f]{12}\)", one), one
    assert probe_summary((0.1234, -0.5, 0.25, 0.7501)) != one  # a change past the lead shows
    assert probe_summary((1.0,)).startswith("dimension 1: 1.0000 (sha256 ")
    assert probe_summary(None) == "none (an index built before probes were recorded)"
