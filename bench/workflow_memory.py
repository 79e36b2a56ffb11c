"""What one cached mailbox workflow's sandbox costs the worker, with the workflow modules
compiled once per process (`core/shared_code.py`, as the worker runs) and without.

`.venv/bin/python -m bench.workflow_memory --instances 500`

Each measurement runs in a child process of its own (the finder is process-wide): the
production runner (`worker.WORKFLOW_RUNNER`) creates `--instances` sandboxed
`MailboxWorkflow` instances, as the worker's cache holds them, and the child reports the
growth of its RSS and of the Python heap (`tracemalloc`) per instance. A sandbox is what
the cache keeps besides the Temporal core's state; the whole worker's figure is
`bench.fanout`'s. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import tracemalloc
from typing import Any

from bench.harness import rss_mb

WARM_UP = 20  # instances made before measuring: first imports, caches, arenas


def measure(instances: int, shared: bool) -> dict[str, float]:
    """In this process: per-instance RSS and Python heap growth, in KiB."""
    # The SDK's own validation path (`prepare_workflow`) builds instances this way; kept
    # alive here, as the worker's cache keeps them.
    import temporalio.converter
    from temporalio.api.common.v1 import Payloads
    from temporalio.api.failure.v1 import Failure
    from temporalio.worker._workflow_instance import WorkflowInstanceDetails
    from temporalio.worker.workflow_sandbox._runner import _fake_info
    from temporalio.workflow import _Definition

    from core.shared_code import SharedCodeFinder
    from worker import WORKFLOW_RUNNER
    from workflows.mailbox import MailboxWorkflow

    if not shared:
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, SharedCodeFinder)]
    converter = temporalio.converter.DataConverter.default
    details = WorkflowInstanceDetails(
        payload_converter_factory=converter._new_payload_converter,
        failure_converter_class=converter.failure_converter_class,
        interceptor_classes=[],
        defn=_Definition.must_from_class(MailboxWorkflow),
        info=_fake_info,
        randomness_seed=-1,
        extern_functions={},
        disable_eager_activity_execution=False,
        worker_level_failure_exception_types=[],
        patch_activation_callback=None,
        last_completion_result=Payloads(),
        last_failure=Failure(),
    )

    async def build() -> dict[str, float]:
        kept = [WORKFLOW_RUNNER.create_instance(details) for _ in range(WARM_UP)]
        gc.collect()
        # RSS first, untraced (tracemalloc's bookkeeping would count); then the Python heap
        # over as many more.
        rss_before = rss_mb(os.getpid())
        kept += [WORKFLOW_RUNNER.create_instance(details) for _ in range(instances)]
        gc.collect()
        rss = (rss_mb(os.getpid()) - rss_before) * 1024 / instances
        tracemalloc.start()
        heap_before = tracemalloc.get_traced_memory()[0]
        kept += [WORKFLOW_RUNNER.create_instance(details) for _ in range(instances)]
        gc.collect()
        heap = (tracemalloc.get_traced_memory()[0] - heap_before) / 1024 / instances
        tracemalloc.stop()
        return {"rss_kib": rss, "heap_kib": heap, "instances_kept": len(kept)}

    return asyncio.run(build())


def in_child(instances: int, shared: bool) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.workflow_memory", "--instances", str(instances)]
    command += ["--child", "shared" if shared else "plain"]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=500)
    parser.add_argument("--child", choices=["shared", "plain"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.stdout.write(json.dumps(measure(args.instances, args.child == "shared")) + "\n")
        return
    shared, plain = in_child(args.instances, True), in_child(args.instances, False)
    result = {
        "instances": args.instances,
        "shared_rss_kib_per_instance": round(shared["rss_kib"], 1),
        "shared_heap_kib_per_instance": round(shared["heap_kib"], 1),
        "plain_rss_kib_per_instance": round(plain["rss_kib"], 1),
        "plain_heap_kib_per_instance": round(plain["heap_kib"], 1),
    }
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
