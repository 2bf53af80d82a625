"""The ``culturesafe`` command: composes the sub-commands of each package."""

from __future__ import annotations

import typer

from eval.cli import app as eval_app
from retrieval.cli import data_app, index_app

cli = typer.Typer(help="CultureSafe: a culturally-grounded OpenAI-compatible LLM gateway.")
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

    from app.config import Settings

    settings = Settings()
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
    )


def main() -> None:
    cli()
