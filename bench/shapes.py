"""The searches timed, each as a `searchCriteria` query string for bulkops and as SQL with the
same result (count and page) for the floor (bulkops' tables) and for Magento's shape
(Magento's tables and `getList` query)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bench import magento_schema
from bulkops.searchable import CASELESS_FIELDS
from bulkops.store.search import trigram_phrases
from bulkops.store.tables import MESSAGE_TRIGRAMS
from bulkops.store.types import fold

Filter = tuple[str, str, Any]
"""(field, condition type, value); a list value for `in`."""

_OPERATORS = {"eq": "=", "neq": "!=", "from": ">=", "to": "<=", "like": "LIKE"}

# Caseless text as bulkops compares it (`bulkops.store.types.folded`), where the column's
# collation does not: SQLite's NOCASE (LIKE, which ignores collations, on lower()), lower()
# on PostgreSQL, with the value's ASCII letters lowered. MariaDB's and MySQL's collations
# compare it caselessly as it is. Magento's tables get the same: its columns are
# `utf8_general_ci`.
_FOLDED = {"sqlite": "{} COLLATE NOCASE", "postgresql": "lower({})"}
_FOLDED_FOR_LIKE = {"sqlite": "lower({})", "postgresql": "lower({})"}


def _lowered(value: Any) -> Any:
    """ASCII letters in lower case, as lower() makes them under a binary collation."""
    if isinstance(value, list):
        return [_lowered(element) for element in value]
    return fold(value) if isinstance(value, str) else value


@dataclass(frozen=True)
class Shape:
    key: str
    title: str
    groups: tuple[tuple[Filter, ...], ...]
    """AND across groups, OR inside one."""
    sort: tuple[str, bool] | None = None
    """(field, descending)."""
    page_size: int | None = 20
    page: int = 1

    @property
    def offset(self) -> int:
        return (self.page - 1) * (self.page_size or 0)

    def query_string(self) -> str:
        parts = []
        for g, group in enumerate(self.groups):
            for f, (field, condition, value) in enumerate(group):
                text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
                prefix = f"searchCriteria[filter_groups][{g}][filters][{f}]"
                parts += [
                    f"{prefix}[field]={field}",
                    f"{prefix}[value]={text}",
                    f"{prefix}[condition_type]={condition}",
                ]
        if self.sort:
            field, descending = self.sort
            parts += [
                f"searchCriteria[sortOrders][0][field]={field}",
                f"searchCriteria[sortOrders][0][direction]={'DESC' if descending else 'ASC'}",
            ]
        if self.page_size:
            parts += [
                f"searchCriteria[pageSize]={self.page_size}",
                f"searchCriteria[currentPage]={self.page}",
            ]
        return "&".join(parts) or "searchCriteria="

    def where(
        self,
        placeholder: str,
        columns: Mapping[str, str],
        backend: str,
        message_trigrams: str | None = None,
    ) -> tuple[str, list[Any]]:
        """The filter in SQL, fields renamed by `columns` (unlisted ones kept), text searched
        without regard to case compared as `backend` compares it; `like` on the result
        message narrowed by the SQLite trigram index `message_trigrams`, if given."""
        clauses: list[str] = []
        parameters: list[Any] = []
        for group in self.groups:
            alternatives = []
            for field, condition, value in group:
                column = columns.get(field, field)
                folded = (_FOLDED_FOR_LIKE if condition == "like" else _FOLDED).get(backend)
                if field in CASELESS_FIELDS and folded:
                    column, value = folded.format(column), _lowered(value)
                if condition == "in":
                    marks = ", ".join([placeholder] * len(value))
                    alternatives.append(f"{column} IN ({marks})")
                    parameters += value
                else:
                    alternatives.append(f"{column} {_OPERATORS[condition]} {placeholder}")
                    parameters.append(value)
                phrases = trigram_phrases(value) if condition == "like" else None
                if field == "result_message" and message_trigrams and phrases:
                    alternatives[-1] = (
                        f"(id IN (SELECT rowid FROM {message_trigrams} WHERE {message_trigrams}"
                        f" MATCH {placeholder}) AND {alternatives[-1]})"
                    )
                    parameters.insert(len(parameters) - 1, phrases)
            clauses.append("(" + " OR ".join(alternatives) + ")")
        return " AND ".join(clauses) or "1 = 1", parameters

    def order_by(self, columns: Mapping[str, str], id_column: str) -> str:
        """The requested order, then the id: the order bulkops answers in."""
        order = []
        if self.sort:
            field, descending = self.sort
            order.append(f"{columns.get(field, field)} {'DESC' if descending else 'ASC'}")
        return ", ".join([*order, f"{id_column} ASC"])

    def limit(self) -> str:
        if not self.page_size:
            return ""
        return f" LIMIT {self.page_size} OFFSET {self.offset}"


def search_shapes(
    rows: int, bulk_uuid: str, topic: str, phrase: str, week: tuple[str, str]
) -> list[Shape]:
    """The shapes of the benchmark; `week` is the first and last second of a 7-day range. The
    deep page is a tenth into the rows (page 5,000 of 1,000,000)."""
    deep_page = max(1, rows // 200)
    return [
        Shape("status", "status eq 3, page 1 of 20", ((("status", "eq", 3),),)),
        Shape("bulk", "bulk_uuid eq X", ((("bulk_uuid", "eq", bulk_uuid),),)),
        Shape(
            "topic_status",
            "topic_name eq T and status in 2,3",
            ((("topic_name", "eq", topic),), (("status", "in", [2, 3]),)),
        ),
        Shape(
            "start_time",
            "start_time in a week, start_time DESC",
            ((("start_time", "from", week[0]),), (("start_time", "to", week[1]),)),
            sort=("start_time", True),
        ),
        Shape(
            "like",
            f"result_message like '%{phrase}%'",
            ((("result_message", "like", f"%{phrase}%"),),),
        ),
        Shape("deep_page", f"no filter, page {deep_page:,} of 20", (), page=deep_page),
        Shape(
            "every_match",
            "no pageSize, status neq 1 (every match)",
            ((("status", "neq", 1),),),
            page_size=None,
        ),
    ]


Statement = tuple[str, list[Any]]


def magento_statements(shape: Shape, backend: str, placeholder: str) -> list[Statement]:
    """What `OperationRepository::getList` runs: the count, then the page. Magento adds no
    tie-breaker of its own, and `id` alone is ambiguous in its join; a client wanting stable
    pages sends `main_table.id` as the last sort order, which Magento puts into ORDER BY as is."""
    where, parameters = shape.where(placeholder, magento_schema.FIELD_MAP, backend)
    order_by = shape.order_by(magento_schema.FIELD_MAP, "main_table.id")
    return [
        (magento_schema.count_sql(where), parameters),
        (magento_schema.page_sql(where, order_by, shape.limit()), parameters),
    ]


FLOOR_COLUMNS = (
    "id, operation_key, bulk_uuid, topic_name, serialized_data, result_serialized_data,"
    " status, result_message, error_code, start_time"
)


# What the operations' counts by bulk, topic and status hold, and the conditions they answer.
TALLIED_FIELDS = {"status", "topic_name", "bulk_uuid"}
TALLIED_CONDITIONS = {"eq", "neq", "in", "nin"}

# Fields every operation shares with its bulk, as the bulk table names them.
BULK_FIELDS = {"bulk_uuid": "uuid", "start_time": "start_time"}


def floor_statements(shape: Shape, backend: str, placeholder: str) -> list[Statement]:
    """The best plain SQL on bulkops' tables and indexes (where `start_time` is the
    operation's own copy): the count, then the page. A filter on bulk fields only, or none, is
    counted as the sum of the matching bulks' `operation_rows`; one that compares statuses,
    topics and bulks only, as the sum of the operations' counts by bulk, topic and status.
    Otherwise, on the servers, a filtered page in id order is bounded by the lowest and highest
    matching id, which the count reads in the same index scan: a planner walking the primary
    key for `ORDER BY id LIMIT` then starts at the first match. The page's statement takes
    those two ids as its last parameters. A deep page finds its ids in an index alone first,
    then reads only those rows."""
    trigrams = MESSAGE_TRIGRAMS if backend == "sqlite" else None
    where, parameters = shape.where(placeholder, {}, backend, trigrams)
    order_by = shape.order_by({}, "id")
    fields = {field for group in shape.groups for field, _, _ in group}
    in_id_order = shape.sort is None or shape.sort[0] == "id"
    bounded = backend != "sqlite" and bool(fields) and in_id_order
    conditions = {condition for group in shape.groups for _, condition, _ in group}
    if fields <= BULK_FIELDS.keys() and not bounded:
        bulk_where, _ = shape.where(placeholder, BULK_FIELDS, backend)
        count = f"SELECT coalesce(sum(operation_rows), 0) FROM bulkops_bulk WHERE {bulk_where}"
    elif fields <= TALLIED_FIELDS and conditions <= TALLIED_CONDITIONS and not bounded:
        count = f"SELECT coalesce(sum(operations), 0) FROM bulkops_operation_tally WHERE {where}"
    elif bounded:
        count = f"SELECT count(*), min(id), max(id) FROM bulkops_operation WHERE {where}"
        where += f" AND id >= {placeholder} AND id <= {placeholder}"
    else:
        count = f"SELECT count(*) FROM bulkops_operation WHERE {where}"
    if shape.offset == 0:
        page = (
            f"SELECT {FLOOR_COLUMNS} FROM bulkops_operation WHERE {where}"
            f" ORDER BY {order_by}{shape.limit()}"
        )
    else:
        columns = ", ".join(f"o.{c.strip()}" for c in FLOOR_COLUMNS.split(","))
        page = (
            f"SELECT {columns} FROM bulkops_operation o JOIN (SELECT id FROM bulkops_operation"
            f" WHERE {where} ORDER BY {order_by}{shape.limit()}) p ON p.id = o.id"
            f" ORDER BY {shape.order_by({}, 'o.id')}"
        )
    return [(count, parameters), (page, parameters)]
