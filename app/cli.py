"""The ``culturesafe`` command: composes the sub-commands of each package.

This module stays light on purpose: ``culturesafe serve --workers N`` starts each worker
with multiprocessing's *spawn*, which imports this module again in every child before the
worker can answer uvicorn's health pings. The sub-commands of ``eval`` and ``retrieval``
(openai, rich, typer apps: 8-10 s of imports on a busy 2-core machine) are therefore added
in :func:`main`, never at import time.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import typer

cli = typer.Typer(help="CultureSafe: a culturally-grounded OpenAI-compatible LLM gateway.")


def _embedded_launcher() -> AbstractContextManager[str]:
    """The embedded model as configured, for ``culturesafe eval`` (which cannot import app/)."""
    from app.backends.embedded import EmbeddedLlamaServer
    from app.config import Settings

    s = Settings()
    return EmbeddedLlamaServer(
        s.embedded_model_path, model_name=s.embedded_model_name, ctx_size=s.embedded_ctx_size,
        threads=s.embedded_threads, parallel=s.embedded_parallel,
    )


def _add_package_commands() -> None:
    from eval.cli import app as eval_app
    from eval.cli import set_embedded_launcher
    from retrieval.cli import data_app, index_app

    set_embedded_launcher(_embedded_launcher)
    cli.add_typer(index_app, name="index")
    cli.add_typer(data_app, name="data")
    cli.add_typer(eval_app, name="eval")


@cli.command()
def serve(
    host: str | None = typer.Option(None, help="Bind address (default: CULTURESAFE_HOST)."),
    port: int | None = typer.Option(None, help="Port (default: CULTURESAFE_PORT)."),
    workers: int = typer.Option(1, min=1, help="uvicorn worker processes."),
) -> None:
    """Run the gateway with uvicorn."""
    import uvicorn
    from pydantic import ValidationError

    from app.config import Settings

    try:  # checked with the host it will bind (a public one needs keys)
        settings = Settings(host=host) if host else Settings()
    except ValidationError as exc:
        for error in exc.errors():
            typer.echo(f"culturesafe serve: {error['msg'].removeprefix('Value error, ')}",
                       err=True)
        raise typer.Exit(2) from None
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=settings.host,
        port=port or settings.port,
        workers=workers,
        # A worker's start (model, index, BM25, ONNX session) outlasts uvicorn's 5 s.
        timeout_worker_healthcheck=settings.worker_healthcheck_timeout_s,
        # uvloop + httptools (uvicorn[standard]) are what "auto" picks; named so a missing
        # extra fails loudly instead of silently serving on the slower pure-Python stack.
        loop="uvloop",
        http="httptools",
        access_log=False,  # our own access line (app/request_context.py) carries the id
    )


def main() -> None:
    _add_package_commands()
    cli()
