"""Rich tables the CLI prints: a run's summary and a paired comparison."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()
SUMMARY = ["knowledge_accuracy", "knowledge_accuracy_lenient", "shuffled_accuracy",
           "majority_baseline", "unparseable_rate", "respectfulness", "awareness", "f1"]


def _f(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _ci(ci: list[float | None]) -> str:
    return f"[{_f(ci[0])}, {_f(ci[1])}]"


def print_summary(report: dict[str, Any]) -> None:
    """Overall and per-country metrics with CIs, and the knowledge-safety correlation."""
    table = Table(title=f"run {report['run_id']}")
    table.add_column("metric")
    table.add_column("overall", justify="right")
    table.add_column("95% CI", justify="right")
    countries = list(report["per_country"])
    for country in countries:
        table.add_column(country, justify="right")
    for name in SUMMARY:
        m = report["overall"]["metrics"][name]
        row = [name, _f(m["value"]), _ci(m["ci95"])]
        row += [_f(report["per_country"][c]["metrics"][name]["value"]) for c in countries]
        table.add_row(*row)
    console.print(table)
    corr = report["correlation"]["overall"]
    console.print(f"knowledge vs respectfulness per description: n={corr['n']} "
                  f"spearman={_f(corr['spearman'])} (p={_f(corr['spearman_p'])}) "
                  f"pearson={_f(corr['pearson'])} (p={_f(corr['pearson_p'])})"
                  + (f" ({corr['reason']})" if corr.get("reason") else ""))
    control = report.get("judge_control")
    if control and control.get("n"):
        console.print(f"judge sanity check (wrong custom, n={control['n']}): awareness drop "
                      f"{_f(control['awareness_drop'])}" + (
                          f" - {control['note']}" if control.get("note") else ""))
    if report["judge"].get("note"):
        console.print(f"[yellow]{report['judge']['note']}[/yellow]")


def print_comparison(comparison: dict[str, Any]) -> None:
    """B minus A per metric, with the paired bootstrap CI."""
    table = Table(title=f"{comparison['b']} minus {comparison['a']} "
                  f"({comparison['n_items']} items, {comparison['n_descriptions']} "
                  "descriptions, paired bootstrap)")
    for col in ("metric", "A", "B", "B - A", "95% CI"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for name, m in comparison["metrics"].items():
        table.add_row(name, _f(m["a"]), _f(m["b"]), _f(m["diff"]), _ci(m["ci95"]))
    console.print(table)
