"""Fixtures: the store backend of each test (every one selected, as a parameter), a database
of the test's own on it, and real `bulkops serve` processes on that database."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bulkops.store.database import Database
from bulkops.store.migrate import upgrade
from tests.backends import Backend, selected, unavailable_reason
from tests.servers import RunningServer, start_server


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", selected(), indirect=True, scope="session")


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest) -> Backend:
    reason = unavailable_reason(request.param)
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return Backend(request.param)


@pytest.fixture
def database_url(backend: Backend, tmp_path: Path) -> Iterator[str]:
    """An empty database of this test's own (bulkops migrates it when it opens it)."""
    url = backend.create_database(tmp_path)
    yield url
    backend.drop_database(url)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """The test's database, migrated, through the store's own API."""
    database = Database(database_url)
    await upgrade(database)
    yield database
    await database.dispose()


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[RunningServer]:
    """A server of this test's own. Its periodic maintenance is off: tests insert bulks dated
    years ago, with topics no handler serves."""
    running = start_server(
        tmp_path / "server",
        DATABASE_URL=database_url,
        MAINTENANCE_INTERVAL_SECONDS="86400",
        BULK_LIFETIME_DAYS="0",
    )
    yield running
    running.stop()
