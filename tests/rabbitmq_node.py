"""A RabbitMQ node of a test's own (its name, ports, data and logs in the test's directory,
no plugins), that the test can stop and start again without touching anyone else's broker."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

from tests.servers import free_port
from tests.waiting import wait_for

# The scripts themselves: the ones on PATH switch to the `rabbitmq` user, who cannot write in
# the test's directory. Both sides then use the same Erlang cookie, the current user's.
SCRIPTS = Path("/usr/lib/rabbitmq/bin")


class RabbitNode:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.name = f"bulkops-test-{uuid.uuid4().hex[:8]}@localhost"
        self.port = free_port()
        self.log_path = directory / "rabbitmq.log"
        plugins = directory / "enabled_plugins"
        for folder in ("mnesia", "log"):
            (directory / folder).mkdir(parents=True, exist_ok=True)
        plugins.write_text("[].\n")
        self._environment = os.environ | {
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_MNESIA_BASE": str(directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(directory / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(plugins),
            "RABBITMQ_CONFIG_FILE": str(directory / "rabbitmq"),  # none: the defaults
        }
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def start(self) -> None:
        """Start the node (again, on the same data) and wait until it takes connections."""
        with self.log_path.open("ab") as log_file:
            self._process = subprocess.Popen(
                [str(SCRIPTS / "rabbitmq-server")],
                env=self._environment,
                cwd=self.directory,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = self._process
        wait_for(lambda: self._listening() or process.poll() is not None, 120, "RabbitMQ to start")
        assert process.poll() is None, f"RabbitMQ did not start:\n{self.log_path.read_text()}"
        self._ctl("await_startup")

    def stop(self) -> None:
        """Stop the node (its messages stay on disk)."""
        if self._process is None:
            return
        if self._process.poll() is None:
            try:
                self._ctl("stop")
            except subprocess.CalledProcessError:
                # Not up (it failed to start): its processes are a session of their own.
                os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait(timeout=60)
        self._process = None

    def _listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            return False
        return True

    def _ctl(self, command: str) -> None:
        subprocess.run(
            [str(SCRIPTS / "rabbitmqctl"), "-n", self.name, "-q", command],
            env=self._environment,
            check=True,
            capture_output=True,
            timeout=120,
        )


def unavailable_reason() -> str | None:
    if not (SCRIPTS / "rabbitmq-server").exists() or shutil.which("erl") is None:
        return f"RabbitMQ's scripts are not in {SCRIPTS}"
    return None


@contextlib.contextmanager
def rabbit_node(directory: Path) -> Iterator[RabbitNode]:
    """A started node, stopped at the end whatever happens."""
    node = RabbitNode(directory)
    try:
        node.start()
        yield node
    finally:
        node.stop()
