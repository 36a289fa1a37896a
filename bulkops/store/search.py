"""Operation search: a `SearchCriteria` compiled to one SQLAlchemy Core query.

Field names come from a whitelist and every value is a bound parameter. The semantics are
the same on every backend (see `tests/search_model.py` for the reference model they are
checked against): comparisons are typed by the field; `topic_name`, `result_message` and
`description` compare, match and sort without regard to case, as Magento's `utf8_general_ci`
columns do (see `types.folded` for what each backend folds), other text byte for byte and
case-sensitively; NULL never matches a negative condition; LIKE escapes with a backslash.
"""

from __future__ import annotations

import functools
import itertools
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    BindParameter,
    Boolean,
    ColumnElement,
    FunctionElement,
    Select,
    String,
    and_,
    bindparam,
    cast,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.engine import Connection, Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncResult
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeEngine

from bulkops.criteria import Condition, Filter, Operand, SearchCriteria
from bulkops.searchable import CASELESS_FIELDS, SEARCHABLE_FIELDS, FieldKind
from bulkops.store.database import CASELESS_REGEXP_FUNCTION
from bulkops.store.direct_reads import fetch_all
from bulkops.store.statement_limits import restart_clock
from bulkops.store.tables import bulk, message_trigrams, operation, operation_tally
from bulkops.store.types import (
    INT64_MAX,
    INT64_MIN,
    fold,
    folded,
    folded_text,
    int64_value,
)

# Bulk columns reachable from an operation; `start_time` is copied onto the operation.
_BULK_FIELDS = {"user_id", "user_type", "description"}
# Fields whose value every operation shares with its bulk, and the bulk's column for each.
_BULK_COLUMNS = {field: bulk.c[field] for field in _BULK_FIELDS} | {
    "bulk_uuid": bulk.c.uuid,
    "start_time": bulk.c.start_time,
}

ColumnOf = Callable[[str], ColumnElement[Any]]
"""Where a searchable field is read: an operation's (or its joined bulk's) column, or a bulk's."""


def field_column(field: str) -> ColumnElement[Any]:
    """The column a searchable field is read from: the operation's, or its bulk's."""
    table = bulk if field in _BULK_FIELDS else operation
    return table.c[field]


def _bulk_column(field: str) -> ColumnElement[Any]:
    return _BULK_COLUMNS[field]


class datetime_text(FunctionElement[str]):
    """A timestamp rendered as `YYYY-MM-DD HH:MM:SS`, for LIKE and friends."""

    type = String()
    inherit_cache = True


@compiles(datetime_text)
def _datetime_text_sqlite(element: datetime_text, compiler: SQLCompiler, **kw: Any) -> str:
    # Stored as that text already.
    return compiler.process(element.clauses, **kw)


@compiles(datetime_text, "postgresql")
def _datetime_text_postgresql(element: datetime_text, compiler: SQLCompiler, **kw: Any) -> str:
    return f"to_char({compiler.process(element.clauses, **kw)}, 'YYYY-MM-DD HH24:MI:SS')"


@compiles(datetime_text, "mysql")
def _datetime_text_mysql(element: datetime_text, compiler: SQLCompiler, **kw: Any) -> str:
    pattern = compiler.process(literal("%Y-%m-%d %H:%i:%s"), **kw)
    return f"DATE_FORMAT({compiler.process(element.clauses, **kw)}, {pattern})"


def compared_value(field: str, column: ColumnElement[Any]) -> ColumnElement[Any]:
    """What comparisons and sorts on the field read: caseless text folded, the rest as is."""
    return folded(column) if field in CASELESS_FIELDS else column


def _as_text(field: str, column: ColumnElement[Any]) -> ColumnElement[str]:
    """The field as the text LIKE and friends match."""
    kind = SEARCHABLE_FIELDS[field]
    if kind is FieldKind.INTEGER:
        return cast(column, String)
    if kind is FieldKind.DATETIME:
        return datetime_text(column)
    return folded_text(column) if field in CASELESS_FIELDS else column


class caseless_regexp(FunctionElement[bool]):
    """`text` matches the regular expression `pattern` whatever the case of letters: a
    function of our own on SQLite (RE2, ignoring case), `~*` on PostgreSQL
    (ASCII letters under the "C" collation), REGEXP on MySQL and MariaDB (the column's
    caseless collation makes it so)."""

    type = Boolean()
    inherit_cache = True


