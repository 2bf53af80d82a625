"""Voice effect: loops, echo and verified facts of grounded answers vs ``off`` (issue 11).

Every prompt of ``bench/sets/voice/<set>.jsonl`` (disparaging requests and neutral cultural
questions) is sent through the gateway, run in this process on the embedded SmolLM2 with
the shipped settings (starter knowledge base, prefill, the embedded repeat penalty), once
with ``mode: off`` and once grounded, at temperature 0 and at the model server's default
temperature (seeded). Answers are logged per condition (``eval.run_log``), so a cut-short
run resumes; the table is printed from the logs.

    python bench/voice_effect.py --set heldout            # the numbers reported
    python bench/voice_effect.py --set dev --intent labels  # voices from the labels

Columns, per temperature and intent (``bench/voice_measures.py``), over the prompts that
grounding applied to, ``off`` answering the same prompts:

* ``repeated``: share of answers that repeat a line (target for grounded: <= 10%);
* ``echo``: share of answers with a word 4-gram of the user's message (target at
  temperature 0: grounded <= off / 2);
* ``fact``: share whose model-written part repeats a 5-gram of a cited description;
* ``presence``: mean cosine of the model-written part to the top cited description
  (``bench/effect_measures.py``), grounded minus off;
* ``wrong voice``: questions answered with the disparaging opening (target 0).

``--intent gate`` (default) leaves the voice to the gateway's intent gate, as shipped;
``--intent labels`` sends each prompt's labelled intent as ``culturesafe.intent``: the
voices as a perfect gate would pick them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from app.config import Settings  # noqa: E402
from app.main import create_app  # noqa: E402
from bench.effect_measures import knowledge_presence, without_prefill  # noqa: E402
from bench.grounding_effect import serve  # noqa: E402
from bench.voice_measures import (  # noqa: E402
    carries_fact,
    disparaging_opening,
    echo,
    repeated_line,
)
from eval.run_log import SAMPLES_FILE, SampleLog, latest_records  # noqa: E402
from retrieval.embedder import SentenceTransformerEmbedder  # noqa: E402

SETS = ROOT / "bench" / "sets" / "voice"
CONDITIONS = ("off", "grounded")


def load_set(name: str) -> list[dict[str, Any]]:
    path = SETS / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


async def ask(client: httpx.AsyncClient, row: dict[str, Any], condition: str, temp: str,
              args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {"mode": condition}
    if condition != "off" and args.intent == "labels":
        options["intent"] = row["intent"]
    body: dict[str, Any] = {"model": args.model, "max_tokens": args.max_tokens,
                            "seed": args.seed, "culturesafe": options,
                            "messages": [{"role": "user", "content": row["text"]}]}
    if temp != "default":
        body["temperature"] = float(temp)
    data = (await client.post("/v1/chat/completions", json=body)).raise_for_status().json()
    details = data.get("culturesafe") or {}
    return {"id": row["id"], "status": "done", "intent": row["intent"], "text": row["text"],
            "response": data["choices"][0]["message"]["content"] or "",
            "prefill": details.get("prefill"), "applied": bool(details.get("applied")),
            "descriptions": [c["description"] for c in details.get("citations") or []],
            "gate_intent": details.get("intent"), "sampling": details.get("sampling")}


async def run(gateway: str, rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    pending = asyncio.Semaphore(args.concurrency)
    async with httpx.AsyncClient(base_url=gateway, timeout=args.timeout) as client:
        for temp in args.temperatures:
            for condition in CONDITIONS:
                folder = args.out / f"{condition}-t{temp}"
                folder.mkdir(parents=True, exist_ok=True)
                done = latest_records(folder / SAMPLES_FILE)
                log = SampleLog(folder)

                async def one(row: dict[str, Any], cond: str = condition, t: str = temp,
                              sample_log: SampleLog = log) -> None:
                    async with pending:
                        await sample_log.append(await ask(client, row, cond, t, args))

                try:
                    await asyncio.gather(*(one(r) for r in rows if r["id"] not in done))
                finally:
                    log.close()
                print(f"{condition} at temperature {temp}: {len(rows)} answers",
                      file=sys.stderr, flush=True)


def rows_of(args: argparse.Namespace, condition: str, temp: str) -> dict[str, dict[str, Any]]:
    return latest_records(args.out / f"{condition}-t{temp}" / SAMPLES_FILE)


def table(args: argparse.Namespace, embedder: SentenceTransformerEmbedder) -> str:
    lines = ["| temperature | intent | condition | n grounded / n | repeated | echo | fact | "
             "presence (diff vs off) | wrong voice |", "|---|---|---|---|---|---|---|---|---|"]
    for temp in args.temperatures:
        off, grounded = rows_of(args, "off", temp), rows_of(args, "grounded", temp)
        for intent in ("disparaging", "cultural_question"):
            ids = [i for i, r in grounded.items() if r["intent"] == intent and r["applied"]
                   and i in off]
            n_all = sum(r["intent"] == intent for r in grounded.values())
            if not ids:
                continue
            cited = {i: grounded[i]["descriptions"] for i in ids}
            presence = {}
            for cond, recs in (("off", off), ("grounded", grounded)):
                parts = [without_prefill(recs[i]["response"], recs[i].get("prefill"))
                         for i in ids]
                presence[cond] = knowledge_presence(embedder, parts, [cited[i][0] for i in ids])
                model_parts = dict(zip(ids, parts, strict=True))
                n = len(ids)
                rep = sum(repeated_line(recs[i]["response"]) for i in ids) / n
                ech = sum(echo(recs[i]["text"], recs[i]["response"]) for i in ids) / n
                fact = sum(carries_fact(model_parts[i], cited[i]) for i in ids) / n
                mean = sum(presence[cond]) / n
                diff = ("base" if cond == "off"
                        else f"{mean - sum(presence['off']) / n:+.3f}")
                wrong = (sum(disparaging_opening(recs[i]["response"]) for i in ids)
                         if intent == "cultural_question" and cond == "grounded" else "")
                lines.append(f"| {temp} | {intent} | {cond} | {n}/{n_all} | {rep:.0%} | "
                             f"{ech:.0%} | {fact:.0%} | {mean:.3f} ({diff}) | {wrong} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--set", default="dev", choices=("dev", "heldout"))
    ap.add_argument("--intent", default="gate", choices=("gate", "labels"))
    ap.add_argument("--temperatures", type=lambda v: v.split(","), default=["0", "default"])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-tokens", type=int, default=200)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--index-dir", type=Path, default=ROOT / "var/index-voice")
    ap.add_argument("--out", type=Path, default=None, help="default: var/bench/voice_effect/SET")
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=900.0)
    ap.add_argument("--report-only", action="store_true", help="table from the logs only")
    args = ap.parse_args()
    args.out = args.out or ROOT / "var/bench/voice_effect" / f"{args.set}-{args.intent}"
    if not args.report_only:
        # English prompts take the MiniLM path either way: the multilingual indexes are
        # left out to spare the CPU.
        settings = Settings(backend="embedded", embedded_model_name=args.model,
                            embedded_parallel=args.concurrency, index_dir=args.index_dir,
                            read_timeout_s=args.timeout, multilingual_retrieval=False)
        with serve(create_app(settings)) as gateway:
            asyncio.run(run(gateway, load_set(args.set), args))
    print(table(args, SentenceTransformerEmbedder()))


if __name__ == "__main__":
    main()
