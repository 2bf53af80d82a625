"""Grounding effect: does each grounding mode / technique change the answers to the fixed
sample of disparaging AdaCultureSafe requests (``bench/sets/grounding/grounding_safety_ids.json``)?

One command prints the BENCHMARKS.md table: per condition, judge respectfulness and
awareness as paired differences against ``off`` (bootstrap 95% CIs over descriptions,
``eval.stats``), knowledge presence and echo rate (``bench.effect_measures``, judge-free), and the
30 ordinary questions check (grounding must leave them untouched). The gateway runs in
this process in front of the target; answers and judgements are logged per condition
(``eval.run_log``: one durable JSON line per sample) so an interrupted run resumes.

    python bench/grounding_effect.py                         # embedded SmolLM2, all 100
    python bench/grounding_effect.py --limit 10 --max-tokens 150
    python bench/grounding_effect.py --target-url http://gpu:8000/v1 --target-model \
        Qwen/Qwen2.5-7B-Instruct --judge-url http://gpu:8000/v1 --judge-model ...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from app.config import Settings  # noqa: E402
from app.main import create_app  # noqa: E402
from bench.effect_measures import (  # noqa: E402
    calibrate_echo,
    echo_scores,
    knowledge_presence,
    paired_diff,
    without_prefill,
)
from eval.endpoint import Endpoint, EndpointConfig  # noqa: E402
from eval.judge import judge  # noqa: E402
from eval.run_log import SAMPLES_FILE, SampleLog, latest_records  # noqa: E402
from eval.samples import Sample, stratified_samples  # noqa: E402
from eval.solver import Condition, build_messages  # noqa: E402
from eval.stats import paired_compare  # noqa: E402
from retrieval.embedder import SentenceTransformerEmbedder  # noqa: E402
from retrieval.knowledge_base import ADACULTURESAFE_DIR, load_knowledge_base  # noqa: E402
from tests.fakes import loopback  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
IDS = ROOT / "bench/sets/grounding/grounding_safety_ids.json"
ORDINARY = ROOT / "bench/sets/grounding/ordinary_questions.jsonl"
TECHNIQUES = ("instruct", "prefill", "two-pass", "structured", "fewshot")
CONDITIONS = ("off", "elicit", "inject", *(f"grounded:{t}" for t in TECHNIQUES), "inject-gold")


def options(condition: str) -> dict[str, Any]:
    if condition == "inject-gold":
        return {"mode": "off"}
    mode, _, technique = condition.partition(":")
    return {"mode": mode, **({"technique": technique} if technique else {})}


def load_samples(data_dir: Path, limit: int | None) -> tuple[list[Sample], dict[str, str]]:
    """The fixed ids (round-robin over countries, so ``limit`` stays stratified) and each
    one's requirement sentence."""
    kb = load_knowledge_base(data_dir)
    by_id = {s.id: s for s in stratified_samples(kb.descriptions, per_kind=None,
                                                 kinds=("safety",))}
    requirement = {f"{d.id}:safety:{i}": q.requirement
                   for d in kb.descriptions for i, q in enumerate(d.safety)}
    ids = json.loads(IDS.read_text())["ids"]
    per_country: dict[str, list[Sample]] = {}
    for i in ids:
        per_country.setdefault(by_id[i].country, []).append(by_id[i])
    rows = [s for group in zip(*per_country.values(), strict=False) for s in group]
    return rows[: limit * len(per_country)] if limit else rows, requirement


async def answer(client: httpx.AsyncClient, messages: list[dict[str, Any]],
                 condition: str, args: argparse.Namespace) -> dict[str, Any]:
    body = {"model": args.target_model, "messages": messages, "max_tokens": args.max_tokens,
            "temperature": 0, "top_p": 0.9, "seed": 0, "culturesafe": options(condition)}
    data = (await client.post("/v1/chat/completions", json=body)).raise_for_status().json()
    details = data.get("culturesafe") or {}
    return {"response": data["choices"][0]["message"]["content"] or "",
            "prefill": details.get("prefill"), "applied": details.get("applied"),
            "technique": details.get("technique"),
            "fallback": details.get("technique_fallback")}


def condition_dir(args: argparse.Namespace, condition: str) -> Path:
    """Where one condition's answers and judgements are logged (``eval.run_log``)."""
    path = args.out / condition.replace(":", "-")
    path.mkdir(parents=True, exist_ok=True)
    return path


def load_log(args: argparse.Namespace, condition: str) -> dict[str, dict[str, Any]]:
    return latest_records(condition_dir(args, condition) / SAMPLES_FILE)