def _regexp_operands(element: caseless_regexp, compiler: SQLCompiler, **kw: Any) -> tuple[str, str]:
    text, pattern = element.clauses
    return compiler.process(text, **kw), compiler.process(pattern, **kw)


@compiles(caseless_regexp)
def _caseless_regexp_sqlite(element: caseless_regexp, compiler: SQLCompiler, **kw: Any) -> str:
    text, pattern = _regexp_operands(element, compiler, **kw)
    return f"{CASELESS_REGEXP_FUNCTION}({pattern}, {text})"


@compiles(caseless_regexp, "postgresql")
def _caseless_regexp_postgresql(element: caseless_regexp, compiler: SQLCompiler, **kw: Any) -> str:
    text, pattern = _regexp_operands(element, compiler, **kw)
    return f"({text} ~* {pattern})"


@compiles(caseless_regexp, "mysql")
def _caseless_regexp_mysql(element: caseless_regexp, compiler: SQLCompiler, **kw: Any) -> str:
    text, pattern = _regexp_operands(element, compiler, **kw)
    return f"({text} REGEXP {pattern})"


def _regexp(field: str, column: ColumnElement[Any], pattern: Bound) -> ColumnElement[bool]:
    if field in CASELESS_FIELDS:
        return caseless_regexp(column, pattern)
    return _as_text(field, column).regexp_match(pattern)


def like_pattern(pattern: str) -> str:
    """A trailing lone escape character is taken literally (some databases reject it)."""
    trailing = len(pattern) - len(pattern.rstrip("\\"))
    return pattern + "\\" if trailing % 2 else pattern


def escape_like(text: str) -> str:
    """`text` as a LIKE pattern (backslash escapes) that matches it literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _find_in_set(
    field: str, column: ColumnElement[Any], pattern: Any, backend: str
) -> ColumnElement[bool]:
    """MySQL's FIND_IN_SET(element, field) > 0, written portably: `pattern` is the element's
    `like_value` of `%,element,%` (an element with a comma is found nowhere, see
    `_filter_values`)."""
    text = _as_text(field, column)
    wrapped = literal(",") + text + literal(",")
    return and_(text != "", _like(field, wrapped, pattern, backend))


def glob_pattern(pattern: str) -> str:
    """The GLOB pattern that matches what the LIKE `pattern` (backslash escapes) matches, but
    case-sensitively: `%` is `*`, `_` is `?`, GLOB's own wildcards are taken literally."""
    parts: list[str] = []
    chars = iter(like_pattern(pattern))
    for char in chars:
        if char == "%":
            parts.append("*")
        elif char == "_":
            parts.append("?")
        else:
            # After a backslash, the next character as it is (like_pattern leaves none last).
            literal_char = next(chars) if char == "\\" else char
            parts.append(f"[{literal_char}]" if literal_char in "*?[" else literal_char)
    return "".join(parts)


def _globbed(field: str, backend: str) -> bool:
    """SQLite's LIKE ignores the case of ASCII letters, as NOCASE does: exact text is matched
    with GLOB there instead."""
    return backend == "sqlite" and field not in CASELESS_FIELDS


def like_value(field: str, pattern: str, backend: str) -> str:
    """What `_like` binds for the LIKE `pattern` (backslash escapes)."""
    return glob_pattern(pattern) if _globbed(field, backend) else like_pattern(pattern)


def _like(field: str, text: ColumnElement[str], pattern: Any, backend: str) -> ColumnElement[bool]:
    """`text` LIKE `pattern` (a `like_value`), exactly or without regard to case as the field
    says."""
    if _globbed(field, backend):
        return text.op("GLOB", is_comparison=True)(pattern)
    return text.like(pattern, escape="\\")


def _narrowed_by_trigrams(like: ColumnElement[bool], phrases: Any) -> ColumnElement[bool]:
    """`like` on the result message, read only in the operations whose message holds every
    run of three characters or more of its pattern (`phrases`, see `trigram_phrases`), which
    SQLite's trigram index (migration 0017) finds without reading a message. The index folds
    the case of every letter, the column only ASCII ones: it finds a few operations more, and
    `like` decides."""
    found = select(message_trigrams.c.rowid).where(
        message_trigrams.c.result_message.op("MATCH", is_comparison=True)(phrases)
    )
    return and_(operation.c.id.in_(found), like)


