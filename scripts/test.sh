#!/usr/bin/env bash
# The test suite (its setup, then pytest). `make test` (and so .ci/run) runs `make lint
# typecheck` first, then this.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

echo "== vLLM setup (tests/integration)"
if [ "${CULTURESAFE_SKIP_VLLM:-0}" = 1 ]; then
  echo "CULTURESAFE_SKIP_VLLM=1: no vLLM setup, the vllm-marked tests will be SKIPPED" >&2
else
  bash scripts/vllm_setup.sh || { echo "FAILED: scripts/vllm_setup.sh (vLLM tests cannot run)" >&2; exit 1; }
  export CULTURESAFE_REQUIRE_VLLM=1  # from here a missing vLLM fails the tests, never skips
fi

echo "== headless Chromium (report rendering test)"
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's chromium (once per machine)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  else
    echo "chromium missing and cannot be installed here: the browser test will be SKIPPED" >&2
  fi
fi
command -v chromium >/dev/null 2>&1 && export CULTURESAFE_REQUIRE_BROWSER=1

echo "== pytest"
set +e
"$BIN/pytest" "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: failing on purpose" >&2
  exit 1
fi
exit "$rc"
