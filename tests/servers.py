"""Real bulkops servers for tests: `bulkops serve` in a subprocess on a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.backends import Backend


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RunningServer:
    base_url: str
    database_url: str
    admin_username: str
    admin_password: str
    process: subprocess.Popen[bytes]
    log_path: Path
    _token: str | None = field(default=None, repr=False)

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=30, **kwargs)  # type: ignore[arg-type]

    def admin_token(self) -> str:
        """A token of the configured admin user (fetched once through the API)."""
        if self._token is None:
            with self.client() as client:
                response = client.post(
                    "/rest/V1/integration/admin/token",
                    json={"username": self.admin_username, "password": self.admin_password},
                )
                response.raise_for_status()
                self._token = response.json()
        return self._token

    def admin_client(self) -> httpx.Client:
        return self.client(headers={"Authorization": f"Bearer {self.admin_token()}"})

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


ROOT = Path(__file__).resolve().parents[1]


WITHOUT_RATE_LIMITS = {"RATE_LIMIT_PER_CALLER": "", "RATE_LIMIT_PER_ADDRESS": ""}
"""Tests make many requests from one address in little time: only the tests of the rate
limits set them."""


def bulkops_environment(
    settings: Mapping[str, str], environment: Mapping[str, str] | None = None
) -> dict[str, str]:
    """This process's environment with only the given BULKOPS_* settings (named without the
    prefix), the repository importable (handler fixtures) and any other `environment`
    variables."""
    process_env = {k: v for k, v in os.environ.items() if not k.startswith("BULKOPS_")}
    process_env["PYTHONPATH"] = str(ROOT)
    settings = WITHOUT_RATE_LIMITS | dict(settings)
    process_env |= {f"BULKOPS_{name}": value for name, value in settings.items()}
    return process_env | dict(environment or {})


def start_bulkops(
    command: Sequence[str],
    workdir: Path,
    log_path: Path,
    settings: Mapping[str, str],
    environment: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """`python -m bulkops <command>` in `workdir`, in `bulkops_environment`, its output in
    `log_path`."""
    with log_path.open("wb") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "bulkops", *command],
            env=bulkops_environment(settings, environment),
            cwd=workdir,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )


def start_server(workdir: Path, *options: str, **env: str) -> RunningServer:
    """Start `bulkops serve [options]` with a fresh SQLite database in `workdir`; BULKOPS_*
    overrides come as keyword arguments (`DATABASE_URL="..."`)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    settings = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'bulkops.sqlite3'}",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "ADMIN_USERNAME": "admin",
        "ADMIN_PASSWORD": "Admin123-test",
    } | env
    log_path = workdir / "server.log"
    process = start_bulkops(["serve", *options], workdir, log_path, settings)
    server = RunningServer(
        base_url=f"http://127.0.0.1:{port}",
        database_url=settings["DATABASE_URL"],
        admin_username=settings["ADMIN_USERNAME"],
        admin_password=settings["ADMIN_PASSWORD"],
        process=process,
        log_path=log_path,
    )
    _wait_until_ready(server)
    return server


@contextmanager
def server_on(
    backend: Backend, workdir: Path, *options: str, **env: str
) -> Iterator[RunningServer]:
    """A server on a new database of the backend, for the tests of a module to share; the
    database is dropped once the server stopped."""
    url = backend.create_database(workdir)
    try:
        running = start_server(workdir / "server", *options, DATABASE_URL=url, **env)
        try:
            yield running
        finally:
            running.stop()
    finally:
        backend.drop_database(url)


def _wait_until_ready(server: RunningServer, timeout: float = 120.0) -> None:
    # Generous: a machine busy with other suites takes long to import and migrate.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"bulkops serve exited early:\n{server.log()}")
        try:
            httpx.get(f"{server.base_url}/health", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"bulkops serve did not answer within {timeout} s:\n{server.log()}")