def trigram_phrases(pattern: str) -> str | None:
    """The full-text query of the trigram index that finds the text LIKE `pattern` (and
    some more), if the pattern has runs of three characters or more: all of them, as phrases."""
    runs = [run for run in _literal_runs(pattern) if len(run) >= 3]
    if not runs:
        return None
    return " AND ".join('"{}"'.format(run.replace('"', '""')) for run in runs)


def _literal_runs(pattern: str) -> list[str]:
    """The text between the wildcards of a LIKE pattern, escapes (backslash) undone."""
    runs, run, escaped = [], [], False
    for char in pattern:
        if escaped or char not in "\\%_":
            run.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            runs.append("".join(run))
            run = []
    runs.append("".join(run))
    return runs


class Shape(StrEnum):
    """What decides a filter's SQL besides its field and condition."""

    PLAIN = "plain"
    TRIGRAMS = "trigrams"
    """like on SQLite's result message, narrowed by the trigram index."""
    NOTHING = "nothing"
    """finset of an element with a comma, which no set holds."""


@dataclass(frozen=True, slots=True)
class FilterShape:
    """A filter's SQL, whatever its values: statements built from it serve every search
    whose filters have the same shapes (see `SearchShape`)."""

    field: str
    condition: Condition
    shape: Shape = Shape.PLAIN


def _bound(flt: Filter) -> Operand:
    """Caseless text folded as the column is (`fold`), but for a regular expression, which
    matches caselessly instead; an integer field's list without what 64 bits cannot hold
    (no row has it, and a driver would refuse it); others as they are."""
    operand = flt.operand
    if flt.field in CASELESS_FIELDS and flt.condition is not Condition.REGEXP:
        if isinstance(operand, tuple):
            return tuple(fold(str(element)) for element in operand)
        return fold(operand) if isinstance(operand, str) else operand
    if SEARCHABLE_FIELDS[flt.field] is FieldKind.INTEGER and isinstance(operand, tuple):
        # An integer field's list holds integers only (`criteria` parses them).
        return tuple(
            element
            for element in operand
            if isinstance(element, int) and INT64_MIN <= element <= INT64_MAX
        )
    return operand


def _pattern(operand: Operand) -> str:
    """The operand of like, finset and regexp: the string sent (`criteria` keeps it)."""
    assert isinstance(operand, str), operand
    return operand


def _filter_values(flt: Filter, backend: str) -> tuple[FilterShape, tuple[Any, ...]]:
    """The filter's shape, and the values its clause binds, in the order it binds them."""
    operand = _bound(flt)
    field, condition = flt.field, flt.condition
    match condition:
        case Condition.NULL | Condition.NOTNULL:
            return FilterShape(field, condition), ()
        case Condition.LIKE | Condition.NLIKE:
            pattern = _pattern(operand)
            value = like_value(field, pattern, backend)
            if condition is Condition.LIKE and backend == "sqlite" and field == "result_message":
                phrases = trigram_phrases(pattern)
                if phrases is not None:
                    return FilterShape(field, condition, Shape.TRIGRAMS), (phrases, value)
            return FilterShape(field, condition), (value,)
        case Condition.FINSET | Condition.NFINSET:
            element = _pattern(operand)
            if "," in element:
                return FilterShape(field, condition, Shape.NOTHING), ()
            return FilterShape(field, condition), (
                like_value(field, f"%,{escape_like(element)},%", backend),
            )
    return FilterShape(field, condition), (operand,)


