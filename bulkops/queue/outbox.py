"""The queue table as a transactional outbox: rows committed with their operations (or with a
retry's delay) are published to the broker, and deleted once the broker confirmed them.

A row is claimed before it is published (leased for `CLAIM`, as workers lease messages under
the `db` transport), so that several processes relaying at once do not publish it twice; a
process that dies between publishing and deleting leaves its claim to run out, and the row is
published again (a duplicate, which the worker drops: its operation is final by then).

The confirmation can come after the message was delivered, and its operation already
retried: the retry's row replaced the claimed one, and deleting only rows still claimed keeps
it.

A row of an operation in an order group is kept until its operation is final, due again only
after `republish_after` (pushed back by the worker that holds its message): as the head of its
group it holds back the operations behind it, and if its message is lost in the broker it is
published again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from bulkops.queue.broker import Broker
from bulkops.queue.envelope import Envelope
from bulkops.store import queue
from bulkops.store.database import Database
from bulkops.store.lifecycle import utc_now
from bulkops.store.rows import AnyRow

log = logging.getLogger("bulkops.queue")

BATCH = 500
"""Rows claimed, published and deleted at a time."""

CLAIM = timedelta(seconds=120)
"""Longer than publishing a batch can take (each publication times out before it)."""


class NotPublishedError(Exception):
    """Some rows were not taken by the broker; they stay in the outbox."""


class Outbox:
    def __init__(
        self,
        database: Database,
        broker: Broker,
        owner: str,
        republish_after: timedelta,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.database = database
        self.broker = broker
        self.owner = owner
        self.republish_after = republish_after
        self.clock = clock

    async def publish(self) -> int:
        """Publish every row that is due, a batch at a time; answers how many. Raises
        NotPublishedError once a batch was not all confirmed (the rest waits for next time)."""
        published = 0
        while True:
            now = self.clock()
            async with self.database.write() as connection:
                rows = await queue.lease_messages(connection, self.owner, BATCH, now, now + CLAIM)
            if not rows:
                return published
            confirmed, failures = await self._publish(rows)
            taken = set(confirmed)
            failed = [row.id for row in rows if row.id not in taken]
            async with self.database.write() as connection:
                await queue.settle_published(
                    connection, self.owner, confirmed, self.clock() + self.republish_after
                )
                # Available again at once; undoing the claim leaves `attempts` as it was.
                await queue.release_messages(connection, self.owner, failed, self.clock())
            published += len(confirmed)
            if failures:
                raise NotPublishedError(
                    f"{len(failures)} of {len(rows)} messages not confirmed: {failures[0]!r}"
                )

    async def _publish(self, rows: Sequence[AnyRow]) -> tuple[list[int], list[BaseException]]:
        outcomes = await asyncio.gather(
            *(
                self.broker.publish(
                    Envelope(row.operation_id, row.topic_name, row.attempts, row.order_group),
                    str(row.id),
                )
                for row in rows
            ),
            return_exceptions=True,
        )
        confirmed = [row.id for row, outcome in zip(rows, outcomes, strict=True) if outcome is None]
        failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        return confirmed, failures

    async def recover_lost(self, quiet_for: timedelta) -> int:
        """Put back into the outbox the open operations that may have lost their message (see
        `AmqpTransport.relay`); answers how many. The caller publishes them."""
        cutoff = self.clock() - quiet_for
        recovered, after_id = 0, 0
        while True:
            async with self.database.read() as connection:
                ids = await queue.unstarted_operations_lacking_messages(
                    connection, after_id, BATCH, cutoff
                )
            if not ids:
                return recovered
            async with self.database.write() as connection:
                recovered += await queue.enqueue_operations(connection, ids, self.clock())
            after_id = ids[-1]
