"""pytest's output ends with each backend's counts, also when xdist's workers run the tests."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

REPOSITORY = Path(__file__).resolve().parent.parent

CONFTEST = """
from tests.backend_summary import label, write

def pytest_collection_modifyitems(items):
    label(items)

def pytest_terminal_summary(terminalreporter):
    write(terminalreporter)
"""

TESTS = """
import pytest

@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def backend(request):
    if request.param == "mariadb":
        pytest.skip("mariadb is not running")
    return request.param

@pytest.mark.parametrize("value", [1, 2])
def test_compares(backend, value):
    assert backend == "sqlite" or value == 1

def test_fails_on_postgresql(backend):
    assert backend != "postgresql"

def test_without_a_backend():
    pass
"""


@pytest.mark.parametrize("workers", [[], ["-p", "xdist", "-n", "2"]], ids=["one process", "xdist"])
def test_each_backend_gets_its_counts(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, workers: list[str]
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPOSITORY))
    # Only the plugins needed: the installed ones take seconds to load in every process.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_backends=TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *workers)
    result.stdout.fnmatch_lines(
        [
            "*- per backend -*",
            "sqlite: 3 passed, 0 failed, 0 skipped",
            "postgresql: 1 passed, 2 failed, 0 skipped",
            "mariadb: 0 passed, 0 failed, 3 skipped",
            "not per backend: 1 passed, 0 failed, 0 skipped",
        ],
        consecutive=True,
    )
