"""How each store backend's pass went: passed, failed and skipped tests per backend at the end
of pytest's output (the test ids say it too: `[sqlite]`, `[postgresql-db]`, ...)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import pytest

from tests.backends import NAMES

PROPERTY = "backend"
# The tests without a `backend` parameter: they run once, whatever is selected.
NO_BACKEND = "not per backend"
# pytest's own categories; setup and teardown passes ("") count for nothing, as in its summary.
SHOWN = ("passed", "failed", "skipped")
IF_ANY = ("error", "xfailed", "xpassed")


def label(items: Sequence[pytest.Item]) -> None:
    """Each test run on a backend names it in its reports, which xdist's workers send back."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and PROPERTY in callspec.params:
            item.user_properties.append((PROPERTY, callspec.params[PROPERTY]))


def _backend_of(report: pytest.TestReport) -> str:
    for name, value in report.user_properties:
        if name == PROPERTY:
            return str(value)
    return NO_BACKEND


def tally(stats: dict[str, list[object]]) -> dict[str, Counter[str]]:
    """Outcomes per backend, from the terminal reporter's reports by category."""
    counts: dict[str, Counter[str]] = {}
    for category in (*SHOWN, *IF_ANY):
        for report in stats.get(category, []):
            if isinstance(report, pytest.TestReport):
                counts.setdefault(_backend_of(report), Counter())[category] += 1
    return counts


def write(terminalreporter: pytest.TerminalReporter) -> None:
    counts = tally(terminalreporter.stats)
    if not counts:
        return
    terminalreporter.write_sep("-", "per backend")
    for backend in (*NAMES, NO_BACKEND):
        outcomes = counts.get(backend)
        if outcomes is None:
            continue
        shown = [f"{outcomes[category]} {category}" for category in SHOWN]
        shown += [f"{outcomes[category]} {category}" for category in IF_ANY if outcomes[category]]
        terminalreporter.write_line(f"{backend}: {', '.join(shown)}")
