"""Quiet logs while the database or the broker is away: one warning when the outage starts,
one when it ends, and a reminder at most every `REMINDER_SECONDS` in between, however often
the work is tried again meanwhile. One line each, the driver's own message: no traceback and
no statement or bound values (they can hold payloads)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sqlalchemy.exc import DBAPIError

REMINDER_SECONDS = 60.0


def driver_message(error: BaseException) -> str:
    """The driver's message, first line only: a DBAPIError's text would add the statement
    and its parameters."""
    cause = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    lines = str(cause).strip().splitlines()
    return lines[0] if lines else type(cause).__name__


class Outage:
    """The state of one dependency (`what`: "the database", "RabbitMQ") as its users see it."""

    def __init__(
        self,
        what: str,
        logger: logging.Logger,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.logger = logger
        self.clock = clock
        self._since: float | None = None
        self._reminded = 0.0

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    def failed(self, error: BaseException, doing: str) -> None:
        """An attempt at `doing` met the outage (`error`); it will be tried again."""
        now = self.clock()
        if self._since is None:
            self._since = self._reminded = now
            self.logger.warning(
                "%s is unavailable (%s: %s); retrying quietly",
                self.what,
                doing,
                driver_message(error),
            )
        elif now - self._reminded >= REMINDER_SECONDS:
            self._reminded = now
            self.logger.warning(
                "%s still unavailable after %.0f s (%s: %s)",
                self.what,
                now - self._since,
                doing,
                driver_message(error),
            )

    def ended(self) -> None:
        """An attempt succeeded."""
        if self._since is not None:
            self.logger.warning(
                "%s is available again after %.0f s", self.what, self.clock() - self._since
            )
            self._since = None
