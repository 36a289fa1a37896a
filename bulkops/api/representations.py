"""Operations and bulks as Magento's JSON: key order, types and nulls as Magento emits them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.engine import Row, RowMapping

from bulkops.services.payloads import Payloads

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"


def timestamp(value: datetime | None) -> str | None:
    return None if value is None else value.strftime(TIMESTAMP_FORMAT)


class OperationView:
    """Shapes operation rows; `id_field` is `id` or (Magento 2.4 style) `operation_key`;
    payloads are shown as `payloads` shows them."""

    def __init__(self, payloads: Payloads, id_field: str = "id") -> None:
        self.payloads = payloads
        self.id_field = id_field

    def detailed(self, row: Row[Any]) -> dict[str, Any]:
        return {
            "id": getattr(row, self.id_field),
            "bulk_uuid": row.bulk_uuid,
            "topic_name": row.topic_name,
            "serialized_data": self.payloads.shown(row.serialized_data),
            "result_serialized_data": self.payloads.shown(row.result_serialized_data),
            "status": row.status,
            "result_message": row.result_message,
            "error_code": row.error_code,
        }

    def searched(self, row: Row[Any]) -> dict[str, Any]:
        # The search selects start_time as text already.
        return {"extension_attributes": {"start_time": row.start_time}} | self.detailed(row)

    def summary(self, row: Row[Any]) -> dict[str, Any]:
        return {
            "id": getattr(row, self.id_field),
            "status": row.status,
            "result_message": row.result_message,
            "error_code": row.error_code,
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
