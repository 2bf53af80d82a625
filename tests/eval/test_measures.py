"""Metrics on hand-made records: macro accuracy, baseline, F1, correlation, bootstrap CIs."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy import stats

from eval.measures import build_table, compute, f1
from eval.stats import correlation, paired_compare, summarize


def know(desc: str, correct: bool, *, target: str = "B", variant: str = "original",
         country: str = "x", parsed: bool = True, sid: str | None = None) -> dict[str, Any]:
    return {"id": sid or f"{desc}:k:{variant}:{id(object())}", "status": "done",
            "kind": "knowledge", "variant": variant, "country": country,
            "description_id": desc, "target": target, "correct_strict": correct,
            "correct_lenient": correct, "parsed": ["B"] if parsed else None}


def safe(desc: str, respect: int | None, aware: int = 5, *, country: str = "x",
         sid: str | None = None) -> dict[str, Any]:
    judgement = None if respect is None else {"respectfulness": respect, "awareness": aware}
    return {"id": sid or f"{desc}:s:{id(object())}", "status": "done", "kind": "safety",
            "variant": "original", "country": country, "description_id": desc,
            "judgement": judgement, "judge_raw": ["..."]}


def point(records: list[dict[str, Any]]) -> dict[str, float]:
    table = build_table(records)
    return {k: float(v) for k, v in compute(table, table.rows()).items()}


def test_accuracy_is_per_description_then_macro_averaged() -> None:
    # d1: 1 of 1 right; d2: 1 of 3 right. Macro = (100 + 33.3) / 2; micro would be 50.
    recs = [know("d1", True), know("d2", True), know("d2", False), know("d2", False)]
    assert point(recs)["knowledge_accuracy"] == pytest.approx((100 + 100 / 3) / 2)


def test_majority_baseline_and_unparseable_rate() -> None:
    recs = [know("d1", True, target="B"), know("d1", False, target="B"),
            know("d1", False, target="C", parsed=False), know("d2", True, target="B")]
    got = point(recs)
    # majority label B: d1 2/3, d2 1/1
    assert got["majority_baseline"] == pytest.approx((200 / 3 + 100) / 2)
    assert got["unparseable_rate"] == pytest.approx(25.0)


def test_shuffled_items_are_scored_apart() -> None:
    recs = [know("d1", True), know("d1", False, variant="shuffled")]
    got = point(recs)
    assert got["knowledge_accuracy"] == 100.0
    assert got["shuffled_accuracy"] == 0.0


def test_judge_scores_unjudged_counted_not_averaged() -> None:
    recs = [safe("d1", 8, 4), safe("d1", 6, 2), safe("d2", None), safe("d3", 3, 9)]
    table = build_table(recs)
    got = compute(table, table.rows())
    assert float(got["respectfulness"]) == pytest.approx((7 + 3) / 2)
    assert float(got["awareness_100"]) == pytest.approx((3 + 9) / 2 * 10)
    assert summarize(table, table.rows())["n"]["judge_unparseable"] == 1


def test_f1_is_the_harmonic_mean() -> None:
    assert float(f1(np.float64(50.0), np.float64(50.0))) == pytest.approx(50.0)
    assert float(f1(np.float64(100.0), np.float64(25.0))) == pytest.approx(40.0)
    assert float(f1(np.float64(0.0), np.float64(0.0))) == 0.0
    assert math.isnan(float(f1(np.float64(np.nan), np.float64(30.0))))


def test_correlation_on_a_known_case() -> None:
    accs = [0, 1, 1, 2, 3]  # right answers out of 3 per description
    resps = [2, 4, 3, 8, 9]
    recs = []
    for i, (a, r) in enumerate(zip(accs, resps, strict=True)):
        recs += [know(f"d{i}", j < a) for j in range(3)] + [safe(f"d{i}", r)]
    table = build_table(recs)
    got = correlation(table, table.rows())
    acc_pct = [100 * a / 3 for a in accs]
    assert got["n"] == 5
    assert got["spearman"] == pytest.approx(stats.spearmanr(acc_pct, resps).statistic, abs=1e-4)
    assert got["pearson"] == pytest.approx(stats.pearsonr(acc_pct, resps).statistic, abs=1e-4)
    assert got["spearman"] == pytest.approx(0.9747, abs=1e-3)
    assert 0 < got["pearson_p"] < 0.05


def test_correlation_refuses_too_few_or_constant() -> None:
    few = build_table([know("d1", True), safe("d1", 5), know("d2", False), safe("d2", 7)])
    assert correlation(few, few.rows())["spearman"] is None
    recs = [r for i in range(4) for r in (know(f"d{i}", i % 2 == 0), safe(f"d{i}", 5))]
    flat = build_table(recs)
    got = correlation(flat, flat.rows())
    assert got["spearman"] is None and "constant" in got["reason"]


# E[clip(round(N(6, 2)), 1, 10)], summed exactly over the normal CDF of each rounding bin.
TRUE_MEAN = float(sum(
    k * (stats.norm.cdf(k + 0.5 if k < 10 else np.inf, 6, 2)
         - stats.norm.cdf(k - 0.5 if k > 1 else -np.inf, 6, 2))
    for k in range(1, 11)
))


def test_bootstrap_ci_covers_the_true_mean_about_95_percent() -> None:
    rng = np.random.default_rng(7)
    hits, trials = 0, 120
    for t in range(trials):
        scores = np.clip(np.round(rng.normal(6.0, 2.0, size=40)), 1, 10)
        recs = [safe(f"d{i}", int(s)) for i, s in enumerate(scores)]
        table = build_table(recs)
        lo, hi = summarize(table, table.rows(), resamples=400, seed=t)["metrics"][
            "respectfulness"]["ci95"]
        hits += lo <= TRUE_MEAN <= hi
    assert 0.88 <= hits / trials <= 0.99


def test_paired_comparison_detects_a_shift_and_not_noise() -> None:
    rng = np.random.default_rng(1)
    base = np.clip(np.round(rng.normal(5, 2, size=60)), 1, 9).astype(int)
    a = [safe(f"d{i}", int(s), sid=f"s{i}") for i, s in enumerate(base)]
    b = [safe(f"d{i}", int(s) + 1, sid=f"s{i}") for i, s in enumerate(base)]
    shift = paired_compare(a, b, resamples=500)["metrics"]["respectfulness"]
    assert shift["diff"] == pytest.approx(1.0)
    assert shift["ci95"][0] == pytest.approx(1.0) and shift["ci95"][1] == pytest.approx(1.0)
    same = paired_compare(a, a, resamples=500)["metrics"]["respectfulness"]
    assert same["diff"] == 0.0


def test_paired_comparison_uses_only_shared_items() -> None:
    a = [safe("d1", 5, sid="s1"), safe("d2", 5, sid="s2")]
    b = [safe("d1", 9, sid="s1")]
    got = paired_compare(a, b, resamples=100)
    assert got["n_items"] == 1
    assert got["metrics"]["respectfulness"]["diff"] == pytest.approx(4.0)
