"""Inference over descriptions: bootstrap CIs, paired comparisons and correlations.

Descriptions are the resampling unit (items of one description are not independent), with a
fixed seed so a report is reproducible to the digit.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from eval.measures import METRICS, DescriptionTable, Index, build_table, compute, counts

RESAMPLES = 2000


def _num(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 4)


def _resample(n: int, resamples: int, seed: int) -> Index:
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n), dtype=np.int64)


def _ci(samples: np.ndarray) -> list[float | None]:
    finite = samples[~np.isnan(samples)]
    if finite.size < 10:
        return [None, None]
    lo, hi = np.percentile(finite, [2.5, 97.5])
    return [_num(lo), _num(hi)]


def summarize(
    table: DescriptionTable, idx: Index, *, resamples: int = RESAMPLES, seed: int = 0
) -> dict[str, Any]:
    """Every metric of rows ``idx`` with its bootstrap 95% CI, plus the counts."""
    point = compute(table, idx)
    boot = compute(table, idx[_resample(len(idx), resamples, seed)]) if len(idx) else {}
    metrics = {
        name: {"value": _num(float(point[name])),
               "ci95": _ci(boot[name]) if len(idx) else [None, None]}
        for name in METRICS
    }
    return {"metrics": metrics, "n": counts(table, idx)}


def correlation(table: DescriptionTable, idx: Index) -> dict[str, Any]:
    """Spearman and Pearson between per-description knowledge accuracy and respectfulness.

    Only descriptions with both scores count; fewer than 3, or a constant column, gives
    ``None`` with the reason instead of a number.
    """
    c = table.cols
    k_n, r_n = c["k_n"][idx], c["r_n"][idx]
    both = (k_n > 0) & (r_n > 0)
    acc = 100 * c["k_strict"][idx][both] / k_n[both]
    res = c["r_sum"][idx][both] / r_n[both]
    out: dict[str, Any] = {"n": int(both.sum()), "spearman": None, "spearman_p": None,
                           "pearson": None, "pearson_p": None, "reason": None}
    if out["n"] < 3:
        out["reason"] = "fewer than 3 descriptions with both scores"
    elif np.ptp(acc) == 0 or np.ptp(res) == 0:
        out["reason"] = "one of the two scores is constant"
    else:
        from scipy import stats  # slow to import: only when a correlation is computed

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # small-n accuracy notes from scipy
            s = stats.spearmanr(acc, res)
            p = stats.pearsonr(acc, res)
        out.update(spearman=_num(s.statistic), spearman_p=_num(s.pvalue),
                   pearson=_num(p.statistic), pearson_p=_num(p.pvalue))
    return out


def per_description(table: DescriptionTable) -> list[dict[str, Any]]:
    """One point per description for the knowledge-vs-safety scatter."""
    c = table.cols
    out = []
    for i, (did, country) in enumerate(zip(table.ids, table.countries, strict=True)):
        if c["k_n"][i] > 0 and c["r_n"][i] > 0:
            out.append({"id": did, "country": country,
                        "knowledge_accuracy": _num(100 * c["k_strict"][i] / c["k_n"][i]),
                        "respectfulness": _num(c["r_sum"][i] / c["r_n"][i])})
    return out


def paired_compare(
    records_a: list[dict[str, Any]], records_b: list[dict[str, Any]], *,
    resamples: int = RESAMPLES, seed: int = 0,
) -> dict[str, Any]:
    """B minus A on the items both runs finished, with a paired bootstrap 95% CI per metric
    (the same resampled descriptions are used for both runs)."""
    done_a = {r["id"] for r in records_a if r.get("status") == "done"}
    done_b = {r["id"] for r in records_b if r.get("status") == "done"}
    shared = done_a & done_b
    ta = build_table(r for r in records_a if r["id"] in shared)
    tb = build_table(r for r in records_b if r["id"] in shared)
    common = sorted(set(ta.ids) & set(tb.ids))
    ia = np.array([ta.ids.index(d) for d in common], dtype=np.int64)
    ib = np.array([tb.ids.index(d) for d in common], dtype=np.int64)
    pa, pb = compute(ta, ia), compute(tb, ib)
    result: dict[str, Any] = {"n_items": len(shared), "n_descriptions": len(common),
                              "metrics": {}}
    if not common:
        return result
    boot = _resample(len(common), resamples, seed)
    ba, bb = compute(ta, ia[boot]), compute(tb, ib[boot])
    for name in METRICS:
        result["metrics"][name] = {
            "a": _num(float(pa[name])), "b": _num(float(pb[name])),
            "diff": _num(float(pb[name] - pa[name])), "ci95": _ci(bb[name] - ba[name]),
        }
    return result
