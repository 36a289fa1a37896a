from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import RunningServer, start_server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server for the session, on its own SQLite database. Its periodic maintenance is
    off: tests insert bulks dated years ago, with topics no handler serves."""
    running = start_server(
        tmp_path_factory.mktemp("server"),
        MAINTENANCE_INTERVAL_SECONDS="86400",
        BULK_LIFETIME_DAYS="0",
    )
    yield running
    running.stop()


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[RunningServer]:
    """A server of this test's own, for tests that change global state (locks, users)."""
    running = start_server(tmp_path / "server")
    yield running
    running.stop()
