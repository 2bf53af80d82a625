"""The seams of retrieval: real and test implementations are interchangeable."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from retrieval.models import Passage


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension."""

    @property
    def name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]: ...


@runtime_checkable
class Retriever(Protocol):
    """Finds the verified descriptions a text touches (nothing below the threshold)."""

    def search(self, query: str, k: int, location: str | None = None) -> list[Passage]: ...
