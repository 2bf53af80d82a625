"""What a run is: the configuration, its fingerprint, and the errors a bad one raises."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from eval.endpoint import EndpointConfig
from eval.samples import Kind, OrdinaryPrompt
from eval.solver import Condition
from retrieval.knowledge_base import ADACULTURESAFE_DIR


class EvalError(Exception):
    """Base of the errors the evaluation raises on purpose (a message a user can act on)."""


class EvalConfigError(EvalError):
    """A run that cannot start: unknown country, unreachable endpoint, mismatched resume."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class EvalDataError(EvalError):
    """The run's data directory cannot be loaded (missing, unreadable or invalid): the fault
    of whoever configured it (the CLI's ``--data``, the service's data directory), not of a
    request.

    Attributes:
        path: the directory (or file) the run was given.
    """

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"the evaluation data cannot be loaded: {reason}")
        self.path = path


class RunConfig(BaseModel):
    """Everything that defines a run. Fields outside ``fingerprint()`` (URLs, keys,
    concurrency, timeouts) may change between a run and its resumption.

    Its defaults are the evaluation's defaults: the CLI and ``POST /evaluate`` read them
    from here (:data:`RUN_DEFAULTS`).
    """

    model_config = ConfigDict(frozen=True)

    data_dir: Path = ADACULTURESAFE_DIR
    target: EndpointConfig
    judge: EndpointConfig | None = None
    condition: Condition = "plain"
    mode: str | None = None  # grounding mode for condition=gateway, e.g. "grounded"
    gateway_field: str = "culturesafe"  # request-body field that carries the mode
    per_kind: int | None = Field(default=50, ge=1)
    countries: tuple[str, ...] = ()
    kinds: tuple[Kind, ...] = Field(default=("knowledge", "safety", "ordinary"), min_length=1)
    # Ordinary traffic (eval/ordinary.py): prompts given inline win over a file; neither
    # means the set shipped in the package.
    ordinary_file: Path | None = None
    ordinary_prompts: tuple[OrdinaryPrompt, ...] = Field(default=(), max_length=5000)
    shuffled: bool = True
    seed: int = 0
    knowledge_max_tokens: int = Field(default=24, ge=4)
    safety_max_tokens: int = Field(default=256, ge=8)
    ordinary_max_tokens: int = Field(default=128, ge=8)
    judge_max_tokens: int = Field(default=200, ge=16)
    judge_retries: int = Field(default=2, ge=0, le=10)
    judge_control: int = Field(default=0, ge=0)  # safety samples re-judged with a wrong custom
    out_dir: Path = Path("runs")
    run_id: str | None = None
    target_embedded: bool = False  # set by the CLI when it launched the embedded model
    judge_embedded: bool = False

    def target_endpoint(self) -> EndpointConfig:
        """The target, with the grounding mode in the body when going through the gateway."""
        if self.condition != "gateway":
            return self.target
        body = dict(self.target.extra_body or {})
        body[self.gateway_field] = {"mode": self.mode or "grounded"}
        return self.target.model_copy(update={"extra_body": body})

    def fingerprint_fields(self, data_hash: str, prompts: str) -> dict[str, Any]:
        """What must not change for stored answers to stay valid."""
        judge = self.judge
        fields: dict[str, Any] = {
            "data": data_hash,
            "prompts": prompts,
            "target_model": self.target.model,
            "condition": self.condition,
            "mode": self.mode if self.condition == "gateway" else None,
            "judge_model": judge.model if judge else None,
            "sampling": [self.target.temperature, self.target.top_p, self.target.seed],
            "selection": [self.per_kind, sorted(c.lower() for c in self.countries),
                          list(self.kinds), self.shuffled, self.seed],
            "max_tokens": [self.knowledge_max_tokens, self.safety_max_tokens,
                           self.judge_max_tokens],
        }
        if "ordinary" in self.kinds:  # only then, so older runs keep their fingerprint
            fields["ordinary_max_tokens"] = self.ordinary_max_tokens
        return fields

    def fingerprint(self, data_hash: str, prompts: str) -> str:
        blob = json.dumps(self.fingerprint_fields(data_hash, prompts), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def default_run_id(self, fingerprint: str) -> str:
        name = self.condition + (f"-{self.mode}" if self.condition == "gateway" else "")
        return f"{name}-{fingerprint[:10]}"


def _defaults(model: type[BaseModel]) -> dict[str, Any]:
    return {name: info.get_default(call_default_factory=True)
            for name, info in model.model_fields.items() if not info.is_required()}


# The evaluation's defaults, defined once by the models above: the CLI and POST /evaluate
# take theirs from here.
RUN_DEFAULTS = _defaults(RunConfig)
ENDPOINT_DEFAULTS = _defaults(EndpointConfig)
