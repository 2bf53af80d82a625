"""``culturesafe index ...`` and ``culturesafe data ...`` sub-commands (composed here)."""

from __future__ import annotations

from retrieval.data_cli import data_app
from retrieval.index_cli import index_app

__all__ = ["data_app", "index_app"]
