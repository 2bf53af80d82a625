"""``culturesafe eval ...``: run, report and compare evaluations from the command line.

``eval/`` never imports ``app/``: the embedded model is reached through a launcher that
``app/cli.py`` registers with ``set_embedded_launcher`` (a callable returning a context
manager that yields an OpenAI-compatible base URL).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from eval.cli_output import run_with_progress
from eval.config import ENDPOINT_DEFAULTS, RUN_DEFAULTS, EvalError, RunConfig
from eval.endpoint import EndpointConfig
from eval.run_log import MANIFEST_FILE
from eval.solver import CONDITIONS

EmbeddedLauncher = Callable[[], AbstractContextManager[str]]
EMBEDDED_MODEL = "embedded"

app = typer.Typer(help="Replay AdaCultureSafe against an OpenAI-compatible endpoint.")
console = Console(stderr=True)
_launcher: EmbeddedLauncher | None = None


def set_embedded_launcher(launcher: EmbeddedLauncher | None) -> None:
    """Register how to start the embedded model (called by ``app/cli.py``)."""
    global _launcher
    _launcher = launcher


@contextlib.contextmanager
def _embedded(needed: bool) -> Iterator[str | None]:
    if not needed:
        yield None
        return
    if _launcher is None:
        raise typer.BadParameter("no --target-url/--judge-url given and no embedded model "
                                 "is available in this installation")
    console.print("[dim]starting the embedded model...[/dim]")
    with _launcher() as base_url:
        yield base_url


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip()) if value else ()


@app.command()
def run(
    data: Annotated[Path, typer.Option(help="Dataset directory.")] = RUN_DEFAULTS["data_dir"],
    target_url: Annotated[
        str | None, typer.Option(help="Target base URL (.../v1); default: the embedded model.")
    ] = None,
    target_model: Annotated[str, typer.Option(help="Target model name.")] = EMBEDDED_MODEL,
    target_api_key: Annotated[
        str, typer.Option(envvar="CULTURESAFE_EVAL_TARGET_API_KEY", help="Target API key.")
    ] = "none",
    judge_url: Annotated[
        str | None, typer.Option(help="Judge base URL; default: the embedded model.")
    ] = None,
    judge_model: Annotated[str, typer.Option(help="Judge model name.")] = EMBEDDED_MODEL,
    judge_api_key: Annotated[
        str, typer.Option(envvar="CULTURESAFE_EVAL_JUDGE_API_KEY", help="Judge API key.")
    ] = "none",
    condition: Annotated[
        str, typer.Option(help="plain | elicit | inject-gold | gateway")
    ] = RUN_DEFAULTS["condition"],
    mode: Annotated[
        str | None, typer.Option(help="Gateway grounding mode (default: grounded).")
    ] = None,
    per_kind: Annotated[int, typer.Option(min=1, help="Items per kind per country.")] = (
        RUN_DEFAULTS["per_kind"]),
    countries: Annotated[str | None, typer.Option(help="Comma-separated countries.")] = None,
    kinds: Annotated[str, typer.Option(
        help="Comma-separated: knowledge, safety, ordinary (everyday prompts: no harm).")] = (
        ",".join(RUN_DEFAULTS["kinds"])),
    ordinary_file: Annotated[Path | None, typer.Option(
        exists=True, dir_okay=False,
        help="JSONL of ordinary prompts (id, text, places); default: the packaged set.")] = None,
    shuffled: Annotated[bool, typer.Option(help="Also ask each MCQ shuffled.")] = (
        RUN_DEFAULTS["shuffled"]),
    seed: Annotated[int, typer.Option(help="Sampling and shuffling seed.")] = RUN_DEFAULTS["seed"],
    out: Annotated[Path, typer.Option(help="Directory of run directories.")] = (
        RUN_DEFAULTS["out_dir"]),
    run_id: Annotated[str | None, typer.Option(help="Run id (default: from config).")] = None,
    resume: Annotated[bool, typer.Option(help="Resume --run-id with its stored config.")] = False,
    concurrency: Annotated[int, typer.Option(min=1, help="Concurrent target requests.")] = (
        ENDPOINT_DEFAULTS["concurrency"]),
    judge_concurrency: Annotated[int, typer.Option(min=1, help="Concurrent judge requests.")] = (
        ENDPOINT_DEFAULTS["concurrency"]),
    max_retries: Annotated[int, typer.Option(min=0, help="Retries on 429/5xx/timeouts.")] = (
        ENDPOINT_DEFAULTS["max_retries"]),
    timeout: Annotated[float, typer.Option(help="Per-request timeout (s).")] = (
        ENDPOINT_DEFAULTS["timeout_s"]),
    safety_max_tokens: Annotated[int, typer.Option(min=8, help="Safety answer length.")] = (
        RUN_DEFAULTS["safety_max_tokens"]),
    judge_control: Annotated[int, typer.Option(
        min=0, help="Re-judge N safety answers with a wrong custom (judge sanity check).")] = (
        RUN_DEFAULTS["judge_control"]),
) -> None:
    """Run (or resume) an evaluation, then write report.json and report.html."""
    if condition not in CONDITIONS:
        raise typer.BadParameter(f"--condition must be one of {', '.join(CONDITIONS)}")
    if condition == "gateway" and target_url is None:
        raise typer.BadParameter("--condition gateway needs --target-url of a running "
                                 "`culturesafe serve` (e.g. http://127.0.0.1:8000/v1)")
    kind_list = _split(kinds)
    needs_judge = "safety" in kind_list
    with _embedded(target_url is None or (needs_judge and judge_url is None)) as embedded:
        target = EndpointConfig(base_url=target_url or str(embedded), model=target_model,
                                api_key=target_api_key, concurrency=concurrency,
                                max_retries=max_retries, timeout_s=timeout)
        judge = EndpointConfig(base_url=judge_url or str(embedded), model=judge_model,
                               api_key=judge_api_key, concurrency=judge_concurrency,
                               max_retries=max_retries, timeout_s=timeout) if needs_judge else None
        if resume:
            config = _resumed_config(out, run_id, target, judge)
        else:
            try:
                config = RunConfig.model_validate({
                    "data_dir": data, "target": target, "judge": judge, "condition": condition,
                    "mode": mode, "per_kind": per_kind, "countries": _split(countries),
                    "kinds": kind_list, "shuffled": shuffled, "seed": seed, "out_dir": out,
                    "run_id": run_id, "safety_max_tokens": safety_max_tokens,
                    "judge_control": judge_control, "ordinary_file": ordinary_file,
                    "target_embedded": target_url is None,
                    "judge_embedded": needs_judge and judge_url is None,
                })
            except ValidationError as exc:  # e.g. an unknown kind
                problem = exc.errors()[0]
                where = ".".join(str(p) for p in problem["loc"][:1])
                raise typer.BadParameter(f"--{where.replace('_', '-')}: {problem['msg']}"
                                         ) from exc
        result = run_with_progress(config)
    console.print(f"run [bold]{result.run_id}[/bold]: {result.done}/{result.total} done, "
                  f"{result.errors} errors, {result.resumed} resumed; {result.run_dir}")
    if result.report_json:
        from eval.cli_output import print_summary

        print_summary(json.loads(result.report_json.read_text(encoding="utf-8")))
    if result.errors:
        raise typer.Exit(code=1)


def _resumed_config(out: Path, run_id: str | None, target: EndpointConfig,
                    judge: EndpointConfig | None) -> RunConfig:
    if run_id is None:
        raise typer.BadParameter("--resume needs --run-id")
    manifest_path = out / run_id / MANIFEST_FILE
    if not manifest_path.exists():
        raise typer.BadParameter(f"no run to resume at {manifest_path.parent}")
    stored = json.loads(manifest_path.read_text(encoding="utf-8"))["config"]
    config = RunConfig.model_validate(stored)
    # Where the models are may change between attempts (ports, keys); what they are may not.
    new_target = target.model_copy(update={"model": config.target.model})
    new_judge = judge.model_copy(update={"model": config.judge.model}) if (
        judge and config.judge) else None
    return config.model_copy(update={"target": new_target, "judge": new_judge,
                                     "out_dir": out})


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(exists=True, file_okay=False)],
    compare: Annotated[
        list[Path] | None, typer.Option(help="Other run(s) to compare against (paired).")
    ] = None,
) -> None:
    """(Re)write report.json and report.html of a run and print its summary."""
    from eval.cli_output import print_comparison, print_summary
    from eval.report import write_report

    json_path, html_path = write_report(run_dir, compare_with=compare or None)
    data = json.loads(json_path.read_text(encoding="utf-8"))
    print_summary(data)
    for comparison in data["comparisons"]:
        print_comparison(comparison)
    console.print(f"wrote {json_path} and {html_path}")


@app.command("compare")
def compare_runs(
    run_a: Annotated[Path, typer.Argument(exists=True, file_okay=False)],
    run_b: Annotated[Path, typer.Argument(exists=True, file_okay=False)],
) -> None:
    """Paired comparison B minus A on the items both runs finished (bootstrap 95% CIs);
    rewrites B's report with the comparison included."""
    from eval.cli_output import print_comparison
    from eval.report import REPORT_JSON, load_run, write_report
    from eval.stats import paired_compare

    (_, records_a), (_, records_b) = load_run(run_a), load_run(run_b)
    result = paired_compare(records_a, records_b)
    print_comparison({"a": run_a.name, "b": run_b.name, **result})
    write_report(run_b, compare_with=[run_a])
    console.print(f"wrote {run_b / REPORT_JSON} with the comparison")


