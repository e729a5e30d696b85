"""The whole stack against the sandbox, in a scratch Dagster home made from one of the
project's instance files (dagster.yaml, or deploy/postgres/dagster.yaml):

- `dagster_dev`: `dg dev` (web UI, daemon and code location in one command), as a person
  runs it; used by the latency benchmark (the UI test starts it through `omc dev`).
- `production`: the processes a team runs on a server, each started, stopped and killed on
  its own: the code location as a gRPC code server, `dagster-webserver` and `dagster-daemon`
  pointed at it by a workspace.yaml; used by the deployment test.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
EMBEDDED_INSTANCE = ROOT / "dagster.yaml"
# Storage in PostgreSQL at DAGSTER_POSTGRES_URL (a postgresql+psycopg2:// URL), which the caller's env sets.
POSTGRES_INSTANCE = ROOT / "deploy" / "postgres" / "dagster.yaml"


class StackError(RuntimeError):
    """A process of the stack did not come up or died."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def dagster_dev(workdir: Path, env: dict[str, str], timeout: float = 90.0, instance: Path = EMBEDDED_INSTANCE):
    """Start `dg dev` from the repository root on a copy of ``instance``; yield its URL; stop its whole process group."""
    # The project's instance settings (queued runs, 1 s dequeue, telemetry off), local files in workdir.
    home = instance_home(workdir, instance)
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
            wait_until_served(url, process, log_path, timeout)
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


def wait_until_served(url: str, process: subprocess.Popen, log: Path, timeout: float) -> None:
    """Until the Dagster webserver at ``url`` answers; StackError with the log's tail if
    ``process`` (what serves it) exits first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/server_info", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise StackError(f"{url} was not served within {timeout:.0f} s:\n{log.read_text()[-4000:]}")
        time.sleep(0.5)


def instance_home(workdir: Path, instance: Path) -> Path:
    """A Dagster home in ``workdir`` holding a copy of ``instance`` whose local files (artifacts,
    compute logs) live in ``workdir``; everything else is the project's file as it stands."""
    home = workdir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(instance.read_text().replace(".omc/dagster", str(workdir / "dagster")))
    return home


# --- the production topology -----------------------------------------------------------------

LOCATION = "omc_pipelines"
# SIGTERM, then this long before SIGKILL: the webserver and the daemon stop in about a second.
STOP_GRACE = 8.0


