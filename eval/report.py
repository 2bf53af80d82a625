"""The report step: a run directory -> ``report.json`` (every number, with n and CI) and a
self-contained ``report.html`` rendered from it."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from eval.judge_control import summarize_control
from eval.measures import build_table
from eval.no_harm import intent_matrix, ordinary_rates, ordinary_summary
from eval.run_log import MANIFEST_FILE, SAMPLES_FILE, latest_records, write_json_atomic
from eval.stats import correlation, paired_compare, per_description, summarize

REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
LOW_FIDELITY = (
    "The judge is the small embedded model: its respectfulness and awareness scores are "
    "low-fidelity (it barely reads the custom). Use a strong judge (--judge-url, "
    "--judge-model) for numbers you would publish."
)


def load_run(run_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A run's manifest and the latest record of each of its samples."""
    manifest = json.loads((run_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
    return manifest, list(latest_records(run_dir / SAMPLES_FILE).values())


def _worst(records: list[dict[str, Any]], limit: int = 10) -> list[dict[str, Any]]:
    judged = [r for r in records if r.get("status") == "done" and r.get("judgement")]
    judged.sort(key=lambda r: (r["judgement"]["respectfulness"], r["judgement"]["awareness"],
                               r["id"]))
    return [{
        "id": r["id"], "country": r["country"],
        "query": (r.get("messages") or [{}])[-1].get("content", ""),
        "response": r.get("response", ""), **r["judgement"],
    } for r in judged[:limit]]


def build_report(
    run_dir: Path, compare_with: list[Path] | None = None
) -> dict[str, Any]:
    """Every metric of a run (overall, per country), the no-harm measures of ordinary
    traffic and the intent confusion matrix, correlations, the scatter points, the worst
    responses and, optionally, paired comparisons against other runs (this minus them
    reads "B - A" where A is the other run)."""
    manifest, records = load_run(run_dir)
    table = build_table(records)
    countries = sorted(set(table.countries))
    config = manifest.get("config", {})
    judge_embedded = bool(config.get("judge_embedded"))
    report: dict[str, Any] = {
        "run_id": manifest["run_id"],
        "generated_at": dt.datetime.now(dt.UTC).isoformat(),
        "status": manifest.get("status"),
        "fingerprint": manifest.get("fingerprint"),
        "config": config,
        "versions": manifest.get("versions", {}),
        "judge": {
            "model": (config.get("judge") or {}).get("model"),
            "embedded": judge_embedded,
            "low_fidelity": judge_embedded,
            "note": LOW_FIDELITY if judge_embedded else None,
        },
        "progress": {
            "total": len(manifest.get("sample_ids", [])),
            "done": sum(r.get("status") == "done" for r in records),
            "errors": sum(r.get("status") == "error" for r in records),
        },
        "overall": summarize(table, table.rows()),
        "ordinary": ordinary_summary(records),
        "intent": intent_matrix(records),
        "per_country": {c: summarize(table, table.rows(c)) for c in countries},
        "correlation": {
            "overall": correlation(table, table.rows()),
            "per_country": {c: correlation(table, table.rows(c)) for c in countries},
        },
        "descriptions": per_description(table),
        "worst_responses": _worst(records),
        "judge_control": summarize_control(run_dir),
        "comparisons": [],
    }
    for other in compare_with or []:
        other_manifest, other_records = load_run(other)
        paired = paired_compare(other_records, records)
        report["comparisons"].append({"a": other_manifest["run_id"],
                                      "b": manifest["run_id"], **paired})
    return report


def current_metrics(run_dir: Path) -> dict[str, float | None]:
    """Point values of every metric over the samples finished so far (no CIs: cheap)."""
    import math

    from eval.measures import compute

    records = list(latest_records(run_dir / SAMPLES_FILE).values())
    table = build_table(records)
    values = compute(table, table.rows())
    out = {k: None if math.isnan(float(v)) else round(float(v), 4) for k, v in values.items()}
    return {**out, **ordinary_rates(records)}


def write_report(run_dir: Path, compare_with: list[Path] | None = None) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.html`` into the run directory."""
    from eval.report_html import render_html

    report = build_report(run_dir, compare_with)
    json_path, html_path = run_dir / REPORT_JSON, run_dir / REPORT_HTML
    write_json_atomic(json_path, report)
    tmp = html_path.with_suffix(".html.tmp")
    tmp.write_text(render_html(report), encoding="utf-8")
    tmp.replace(html_path)
    return json_path, html_path
