#!/usr/bin/env bash
# The whole suite: lint, types, tests. Called by `make test` (and so by .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

echo "== ruff"; "$BIN/ruff" check .
echo "== mypy"; "$BIN/mypy"

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
