"""Fixtures: the store backend of each test (every one selected, as a parameter), a database
of the test's own on it, and real `bulkops serve` processes on that database."""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from bulkops.store.database import Database
from bulkops.store.migrate import upgrade
from tests import backend_summary, brokers
from tests.backends import Backend, selected, unavailable_reason
from tests.brokers import Broker
from tests.faults import Figures
from tests.fuzzing import Tally
from tests.servers import WITHOUT_RATE_LIMITS, RunningServer, start_server

# The same for apps built in the tests' own process.
for _name, _value in WITHOUT_RATE_LIMITS.items():
    os.environ.setdefault(f"BULKOPS_{_name}", _value)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", selected(), indirect=True, scope="session")


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> Iterator[None]:
    """For xdist's `loadgroup`: a module's tests on one backend run in one process (they
    share the module's servers), the same module on other backends in others; groups marked
    `slow` are handed out first, so that the run does not end waiting on one of them. Each
    test's reports name its backend (tests/backend_summary.py)."""
    backend_summary.label(items)
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("backend") if callspec else None
        # Not ending in `]`: xdist takes such a suffix for a parameter, not a group.
        group = item.nodeid.split("::")[0] + (f":{backend}" if backend else "")
        item.add_marker(pytest.mark.xdist_group(group))
    yield
    # After pytest's own ordering (by fixture), which keeps each group's tests together.
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def require(unavailable: str | None) -> None:
    """A server the test needs is missing: skip, but fail in CI, where every one must run."""
    if unavailable is not None:
        if os.environ.get("CI"):
            pytest.fail(unavailable)
        pytest.skip(unavailable)


FAULT_FIGURES = "fault figures"


@pytest.fixture
def report_figures(request: pytest.FixtureRequest) -> Callable[[Figures], None]:
    """Keeps a fault test's figures for the end of the run's output (and its JUnit XML)."""

    def report(figures: Figures) -> None:
        request.node.user_properties.append((FAULT_FIGURES, str(figures)))

    return report


def _report_fault_figures(terminalreporter: pytest.TerminalReporter) -> None:
    lines = [
        f"{report.nodeid}: {value}"
        for reports in terminalreporter.stats.values()
        for report in reports
        if isinstance(report, pytest.TestReport) and report.when == "call"
        for name, value in report.user_properties
        if name == FAULT_FIGURES
    ]
    if lines:
        terminalreporter.write_sep("-", "faults: what became of the acknowledged operations")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest) -> Backend:
    require(unavailable_reason(request.param))
    return Backend(request.param)


@pytest.fixture
def database_url(backend: Backend, tmp_path: Path) -> Iterator[str]:
    """An empty database of this test's own (bulkops migrates it when it opens it)."""
    url = backend.create_database(tmp_path)
    yield url
    backend.drop_database(url)


@pytest.fixture
def broker() -> Iterator[Broker]:
    """An exchange and a queue of this test's own on the local RabbitMQ, behind a proxy of
    its own."""
    require(brokers.unavailable_reason())
    with brokers.proxied_broker() as created:
        yield created


@pytest.fixture(params=["db", "amqp"])
def queue_settings(request: pytest.FixtureRequest) -> dict[str, str]:
    """The transport of the test (every one, as a parameter), as BULKOPS_* settings."""
    if request.param == "db":
        return {"QUEUE_URL": "db"}
    return request.getfixturevalue("broker").settings()


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """The test's database, migrated, through the store's own API."""
    database = Database(database_url)
    await upgrade(database)
    yield database
    await database.dispose()


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes the test starts; whatever is still running at the end is killed."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture
def server_settings() -> dict[str, str]:
    """BULKOPS_* settings (without the prefix) of the `server` fixture; a module overrides it."""
    return {}


@pytest.fixture
def server(
    database_url: str, tmp_path: Path, server_settings: dict[str, str]
) -> Iterator[RunningServer]:
    """A server of this test's own. Its periodic maintenance is off: tests insert bulks dated
    years ago, with topics no handler serves."""
    running = start_server(
        tmp_path / "server",
        DATABASE_URL=database_url,
        MAINTENANCE_INTERVAL_SECONDS="86400",
        BULK_LIFETIME_DAYS="0",
        **server_settings,
    )
    yield running
    running.stop()


@pytest.fixture
def idle_server(
    database_url: str,
    tmp_path: Path,
    queue_settings: dict[str, str],
    server_settings: dict[str, str],
) -> Iterator[RunningServer]:
    """A server that processes nothing: its operations stay open until the test starts a
    worker."""
    running = start_server(
        tmp_path / "server",
        "--no-worker",
        DATABASE_URL=database_url,
        **queue_settings,
        **server_settings,
    )
    yield running
    running.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    _report_fault_figures(terminalreporter)
    for line in Tally.lines():
        terminalreporter.write_line(line)
    backend_summary.write(terminalreporter)
