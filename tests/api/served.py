"""`deskclone api` run as a subprocess on a free port: the real uvicorn server, for tests of
what only a socket shows (connection handling, several API processes on one database)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from tests.devstack import free_port


def api_env(env: WorkflowEnvironment, data_dir: Path, **settings: str) -> dict[str, str]:
    """This environment without the developer's DESKCLONE_ settings, pointed at `env`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DESKCLONE_")}
    return {
        **clean,
        "DESKCLONE_DATA_DIR": str(data_dir),
        "DESKCLONE_TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
        "DESKCLONE_TEMPORAL_NAMESPACE": env.client.namespace,
        "DESKCLONE_SECRET_KEY": "served-api-tests",
        **settings,
    }


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def running_api(env: dict[str, str], log: Path, seconds: float = 60) -> Iterator[str]:
    """A started `deskclone api` (its output in `log`); yields its base URL, stops it."""
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "deskclone", "api", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + seconds
            while not _healthy(url):
                if process.poll() is not None:
                    raise AssertionError(f"deskclone api exited with {process.returncode}")
                if time.monotonic() > deadline:
                    raise AssertionError("deskclone api did not become healthy")
                time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