@app.command()
def rejudge(
    source: Annotated[Path, typer.Argument(exists=True, file_okay=False)],
    run_id: Annotated[str, typer.Option(help="Id of the new run (next to SOURCE).")],
    judge_url: Annotated[
        str | None, typer.Option(help="Judge base URL; default: the embedded model.")
    ] = None,
    judge_model: Annotated[str, typer.Option(help="Judge model name.")] = EMBEDDED_MODEL,
    judge_api_key: Annotated[
        str, typer.Option(envvar="CULTURESAFE_EVAL_JUDGE_API_KEY", help="Judge API key.")
    ] = "none",
    judge_concurrency: Annotated[int, typer.Option(min=1, help="Concurrent requests.")] = 8,
    target_url: Annotated[
        str | None, typer.Option(help="Only for answers the source never finished.")
    ] = None,
) -> None:
    """Judge a run's stored answers again with another judge, into a new run."""
    from eval.rejudge import prepare_rejudge

    with _embedded(judge_url is None) as embedded:
        judge = EndpointConfig(base_url=judge_url or str(embedded), model=judge_model,
                               api_key=judge_api_key, concurrency=judge_concurrency)
        try:
            config = prepare_rejudge(source, judge, run_id, judge_embedded=judge_url is None)
        except EvalError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(code=2) from exc
        if target_url:
            config = config.model_copy(update={
                "target": config.target.model_copy(update={"base_url": target_url})})
        result = run_with_progress(config)
    console.print(f"run [bold]{result.run_id}[/bold]: {result.done}/{result.total} done, "
                  f"{result.errors} errors; {result.run_dir}")