def _filter_clause(
    shape: FilterShape, column_of: ColumnOf, backend: str, binds: _Binds
) -> ColumnElement[bool]:
    bind, listed = binds.filter_value, binds.filter_list
    field = shape.field
    column = column_of(field)
    compared = compared_value(field, column)
    # Integers as 64-bit integers whatever the column's width (see `int64_value`).
    integer = BigInteger() if SEARCHABLE_FIELDS[field] is FieldKind.INTEGER else None
    list_type = integer or compared.type
    match shape.condition:
        case Condition.EQ:
            return compared == bind(integer)
        case Condition.NEQ:
            return compared != bind(integer)
        case Condition.GT:
            return compared > bind(integer)
        case Condition.LT:
            return compared < bind(integer)
        case Condition.GTEQ:
            return compared >= bind(integer)
        case Condition.LTEQ:
            return compared <= bind(integer)
        case Condition.IN:
            return compared.in_(listed(list_type))
        case Condition.NIN:
            # NOT IN with a NULL column is unknown, so NULLs never match, as in Magento.
            return and_(column.is_not(None), compared.not_in(listed(list_type)))
        case Condition.NULL:
            return column.is_(None)
        case Condition.NOTNULL:
            return column.is_not(None)
        case Condition.LIKE if shape.shape is Shape.TRIGRAMS:
            phrases = bind(None)
            return _narrowed_by_trigrams(
                _like(field, _as_text(field, column), bind(None), backend), phrases
            )
        case Condition.LIKE:
            return _like(field, _as_text(field, column), bind(None), backend)
        case Condition.NLIKE:
            return not_(_like(field, _as_text(field, column), bind(None), backend))
        case Condition.FINSET if shape.shape is Shape.NOTHING:
            return false()
        case Condition.FINSET:
            return _find_in_set(field, column, bind(None), backend)
        case Condition.NFINSET if shape.shape is Shape.NOTHING:
            return column.is_not(None)
        case Condition.NFINSET:
            found = _find_in_set(field, column, bind(None), backend)
            return and_(column.is_not(None), not_(found))
        case Condition.REGEXP:
            return _regexp(field, column, bind(None))
    raise AssertionError(f"condition {shape.condition} reached the store")


@dataclass(frozen=True, slots=True)
class SearchShape:
    """What a search's statements are built from, apart from its values: its filters'
    shapes, by group, and its sort. Every search of a shape runs the same count and page
    statements, built once (`_cached_count`, `_cached_page`): building a statement, and
    SQLAlchemy's key to its compiled form, cost more than running an indexed search."""

    groups: tuple[tuple[FilterShape, ...], ...]
    sort: tuple[tuple[str, bool], ...]

    @classmethod
    def of(cls, criteria: SearchCriteria, backend: str) -> tuple[SearchShape, list[Any]]:
        """The criteria's shape, and their values in the order its statements bind them."""
        groups = [
            [_filter_values(flt, backend) for flt in group.filters]
            for group in criteria.filter_groups
        ]
        shape = cls(
            tuple(tuple(filter_shape for filter_shape, _ in group) for group in groups),
            criteria.effective_sort(),
        )
        return shape, [value for group in groups for _, values in group for value in values]

    def fields_filtered(self) -> set[str]:
        return {filter_shape.field for group in self.groups for filter_shape in group}

    def fields_used(self) -> set[str]:
        return self.fields_filtered() | {field for field, _ in self.sort}


Bound = Operand | BindParameter[Any]
"""A filter's value as its clause takes it: the value itself, or a bound parameter."""


class _Binds(ABC):
    """How a statement binds its values: the filters' in turn (`filter_value`,
    `filter_list`), and the page's by name (`page_value`, see `_page_parameters`)."""

    @abstractmethod
    def filter_value(self, type_: TypeEngine[Any] | None) -> Bound:
        """The filter's next value, as its clause binds it; `type_` None: the type of what
        it is compared with."""

    @abstractmethod
    def filter_list(self, type_: TypeEngine[Any]) -> BindParameter[Any]:
        """The filter's next value, a list (of IN)."""

    @abstractmethod
    def page_value(self, name: str) -> Any:
        """A 64-bit integer of the page's."""


class _Valued(_Binds):
    """Each value carried by its bound parameter: a statement for one search."""

    def __init__(self, values: Sequence[Any], page: dict[str, int] | None = None) -> None:
        self._values = iter(values)
        self._page = page or {}

    def filter_value(self, type_: TypeEngine[Any] | None) -> Bound:
        value: Operand = next(self._values)
        if type_ is None:
            return value  # typed by what it is compared with
        return bindparam(None, value, type_=type_)

    def filter_list(self, type_: TypeEngine[Any]) -> BindParameter[Any]:
        return bindparam(None, next(self._values), type_=type_, expanding=True)

    def page_value(self, name: str) -> Any:
        return int64_value(self._page[name])


