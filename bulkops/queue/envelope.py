"""What a broker message carries for an operation: small and self-describing; the database
holds everything else (the payload, the bulk, the status)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeGuard

import orjson

CONTENT_TYPE = "application/json"


@dataclass(frozen=True, slots=True)
class Envelope:
    operation_id: int
    topic_name: str
    attempts: int
    """Deliveries the operation had before this message: a retry's message counts the
    earlier ones, so that the handler's `max_attempts` holds across the broker."""
    order_group: int | None = None
    """The operation's order group, if any: the consumer takes the operations behind it in
    the group from the outbox and processes them after it."""

    def encode(self) -> bytes:
        fields: dict[str, Any] = {
            "operation_id": self.operation_id,
            "topic_name": self.topic_name,
            "attempts": self.attempts,
        }
        if self.order_group is not None:
            fields["order_group"] = self.order_group
        return orjson.dumps(fields)

    @classmethod
    def decode(cls, body: bytes) -> Envelope:
        """Raises ValueError for a body that is not an operation's message."""
        try:
            fields: Any = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise ValueError(f"not JSON: {error}") from None
        if not isinstance(fields, dict):
            raise ValueError("not a JSON object")
        operation_id = fields.get("operation_id")
        topic_name = fields.get("topic_name")
        attempts = fields.get("attempts", 0)
        order_group = fields.get("order_group")
        if not _is_int(operation_id) or not isinstance(topic_name, str) or not _is_int(attempts):
            raise ValueError("operation_id, topic_name or attempts missing or of the wrong type")
        if order_group is not None and not _is_int(order_group):
            raise ValueError("order_group is not an integer")
        return cls(operation_id, topic_name, attempts, order_group)


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
