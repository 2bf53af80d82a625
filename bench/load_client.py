"""An asyncio load client that proves nothing is lost: shared by the suite and ``bench/``.

Request ``i`` carries the id ``load-00042`` in its ``x-request-id`` header and in its user
text; the fast upstream answers ``echo: <user text>``. Every answer is checked: status,
the echoed id header, the content (the stream's deltas joined: it holds this request's
echo and no other request's id), no error frame, ``[DONE]`` last. Requests mix
streaming and non-streaming, grounded and not (two bits of ``i``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

QUESTIONS = (
    "Is tipping expected at restaurants in Japan?",
    "What should I bring to a family dinner in China?",
    "How do people greet each other in India?",
    "Which number is unlucky in China?",
)


def request_id(i: int) -> str:
    return f"load-{i:05d}"


def user_text(i: int) -> str:
    return f"[{request_id(i)}] {QUESTIONS[i % len(QUESTIONS)]}"


@dataclass
class LoadReport:
    total: int
    concurrency: int
    statuses: Counter[int] = field(default_factory=Counter)
    answered: Counter[str] = field(default_factory=Counter)  # id -> correct answers
    wrong: list[str] = field(default_factory=list)  # "id: what was wrong"
    rss_first_kb: int = 0
    rss_last_kb: int = 0
    elapsed_s: float = 0.0

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    @property
    def lost(self) -> int:
        return sum(1 for i in range(self.total) if self.answered[request_id(i)] == 0)

    @property
    def duplicated(self) -> int:
        return sum(1 for n in self.answered.values() if n > 1)

    @property
    def rss_drift(self) -> float:
        return (self.rss_last_kb - self.rss_first_kb) / max(1, self.rss_first_kb)

    def rows(self) -> list[tuple[str, str]]:
        return [
            ("requests", str(self.total)), ("concurrency", str(self.concurrency)),
            ("statuses", ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items()))),
            ("5xx", str(self.server_errors)), ("lost", str(self.lost)),
            ("duplicated", str(self.duplicated)), ("wrong content", str(len(self.wrong))),
            ("RSS first window (MiB)", f"{self.rss_first_kb / 1024:.1f}"),
            ("RSS last window (MiB)", f"{self.rss_last_kb / 1024:.1f}"),
            ("RSS drift", f"{self.rss_drift:+.1%}"), ("elapsed (s)", f"{self.elapsed_s:.1f}"),
            ("throughput (req/s)", f"{self.total / max(self.elapsed_s, 1e-9):.1f}"),
        ]


def rss_kb(pid: int | str = "self") -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        lines = status.read().splitlines()
    for line in lines:
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _body(i: int) -> dict[str, Any]:
    return {"model": "ok", "messages": [{"role": "user", "content": user_text(i)}],
            "stream": bool(i & 1), "culturesafe": {"mode": "grounded" if i & 2 else "off"}}


async def _one(http: httpx.AsyncClient, i: int, report: LoadReport) -> None:
    rid, body = request_id(i), _body(i)
    expected = f"echo: {user_text(i)}"
    headers = {"x-request-id": rid}
    async with http.stream("POST", "/v1/chat/completions", json=body, headers=headers) as r:
        report.statuses[r.status_code] += 1
        if r.status_code != 200:
            report.wrong.append(f"{rid}: HTTP {r.status_code} {(await r.aread())[:200]!r}")
            return
        if r.headers.get("x-request-id") != rid:
            report.wrong.append(f"{rid}: answered as {r.headers.get('x-request-id')}")
            return
        if body["stream"]:
            events = [line[6:] async for line in r.aiter_lines() if line.startswith("data: ")]
            if not events or events[-1] != "[DONE]":
                report.wrong.append(f"{rid}: stream without [DONE]")
                return
            chunks = [json.loads(e) for e in events[:-1]]
            if any("error" in c for c in chunks):
                report.wrong.append(f"{rid}: error frame")
                return
            content = "".join(c["choices"][0]["delta"].get("content") or ""
                              for c in chunks if c.get("choices"))
        else:
            content = json.loads(await r.aread())["choices"][0]["message"]["content"]
    # A grounding technique may add its own text (a prefill) around the model's answer:
    # the answer must hold this request's echo and no other request's id.
    if expected not in content or content.count("[load-") != 1:
        report.wrong.append(f"{rid}: content {content[-120:]!r}")
        return
    report.answered[rid] += 1


async def run_load(base_url: str, total: int, concurrency: int,
                   rss: Callable[[], int] = rss_kb, window: int = 1000) -> LoadReport:
    """Send ``total`` requests, ``concurrency`` at a time; RSS after the first ``window``
    answers and at the end (the last ``window``)."""
    report = LoadReport(total=total, concurrency=concurrency)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(i)
    done = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    start = time.perf_counter()
    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as http:

        async def worker() -> None:
            nonlocal done
            while not queue.empty():
                i = queue.get_nowait()
                try:
                    await _one(http, i, report)
                except (httpx.HTTPError, ValueError, KeyError, IndexError) as exc:
                    report.wrong.append(f"{request_id(i)}: {type(exc).__name__}: {exc}")
                done += 1
                if done == window:
                    report.rss_first_kb = rss()

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    report.elapsed_s = time.perf_counter() - start
    report.rss_last_kb = rss()
    return report


def upstream_duplicates(received: list[dict[str, Any]], total: int) -> dict[str, int]:
    """Ids the upstream saw other than exactly once (a retry would show here)."""
    seen: Counter[str] = Counter()
    for body in received:
        users = [m for m in body.get("messages", []) if m.get("role") == "user"]
        text = str(users[-1].get("content", "")) if users else ""
        if text.startswith("[load-"):
            seen[text[1:11]] += 1
    return {request_id(i): seen[request_id(i)] for i in range(total)
            if seen[request_id(i)] != 1}
