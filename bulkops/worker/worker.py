"""The worker: leases messages, runs their operations' handlers, records the results.

Results are written several per transaction (whatever finished while the previous write was
running), each with its message's removal, so a result is either committed with its message
gone or not at all (with a broker: acknowledged only after the commit): after a crash the
message comes back when its lease runs out (its channel closes), and its operation is
processed again only if its result was never committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from bulkops.handlers.registry import HandlerRegistry
from bulkops.queue import Delivery, Requeue, Transport, create_transport
from bulkops.services.payloads import Payloads
from bulkops.settings import Settings
from bulkops.store.database import Database, is_unavailable
from bulkops.store.lifecycle import (
    Result,
    record_results,
    start_operations,
    uncount_deliveries,
    utc_now,
)
from bulkops.store.rows import AnyRow
from bulkops.worker.execution import Executor, Outcome, Retry, abandoned
from bulkops.worker.maintenance import Maintenance
from bulkops.worker.webhooks import WebhookSender

log = logging.getLogger("bulkops.worker")

DEFAULT_GRACE_SECONDS = 20.0
"""How long a stopping worker lets operations in progress finish before it gives them back."""


class Worker:
    def __init__(
        self,
        database: Database,
        transport: Transport,
        executor: Executor,
        *,
        concurrency: int,
        batch_size: int,
        poll_seconds: float,
        lease_seconds: float,
        max_deliveries: int,
        maintenance: Maintenance | None = None,
        webhooks: WebhookSender | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.database = database
        self.transport = transport
        self.executor = executor
        self.batch_size = max(batch_size, 1)
        self.poll_seconds = poll_seconds
        self.lease_seconds = lease_seconds
        self.max_deliveries = max_deliveries
        self.maintenance = maintenance
        self.webhooks = webhooks
        self.clock = clock
        # Enough leased work to keep every handler slot busy while the next batch is being
        # leased. Work is counted in runs: an operation, or an order group's operations that
        # run one after the other (they keep only one slot busy at a time).
        self.capacity = max(self.batch_size, 2 * concurrency)
        self._slots = asyncio.Semaphore(concurrency)
        self._held: dict[int, Delivery] = {}
        """Leased and not yet settled, by message id."""
        self._in_hand: dict[int, list[Delivery]] = {}
        """Operations handed to a handler (or with an outcome) whose outcome is not recorded
        yet, by id, each with the further deliveries of it received meanwhile: those wait for
        the outcome, they never run the handler a second time."""
        self._processing: set[asyncio.Task[None]] = set()
        """Runs in progress: an operation, or an order group's operations one after another."""
        self._outcomes: list[tuple[Delivery, Outcome | None]] = []
        """Waiting to be written; None: the operation was final already, drop the message."""
        self._outcome_added = asyncio.Event()
        self._room = asyncio.Event()
        self._stopping = asyncio.Event()
        self._draining = False
        self._loops: list[asyncio.Task[None]] = []

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        database: Database,
        routes: HandlerRegistry,
        concurrency: int | None = None,
        transport: Transport | None = None,
    ) -> Worker:
        """`transport`: one the process shares (the API's); else the configured one."""
        transport = transport or create_transport(settings, database)
        return cls(
            database,
            transport,
            Executor(routes, settings.retry_backoff_seconds, Payloads.from_settings(settings)),
            concurrency=concurrency or settings.worker_concurrency,
            batch_size=settings.worker_batch_size,
            poll_seconds=settings.worker_poll_seconds,
            lease_seconds=settings.lease_seconds,
            max_deliveries=settings.max_deliveries,
            maintenance=Maintenance.from_settings(settings, database, transport),
            webhooks=WebhookSender.from_settings(settings, database),
        )

    async def start(self) -> None:
        """Relay unpublished operations first, then consume in the background."""
        loops = [self._consume(), self._write_outcomes(), self._renew_leases()]
        if self.maintenance is not None:
            try:
                await self.maintenance.relay()
            except Exception as error:
                # Not a reason to stay down: the relay runs again every interval.
                self._failed(error, "relay failed")
            loops.append(self.maintenance.run_forever())
        if self.webhooks is not None:
            loops.append(self.webhooks.run_forever())
        self._loops = [asyncio.create_task(loop) for loop in loops]
        for task in self._loops:
            task.add_done_callback(self._loop_ended)

    async def stop(self, grace_seconds: float = DEFAULT_GRACE_SECONDS) -> None:
        """Lease nothing more; let handlers in progress finish within the grace period (then
        cancel them), record every result, and give back every message not processed."""
        self._stopping.set()
        self._room.set()
        consume, writer, *others = self._loops
        for task in others:
            task.cancel()
        await asyncio.gather(consume, *others, return_exceptions=True)
        if self._processing:
            _, late = await asyncio.wait(list(self._processing), timeout=grace_seconds)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        self._draining = True
        self._outcome_added.set()
        try:
            await asyncio.wait_for(writer, timeout=max(grace_seconds, self.poll_seconds))
        except TimeoutError:
            log.error("results could not be written on stop; their messages will come back")
        unprocessed = list(self._held.values())
        await self._uncount(unprocessed)
        try:
            await self.transport.release(unprocessed)
        except Exception:
            log.exception(
                "could not give back %d messages; their leases will run out", len(unprocessed)
            )
        await self.transport.close()

    def _loop_ended(self, task: asyncio.Task[None]) -> None:
        """The loops run until the worker stops: one that ends before leaves the worker unable
        to take, record or keep its messages, which must not go unnoticed."""
        if self._stopping.is_set():
            return
        ended = "was cancelled" if task.cancelled() else f"failed: {task.exception()!r}"
        log.critical("worker loop %s %s; the worker cannot go on", task.get_coro(), ended)

    def force_stop(self) -> None:
        """Cancel the handlers in progress now (a second signal during a graceful stop)."""
        for task in self._processing:
            task.cancel()

    async def _consume(self) -> None:
        while not self._stopping.is_set():
            if len(self._processing) > self.capacity // 2:
                self._room.clear()
                await self._room.wait()
                continue
            try:
                room = self.capacity - len(self._processing)
                taken = await self._take(min(self.batch_size, room))
                self.database.outage.ended()
            except Exception as error:
                self._failed(error, "cannot take messages")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.poll_seconds)
                continue
            if not taken:
                await self._idle()

    async def _idle(self) -> None:
        """Until the transport may have messages (a table: `poll_seconds`), or stop."""
        waits = [
            asyncio.ensure_future(self._stopping.wait()),
            asyncio.ensure_future(self.transport.wait(self.poll_seconds)),
        ]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()

    async def _take(self, limit: int) -> int:
        """Lease messages and mark their operations started, in one transaction, then hand
        each operation to a handler; a message whose operation is final already (a duplicate
        delivery) is dropped without running anything. Answers how many were leased."""
        deliveries: Sequence[Delivery] = []
        try:
            async with self.database.write() as connection:
                deliveries = await self.transport.receive(connection, limit, self._in_hand)
                if not deliveries:
                    return 0
                operation_ids = [delivery.operation_id for delivery in deliveries]
                rows = await start_operations(connection, operation_ids, self.clock())
        except Exception:
            with contextlib.suppress(Exception):
                await self.transport.release(deliveries)
            raise
        # Told apart only now, with no pause before they are registered: a result recorded
        # while this transaction ran lets its operation's next delivery (a retry) run.
        fresh, again = _split_repeats(deliveries, self._in_hand)
        for delivery in fresh:
            self._in_hand[delivery.operation_id] = []
        for delivery in again:
            # A broker's restart, or the relay, delivered it again while it is in hand here.
            log.info(
                "operation %s delivered again while in hand: settled with its first delivery",
                delivery.operation_id,
            )
            self._held[delivery.message_id] = delivery
            self._in_hand[delivery.operation_id].append(delivery)
        by_id = {row.id: row for row in rows}
        chains: dict[object, list[tuple[Delivery, AnyRow]]] = {}
        for delivery in fresh:
            self._held[delivery.message_id] = delivery
            row = by_id.get(delivery.operation_id)
            if row is None:
                self._add_outcome(delivery, None)
            elif row.deliveries > self.max_deliveries:
                # Every earlier delivery ended without an outcome: its handler is taken to
                # kill the worker (or hang it until its lease ran out).
                log.error(
                    "operation %s (%s) abandoned after %d deliveries",
                    row.id,
                    row.topic_name,
                    row.deliveries - 1,
                )
                self._add_outcome(delivery, abandoned(row.id, row.deliveries - 1))
            else:
                # An operation of an order group runs after the group's earlier ones, in
                # this worker; one that waits for no other runs on its own.
                chain = row.order_group if row.order_group is not None else delivery
                chains.setdefault(chain, []).append((delivery, row))
        for chain in chains.values():
            chain.sort(key=lambda pair: pair[1].id)
            task = asyncio.create_task(self._process(chain))
            self._processing.add(task)
            task.add_done_callback(self._finished)
        return len(deliveries)

    async def _process(self, chain: list[tuple[Delivery, AnyRow]]) -> None:
        """Run the operations one after the other. One to be retried later holds back those
        behind it: they are given back, to wait behind it in the queue."""
        for position, (delivery, operation) in enumerate(chain):
            async with self._slots:
                if self._stopping.is_set():
                    return  # never started: given back on stop
                outcome = await self.executor.run(operation, delivery.attempts)
            self._add_outcome(delivery, outcome)
            if isinstance(outcome, Retry) and position + 1 < len(chain):
                behind = [held for held, _ in chain[position + 1 :]]
                for held in list(behind):
                    behind.extend(self._in_hand.pop(held.operation_id, []))
                await self._give_back(behind)
                return

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._processing.discard(task)
        self._room.set()

    async def _give_back(self, deliveries: list[Delivery]) -> None:
        await self._uncount(deliveries)
        try:
            await self.transport.release(deliveries)
        except Exception:
            log.exception(
                "could not give back %d messages; their leases will run out", len(deliveries)
            )
            return
        for delivery in deliveries:
            self._held.pop(delivery.message_id, None)
        self._room.set()

    async def _uncount(self, deliveries: Sequence[Delivery]) -> None:
        """Deliveries given back unprocessed do not count towards abandoning their operations;
        if this cannot be written, they do (a few deliveries of headroom lost, nothing else)."""
        if not deliveries:
            return
        try:
            async with self.database.write() as connection:
                await uncount_deliveries(connection, [d.operation_id for d in deliveries])
        except Exception as error:
            self._failed(error, f"cannot uncount {len(deliveries)} deliveries given back")

    def _failed(self, error: Exception, doing: str) -> None:
        """Log a failure the loops try again after: quietly if the database is away."""
        if is_unavailable(error):
            self.database.outage.failed(error, doing)
        else:
            log.error("%s", doing, exc_info=error)

    def _add_outcome(self, delivery: Delivery, outcome: Outcome | None) -> None:
        self._outcomes.append((delivery, outcome))
        self._outcome_added.set()

    async def _write_outcomes(self) -> None:
        """Write whatever outcomes are waiting, in one transaction, until drained on stop."""
        while True:
            if not self._outcomes:
                if self._draining:
                    return
                self._outcome_added.clear()
                await self._outcome_added.wait()
                continue
            batch, self._outcomes = self._outcomes, []
            try:
                await self._write(batch)
                self.database.outage.ended()
            except Exception as error:
                self._failed(error, f"cannot record {len(batch)} results")
                self._outcomes[:0] = batch
                await asyncio.sleep(self.poll_seconds)

    async def _write(self, batch: list[tuple[Delivery, Outcome | None]]) -> None:
        results = [outcome for _, outcome in batch if isinstance(outcome, Result)]
        repeats = {
            delivery.operation_id: list(self._in_hand.get(delivery.operation_id, []))
            for delivery, _ in batch
        }
        # Deliveries received again are settled with the first: finished with once their
        # operation is final; dropped if it is to be retried (its retry has its own message).
        done = [
            settled
            for delivery, outcome in batch
            if not isinstance(outcome, Retry)
            for settled in (delivery, *repeats[delivery.operation_id])
        ]
        dropped = [
            repeat
            for delivery, outcome in batch
            if isinstance(outcome, Retry)
            for repeat in repeats[delivery.operation_id]
        ]
        requeued = [
            Requeue(
                delivery,
                outcome.available_at,
                delivery.attempts if outcome.counts_as_attempt else delivery.attempts - 1,
            )
            for delivery, outcome in batch
            if isinstance(outcome, Retry)
        ]
        async with self.database.write() as connection:
            await record_results(connection, results, self.clock())
            # A delivery to be made again ended with an outcome: its worker did not die.
            await uncount_deliveries(connection, [r.delivery.operation_id for r in requeued])
            await uncount_deliveries(connection, [d.operation_id for d in dropped])
            await self.transport.settle(connection, done, requeued)
        # No longer in hand from the commit on, before anything else can be received.
        late = {
            delivery.operation_id: self._in_hand.pop(delivery.operation_id, [])[
                len(repeats[delivery.operation_id]) :
            ]
            for delivery, _ in batch
        }
        await self.transport.confirm(done, requeued)
        await self.transport.drop(dropped)
        for delivery in [*done, *dropped, *(requeue.delivery for requeue in requeued)]:
            # A message leased again after its lease ran out is in a batch twice.
            self._held.pop(delivery.message_id, None)
        for delivery, outcome in batch:
            received_meanwhile = late.pop(delivery.operation_id, [])
            if isinstance(outcome, Retry):
                # Perhaps the retry's own delivery: given back rather than dropped.
                await self._give_back(received_meanwhile)
            else:
                for repeat in received_meanwhile:  # its operation is final now
                    self._add_outcome(repeat, None)
        self._room.set()

    async def _renew_leases(self) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            held = list(self._held.values())
            try:
                kept = await self.transport.extend(held)
            except Exception as error:
                self._failed(error, "cannot renew leases")
                continue
            # Messages settled meanwhile are not lost leases.
            still_held = sum(delivery.message_id in self._held for delivery in held)
            if kept < still_held:
                log.warning("%d leases ran out before they were renewed", still_held - kept)


def _split_repeats(
    deliveries: Sequence[Delivery], in_hand: Mapping[int, object]
) -> tuple[list[Delivery], list[Delivery]]:
    """The deliveries of operations not in hand (each operation's first), and the others."""
    fresh: list[Delivery] = []
    again: list[Delivery] = []
    seen: set[int] = set()
    for delivery in deliveries:
        repeated = delivery.operation_id in in_hand or delivery.operation_id in seen
        (again if repeated else fresh).append(delivery)
        seen.add(delivery.operation_id)
    return fresh, again
