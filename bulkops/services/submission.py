"""Accepting a request's items: each one becomes an operation, open or rejected, and the bulk
with all its operations and their queue messages is committed in one transaction."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bulkops.auth.context import UserContext
from bulkops.handlers.base import AsyncRoute, TopicStyle
from bulkops.services.data_hash import DataHasher
from bulkops.status import OperationStatus
from bulkops.store.bulks import NewBulk, NewOperation, insert_bulk
from bulkops.store.database import Database
from bulkops.store.queue import enqueue_new_bulk


def php_json(value: Any) -> str:
    """JSON as PHP's json_encode writes it (Magento's serializer): compact, non-ASCII as
    \\uXXXX, slashes escaped."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/")


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


def _operation(
    route: AsyncRoute, topic: str, bulk_uuid: str, key: int, item: Any, hasher: DataHasher
) -> tuple[NewOperation, ItemStatus]:
    data = serialized_data(item)
    reason = route.validate(item) if route.validate else None
    if reason is None:
        accepted = NewOperation(key, topic, data, order_group=route.order_group(bulk_uuid, item))
        return accepted, ItemStatus(key, hasher.hash(data))
    # Rejected items are stored too (status 5), so that a search finds them and why.
    rejected = NewOperation(
        key, topic, data, OperationStatus.REJECTED, result_message=reason, error_code=0
    )
    return rejected, ItemStatus(key, None, reason)


async def submit(
    database: Database,
    route: AsyncRoute,
    items: Sequence[Any],
    user: UserContext,
    topic_style: TopicStyle,
    store_code: str,
    hasher: DataHasher,
) -> Accepted:
    topic = route.topic_name(topic_style)
    bulk_uuid = str(uuid.uuid4())
    operations, statuses = [], []
    for key, item in enumerate(items):
        new_operation, status = _operation(route, topic, bulk_uuid, key, item, hasher)
        operations.append(new_operation)
        statuses.append(status)
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    new_bulk = NewBulk(
        uuid=bulk_uuid,
        description=f"Topic {topic}",
        user_id=user.user_id,
        user_type=int(user.user_type),
        start_time=now,
        operations=operations,
        store_code=store_code,
    )
    async with database.write() as connection:
        await insert_bulk(connection, new_bulk)
        await enqueue_new_bulk(connection, new_bulk.uuid, now)
    return Accepted(bulk_uuid=new_bulk.uuid, items=statuses)
