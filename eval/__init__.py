"""AdaCultureSafe evaluation: dataset -> solver -> scorer -> log -> metrics -> report.

The Python API::

    from eval import EndpointConfig, RunConfig, run_evaluation_sync
    result = run_evaluation_sync(RunConfig(
        data_dir=Path("../shared/data/adaculturesafe"),
        target=EndpointConfig(base_url="http://127.0.0.1:8001/v1", model="my-model"),
        judge=EndpointConfig(base_url="https://judge.example/v1", model="judge", api_key=...),
        per_kind=10,
    ))

``run_evaluation`` is the same as a coroutine.
"""

from eval.config import EvalConfigError, EvalDataError, EvalError, RunConfig
from eval.endpoint import EndpointConfig
from eval.runner import RunResult, run_evaluation, run_evaluation_sync

__all__ = [
    "EndpointConfig",
    "EvalConfigError",
    "EvalDataError",
    "EvalError",
    "RunConfig",
    "RunResult",
    "run_evaluation",
    "run_evaluation_sync",
]
