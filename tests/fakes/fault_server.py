"""Deprecated: the fault server is :class:`tests.fakes.openai_server.FakeOpenAI` now."""

from __future__ import annotations

from tests.fakes.openai_server import FakeOpenAI


class FaultServer(FakeOpenAI):
    def __init__(self, delay_s: float = 3.0) -> None:
        super().__init__(delay_s=delay_s, models=("ok",))

    def _behaviour(self, model: str) -> str:
        return "slow" if model == "delay-first-byte" else super()._behaviour(model)
