"""Accepting a request's items: each one becomes an operation, open or rejected, and the bulk
with all its operations and their queue messages (and its idempotency key) is committed in one
transaction."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bulkops.auth.context import UserContext
from bulkops.errors import WebapiError
from bulkops.handlers.base import AsyncRoute, TopicStyle
from bulkops.metrics import instruments
from bulkops.services.data_hash import DataHasher
from bulkops.services.idempotency import KeyUse, RequestDigest
from bulkops.services.payloads import Payloads
from bulkops.services.php_json import php_json
from bulkops.services.signature import convert
from bulkops.status import OperationStatus, UserType
from bulkops.store.bulks import CallbackUrl, NewBulk, NewOperation, insert_bulk
from bulkops.store.database import Database
from bulkops.store.idempotency import find_key, insert_key
from bulkops.store.queue import enqueue_new_bulk
from bulkops.store.users import integration_webhook

_PAYLOAD_START = '{"entity_id":null,"entity_link":"","meta_information":'


def serialized_data(item: Any) -> str:
    """Magento's operation payload: the item's JSON inside `meta_information`, written as
    php_json({"entity_id": None, "entity_link": "", "meta_information": php_json(item)})
    would write it, without encoding the constant part for every item."""
    return _PAYLOAD_START + php_json(php_json(item)) + "}"


@dataclass(frozen=True, slots=True)
class ItemStatus:
    id: int
    data_hash: str | None
    error_message: str | None = None

    def as_json(self) -> dict[str, Any]:
        if self.error_message is None:
            return {"id": self.id, "data_hash": self.data_hash, "status": "accepted"}
        return {
            "id": self.id,
            "data_hash": None,
            "status": "rejected",
            "error_message": self.error_message,
            "error_code": 0,
        }


@dataclass(frozen=True, slots=True)
class Accepted:
    bulk_uuid: str
    items: Sequence[ItemStatus]

    def as_json(self) -> dict[str, Any]:
        """Magento's AsyncResponseInterface: `errors` is true when any item was rejected."""
        return {
            "bulk_uuid": self.bulk_uuid,
            "request_items": [item.as_json() for item in self.items],
            "errors": any(item.error_message is not None for item in self.items),
        }


def rejection(route: AsyncRoute, item: Any) -> WebapiError | None:
    """Why the route refuses the item, or None: its signature's conversion, then its
    validation (of the converted parameters, when there is a signature)."""
    if route.signature is not None:
        try:
            item = convert(route.signature, item)
        except WebapiError as error:
            return error
    return route.validate(item) if route.validate else None


def reason(error: WebapiError) -> str:
    """An error as a rejected item's message: rendered, each of several in turn."""
    return " ".join(map(str, error.errors)) if error.errors else str(error)


def _operation(
    route: AsyncRoute,
    topic: str,
    bulk_uuid: str,
    key: int,
    item: Any,
    data: str,
    hasher: DataHasher,
    payloads: Payloads,
) -> tuple[NewOperation, ItemStatus]:
    stored = payloads.stored(data)
    error = rejection(route, item)
    if error is None:
        order_group = route.order_group(bulk_uuid, item)
        accepted = NewOperation(key, topic, stored, order_group=order_group)
        # The hash is of the data itself, as Magento's, whatever is stored.
        return accepted, ItemStatus(key, hasher.hash(data))
    # Rejected items are stored too (status 5), so that a search finds them and why.
    message = reason(error)
    rejected = NewOperation(
        key, topic, stored, OperationStatus.REJECTED, result_message=message, error_code=0
    )
    return rejected, ItemStatus(key, None, message)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A request's bulk, ready to be committed, and the answer that tells of it."""

    bulk: NewBulk
    accepted: Accepted


def prepare(
    route: AsyncRoute,
    items: Sequence[Any],
    user: UserContext,
    topic_style: TopicStyle,
    store_code: str,
    hasher: DataHasher,
    payloads: Payloads,
    digest: RequestDigest | None = None,
    retention: timedelta | None = None,
    callback_url: str | None = None,
) -> Prepared:
    """Every item as an operation of `route`, open or rejected (see `prepare_routed`)."""
    return prepare_routed(
        [(route, item) for item in items],
        f"Topic {route.topic_name(topic_style)}",
        user,
        topic_style,
        store_code,
        hasher,
        payloads,
        digest,
        retention,
        callback_url,
    )


