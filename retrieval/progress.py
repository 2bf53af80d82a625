"""Progress bars of the long embedding steps (index build, intent gate fit): a callback
``(done, total)`` that the step calls after each chunk, or None when nobody watches."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

ProgressCallback = Callable[[int, int], None]


@contextmanager
def progress_bar(enabled: bool, label: str) -> Iterator[ProgressCallback | None]:
    """A rich progress bar labelled ``label`` (on stderr's console), or None if disabled."""
    if not enabled:
        yield None
        return
    from rich.progress import Progress

    with Progress(transient=False) as bar:
        task = bar.add_task(label, total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield advance
