"""Measurements and reporting for ``bench/gateway_overhead.py``: blocks, tables, machine.

Kept apart from the runner so the runner holds only what is sent and when.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import socket
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Block:
    """One run of requests to one target at one concurrency."""

    target: str
    concurrency: int
    stream: bool
    latency_s: list[float] = field(default_factory=list)
    first_byte_s: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_s: float = 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def machine_lines() -> list[str]:
    """CPU model, cores, load, Python and package versions."""
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    versions = []
    for name in ("torch", "sentence-transformers", "faiss-cpu", "fastapi", "uvicorn", "httpx"):
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return [f"- Machine: {cpu}, {os.cpu_count()} cores visible, load average "
            f"{os.getloadavg()[0]:.2f} at the end",
            f"- Python {platform.python_version()}; {', '.join(versions)}"]


def _ms(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000 if values else float("nan")


def _merged(blocks: list[Block], target: str) -> tuple[list[float], list[float], float, float]:
    mine = [b for b in blocks if b.target == target]
    latency = [x for b in mine for x in b.latency_s]
    first = [x for b in mine for x in b.first_byte_s]
    wall = sum(b.wall_s for b in mine)
    cpu = sum(b.cpu_s for b in mine)
    return latency, first, len(latency) / wall if wall else 0.0, cpu / max(1, len(latency))


def table(blocks: list[Block], targets: tuple[str, ...]) -> list[str]:
    """Markdown tables: one per phase (concurrency level, then streaming)."""
    phases = sorted({(b.stream, b.concurrency) for b in blocks})
    lines: list[str] = []
    for stream, concurrency in phases:
        mine = [b for b in blocks if b.stream == stream and b.concurrency == concurrency]
        base_lat, base_first, base_rps, base_cpu = _merged(mine, targets[0])
        what = "streaming, time to first byte" if stream else "non-streaming, full response"
        lines += [f"\n**Concurrency {concurrency}, {what}** ({len(base_lat)} requests each)\n",
                  "| target | p50 ms | p95 ms | p99 ms | added p50 / p95 / p99 ms | p50 ratio "
                  "| req/s | req/s ratio | CPU ms/req | CPU ratio |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for target in targets:
            lat, first, rps, cpu = _merged(mine, target)
            values, base = (first, base_first) if stream else (lat, base_lat)
            p = [_ms(values, q) for q in (50, 95, 99)]
            b = [_ms(base, q) for q in (50, 95, 99)]
            added = " / ".join(f"{x - y:+.1f}" for x, y in zip(p, b, strict=True))
            lines.append(
                f"| {target} | {p[0]:.1f} | {p[1]:.1f} | {p[2]:.1f} | {added} | "
                f"{p[0] / b[0]:.2f} | {rps:.0f} | {rps / base_rps:.2f} | {cpu * 1000:.2f} | "
                f"{cpu / base_cpu if base_cpu else float('nan'):.1f} |")
    return lines


def run_header(command: str, label: str, machine: list[str]) -> list[str]:
    """The lines a BENCHMARKS.md entry starts with: the label, the date, the command, the
    machine (printed above the tables; the page is edited by hand, history stays in git)."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    note = ("CPU ms/req: process CPU time / requests; for `direct` that of the fast "
            "upstream, for the modes that of the gateway (the ratio compares the two).")
    return [f"### {label or 'Run'} ({now})", "", f"`{command}`", "", *machine, "- " + note, ""]
