"""Operations and bulks as Magento's JSON: key order, types and nulls as Magento emits them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy.engine import Row, RowMapping

from bulkops.services.payloads import Payloads

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"


def timestamp(value: datetime | None) -> str | None:
    return None if value is None else value.strftime(TIMESTAMP_FORMAT)


Rows = Sequence[Row[Any]]

# The columns of `OperationView.detailed` after the id, in the answer's order.
_DETAILED = (
    "bulk_uuid",
    "topic_name",
    "serialized_data",
    "result_serialized_data",
    "status",
    "result_message",
    "error_code",
)


def _values(rows: Rows, *names: str) -> Iterator[tuple[Any, ...]]:
    """The named columns of each row, by position: several times faster than reading a row's
    attributes, on every row a search or a status answer shows."""
    if not rows:
        return iter(())
    fields = rows[0]._fields
    return map(itemgetter(*(fields.index(name) for name in names)), rows)


class OperationView:
    """Shapes operation rows, a list at a time; `id_field` is `id` or (Magento 2.4 style)
    `operation_key`; payloads are shown as `payloads` shows them."""

    def __init__(self, payloads: Payloads, id_field: str = "id") -> None:
        self.payloads = payloads
        self.id_field = id_field

    def detailed(self, rows: Rows) -> list[dict[str, Any]]:
        return [self._detailed(*values) for values in _values(rows, self.id_field, *_DETAILED)]

    def searched(self, rows: Rows) -> list[dict[str, Any]]:
        """`detailed`'s items, each after the extension attributes a search adds: its own
        literal, without unpacking or merging (a third of the time per row, on every row a
        search streams). The search selects start_time as text already."""
        shown = self.payloads.shown
        return [
            {
                "extension_attributes": {"start_time": start},
                "id": id_,
                "bulk_uuid": bulk_uuid,
                "topic_name": topic_name,
                "serialized_data": shown(serialized_data),
                "result_serialized_data": shown(result_serialized_data),
                "status": status,
                "result_message": result_message,
                "error_code": error_code,
            }
            for (
                start,
                id_,
                bulk_uuid,
                topic_name,
                serialized_data,
                result_serialized_data,
                status,
                result_message,
                error_code,
            ) in _values(rows, "start_time", self.id_field, *_DETAILED)
        ]

    def summary(self, rows: Rows) -> list[dict[str, Any]]:
        return [
            {"id": id_, "status": status, "result_message": message, "error_code": code}
            for id_, status, message, code in _values(
                rows, self.id_field, "status", "result_message", "error_code"
            )
        ]

    def _detailed(
        self,
        id_: int,
        bulk_uuid: str,
        topic_name: str,
        serialized_data: str | None,
        result_serialized_data: str | None,
        status: int,
        result_message: str | None,
        error_code: int | None,
    ) -> dict[str, Any]:
        shown = self.payloads.shown
        return {
            "id": id_,
            "bulk_uuid": bulk_uuid,
            "topic_name": topic_name,
            "serialized_data": shown(serialized_data),
            "result_serialized_data": shown(result_serialized_data),
            "status": status,
            "result_message": result_message,
            "error_code": error_code,
        }


def bulk_status(bulk: RowMapping, operations_list: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "operations_list": operations_list,
        "user_type": bulk["user_type"],
        "bulk_id": bulk["uuid"],
        "description": bulk["description"],
        "start_time": timestamp(bulk["start_time"]),
        "user_id": bulk["user_id"],
        "operation_count": bulk["operation_count"],
    }