class _Named(_Binds):
    """Parameters without values, named `v0`, `v1`... (the filters', see `SearchShape.of`)
    and as the page's are (`_page_parameters`): a statement for every search of a shape."""

    def __init__(self, pages_written_in: bool = False) -> None:
        self._names = (f"v{number}" for number in itertools.count())
        self._pages_written_in = pages_written_in

    def filter_value(self, type_: TypeEngine[Any] | None) -> Bound:
        return bindparam(next(self._names), type_=type_)

    def filter_list(self, type_: TypeEngine[Any]) -> BindParameter[Any]:
        return bindparam(next(self._names), type_=type_, expanding=True)

    def page_value(self, name: str) -> Any:
        return bindparam(name, type_=BigInteger(), literal_execute=self._pages_written_in)


def where_clause(
    criteria: SearchCriteria, backend: str, column_of: ColumnOf = field_column
) -> ColumnElement[bool]:
    """OR inside a group, AND across groups; a group without filters matches everything."""
    shape, values = SearchShape.of(criteria, backend)
    return _where(shape, backend, column_of, _Valued(values))


def _where(
    shape: SearchShape, backend: str, column_of: ColumnOf, binds: _Binds
) -> ColumnElement[bool]:
    clauses = [
        or_(*(_filter_clause(filter_shape, column_of, backend, binds) for filter_shape in group))
        for group in shape.groups
        if group
    ]
    return and_(true(), *clauses)


def bulk_where_clause(criteria: SearchCriteria, backend: str) -> ColumnElement[bool]:
    """`where_clause` on the bulk table, for criteria on the fields a bulk has."""
    return where_clause(criteria, backend, _bulk_column)


def from_clause(criteria: SearchCriteria, *more_fields: str) -> Any:
    """The operation table, joined to its bulk's when the criteria or `more_fields` (fields
    read beside them) need a column of the bulk."""
    filtered = {flt.field for group in criteria.filter_groups for flt in group.filters}
    sorted_by = {field for field, _ in criteria.effective_sort()}
    return _from(filtered | sorted_by | set(more_fields))


def _from(fields: set[str]) -> Any:
    if fields & _BULK_FIELDS:
        return operation.join(bulk, bulk.c.uuid == operation.c.bulk_uuid)
    return operation


def _order_by(shape: SearchShape, backend: str) -> list[ColumnElement[Any]]:
    """The requested orders, then `id` so that pages are stable. NULL sorts as the smallest
    value on every backend (SQLite's and MySQL's rule; PostgreSQL is told so)."""
    clauses: list[ColumnElement[Any]] = []
    for field, descending in shape.sort:
        column = field_column(field)
        sorted_by = compared_value(field, column)
        clause = sorted_by.desc() if descending else sorted_by.asc()
        if backend == "postgresql" and column.nullable:
            clause = clause.nulls_last() if descending else clause.nulls_first()
        clauses.append(clause)
    if "id" not in dict(shape.sort):
        clauses.append(operation.c.id.asc())
    return clauses


# What a search answers with: the operation and its bulk's start time, already as the text
# clients get (on SQLite, the stored text itself: no parsing and formatting per row).
ITEM_COLUMNS = (
    operation.c.id,
    operation.c.operation_key,
    operation.c.bulk_uuid,
    operation.c.topic_name,
    operation.c.serialized_data,
    operation.c.result_serialized_data,
    operation.c.status,
    operation.c.result_message,
    operation.c.error_code,
    datetime_text(operation.c.start_time).label("start_time"),
)


# From this many rows skipped on, a page reads the ids first (see `page_query`).
DEFERRED_OFFSET = 1000

STATEMENT_SHAPES = 256
"""Search shapes whose statements are kept built (most clients send a few shapes)."""


@dataclass(frozen=True, slots=True)
class Matches:
    """How many operations match; where the page needs them, the lowest and highest of their
    ids (see `page_query`)."""

    count: int
    first_id: int | None = None
    last_id: int | None = None

    @classmethod
    def of(cls, row: Sequence[Any]) -> Matches:
        """From the row of `count_query`."""
        count, *id_range = row
        # int(): MySQL sums as DECIMAL.
        return cls(int(count), *id_range)

    @property
    def ranged(self) -> bool:
        return self.first_id is not None and self.last_id is not None


