"""The report's figures as base64 PNG strings (matplotlib's object API: no global pyplot
state, no display needed)."""

from __future__ import annotations

import base64
import io
from typing import Any

from matplotlib.figure import Figure


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _err(metric: dict[str, Any]) -> tuple[float, float]:
    value = metric["value"] or 0.0
    lo, hi = metric["ci95"]
    return (value - lo if lo is not None else 0.0, hi - value if hi is not None else 0.0)


def country_bars(per_country: dict[str, Any]) -> str | None:
    """Knowledge accuracy and respectfulness (both 0-100) per country, with 95% CIs."""
    if not per_country:
        return None
    names = list(per_country)
    fig = Figure(figsize=(max(5.0, 1.4 * len(names)), 3.6))
    ax = fig.add_subplot()
    width = 0.38
    for offset, (metric, label, color) in enumerate([
        ("knowledge_accuracy", "knowledge accuracy (%)", "#3b6ea5"),
        ("respectfulness_100", "respectfulness (0-100)", "#c0504d"),
    ]):
        entries = [per_country[c]["metrics"][metric] for c in names]
        values = [e["value"] or 0.0 for e in entries]
        errors = list(zip(*[_err(e) for e in entries], strict=True))
        xs = [i + (offset - 0.5) * width for i in range(len(names))]
        ax.bar(xs, values, width, yerr=errors, capsize=3, label=label, color=color)
    ax.set_xticks(range(len(names)), [n.title() for n in names])
    ax.set_ylim(0, 105)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Per country (95% bootstrap CI)")
    return _png(fig)


def scatter(points: list[dict[str, Any]], corr: dict[str, Any]) -> str | None:
    """Knowledge accuracy vs respectfulness, one point per description."""
    if not points:
        return None
    fig = Figure(figsize=(5.5, 4.0))
    ax = fig.add_subplot()
    countries = sorted({p["country"] for p in points})
    for country in countries:
        own = [p for p in points if p["country"] == country]
        ax.scatter([p["knowledge_accuracy"] for p in own], [p["respectfulness"] for p in own],
                   label=country.title(), alpha=0.7, s=18)
    ax.set_xlabel("knowledge accuracy per description (%)")
    ax.set_ylabel("respectfulness per description (1-10)")
    ax.set_xlim(-5, 105)
    ax.set_ylim(0.5, 10.5)
    rho = corr.get("spearman")
    ax.set_title(f"Spearman rho = {rho:.2f} (n = {corr['n']})" if rho is not None
                 else f"correlation n/a (n = {corr['n']})")
    ax.legend(fontsize=7)
    return _png(fig)


def comparison_bars(comparison: dict[str, Any], metrics: list[str]) -> str | None:
    """Paired differences (B - A) with 95% CIs, one bar per metric."""
    rows = [(m, comparison["metrics"][m]) for m in metrics
            if comparison["metrics"].get(m, {}).get("diff") is not None]
    if not rows:
        return None
    fig = Figure(figsize=(6.0, 0.45 * len(rows) + 1.2))
    ax = fig.add_subplot()
    ys = list(range(len(rows)))
    diffs = [r["diff"] for _, r in rows]
    errs = [[d - (r["ci95"][0] if r["ci95"][0] is not None else d) for d, (_, r)
             in zip(diffs, rows, strict=True)],
            [(r["ci95"][1] if r["ci95"][1] is not None else d) - d for d, (_, r)
             in zip(diffs, rows, strict=True)]]
    ax.barh(ys, diffs, xerr=errs, capsize=3, color=["#4e9a06" if d >= 0 else "#a40000"
                                                     for d in diffs])
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(ys, [m for m, _ in rows])
    ax.set_title(f"{comparison['b']} minus {comparison['a']} (paired, 95% CI)")
    return _png(fig)


def intent_heatmap(intent: dict[str, Any] | None) -> str | None:
    """The intent confusion matrix: expected class (from the kind) by reported class."""
    if not intent or not intent["rows"]:
        return None
    labels = intent["labels"]
    expected = [label for label in labels if label in intent["rows"]]  # report.json sorts
    counts = [[intent["rows"][e][label] for label in labels] for e in expected]
    fig = Figure(figsize=(1.3 * len(labels) + 2.4, 0.7 * len(expected) + 1.6))
    ax = fig.add_subplot()
    image = ax.imshow(counts, cmap="Blues", aspect="auto")
    peak = max(max(row) for row in counts) or 1
    for i, row in enumerate(counts):
        for j, count in enumerate(row):
            ax.text(j, i, str(count), ha="center", va="center",
                    color="white" if count > peak / 2 else "black")
    ax.set_xticks(range(len(labels)), [label.replace("_", " ") for label in labels])
    ax.set_yticks(range(len(expected)),
                  [f"{intent['kinds'][e]}\n(expect {e.replace('_', ' ')})" for e in expected])
    ax.set_xlabel("intent the gateway reported")
    ax.set_title(f"Intent confusion matrix (n = {intent['n']})")
    fig.colorbar(image, ax=ax, fraction=0.04)
    return _png(fig)


def ordinary_bars(ordinary: dict[str, Any] | None) -> str | None:
    """Ordinary prompts grounded and answered differently from off, overall, by whether a
    place is named and per country, with Wilson 95% intervals."""
    if not ordinary or not ordinary["endpoint_culturesafe"]:
        return None
    groups = {"All": ordinary, **{n.capitalize(): g for n, g in ordinary["by_place"].items()},
              **{c.title(): g for c, g in ordinary["per_country"].items() if c != "none"}}
    names = [n for n, g in groups.items() if g["n"]]
    fig = Figure(figsize=(max(6.0, 0.8 * len(names) + 2.0), 3.6))
    ax = fig.add_subplot()
    width = 0.38
    for offset, (metric, label, color) in enumerate([
        ("grounded", "grounded (%)", "#c0504d"),
        ("differs_from_off", "answered differently from off (%)", "#3b6ea5"),
    ]):
        entries = [groups[n][metric] for n in names]
        values = [e["value"] or 0.0 for e in entries]
        errors = list(zip(*[_err(e) for e in entries], strict=True))
        xs = [i + (offset - 0.5) * width for i in range(len(names))]
        ax.bar(xs, values, width, yerr=errors, capsize=3, label=label, color=color)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_ylim(0, 105)
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title("Ordinary prompts: what the gateway changed (95% Wilson CI)")
    return _png(fig)
