"""What the CLI shows: a run's progress bar, its summary and a paired comparison."""

from __future__ import annotations

import asyncio
from typing import Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from eval.config import EvalError, RunConfig
from eval.runner import RunResult, run_evaluation

console = Console()
status_console = Console(stderr=True)
SUMMARY = ["knowledge_accuracy", "knowledge_accuracy_lenient", "shuffled_accuracy",
           "majority_baseline", "unparseable_rate", "respectfulness", "awareness", "f1"]


def _f(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _ci(ci: list[float | None]) -> str:
    return f"[{_f(ci[0])}, {_f(ci[1])}]"


def run_with_progress(config: RunConfig) -> RunResult:
    """Run an evaluation under a progress bar (on stderr); a refused run exits with 2."""
    columns = (TextColumn("[bold]eval"), BarColumn(), MofNCompleteColumn(),
               TaskProgressColumn(), TextColumn("{task.fields[rate]}"),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=status_console) as bar:
        task = bar.add_task("eval", total=None, rate="")

        def progress(done: int, total: int) -> None:
            speed = bar.tasks[0].speed
            bar.update(task, completed=done, total=total,
                       rate=f"{speed:.1f} samples/s" if speed else "")

        try:
            return asyncio.run(run_evaluation(config, progress=progress))
        except EvalError as exc:
            status_console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(code=2) from exc


def _share(entry: dict[str, Any]) -> str:
    return f"{_f(entry['value'])} {_ci(entry['ci95'])} (n={entry['n']})"


def print_no_harm(report: dict[str, Any]) -> None:
    """Ordinary prompts grounded / answered differently from off, and the intent matrix."""
    ordinary, intent = report.get("ordinary"), report.get("intent")
    if ordinary:
        table = Table(title=f"ordinary traffic ({ordinary['n']} prompts)")
        for col in ("prompts", "grounded %", "differs from off %"):
            table.add_column(col, justify="left" if col == "prompts" else "right")
        for name, block in [("all", ordinary), *ordinary["by_place"].items()]:
            if block["n"]:
                table.add_row(name, _share(block["grounded"]), _share(block["differs_from_off"]))
        console.print(table)
        if ordinary.get("note"):
            console.print(f"[yellow]{ordinary['note']}[/yellow]")
    if intent:
        agreement = intent["agreement"]["value"]
        table = Table(title=f"intent confusion matrix (n={intent['n']}; agreement "
                      + (f"{agreement:.2f}% of the {intent['reported']} reported)"
                         if agreement is not None else "n/a: none reported)"))
        table.add_column("expected (kind)")
        for label in intent["labels"]:
            table.add_column(label, justify="right")
        for expected in [label for label in intent["labels"] if label in intent["rows"]]:
            row = intent["rows"][expected]
            table.add_row(f"{expected} ({intent['kinds'][expected]})",
                          *[str(row[label]) for label in intent["labels"]])
        console.print(table)


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
    print_no_harm(report)
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
