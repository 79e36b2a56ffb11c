"""The benchmark smoke runs start together, a few at a time, when the first of them is needed.

Each run is mostly waiting (a dev stack starting, a poll interval, a measuring window), so
running `LANES` at once keeps the directory near a minute and a half on two shared cores (two
and a half one after another). A test module lists its runs in `BENCH_RUNS` (`"name": "module
args..."`, slowest first); the test `test_<name>` gets that run's JSON through the
`bench_result` fixture. Only runs whose tests are selected are started.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from tests.bench.support import BenchRunner

LANES = 3
Run = Future[tuple[dict[str, Any], float]]


def _run_name(item: pytest.Item) -> str | None:
    if not isinstance(item, pytest.Function):
        return None
    runs: dict[str, str] = getattr(item.module, "BENCH_RUNS", {})
    name = item.originalname.removeprefix("test_")
    return name if name in runs else None


@pytest.fixture(scope="session")
def bench_runs(request: pytest.FixtureRequest) -> Iterator[dict[str, Run]]:
    wanted: dict[str, list[str]] = {}
    for item in request.session.items:
        name = _run_name(item)
        if name is not None and isinstance(item, pytest.Function):
            wanted[name] = item.module.BENCH_RUNS[name].split()
    runner = BenchRunner()

    def timed(command: list[str]) -> tuple[dict[str, Any], float]:
        started = time.perf_counter()
        return runner.run(*command), time.perf_counter() - started

    pool = ThreadPoolExecutor(LANES, thread_name_prefix="bench-smoke")
    try:
        yield {name: pool.submit(timed, command) for name, command in wanted.items()}
    finally:
        runner.close()
        pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture
def bench_result(request: pytest.FixtureRequest, bench_runs: dict[str, Run]) -> dict[str, Any]:
    """The JSON line of this test's benchmark run (waits for it). The run's own wall time is
    the test's `bench_seconds` property (in a JUnit XML report, say)."""
    name = _run_name(request.node)
    assert name is not None, f"{request.node.name} has no entry in BENCH_RUNS"
    result, seconds = bench_runs[name].result()
    request.node.user_properties.append(("bench_seconds", round(seconds, 1)))
    return result