def prepare_routed(
    routed: Sequence[tuple[AsyncRoute, Any]],
    description: str,
    user: UserContext,
    topic_style: TopicStyle,
    store_code: str,
    hasher: DataHasher,
    payloads: Payloads,
    digest: RequestDigest | None = None,
    retention: timedelta | None = None,
    callback_url: str | None = None,
) -> Prepared:
    """Every item as an operation of its route, open or rejected; `digest` is given each
    item's data; `retention`: how long the bulk is kept, if not as long as the
    installation's lifetime setting says; `callback_url`: where its completion is announced
    (checked already)."""
    bulk_uuid = str(uuid.uuid4())
    operations, statuses = [], []
    for key, (route, item) in enumerate(routed):
        data = serialized_data(item)
        if digest is not None:
            digest.add(data)
        topic = route.topic_name(topic_style)
        new_operation, status = _operation(
            route, topic, bulk_uuid, key, item, data, hasher, payloads
        )
        operations.append(new_operation)
        statuses.append(status)
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    new_bulk = NewBulk(
        uuid=bulk_uuid,
        description=description,
        user_id=user.user_id,
        user_type=int(user.user_type),
        start_time=now,
        operations=operations,
        store_code=store_code,
        expires_at=None if retention is None else now + retention,
        callback_url=_callback(callback_url, user),
    )
    return Prepared(new_bulk, Accepted(bulk_uuid=bulk_uuid, items=statuses))


def _callback(url: str | None, user: UserContext) -> CallbackUrl | None:
    """The submission's callback URL; without one, an integration's own, read when the bulk
    is written (no query of its own)."""
    if url is None and user.user_type == UserType.INTEGRATION and user.user_id is not None:
        return integration_webhook(user.user_id)
    return url


@dataclass(frozen=True, slots=True)
class Submitted:
    """The 202 body, and whether it is the answer to an earlier request with the same key
    (nothing was stored)."""

    body: dict[str, Any]
    replayed: bool = False


WithinSubmission = Callable[[AsyncConnection], Awaitable[None]]
"""More to write in a submission's transaction, once its bulk is written; raising rolls back
the whole."""


async def submit(
    database: Database,
    prepared: Prepared,
    key: KeyUse | None = None,
    within: WithinSubmission | None = None,
) -> Submitted:
    """Commit the bulk with all its operations and their queue messages in one transaction,
    with whatever `within` writes, and with the key, if any: a key already used for the
    request answers as the first time instead, even when that request commits while this
    one runs."""
    if key is not None:
        async with database.read() as connection:
            found = await find_key(connection, key.scope, key.used_after)
        if found is not None:
            return Submitted(key.replay(found), replayed=True)
    body = prepared.accepted.as_json()
    try:
        async with database.write() as connection:
            await _store(connection, prepared.bulk, body, key)
            if within is not None:
                await within(connection)
    except IntegrityError:
        if key is None:
            raise
        # The key's row was written by a request that committed first.
        async with database.read() as connection:
            found = await find_key(connection, key.scope, key.used_after)
        if found is None:
            raise
        return Submitted(key.replay(found), replayed=True)
    _count_accepted(prepared.bulk)
    return Submitted(body)


def _count_accepted(new_bulk: NewBulk) -> None:
    """The operations that went in open, by topic, once committed (rejected items are final)."""
    opened = Counter(
        operation.topic_name
        for operation in new_bulk.operations
        if operation.status == OperationStatus.OPEN
    )
    for topic, count in opened.items():
        instruments.accepted.labels(topic).inc(count)


async def _store(
    connection: AsyncConnection, new_bulk: NewBulk, body: dict[str, Any], key: KeyUse | None
) -> None:
    await insert_bulk(connection, new_bulk)
    await enqueue_new_bulk(connection, new_bulk.uuid, new_bulk.start_time)
    if key is not None:
        await insert_key(
            connection,
            key.scope,
            key.used_after,
            key.request_hash,
            new_bulk.uuid,
            orjson.dumps(body).decode(),
            new_bulk.start_time,
        )
