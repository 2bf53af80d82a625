"""``culturesafe eval ...`` sub-commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="Replay AdaCultureSafe against an OpenAI-compatible endpoint.")
