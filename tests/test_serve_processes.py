"""`bulkops serve --processes N`: several API processes on one port and one database."""

from __future__ import annotations

import os
import re
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.servers import RunningServer, start_server
from tests.test_submission import CUSTOMERS, customer, wait_until_final
from tests.waiting import wait_for

pytestmark = pytest.mark.slow

STARTED = re.compile(r"Started server process \[(\d+)\]")


def server_processes(server: RunningServer) -> list[int]:
    """The API processes uvicorn reported starting, in order."""
    return [int(pid) for pid in STARTED.findall(server.log())]


def alive(pid: int) -> bool:
    """Running: neither gone nor a zombie (an orphan's, whoever adopted it may never reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize("worker", ["--worker", "--no-worker"])
def test_several_api_processes_share_the_port_and_stop_together(
    tmp_path: Path, database_url: str, worker: str
) -> None:
    server = start_server(
        tmp_path / "server", "--processes", "2", worker, DATABASE_URL=database_url
    )
    try:
        wait_for(lambda: server.log().count("Application startup complete") == 2, 30, "startup")
        first, second = server_processes(server)
        assert first != second and alive(first) and alive(second)

        with server.admin_client() as client:
            response = client.post(
                CUSTOMERS, json=[customer(f"p{n}@example.com") for n in range(20)]
            )
            assert response.status_code == 202
            bulk_uuid = response.json()["bulk_uuid"]

            def search(_: int) -> int:
                return client.get(f"/rest/V1/bulk/{bulk_uuid}/operation-status/4").status_code

            with ThreadPoolExecutor(8) as pool:
                assert set(pool.map(search, range(64))) == {200}
            if worker == "--worker":
                operations = wait_until_final(client, bulk_uuid)
                assert [operation["status"] for operation in operations] == [1] * 20

        # A process that dies is replaced; the others go on serving.
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: len(server_processes(server)) == 3, 30, "a replacement process")
        with server.admin_client() as client:
            assert client.get("/rest/V1/store/websites").status_code == 200
    finally:
        server.stop()
    assert server.process.returncode == 0
    assert not any(alive(pid) for pid in server_processes(server))


def test_api_processes_stop_when_their_supervisor_is_killed(tmp_path: Path) -> None:
    """A supervisor killed outright cannot stop its API processes: they stop themselves,
    rather than serve on unsupervised."""
    server = start_server(tmp_path / "server", "--processes", "2", "--no-worker")
    try:
        wait_for(lambda: server.log().count("Application startup complete") == 2, 30, "startup")
        started = server_processes(server)
        server.process.kill()
        server.process.wait()
        wait_for(lambda: not any(alive(pid) for pid in started), 30, "the API processes to stop")
    finally:
        for pid in server_processes(server):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
