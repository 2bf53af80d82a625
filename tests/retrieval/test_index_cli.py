"""``culturesafe index build`` and ``index info`` through typer's CliRunner."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from retrieval.index_cli import index_app
from retrieval.index_store import INDEX_FILE, read_manifest

runner = CliRunner()


def test_build_then_info_then_up_to_date(tmp_path: Path, tiny_kb_file: Path) -> None:
    out = tmp_path / "index"
    built = runner.invoke(index_app, ["build", "--data", str(tiny_kb_file), "--out", str(out)])
    assert built.exit_code == 0, built.output
    assert "index written" in built.output and "8 descriptions" in built.output
    assert "Embedding 8 descriptions" in built.output  # the progress bar of each path
    assert "Embedding 8 descriptions (intfloat/multilingual-e5-small" in built.output
    assert read_manifest(out).embedder == "sentence-transformers/all-MiniLM-L6-v2"

    info = runner.invoke(index_app, ["info", "--dir", str(out)])
    assert info.exit_code == 0, info.output
    assert "kb_content_hash:" in info.output and "checksums match" in info.output

    again = runner.invoke(index_app, ["build", "--data", str(tiny_kb_file), "--out", str(out)])
    assert again.exit_code == 0 and "index up to date" in again.output


def test_info_reports_missing_and_corrupt_indexes(tmp_path: Path, tiny_kb_file: Path) -> None:
    missing = runner.invoke(index_app, ["info", "--dir", str(tmp_path / "none")])
    assert missing.exit_code == 1 and "no index at" in missing.output

    out = tmp_path / "index"
    runner.invoke(index_app, ["build", "--data", str(tiny_kb_file), "--out", str(out)])
    (out / INDEX_FILE).write_bytes(b"truncated")
    corrupt = runner.invoke(index_app, ["info", "--dir", str(out)])
    assert corrupt.exit_code == 1 and "corrupted or truncated" in corrupt.output


def test_build_over_other_data_needs_rebuild(tmp_path: Path, tiny_kb_file: Path) -> None:
    out = tmp_path / "index"
    one = tmp_path / "one.jsonl"
    one.write_text(tiny_kb_file.read_text().splitlines()[0] + "\n")
    assert runner.invoke(index_app, ["build", "--data", str(one), "--out", str(out)]).exit_code == 0
    refused = runner.invoke(index_app, ["build", "--data", str(tiny_kb_file), "--out", str(out)])
    assert refused.exit_code == 1 and "kb_content_hash" in refused.output
    forced = runner.invoke(
        index_app, ["build", "--data", str(tiny_kb_file), "--out", str(out), "--rebuild"]
    )
    assert forced.exit_code == 0 and "8 descriptions" in forced.output
