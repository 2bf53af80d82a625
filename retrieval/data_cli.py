"""``culturesafe data ...``: fetch the public AdaCultureSafe release."""

from __future__ import annotations

import typer

data_app = typer.Typer(help="Fetch the public AdaCultureSafe release.")