# Backends whose planner, asked for `ORDER BY id LIMIT n`, may walk the primary key and filter,
# betting that matches are spread evenly through the table. SQLite's planner does not take
# that bet here, and its count is several times cheaper without the ids.
_BOUNDED_PAGES = frozenset({"postgresql", "mysql", "mariadb"})


def _needs_id_range(shape: SearchShape, backend: str) -> bool:
    """A filtered page read in id order, on a backend whose planner may walk the primary key
    for it (see `page_query`)."""
    in_id_order = not shape.sort or shape.sort[0][0] == "id"
    return backend in _BOUNDED_PAGES and bool(shape.fields_filtered()) and in_id_order


def _counts_bulks(shape: SearchShape, backend: str) -> bool:
    """Whether the matches are counted in the bulk table: when every filter is on a field
    operations share with their bulk (`start_time`, `bulk_uuid`, the user, the description),
    or there is none, the count is the sum of the matching bulks' `operation_rows`, a row
    per bulk instead of one per operation (a week of operations is a few hundred bulks).
    Every bulk is written with its operations in one transaction and deleted with them, so
    the sum is the count. Not where the page needs the matches' id range."""
    return shape.fields_filtered() <= _BULK_COLUMNS.keys() and not _needs_id_range(shape, backend)


# What the operations' counts by bulk, topic and status (`tallies`) can count: filters on their
# own columns or their bulk's user, that compare values (not patterns, ranges or payloads).
TALLY_BULK_FIELDS = frozenset({"user_type", "user_id"})
_TALLIED_FILTERS = frozenset({"bulk_uuid", "topic_name", "status", *TALLY_BULK_FIELDS})
_TALLIED_CONDITIONS = frozenset({Condition.EQ, Condition.NEQ, Condition.IN, Condition.NIN})


def counts_tallied(criteria: SearchCriteria) -> bool:
    """Whether the operations' counts can count the matches of `criteria`."""
    return _tallied(flt for group in criteria.filter_groups for flt in group.filters)


def _tallied(filters: Iterable[Filter | FilterShape]) -> bool:
    return all(
        flt.field in _TALLIED_FILTERS and flt.condition in _TALLIED_CONDITIONS for flt in filters
    )


def tally_column(field: str) -> ColumnElement[Any]:
    """Where the counts hold a field: their own column, or their bulk's."""
    return bulk.c[field] if field in TALLY_BULK_FIELDS else operation_tally.c[field]


def tally_source(fields: set[str]) -> Any:
    """The counts, joined to their bulk's row when `fields` need its columns."""
    if fields & TALLY_BULK_FIELDS:
        return operation_tally.join(bulk, bulk.c.uuid == operation_tally.c.bulk_uuid)
    return operation_tally


def _counts_tallies(shape: SearchShape, backend: str) -> bool:
    """Whether the matches are counted from the operations' counts by bulk, topic and
    status (`tallies`): a row per bulk, topic and status instead of one per operation (the
    failed operations of a million are a few thousand rows). They change in the transaction
    of every change of status, so they are the operations of the same snapshot. Not where the
    page needs the matches' id range."""
    filters = [filter_shape for group in shape.groups for filter_shape in group]
    return _tallied(filters) and not _needs_id_range(shape, backend)


def count_query(criteria: SearchCriteria, backend: str) -> Select[Any]:
    """The number of matches and, where the page needs them, their lowest and highest ids,
    read in the same scan (every index ends with `id`)."""
    shape, values = SearchShape.of(criteria, backend)
    return _count_statement(shape, backend, _Valued(values))


def _count_statement(shape: SearchShape, backend: str, binds: _Binds) -> Select[Any]:
    if _counts_bulks(shape, backend):
        total = func.coalesce(func.sum(bulk.c.operation_rows), 0)
        return select(total).where(_where(shape, backend, _bulk_column, binds))
    if _counts_tallies(shape, backend):
        total = func.coalesce(func.sum(operation_tally.c.operations), 0)
        return (
            select(total)
            .select_from(tally_source(shape.fields_filtered()))
            .where(_where(shape, backend, tally_column, binds))
        )
    columns: list[ColumnElement[Any]] = [func.count()]
    if _needs_id_range(shape, backend):
        columns += [func.min(operation.c.id), func.max(operation.c.id)]
    return (
        select(*columns)
        .select_from(_from(shape.fields_used()))
        .where(_where(shape, backend, field_column, binds))
    )


