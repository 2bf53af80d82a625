"""docker-compose.yml: valid against the compose-spec JSON schema, and wired as
docs/deploy.md says (vLLM on a GPU, healthy before the gateway starts, the gateway pointed
at it).

The Docker engine is not available here, so validation is what ``docker compose config``
does first: parse, resolve YAML merge keys, interpolate variables, check the schema
(vendored in compose_spec/, see its README). The semantic checks below cover what the
schema cannot know.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from jsonschema.validators import Draft201909Validator, validator_for

from app.config import Settings

SCHEMA_PATH = Path(__file__).parent / "compose_spec" / "compose-spec.json"
GO_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$")
# Read by the image's CMD (uvicorn workers), not by Settings.
IMAGE_ONLY_VARIABLES = {"CULTURESAFE_WORKERS"}

Loader = Callable[..., dict[str, Any]]


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    # The spec names its draft as http://json-schema.org/draft/2019-09/schema# (http, "#"),
    # which jsonschema does not list: say which draft, not "the latest, with a warning".
    cls = validator_for(schema, default=Draft201909Validator)
    assert cls is Draft201909Validator
    cls.check_schema(schema)
    return cls(schema)


def _errors(validator: jsonschema.protocols.Validator, document: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def test_compose_file_is_valid_with_default_variables(
    validator: jsonschema.protocols.Validator, compose: dict[str, Any]
) -> None:
    assert _errors(validator, compose) == []


def test_compose_file_is_valid_with_variables_set(
    validator: jsonschema.protocols.Validator, compose_loader: Loader
) -> None:
    env = {
        "VLLM_MODEL": "meta-llama/Llama-3.1-8B-Instruct",
        "VLLM_SERVED_MODEL_NAME": "llama",
        "VLLM_GPU_COUNT": "all",
        "CULTURESAFE_DATASET_DIR": "/srv/adaculturesafe",
        "CULTURESAFE_API_KEYS": '["k1"]',
    }
    assert _errors(validator, compose_loader(env)) == []


def test_schema_rejects_an_unknown_service_key(
    validator: jsonschema.protocols.Validator, compose: dict[str, Any]
) -> None:
    broken = json.loads(json.dumps(compose))
    broken["services"]["gateway"]["depends"] = ["vllm"]
    assert _errors(validator, broken)


def test_healthcheck_durations_are_go_durations(compose: dict[str, Any]) -> None:
    check = compose["services"]["vllm"]["healthcheck"]
    for key in ("interval", "timeout", "start_period"):
        assert GO_DURATION.match(check[key]), (key, check[key])


def test_vllm_reserves_a_gpu_and_is_checked_on_health(compose: dict[str, Any]) -> None:
    vllm = compose["services"]["vllm"]
    assert vllm["image"].startswith("vllm/vllm-openai:")
    (device,) = vllm["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia"
    assert "gpu" in device["capabilities"]
    assert device["count"] == "1"
    assert "http://127.0.0.1:8000/health" in " ".join(vllm["healthcheck"]["test"])
    assert "hf-cache:/root/.cache/huggingface" in vllm["volumes"]
    assert "HF_TOKEN" in vllm["environment"]
    assert "ports" not in vllm, "the model server must be reachable only through the gateway"


def test_vllm_model_and_served_name_come_from_variables(compose_loader: Loader) -> None:
    command = compose_loader({"VLLM_MODEL": "org/m", "VLLM_SERVED_MODEL_NAME": "served"})[
        "services"
    ]["vllm"]["command"]
    assert command[command.index("--model") + 1] == "org/m"
    assert command[command.index("--served-model-name") + 1] == "served"


def test_gateway_waits_for_healthy_vllm_and_targets_it(compose: dict[str, Any]) -> None:
    gateway = compose["services"]["gateway"]
    assert gateway["depends_on"] == {"vllm": {"condition": "service_healthy"},
                                     "embedder": {"condition": "service_healthy"}}
    env = gateway["environment"]
    assert env["CULTURESAFE_BACKEND"] == "upstream"
    assert env["CULTURESAFE_UPSTREAM_BASE_URL"] == "http://vllm:8000/v1"
    served = compose["services"]["vllm"]["command"]
    assert env["CULTURESAFE_UPSTREAM_MODEL"] == served[served.index("--served-model-name") + 1]
    assert gateway["build"]["context"] == "."
    assert gateway["ports"] == ["8000:8000"]


def _flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_the_embedder_runs_minilm_on_the_gpu_and_the_gateway_embeds_there(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    embedder, vllm = services["embedder"], services["vllm"]
    assert embedder["image"] == vllm["image"]
    command = embedder["command"]
    assert _flag(command, "--model") == "sentence-transformers/all-MiniLM-L6-v2"
    assert (_flag(command, "--runner"), _flag(command, "--dtype")) == ("pooling", "float32")
    assert _flag(command, "--port") == "8000" and "ports" not in embedder
    (device,) = embedder["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    shares = [float(_flag(s["command"], "--gpu-memory-utilization")) for s in (vllm, embedder)]
    assert sum(shares) <= 0.95, "both vLLM servers take their share of one GPU at start"
    assert "http://127.0.0.1:8000/health" in " ".join(embedder["healthcheck"]["test"])
    env = services["gateway"]["environment"]
    assert env["CULTURESAFE_EMBEDDER_URL"] == "http://embedder:8000/v1"
    # the served name is the one the index manifest records (and the in-process default's)
    assert env["CULTURESAFE_EMBEDDER_REMOTE_MODEL"] == _flag(command, "--served-model-name")
    assert env["CULTURESAFE_EMBEDDER_REMOTE_MODEL"] == Settings().embedder_remote_model
    assert "CULTURESAFE_EMBEDDER_URL" not in services["gateway-cpu"]["environment"]


def test_gateway_mounts_the_dataset_read_only_and_the_data_volume(
    compose_loader: Loader,
) -> None:
    gateway = compose_loader({"CULTURESAFE_DATASET_DIR": "/srv/ada"})["services"]["gateway"]
    assert "/srv/ada:/data/dataset:ro" in gateway["volumes"]
    assert "culturesafe-data:/data" in gateway["volumes"]
    assert gateway["environment"]["CULTURESAFE_DATA_DIR"] == "/data/dataset"


def test_cpu_profile_runs_the_gateway_alone_on_the_embedded_model(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    cpu = services["gateway-cpu"]
    assert cpu["profiles"] == ["cpu"]
    assert cpu["environment"]["CULTURESAFE_BACKEND"] == "embedded"
    assert "depends_on" not in cpu
    assert "deploy" not in cpu
    # The GPU stack is what a bare `docker compose up` starts.
    assert "profiles" not in services["vllm"]
    assert "profiles" not in services["embedder"]
    assert "profiles" not in services["gateway"]


def test_gateway_variables_are_settings_fields(compose: dict[str, Any]) -> None:
    fields = {f"CULTURESAFE_{name.upper()}" for name in Settings.model_fields}
    for name in ("gateway", "gateway-cpu"):
        unknown = set(compose["services"][name]["environment"]) - fields - IMAGE_ONLY_VARIABLES
        assert not unknown, f"{name}: not a Settings field: {sorted(unknown)}"


def test_a_mounted_knowledge_base_gets_its_own_index_dir(
    compose: dict[str, Any], instructions: list[tuple[int, str, str]]
) -> None:
    # The image's index is the starter KB's; an index for another KB is a mismatch error.
    image_env = " ".join(a for _, k, a in instructions if k == "ENV")
    image_index = re.search(r"CULTURESAFE_INDEX_DIR=(\S+)", image_env)
    assert image_index is not None
    for name in ("gateway", "gateway-cpu"):
        env = compose["services"][name]["environment"]
        assert env["CULTURESAFE_DATA_DIR"]
        assert env["CULTURESAFE_INDEX_DIR"].startswith("/data/")
        assert env["CULTURESAFE_INDEX_DIR"] != image_index.group(1)