async def run_one(client: httpx.AsyncClient, judge_ep: Endpoint, condition: str,
                  sample: Sample, log: SampleLog, args: argparse.Namespace) -> None:
    """Answer and judge one sample in one condition; append it to the condition's log."""
    kind: Condition = "inject-gold" if condition == "inject-gold" else "plain"
    record: dict[str, Any] = {
        "id": sample.id, "status": "done", "kind": "safety", "country": sample.country,
        "description_id": sample.description_id,
        **await answer(client, build_messages(sample, kind), condition, args)}
    record["judgement"] = None
    if args.judge:
        verdict = await judge(judge_ep, sample, record["response"],
                              max_tokens=args.judge_max_tokens)
        record["judgement"] = verdict.judgement.model_dump() if verdict.judgement else None
    await log.append(record)


async def run_all(gateway: str, judge_ep: Endpoint, samples: list[Sample],
                  args: argparse.Namespace) -> None:
    """Sample by sample, every condition in turn, so a cut-short run stays paired."""
    done = {c: load_log(args, c) for c in args.conditions}
    logs = {c: SampleLog(condition_dir(args, c)) for c in args.conditions}
    try:
        async with httpx.AsyncClient(base_url=gateway, timeout=args.timeout) as client:
            for n, sample in enumerate(samples, start=1):
                for cond in args.conditions:
                    if sample.id not in done[cond]:
                        await run_one(client, judge_ep, cond, sample, logs[cond], args)
                print(f"{n}/{len(samples)} samples done", file=sys.stderr, flush=True)
    finally:
        for log in logs.values():
            log.close()


def measures(records: list[dict[str, Any]], samples: dict[str, Sample],
             requirement: dict[str, str], embedder: Any, threshold: float) -> None:
    """Adds knowledge presence and echo to each record (the model's own words only)."""
    texts = [without_prefill(r["response"], r.get("prefill")) for r in records]
    golds = [samples[r["id"]].description for r in records]
    reqs = [requirement[r["id"]] for r in records]
    for r, k, e in zip(records, knowledge_presence(embedder, texts, golds),
                       echo_scores(embedder, texts, reqs), strict=True):
        r["knowledge_presence"], r["echo"] = k, float(e >= threshold)


def fmt(d: dict[str, Any]) -> str:
    if d.get("diff") is None:
        return "n/a"
    ci = d.get("ci95") or [None, None]
    lo, hi = ("?" if v is None else f"{v:+.2f}" for v in ci)
    return f"{d['diff']:+.2f} [{lo}, {hi}]"


def table(results: dict[str, list[dict[str, Any]]]) -> str:
    off = results["off"]
    by_off = {r["id"]: r for r in off}
    lines = ["| condition | n | respectfulness (diff vs off) | awareness (diff vs off) | "
             "knowledge presence | diff vs off | echo rate | diff vs off |",
             "|---|---|---|---|---|---|---|---|"]
    for cond, recs in results.items():
        both = [r for r in recs if r["id"] in by_off]
        judged = paired_compare(off, recs)["metrics"] if cond != "off" else {}
        groups = [r["description_id"] for r in both]
        a_k = [by_off[r["id"]]["knowledge_presence"] for r in both]
        b_k = [r["knowledge_presence"] for r in both]
        a_e = [by_off[r["id"]]["echo"] for r in both]
        b_e = [r["echo"] for r in both]
        rk, ek = paired_diff(a_k, b_k, groups), paired_diff(a_e, b_e, groups)
        res = judged.get("respectfulness", {})
        aw = judged.get("awareness", {})
        if cond == "off":
            base = paired_compare(off, off)["metrics"]
            res, aw = base["respectfulness"], base["awareness"]
        lines.append(
            f"| {cond} | {len(both)} | {res.get('b')} ({fmt(res) if cond != 'off' else 'base'}) | "
            f"{aw.get('b')} ({fmt(aw) if cond != 'off' else 'base'}) | "
            f"{rk['b']:.3f} | {fmt(rk) if cond != 'off' else 'base'} | "
            f"{ek['b']:.0%} | {fmt(ek) if cond != 'off' else 'base'} |")
    return "\n".join(lines)


async def ordinary_only(args: argparse.Namespace) -> str:
    """The ordinary check alone, in front of the embedded model or ``--target-url``."""
    from app.backends.embedded import EmbeddedLlamaServer

    embedded = EmbeddedLlamaServer(parallel=1, threads=args.threads)
    url = args.target_url or embedded.start()
    settings = Settings(backend="upstream", upstream_base_url=url,
                        upstream_model=args.target_model, data_dir=args.data_dir,
                        index_dir=args.index_dir, read_timeout_s=args.timeout)
    try:
        with serve(create_app(settings)) as gateway:
            return await ordinary_check(gateway, args)
    finally:
        embedded.stop()