@functools.lru_cache(maxsize=STATEMENT_SHAPES)
def _cached_count(shape: SearchShape, backend: str) -> Select[Any]:
    return _count_statement(shape, backend, _Named())


def items_query(
    criteria: SearchCriteria, backend: str, columns: Sequence[Any] = ITEM_COLUMNS
) -> Select[Any]:
    shape, values = SearchShape.of(criteria, backend)
    return (
        select(*columns)
        .select_from(_from(shape.fields_used()))
        .where(_where(shape, backend, field_column, _Valued(values)))
        .order_by(*_order_by(shape, backend))
    )


def page_query(
    criteria: SearchCriteria,
    backend: str,
    matches: Matches,
    page_size: int,
    offset: int,
    after: ColumnElement[bool] | None = None,
    extra_columns: Sequence[ColumnElement[Any]] = (),
) -> Select[Any]:
    """One page of the matches. Where the count found the matches' id range, it is added to
    the filter (it changes no result): a planner that walks the primary key to return rows
    in id order then starts at the first match instead of reading every row before it.
    Matches come in bulks of consecutive ids, often late in the table (a new bulk, a recent
    time range), where that walk would otherwise read most of the table. `after` keeps only
    the rows past a position (`keyset`), `extra_columns` are read beside the item's."""
    shape, values = SearchShape.of(criteria, backend)
    page = _page_parameters(matches, page_size, offset)
    return _page_statement(
        shape,
        backend,
        _Valued(values, page),
        matches.ranged,
        offset >= DEFERRED_OFFSET,
        after,
        extra_columns,
    )


def _page_parameters(matches: Matches, page_size: int, offset: int) -> dict[str, int]:
    page = {"page_size": page_size, "page_offset": offset}
    if matches.first_id is not None and matches.last_id is not None:
        page |= {"first_id": matches.first_id, "last_id": matches.last_id}
    return page


def _page_statement(
    shape: SearchShape,
    backend: str,
    binds: _Binds,
    ranged: bool,
    deferred: bool,
    after: ColumnElement[bool] | None = None,
    extra_columns: Sequence[ColumnElement[Any]] = (),
) -> Select[Any]:
    where = _where(shape, backend, field_column, binds)
    if after is not None:
        where = and_(where, after)
    if ranged:
        where = and_(
            where,
            operation.c.id >= binds.page_value("first_id"),
            operation.c.id <= binds.page_value("last_id"),
        )
    order_by = _order_by(shape, backend)
    source = _from(shape.fields_used())
    limit, offset = binds.page_value("page_size"), binds.page_value("page_offset")
    if not deferred:
        query = select(*ITEM_COLUMNS, *extra_columns).select_from(source).where(where)
        return query.order_by(*order_by).limit(limit).offset(offset)
    # Deep pages: the rows skipped are found in an index (ids only), and only the page's own
    # rows are read from the table.
    ids = (
        select(operation.c.id.label("page_id"))
        .select_from(source)
        .where(where)
        .order_by(*order_by)
        .limit(limit)
        .offset(offset)
        .subquery("page_ids")
    )
    joined = source.join(ids, ids.c.page_id == operation.c.id)
    return select(*ITEM_COLUMNS, *extra_columns).select_from(joined).order_by(*order_by)


@functools.lru_cache(maxsize=STATEMENT_SHAPES)
def _cached_page(shape: SearchShape, backend: str, ranged: bool, deferred: bool) -> Select[Any]:
    # SQLite plans a statement as it prepares it, without its parameters' values: a LIMIT it
    # cannot read makes it walk the primary key for `ORDER BY id`, betting on finding the
    # page's rows early, even where few rows match (a topic and two statuses among 200,000:
    # 3 ms instead of 0.1). With the page's size and offset written into the SQL at each
    # execution it can read them, and weighs sorting the matches found in an index instead.
    # The servers plan each execution with its values (PostgreSQL: `plan_cache_mode`).
    pages_written_in = backend == "sqlite"
    return _page_statement(shape, backend, _Named(pages_written_in), ranged, deferred)


@dataclass(frozen=True, slots=True)
class Page:
    rows: Sequence[Any]
    """Rows of `ITEM_COLUMNS`, read by position or name (SQLAlchemy's rows or named tuples)."""
    total_count: int


