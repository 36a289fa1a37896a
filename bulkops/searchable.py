"""The fields an operation search can filter and sort on, and what kind of value each holds.

The names are the wire names clients send in `searchCriteria`; the store maps them to columns.
"""

from __future__ import annotations

from enum import Enum


class FieldKind(Enum):
    INTEGER = "int"
    TEXT = "string"
    DATETIME = "datetime"


# Operation columns first, then the bulk's columns reachable from an operation.
SEARCHABLE_FIELDS: dict[str, FieldKind] = {
    "id": FieldKind.INTEGER,
    "bulk_uuid": FieldKind.TEXT,
    "topic_name": FieldKind.TEXT,
    "status": FieldKind.INTEGER,
    "error_code": FieldKind.INTEGER,
    "result_message": FieldKind.TEXT,
    "serialized_data": FieldKind.TEXT,
    "result_serialized_data": FieldKind.TEXT,
    "operation_key": FieldKind.INTEGER,
    "started_at": FieldKind.DATETIME,
    "updated_at": FieldKind.DATETIME,
    "start_time": FieldKind.DATETIME,
    "user_id": FieldKind.INTEGER,
    "user_type": FieldKind.INTEGER,
    "description": FieldKind.TEXT,
}

# Text that searches compare, match and sort without regard to case, as Magento's
# `utf8_general_ci` columns do; other text (uuids, serialized data) compares exactly.
CASELESS_FIELDS = frozenset({"topic_name", "result_message", "description"})