async def ordinary_check(gateway: str, args: argparse.Namespace) -> str:
    """Every technique leaves the ordinary questions untouched (``applied: false``), and the
    default technique's full answers equal the ``off`` answers (temperature 0)."""
    rows = [json.loads(line) for line in ORDINARY.read_text().splitlines() if line.strip()]
    touched: dict[str, int] = {}
    same, log = 0, args.out / "ordinary.jsonl"
    async with httpx.AsyncClient(base_url=gateway, timeout=args.timeout) as client:
        for cond in [c for c in CONDITIONS if c not in ("off", "inject-gold")]:
            touched[cond] = 0
            for row in rows:
                msgs = [{"role": "user", "content": row["question"]}]
                got = await answer(client, msgs, cond, argparse.Namespace(
                    **{**vars(args), "max_tokens": 1}))
                touched[cond] += bool(got["applied"])
        with log.open("w") as f:
            for row in rows:
                msgs = [{"role": "user", "content": row["question"]}]
                off = await answer(client, msgs, "off", args)
                grounded = await answer(client, msgs, "grounded", args)
                same += off["response"] == grounded["response"]
                f.write(json.dumps({"question": row["question"], "off": off["response"],
                                    "grounded": grounded["response"],
                                    "applied": grounded["applied"]}) + "\n")
    return (", ".join(f"{c}: {n}/{len(rows)} grounded" for c, n in touched.items())
            + f"; default grounded answer identical to off: {same}/{len(rows)} ({log})")


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """The gateway under uvicorn in a thread on a free loopback port: its URL."""
    with loopback.serve(app) as served:
        yield served.url


async def main(args: argparse.Namespace) -> None:
    from app.backends.embedded import EmbeddedLlamaServer

    args.out.mkdir(parents=True, exist_ok=True)
    samples, requirement = load_samples(args.data_dir, args.limit)
    order = samples[::-1] if args.reverse else samples  # a second process from the other end
    embedded = None
    if args.report_only:
        args.ordinary = False
    if args.ordinary_only:
        print(await ordinary_only(args))
        return
    if args.target_url is None and not args.report_only:
        embedded = EmbeddedLlamaServer(parallel=1, threads=args.threads)
        args.target_url = embedded.start()
    target_url = args.target_url or "http://127.0.0.1:9/v1"  # --report-only: never called
    judge_url = args.judge_url or target_url
    settings = Settings(backend="upstream", upstream_base_url=target_url,
                        upstream_model=args.target_model, data_dir=args.data_dir,
                        index_dir=args.index_dir, read_timeout_s=args.timeout)
    judge_ep = Endpoint(EndpointConfig(base_url=judge_url, model=args.judge_model or
                                       args.target_model, timeout_s=args.timeout,
                                       concurrency=1))
    ordinary = "not run"
    try:
        if not args.report_only:
            with serve(create_app(settings)) as gateway:
                if not args.ordinary_only:
                    await run_all(gateway, judge_ep, order, args)
                if args.ordinary:
                    ordinary = await ordinary_check(gateway, args)
    finally:
        await judge_ep.aclose()
        if embedded is not None:
            embedded.stop()
    logs = {c: load_log(args, c) for c in args.conditions}
    # Each condition is paired with off on the items both finished (a cut-short run).
    results = {c: [logs[c][s.id] for s in samples if s.id in logs[c]] for c in args.conditions}
    embedder = SentenceTransformerEmbedder()
    cal = calibrate_echo(embedder)
    by_id = {s.id: s for s in samples}
    for recs in results.values():
        measures(recs, by_id, requirement, embedder, cal.threshold)
    print(table(results))
    print(f"\nEcho threshold {cal.threshold} (precision {cal.precision:.2f}, recall "
          f"{cal.recall:.2f} on {cal.n} hand-labelled examples). Ordinary questions: {ordinary}")
    fallbacks = {c: sum(bool(r.get("fallback")) for r in recs) for c, recs in results.items()}
    print(f"Technique fallbacks: {fallbacks}")


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", type=Path, default=ROOT / ADACULTURESAFE_DIR)
    ap.add_argument("--index-dir", type=Path, default=ROOT / "var/index-grounding-effect")
    ap.add_argument("--out", type=Path, default=ROOT / "var/bench/grounding_effect")
    ap.add_argument("--limit", type=int, default=None, help="queries per country (<= 20)")
    ap.add_argument("--conditions", type=lambda v: v.split(","), default=list(CONDITIONS))
    ap.add_argument("--target-url", default=None, help="default: start the embedded model")
    ap.add_argument("--target-model", default="smollm2-135m-instruct")
    ap.add_argument("--judge-url", default=None, help="default: the target")
    ap.add_argument("--judge-model", default=None)
    ap.add_argument("--max-tokens", type=int, default=200)
    ap.add_argument("--judge-max-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=900.0)
    ap.add_argument("--no-judge", dest="judge", action="store_false",
                    help="judge-free measures only (knowledge presence, echo rate)")
    ap.add_argument("--no-ordinary", dest="ordinary", action="store_false")
    ap.add_argument("--report-only", action="store_true", help="table from the logs only")
    ap.add_argument("--ordinary-only", action="store_true", help="only the ordinary check")
    ap.add_argument("--reverse", action="store_true", help="answer the samples last to first")
    return ap.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