class Service:
    """One long-running process of the stack: in a session (process group) of its own, so that
    stopping it stops what it started (the code server's run workers with it); its output
    appended to ``log`` across restarts."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str]):
        self.name, self.argv, self.log, self.env = name, argv, log, env
        self.process: subprocess.Popen | None = None
        self.wanted = False  # started and not since stopped or killed on purpose
        self.started_at = 0.0  # time.time() of the last start

    def start(self) -> None:
        assert not self.alive(), f"{self.name} is already running"
        self.wanted, self.started_at = True, time.time()
        with open(self.log, "a") as log:
            log.write(f"--- {time.strftime('%H:%M:%S')} starting {self.name}: {' '.join(self.argv)}\n")
            log.flush()
            self.process = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, grace: float = STOP_GRACE) -> None:
        """SIGTERM to the group, SIGKILL after ``grace`` seconds: what a service manager does."""
        self.terminate()
        self.finish(grace)

    def terminate(self) -> None:
        self.wanted = False
        if self.process is not None:
            self._signal(signal.SIGTERM)

    def finish(self, grace: float = STOP_GRACE) -> None:
        """Wait up to ``grace`` seconds for a terminated process, then SIGKILL what is left of its group."""
        if self.process is None:
            return
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        self.kill()

    def kill(self) -> None:
        """SIGKILL to the whole group at once: a crash, or a container killed."""
        self.wanted = False
        if self.process is None:
            return
        self._signal(signal.SIGKILL)
        self.process.wait()

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.process.pid, sig)  # the session's id is its leader's pid
        except ProcessLookupError:
            pass  # the group is gone already

    def tail(self, chars: int = 4000) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else "(no log yet)"
        return f"--- tail of {self.log} ---\n{text[-chars:]}"


class Production:
    """The topology a team runs: a code server, `dagster-webserver` and `dagster-daemon run`,
    separate processes sharing one instance (``instance``, by default the PostgreSQL one, whose
    URL the caller's ``env`` gives as DAGSTER_POSTGRES_URL) and one workspace.yaml that points
    both at the code server's port. The port stays the same across restarts of the code server,
    as a deployment's does."""

    def __init__(self, workdir: Path, env: dict[str, str], instance: Path = POSTGRES_INSTANCE):
        self.home = instance_home(workdir, instance)
        self.code_port = self.web_port = free_port()
        while self.web_port == self.code_port:
            self.web_port = free_port()
        self.url = f"http://127.0.0.1:{self.web_port}"
        self.workspace = self.home / "workspace.yaml"
        self.workspace.write_text(
            "load_from:\n  - grpc_server:\n      host: 127.0.0.1\n"
            f"      port: {self.code_port}\n      location_name: {LOCATION}\n"
        )
        bin_dir = Path(sys.executable).parent
        full_env = {**os.environ, **env, "DAGSTER_HOME": str(self.home)}

        def service(name: str, *argv: str) -> Service:
            return Service(name, [str(bin_dir / argv[0]), *argv[1:]], workdir / f"{name}.log", full_env)

        # `dagster code-server start` rather than `dagster api grpc`: it serves a load error instead
        # of exiting, and "Reload" in the UI reloads the code without restarting the process or
        # the container (the proxy restarts its `dagster api grpc` child).
        self.code_server = service("code_server", "dagster", "code-server", "start", "-m", "omc_pipelines.definitions",
                                   "-h", "127.0.0.1", "-p", str(self.code_port), "--location-name", LOCATION)
        self.webserver = service("webserver", "dagster-webserver", "-h", "127.0.0.1", "-p", str(self.web_port),
                                 "-w", str(self.workspace))
        self.daemon = service("daemon", "dagster-daemon", "run", "-w", str(self.workspace))
        self.services = (self.code_server, self.webserver, self.daemon)

    def check_alive(self) -> None:
        """Fail with its log if a process that should run has died."""
        for service in self.services:
            if service.wanted and not service.alive():
                raise StackError(f"{service.name} exited with {service.process.returncode}\n{service.tail()}")

    def logs(self, chars: int = 3000) -> str:
        return "\n".join(service.tail(chars) for service in self.services)

    def wait_for_location(self, timeout: float = 90.0, loaded_after: float = 0.0) -> None:
        """Until the webserver serves the code location, loaded from the code server at or after
        ``loaded_after`` (a time.time()). The webserver and the daemon each watch the code server
        and reload the location within a second or two of its (re)start."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            self.check_alive()
            try:
                entries = graphql(self.url, "{ workspaceOrError { ... on Workspace { locationEntries { name "
                                  "updatedTimestamp locationOrLoadError { __typename ... on PythonError { message } } "
                                  "} } } }")
                last = entries["workspaceOrError"]["locationEntries"]
                if ([e["locationOrLoadError"]["__typename"] for e in last] == ["RepositoryLocation"]
                        and last[0]["updatedTimestamp"] >= loaded_after):
                    return
            except (httpx.TransportError, StackError) as exc:
                last = exc
            if time.monotonic() > deadline:
                raise StackError(f"the code location was not loaded within {timeout:.0f} s: {last!r}\n{self.logs()}")
            time.sleep(0.3)

    def restart_code_server(self, timeout: float = 90.0) -> None:
        """Start the code server again on its port; return once the webserver has reloaded from it."""
        started = time.time()
        self.code_server.start()
        self.wait_for_location(timeout, loaded_after=started)

    def stop(self) -> None:
        # All three at once (each takes a second or three): the daemon's SIGTERM is sent first, and
        # a test stops the stack with nothing left to launch.
        for service in (self.daemon, self.webserver, self.code_server):
            service.terminate()
        for service in self.services:
            service.finish()


@contextmanager
def production(workdir: Path, env: dict[str, str], instance: Path = POSTGRES_INSTANCE,
               before_start: Callable[[Production], None] | None = None, timeout: float = 90.0):
    """Start the code server and the webserver, then the daemon once the location is loaded;
    yield the `Production`; stop all three. ``before_start`` sees the instance home and the
    workspace before any process does (e.g. to set up the state an outage left)."""
    stack = Production(workdir, env, instance)
    try:
        if before_start:
            before_start(stack)
        stack.code_server.start()
        stack.webserver.start()
        stack.wait_for_location(timeout)
        # Not before: a daemon that finds the location unreachable evaluates no schedule until
        # its next iteration, at the next full minute (the sensors within seconds).
        stack.daemon.start()
        yield stack
    finally:
        stack.stop()


def graphql(url: str, query: str) -> dict:
    response = httpx.post(f"{url}/graphql", json={"query": query}, timeout=10)
    if response.status_code != 200:
        raise StackError(f"GraphQL answered {response.status_code}: {response.text[:500]}")
    return response.json()["data"]
