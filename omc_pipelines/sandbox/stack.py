"""The whole stack against the sandbox: `dg dev` (web UI and daemon) in a scratch
Dagster home made from one of the project's instance files (dagster.yaml, or
deploy/postgres/dagster.yaml). Used by the end-to-end tests and the latency benchmark."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
EMBEDDED_INSTANCE = ROOT / "dagster.yaml"
# Storage in PostgreSQL at DAGSTER_POSTGRES_URL (a postgresql+psycopg2:// URL), which the caller's env sets.
POSTGRES_INSTANCE = ROOT / "deploy" / "postgres" / "dagster.yaml"


class StackError(RuntimeError):
    """`dg dev` did not come up."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def dagster_dev(workdir: Path, env: dict[str, str], timeout: float = 90.0, instance: Path = EMBEDDED_INSTANCE):
    """Start `dg dev` from the repository root on a copy of ``instance``; yield its URL; stop its whole process group."""
    home = workdir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    # The project's instance settings (queued runs, 1 s dequeue, telemetry off), local files in workdir.
    config = instance.read_text().replace(".omc/dagster", str(workdir / "dagster"))
    (home / "dagster.yaml").write_text(config)
    port = free_port()
    log_path = workdir / "dg.log"
    dg = str(Path(sys.executable).with_name("dg"))
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [dg, "dev", "--port", str(port)], cwd=ROOT, env={**os.environ, **env, "DAGSTER_HOME": str(home)},
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    if httpx.get(f"{url}/server_info", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise StackError(f"dg dev did not serve within {timeout:.0f} s:\n{log_path.read_text()[-4000:]}")
                time.sleep(0.5)
            yield url
        finally:
            # dg dev ignores signals unless its whole group gets them. A stack for tests and
            # benchmarks has nothing to shut down gracefully: a few seconds, then SIGKILL.
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=8)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def graphql(url: str, query: str) -> dict:
    response = httpx.post(f"{url}/graphql", json={"query": query}, timeout=10)
    if response.status_code != 200:
        raise StackError(f"GraphQL answered {response.status_code}: {response.text[:500]}")
    return response.json()["data"]
