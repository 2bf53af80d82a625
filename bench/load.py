"""Full-size load run: 5,000 requests at concurrency 64 against the real gateway on loopback.

The gateway runs as in production (``python -m uvicorn --factory app.main:create_app``,
configured by ``CULTURESAFE_*``) in a subprocess, in front of the fake upstream
(``tests/fakes/openai_server.py``, its echo) in this process.
Requests mix streaming and non-streaming, grounded and not. Pass criteria (exit status 1
otherwise): zero 5xx, every request id answered exactly once with the right content,
each id seen exactly once by the upstream, gateway RSS within 10% between the first and
the last thousand requests. Prints a table.

    .venv/bin/python bench/load.py [--requests 5000] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # first: bench/ must not hide a package; the fakes are in tests/fakes

from bench.load_client import rss_kb, run_load, upstream_duplicates  # noqa: E402
from tests.fakes.openai_server import FakeOpenAI  # noqa: E402
from tests.gateway_processes import gateways  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--window", type=int, default=1000, help="RSS window (requests)")
    args = parser.parse_args()
    with FakeOpenAI() as upstream, tempfile.TemporaryDirectory() as tmp:
        env = {"CULTURESAFE_BACKEND": "upstream",
               "CULTURESAFE_UPSTREAM_BASE_URL": upstream.base_url,
               "CULTURESAFE_INDEX_DIR": str(Path(tmp) / "index"),
               "CULTURESAFE_MAX_CONCURRENT_UPSTREAM": str(args.concurrency),
               "CULTURESAFE_READ_TIMEOUT_S": "120"}
        with gateways([env], Path(tmp) / "logs") as (gateway,):
            report = asyncio.run(run_load(gateway.url, args.requests, args.concurrency,
                                          rss=lambda: rss_kb(gateway.proc.pid),
                                          window=args.window))
        duplicates = upstream_duplicates(upstream.received, args.requests)
    rows = [*report.rows(), ("upstream ids not seen exactly once", str(len(duplicates)))]
    width = max(len(k) for k, _ in rows)
    print(f"\n{'metric':<{width}} | value\n{'-' * width}-+-{'-' * 24}")
    for key, value in rows:
        print(f"{key:<{width}} | {value}")
    for line in report.wrong[:10]:
        print("  wrong:", line)
    ok = (report.server_errors == 0 and report.lost == 0 and report.duplicated == 0
          and not report.wrong and not duplicates and abs(report.rss_drift) <= 0.10)
    print("\nPASS" if ok else "\nFAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