def page_offset(current_page: int | None, page_size: int) -> int:
    """The rows before the page. Magento 2.4's rule: pages below 1 are page 1, and a page past
    the end is empty (`Framework/Data/Collection::getCurPage` no longer clamps to the last
    page, as 2.3 did)."""
    return (max(current_page or 1, 1) - 1) * page_size


def _parameters(values: Sequence[Any]) -> dict[str, Any]:
    return {f"v{number}": value for number, value in enumerate(values)}


async def count_matches(
    connection: AsyncConnection, criteria: SearchCriteria, backend: str
) -> Matches:
    shape, values = SearchShape.of(criteria, backend)
    return await connection.run_sync(_count, shape, backend, values)


def _count(
    connection: Connection, shape: SearchShape, backend: str, values: Sequence[Any]
) -> Matches:
    (counted,) = fetch_all(connection, _cached_count(shape, backend), _parameters(values))
    return Matches.of(counted)


async def search_page(connection: AsyncConnection, criteria: SearchCriteria, backend: str) -> Page:
    """One page (criteria.page_size must be set) and the count of every match, read in one
    transaction (one snapshot), so that the page agrees with the count. Both statements in
    one pass through SQLAlchemy's synchronous core."""
    assert criteria.page_size
    return await connection.run_sync(_search_page, criteria, criteria.page_size, backend)


def _search_page(
    connection: Connection, criteria: SearchCriteria, page_size: int, backend: str
) -> Page:
    shape, values = SearchShape.of(criteria, backend)
    matches = _count(connection, shape, backend, values)
    offset = page_offset(criteria.current_page, page_size)
    if offset >= matches.count:
        # Nothing to read (and an offset past 64 bits never reaches the database).
        return Page(rows=[], total_count=matches.count)
    query = _cached_page(shape, backend, matches.ranged, offset >= DEFERRED_OFFSET)
    parameters = _parameters(values) | _page_parameters(matches, page_size, offset)
    return Page(rows=fetch_all(connection, query, parameters), total_count=matches.count)


@dataclass(frozen=True, slots=True)
class Stream:
    """The matches of a search as they are read."""

    connection: AsyncConnection
    rows: AsyncResult[Any] | None
    """The rows, read in batches; None when there are none to read."""
    total_count: int | None
    """Every match's count, for a page; None when every match is streamed (the rows' count)."""

    async def batches(self) -> AsyncIterator[Sequence[Row[Any]]]:
        if self.rows is None:
            return
        partitions = self.rows.partitions()
        while True:
            # Each fetch has the time limit of a statement.
            restart_clock(self.connection.info)
            rows = await anext(partitions, None)
            if rows is None:
                return
            yield rows


STREAM_BATCH_ROWS = 4000
"""Rows a stream reads at a time (about 2 MB of JSON for a search's items). Fewer cost more
round trips: at 1,000, PostgreSQL answered every match of a search about 10 % slower. More
hold more memory per stream."""


async def open_stream(
    connection: AsyncConnection,
    criteria: SearchCriteria,
    backend: str,
    batch_size: int = STREAM_BATCH_ROWS,
    columns: Sequence[Any] = ITEM_COLUMNS,
) -> Stream:
    """Every match, or the page if criteria.page_size is set (counted first, as `search_page`
    does), through a server-side cursor read in batches, so memory stays flat whatever the
    number of rows: on PostgreSQL an asyncpg cursor in the read transaction (a round trip per
    batch); on MySQL/MariaDB an unbuffered result (aiomysql's SSCursor) that the connection
    reads as the rows are consumed; on SQLite a plain cursor. Every match is read as
    `columns` (a search's own by default); a page, always as a search's."""
    if not criteria.page_size:
        query = items_query(criteria, backend, columns)
        total_count = None
    else:
        matches = await count_matches(connection, criteria, backend)
        offset = page_offset(criteria.current_page, criteria.page_size)
        if offset >= matches.count:
            return Stream(connection, rows=None, total_count=matches.count)
        query = page_query(criteria, backend, matches, criteria.page_size, offset)
        total_count = matches.count
    rows = await connection.stream(query.execution_options(yield_per=batch_size))
    return Stream(connection, rows=rows, total_count=total_count)
