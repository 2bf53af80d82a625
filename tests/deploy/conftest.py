"""Shared fixtures for the deployment checks: the repository root and the compose file,
loaded and interpolated the way ``docker compose`` does before it validates."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]

# Compose's interpolation: $$ escapes, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err},
# ${VAR?err}, $VAR (https://github.com/compose-spec/compose-spec/blob/master/spec.md).
_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


class InterpolationError(ValueError):
    """A ``${VAR:?message}`` whose variable is missing, as compose would refuse it."""


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Substitute variables in every string of a loaded compose document."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["named"]
        op, arg = match["op"], match["arg"] or ""
        current = env.get(name)
        missing = current is None or (op is not None and op.startswith(":") and current == "")
        if op in (":-", "-"):
            return arg if missing else str(current)
        if op in (":?", "?") and missing:
            raise InterpolationError(f"{name}: {arg}")
        return current or ""

    return _VARIABLE.sub(substitute, value)


def load_compose(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """docker-compose.yml, parsed (merge keys resolved) and interpolated with ``env``."""
    text = (REPO_ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    document = yaml.safe_load(text)
    assert isinstance(document, dict)
    interpolated = interpolate(document, env or {})
    assert isinstance(interpolated, dict)
    return interpolated


def parse_dockerfile(path: Path) -> list[tuple[int, str, str]]:
    """(stage number, KEYWORD, arguments) per instruction; continuations joined, comments
    dropped (enough for this project's Dockerfile; no heredocs, no escape directive)."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stage = -1
    result = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        if keyword.upper() == "FROM":
            stage += 1
        result.append((stage, keyword.upper(), args.strip()))
    return result


@pytest.fixture(scope="session")
def instructions() -> list[tuple[int, str, str]]:
    """The Dockerfile's instructions, as ``parse_dockerfile`` reads them."""
    return parse_dockerfile(REPO_ROOT / "Dockerfile")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    """The compose file as compose sees it with no variables set (all defaults)."""
    return load_compose()


@pytest.fixture(scope="session")
def compose_loader() -> Any:
    """``load_compose`` itself, for tests that set variables."""
    return load_compose
