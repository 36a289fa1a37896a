"""Faults under load, from servers the tests start themselves: API processes killed with
SIGKILL, the database server and the broker gone and back, SQLite's file full. Requests in
flight may fail; every item a client got a 202 for is stored once and reaches a final status,
and no handler runs for an operation already final (tests/faults.py counts them; a worker
killed mid-bulk: tests/test_worker_kill.py)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.backends import Backend
from tests.faults import ROUNDS, Figures, Ledger, Load, service_settings, start_worker
from tests.proxy import proxied_database
from tests.rabbitmq_node import rabbit_node
from tests.rabbitmq_node import unavailable_reason as rabbitmq_unavailable
from tests.servers import RunningServer, start_server
from tests.test_serve_processes import alive, server_processes
from tests.waiting import wait_for

pytestmark = pytest.mark.slow

UNAVAILABLE = {"message": "The database is unavailable. Try again later."}
OUTAGE_STARTS = "the database is unavailable ("
OUTAGE_ENDS = "the database is available again"


def check(ledger: Ledger, load: Load, report: Callable[[Figures], None]) -> None:
    """Once every operation is final: nothing acknowledged lost, nothing duplicated, and
    every operation complete (the slow handler never fails: a failure would be the fault's
    error recorded as the operation's outcome)."""
    try:
        ledger.wait_until_all_final()
    finally:
        figures = ledger.figures(load.failed)
        report(figures)
    assert figures.acknowledged > 0
    assert figures.stored == figures.final == figures.acknowledged, figures
    assert figures.duplicated == 0, figures
    assert ledger.statuses() == {1}


def test_api_processes_killed_under_load_lose_nothing_acknowledged(
    database_url: str,
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
    report_figures: Callable[[Figures], None],
) -> None:
    """`serve --processes 2`: one API process killed at a time, uvicorn starts another; then
    the last server killed whole and a new one started on the same database."""
    settings = service_settings(database_url)
    servers = [start_server(tmp_path / "api", "--processes", "2", "--no-worker", **settings)]
    processes.append(servers[0].process)
    processes.append(start_worker(tmp_path, "worker.log", settings))
    ledger = Ledger(database_url, tmp_path / "runs.jsonl")
    with Load(ledger, lambda: servers[-1], servers[0].admin_token()) as load:
        ledger.wait_until_processing()
        for _ in range(ROUNDS):
            load.wait_acknowledged(2 * 10, "submissions before the kill")
            kill_an_api_process(servers[0])
        load.wait_acknowledged(2 * 10, "submissions before the whole server is killed")
        servers[0].process.send_signal(signal.SIGKILL)
        servers[0].process.wait()
        servers.append(start_server(tmp_path / "api-again", "--no-worker", **settings))
        processes.append(servers[-1].process)
        load.wait_acknowledged(2 * 10, "submissions to the new server")
    assert load.refused() <= {(503, str(UNAVAILABLE))}
    check(ledger, load, report_figures)
    for server in servers:
        assert "internal error" not in server.log()


def kill_an_api_process(server: RunningServer) -> None:
    """SIGKILL the newest API process of `serve --processes N`; uvicorn starts another."""
    started = server_processes(server)
    os.kill(started[-1], signal.SIGKILL)
    wait_for(lambda: not alive(started[-1]), 10, "the API process to die")
    wait_for(
        lambda: len(server_processes(server)) > len(started),
        30,
        "uvicorn to start another API process",
    )


def test_database_restart_under_load_loses_nothing_acknowledged(
    backend: Backend,
    database_url: str,
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
    report_figures: Callable[[Figures], None],
) -> None:
    """The API and the worker reach the database through a proxy, cut and restored: requests
    meanwhile get Magento's 503, and the worker leaves what it could not record to be done
    again."""
    if backend.name == "sqlite":
        pytest.skip("SQLite is a file in the process: there is no server to lose")
    with proxied_database(database_url) as (proxy, proxied):
        settings = service_settings(proxied)
        server = start_server(tmp_path / "api", "--no-worker", **settings)
        processes.append(server.process)
        processes.append(start_worker(tmp_path, "worker.log", settings, database_url))
        worker_log = tmp_path / "worker.log"
        ledger = Ledger(database_url, tmp_path / "runs.jsonl")
        with Load(ledger, lambda: server, server.admin_token()) as load:
            ledger.wait_until_processing()
            for _ in range(ROUNDS):
                load.wait_acknowledged(2 * 10, "submissions before the outage")
                proxy.cut()
                load.wait_failed(3, "submissions to fail during the outage")
                wait_for(
                    lambda: OUTAGE_STARTS in worker_log.read_text(),
                    60,
                    "the worker to notice the outage",
                )
                proxy.restore()
                load.wait_acknowledged(2 * 10, "submissions after the outage")
        check(ledger, load, report_figures)
        logged = worker_log.read_text()  # before the proxy goes with the database
        server.stop()
    assert load.refused() == {(503, str(UNAVAILABLE))}
    assert "internal error" not in server.log()
    # The worker tried again all along the outages, and said so once each, quietly.
    assert "Traceback" not in logged
    assert "[SQL:" not in logged and "[parameters:" not in logged
    assert logged.count(OUTAGE_STARTS) == logged.count(OUTAGE_ENDS) >= ROUNDS


def test_broker_restart_under_load_loses_nothing_acknowledged(
    database_url: str,
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
    report_figures: Callable[[Figures], None],
) -> None:
    """A RabbitMQ node of the test's own stopped and started again under load: submissions
    meanwhile are accepted into the outbox, and published once the broker is back."""
    if (reason := rabbitmq_unavailable()) is not None:
        pytest.skip(reason)
    with rabbit_node(tmp_path / "rabbitmq") as node:
        settings = service_settings(database_url) | {
            "QUEUE_URL": f"{node.url}?reconnect_interval=1"
        }
        server = start_server(tmp_path / "api", "--no-worker", **settings)
        processes.append(server.process)
        processes.append(start_worker(tmp_path, "worker.log", settings))
        ledger = Ledger(database_url, tmp_path / "runs.jsonl")
        with Load(ledger, lambda: server, server.admin_token()) as load:
            ledger.wait_until_processing()
            for _ in range(ROUNDS):
                load.wait_acknowledged(2 * 10, "submissions before the broker stops")
                node.stop()
                load.wait_acknowledged(2 * 10, "submissions while the broker is stopped")
                node.start()
                load.wait_acknowledged(2 * 10, "submissions after the broker is back")
        check(ledger, load, report_figures)
        logged = (tmp_path / "worker.log").read_text()  # before the node goes
        server.stop()
    assert load.refused() <= {(503, str(UNAVAILABLE))}  # SQLite busy past its timeout
    assert "internal error" not in server.log()
    # Leases are kept in the database: renewing them never depends on the broker.
    assert "cannot renew leases" not in logged
    # Each outage said once, quietly, when it started and when it ended.
    assert "Traceback" not in logged
    assert logged.count("RabbitMQ is unavailable (") == logged.count("RabbitMQ is available again")
    assert logged.count("RabbitMQ is unavailable (") >= ROUNDS


FULL = {"message": "The database is full. Try again later."}
MAX_PAGES = 2000


def fill(database: Path, pages: int) -> None:
    """Other data takes the SQLite database up to `pages` pages (written behind bulkops'
    back, as any other file fills a disk)."""
    with sqlite3.connect(database, timeout=30) as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS filler (data BLOB)")
        while connection.execute("PRAGMA page_count").fetchone()[0] < pages:
            connection.execute("INSERT INTO filler VALUES (zeroblob(65536))")
            connection.commit()


def free(database: Path) -> None:
    with sqlite3.connect(database, timeout=30) as connection:
        connection.execute("DELETE FROM filler")


def test_a_full_sqlite_database_refuses_submissions_with_507_and_recovers(
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
    report_figures: Callable[[Figures], None],
) -> None:
    """A size limit (`BULKOPS_SQLITE_MAX_PAGE_COUNT`) stands for the disk: filled by other
    data all but a few pages, then freed."""
    database = tmp_path / "bulkops.sqlite3"
    database_url = f"sqlite+aiosqlite:///{database}"
    settings = service_settings(database_url) | {"SQLITE_MAX_PAGE_COUNT": str(MAX_PAGES)}
    server = start_server(tmp_path / "api", "--no-worker", **settings)
    processes.append(server.process)
    processes.append(start_worker(tmp_path, "worker.log", settings))
    ledger = Ledger(database_url, tmp_path / "runs.jsonl")
    with Load(ledger, lambda: server, server.admin_token()) as load:
        ledger.wait_until_processing()
        for _ in range(ROUNDS):
            fill(database, MAX_PAGES - 40)
            load.wait_failed(3, "submissions to be refused for want of space")
            free(database)
            load.wait_acknowledged(2 * 10, "submissions once space is back")
    assert load.refused() == {(507, str(FULL))}
    assert not load.transport_errors
    check(ledger, load, report_figures)
    server.stop()
    assert "internal error" not in server.log()
