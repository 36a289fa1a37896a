"""The queue's order groups on every store backend, through the `db` transport with its
clock set by the test: only a group's head is leased, the messages behind it come only with
it, a dead worker's expired leases do not let them out of order, given-back messages wait
behind their head again, and the next one is due once the head is final."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bulkops.queue import DbTransport, Delivery
from bulkops.services.submission import serialized_data
from bulkops.status import OperationStatus
from bulkops.store.bulks import NewBulk, NewOperation, insert_bulk
from bulkops.store.database import Database
from bulkops.store.lifecycle import Result, record_results, utc_now
from bulkops.store.queue import BLOCKED, enqueue_new_bulk
from bulkops.store.tables import queue_message

TOPIC = "async.tests.api.thingsinterface.save.post"
LEASE = 30
GROUP = 12345
INDEPENDENT_BULK = "b0000000-0000-4000-8000-000000000002"


async def add_bulk(database: Database, uuid: str, groups: list[int | None]) -> None:
    now = utc_now()
    new_bulk = NewBulk(
        uuid=uuid,
        description=f"Topic {TOPIC}",
        user_id=1,
        user_type=2,
        start_time=now,
        operations=[
            NewOperation(key, TOPIC, serialized_data({"n": key}), order_group=group)
            for key, group in enumerate(groups)
        ],
    )
    async with database.write() as connection:
        await insert_bulk(connection, new_bulk)
        await enqueue_new_bulk(connection, uuid, now)


def transport(database: Database, minutes_later: int = 0) -> DbTransport:
    at = utc_now() + timedelta(minutes=minutes_later)
    return DbTransport(database, lease_seconds=LEASE, clock=lambda: at)


async def receive(database: Database, worker: DbTransport, limit: int) -> list[Delivery]:
    async with database.write() as connection:
        return list(await worker.receive(connection, limit))


def keys(deliveries: list[Delivery], first_id: int) -> list[int]:
    return [delivery.operation_id - first_id for delivery in deliveries]


async def test_only_a_groups_head_is_leased_and_the_rest_follow_it(database: Database) -> None:
    await add_bulk(database, "b0000000-0000-4000-8000-000000000001", [GROUP] * 5)
    await add_bulk(database, INDEPENDENT_BULK, [None] * 2)
    async with database.read() as connection:
        waiting = (
            await connection.execute(
                select(queue_message.c.operation_id, queue_message.c.available_at).order_by(
                    queue_message.c.operation_id
                )
            )
        ).all()
    first = waiting[0].operation_id
    # Behind the head, the group's messages wait; operations of no group never do.
    assert [row.available_at == BLOCKED for row in waiting] == [False, *[True] * 4, False, False]

    # One worker takes up to 3 heads (the group's, the independent ones) and up to as many
    # messages behind them, in order.
    one = transport(database)
    taken = await receive(database, one, 3)
    assert sorted(keys(taken, first)) == [0, 1, 2, 3, 5, 6]
    # Another worker finds nothing of the group: the rest waits behind a head it does not hold.
    assert await receive(database, transport(database), 10) == []

    # Its lease on the head is renewed, not yet on the three behind it (they ran out): another
    # worker still takes none of them, only the independent ones whose leases ran out.
    five_later = utc_now() + timedelta(minutes=5)
    one_later = DbTransport(
        database, lease_seconds=LEASE, owner=one.owner, clock=lambda: five_later
    )
    assert await one_later.extend(taken[:1]) == 1
    other = transport(database, minutes_later=5)
    assert sorted(keys(await receive(database, other, 10), first)) == [5, 6]

    # The first worker dies: once all its leases ran out, the next worker takes the head
    # again, with every message behind it.
    later = transport(database, minutes_later=10)
    retaken = await receive(database, later, 10)
    assert sorted(keys(retaken, first)) == [0, 1, 2, 3, 4, 5, 6]
    retaken.sort(key=lambda delivery: delivery.operation_id)

    # Given back unprocessed (a retry holds them back, or a stop): the head is due, the others
    # wait behind it again.
    await later.release(retaken[1:5])
    await later.release(retaken[:1])
    taken_again = await receive(database, transport(database, minutes_later=10), 1)
    assert keys(taken_again, first) == [0, 1]

    # Those are final: the next one is due, for any worker (with those behind it).
    async with database.write() as connection:
        await record_results(
            connection,
            [Result(d.operation_id, OperationStatus.COMPLETE, "done") for d in taken_again],
            utc_now(),
        )
        await later.settle(connection, taken_again, [])
    following = await receive(database, transport(database, minutes_later=10), 1)
    assert keys(following, first) == [2, 3]
