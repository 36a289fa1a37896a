"""The database server goes away under a running `bulkops serve` (a proxy between them is cut):
every request answers Magento's 503 body, none a 500, and once the server is back the API and
the in-process worker carry on by themselves, with nothing accepted lost."""

from __future__ import annotations

import logging
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from bulkops.store.database import Database, QuietResets
from tests.backends import Backend
from tests.proxy import proxied_database
from tests.servers import start_bulkops, start_server
from tests.test_submission import customer, wait_until_final
from tests.waiting import wait_for

UNAVAILABLE = {"message": "The database is unavailable. Try again later."}
SEARCH = "/rest/V1/bulk?searchCriteria[pageSize]=5"
SUBMIT = "/rest/default/async/bulk/V1/customers"


def test_outage_answers_503_and_recovers(
    backend: Backend, database_url: str, tmp_path: Path
) -> None:
    if backend.name == "sqlite":
        pytest.skip("SQLite is a file in the process: there is no server to lose")
    with proxied_database(database_url) as (proxy, proxied):
        server = start_server(tmp_path, DATABASE_URL=proxied, WORKER_POLL_SECONDS="0.1")
        try:
            with server.admin_client() as client:
                before = client.post(SUBMIT, json=[customer("before@example.com")])
                assert before.status_code == 202
                wait_until_final(client, before.json()["bulk_uuid"])

                assert httpx.get(f"{server.base_url}/health").json() == {"status": "ok"}
                proxy.cut()
                for method, path, body in [
                    ("GET", SEARCH, None),
                    ("POST", SUBMIT, [customer("during@example.com")]),
                    ("GET", f"/rest/V1/bulk/{before.json()['bulk_uuid']}/status", None),
                ]:
                    response = client.request(method, path, json=body)
                    assert response.status_code == 503, response.text
                    assert response.json() == UNAVAILABLE
                token = httpx.post(
                    f"{server.base_url}/rest/V1/integration/admin/token",
                    json={"username": server.admin_username, "password": server.admin_password},
                )
                assert (token.status_code, token.json()) == (503, UNAVAILABLE)
                health = httpx.get(f"{server.base_url}/health")
                assert (health.status_code, health.json()) == (503, UNAVAILABLE)
                time.sleep(1)  # the in-process worker meets the outage too

                proxy.restore()
                wait_for(lambda: client.get(SEARCH).status_code == 200, 30, "the API to recover")
                after = client.post(SUBMIT, json=[customer("after@example.com")])
                assert after.status_code == 202
                (done,) = wait_until_final(client, after.json()["bulk_uuid"])
                assert done["status"] == 1
                total = client.get(SEARCH).json()["total_count"]
                assert total == 2  # the 503'd submission left nothing behind
        finally:
            server.stop()
        assert "internal error" not in server.log()


def test_a_worker_started_while_the_database_is_away_waits_for_it(
    backend: Backend,
    database_url: str,
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    """It says so once, quietly, and starts when the database answers."""
    if backend.name == "sqlite":
        pytest.skip("SQLite is a file in the process: there is no server to lose")
    log = tmp_path / "worker.log"
    with proxied_database(database_url) as (proxy, proxied):
        proxy.cut()
        worker = start_bulkops(["worker"], tmp_path, log, {"DATABASE_URL": proxied})
        processes.append(worker)
        wait_for(
            lambda: "the database is unavailable (" in log.read_text() or worker.poll() is not None,
            60,
            "the worker to meet the outage",
        )
        assert worker.poll() is None, log.read_text()
        proxy.restore()
        wait_for(lambda: "worker started" in log.read_text(), 60, "the worker to start")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    logged = log.read_text()
    assert "Traceback" not in logged
    assert logged.count("the database is unavailable (") == 1
    assert logged.count("the database is available again") == 1


async def test_a_connection_lost_before_its_reset_is_logged_in_one_line(
    backend: Backend, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The pool rolls back a connection handed back to it; when the server is gone by then,
    SQLAlchemy logs the failure with its traceback. The connection is discarded and the
    outage is logged by whoever used the database: the line stays, its traceback goes."""
    if backend.name == "sqlite":
        pytest.skip("SQLite is a file in the process: there is no server to lose")
    if backend.name == "postgresql":
        pytest.skip("asyncpg's adapter sends no rollback where no transaction is open")
    with proxied_database(database_url) as (proxy, proxied):
        database = Database(proxied)
        try:
            with caplog.at_level(logging.ERROR):
                connection = await database.engine.connect()
                await connection.execute(text("SELECT 1"))
                await connection.commit()
                proxy.cut()
                await connection.close()  # the pool's rollback of it fails
        finally:
            await database.dispose()
    resets = [r for r in caplog.records if r.getMessage().startswith(QuietResets.MESSAGE)]
    assert resets, "the pool's reset did not fail"
    assert all(record.exc_info is None for record in resets)
    assert "Traceback" not in caplog.text
