"""Operation search: a `SearchCriteria` compiled to one SQLAlchemy Core query.

Field names come from a whitelist and every value is a bound parameter. The semantics are
the same on every backend (see `tests/search_model.py` for the reference model they are
checked against): comparisons are typed by the field; `topic_name`, `result_message` and
`description` compare, match and sort without regard to case, as Magento's `utf8_general_ci`
columns do (see `types.folded` for what each backend folds), other text byte for byte and
case-sensitively; NULL never matches a negative condition; LIKE escapes with a backslash.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BindParameter,
    Boolean,
    ColumnElement,
    FunctionElement,
    Select,
    String,
    and_,
    cast,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncResult
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler

from bulkops.criteria import Condition, Filter, Operand, Scalar, SearchCriteria
from bulkops.searchable import CASELESS_FIELDS, SEARCHABLE_FIELDS, FieldKind
from bulkops.store.database import CASELESS_REGEXP_FUNCTION
from bulkops.store.statement_limits import restart_clock
from bulkops.store.tables import bulk, message_trigrams, operation
from bulkops.store.types import fold, folded, folded_text, in_int64, int64_value

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


def _regexp(field: str, column: ColumnElement[Any], pattern: str) -> ColumnElement[bool]:
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
    field: str, column: ColumnElement[Any], element: str, backend: str
) -> ColumnElement[bool]:
    """MySQL's FIND_IN_SET(element, field) > 0, written portably."""
    if "," in element:
        return false()
    text = _as_text(field, column)
    wrapped = literal(",") + text + literal(",")
    return and_(text != "", _like(field, wrapped, f"%,{escape_like(element)},%", backend))


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


def _like(field: str, text: ColumnElement[str], pattern: str, backend: str) -> ColumnElement[bool]:
    """`text` LIKE `pattern`, exactly or without regard to case as the field says. SQLite's
    LIKE ignores the case of ASCII letters, as NOCASE does: exact text is matched with GLOB
    there instead."""
    if backend == "sqlite" and field not in CASELESS_FIELDS:
        return text.op("GLOB", is_comparison=True)(glob_pattern(pattern))
    return text.like(like_pattern(pattern), escape="\\")


def _narrowed_by_trigrams(like: ColumnElement[bool], pattern: str) -> ColumnElement[bool]:
    """`like` on the result message, read only in the operations whose message holds every
    run of three characters or more of `pattern`, which SQLite's trigram index (migration
    0017) finds without reading a message. The index folds the case of every letter, the
    column only ASCII ones: it finds a few operations more, and `like` decides."""
    phrases = trigram_phrases(pattern)
    if phrases is None:
        return like  # nothing the index can find
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


# A filter's operand as the store binds it.
Bound = Operand | BindParameter[int]


def _bound(flt: Filter) -> Bound:
    """Integer operands as 64-bit integers (see `int64_value`); caseless text folded as the
    column is (`fold`), but for a regular expression, which matches caselessly instead;
    others as they are."""
    operand = flt.operand
    if flt.field in CASELESS_FIELDS and flt.condition is not Condition.REGEXP:
        if isinstance(operand, tuple):
            return tuple(fold(str(element)) for element in operand)
        return fold(operand) if isinstance(operand, str) else operand
    if SEARCHABLE_FIELDS[flt.field] is not FieldKind.INTEGER:
        return operand
    if isinstance(operand, tuple):
        # An integer field's list holds integers only (`criteria` parses them).
        return in_int64(element for element in operand if isinstance(element, int))
    if isinstance(operand, int):
        return int64_value(operand)
    return operand  # the pattern of like, finset or regexp


def _listed(operand: Bound) -> tuple[Scalar, ...] | BindParameter[int]:
    """The operand of in and nin (`criteria` makes it a tuple)."""
    assert isinstance(operand, tuple | BindParameter), operand
    return operand


def _pattern(operand: Bound) -> str:
    """The operand of like, finset and regexp: the string sent (`criteria` keeps it)."""
    assert isinstance(operand, str), operand
    return operand


def _filter_clause(flt: Filter, column_of: ColumnOf, backend: str) -> ColumnElement[bool]:
    column = column_of(flt.field)
    compared = compared_value(flt.field, column)
    operand = _bound(flt)
    match flt.condition:
        case Condition.EQ:
            return compared == operand
        case Condition.NEQ:
            return compared != operand
        case Condition.GT:
            return compared > operand
        case Condition.LT:
            return compared < operand
        case Condition.GTEQ:
            return compared >= operand
        case Condition.LTEQ:
            return compared <= operand
        case Condition.IN:
            return compared.in_(_listed(operand))
        case Condition.NIN:
            # NOT IN with a NULL column is unknown, so NULLs never match, as in Magento.
            return and_(column.is_not(None), compared.not_in(_listed(operand)))
        case Condition.NULL:
            return column.is_(None)
        case Condition.NOTNULL:
            return column.is_not(None)
        case Condition.LIKE:
            pattern = _pattern(operand)
            like = _like(flt.field, _as_text(flt.field, column), pattern, backend)
            if backend == "sqlite" and flt.field == "result_message":
                return _narrowed_by_trigrams(like, pattern)
            return like
        case Condition.NLIKE:
            return not_(_like(flt.field, _as_text(flt.field, column), _pattern(operand), backend))
        case Condition.FINSET:
            return _find_in_set(flt.field, column, _pattern(operand), backend)
        case Condition.NFINSET:
            found = _find_in_set(flt.field, column, _pattern(operand), backend)
            return and_(column.is_not(None), not_(found))
        case Condition.REGEXP:
            return _regexp(flt.field, column, _pattern(operand))
    raise AssertionError(f"condition {flt.condition} reached the store")


def where_clause(
    criteria: SearchCriteria, backend: str, column_of: ColumnOf = field_column
) -> ColumnElement[bool]:
    """OR inside a group, AND across groups; a group without filters matches everything."""
    groups = [
        or_(*(_filter_clause(flt, column_of, backend) for flt in group.filters))
        for group in criteria.filter_groups
        if group.filters
    ]
    return and_(true(), *groups)


def bulk_where_clause(criteria: SearchCriteria, backend: str) -> ColumnElement[bool]:
    """`where_clause` on the bulk table, for criteria on the fields a bulk has."""
    return where_clause(criteria, backend, _bulk_column)


def _fields_filtered(criteria: SearchCriteria) -> set[str]:
    return {flt.field for group in criteria.filter_groups for flt in group.filters}


def _fields_used(criteria: SearchCriteria) -> set[str]:
    return _fields_filtered(criteria) | {field for field, _ in criteria.effective_sort()}


def from_clause(criteria: SearchCriteria, *more_fields: str) -> Any:
    """The operation table, joined to its bulk's when the criteria or `more_fields` (fields
    read beside them) need a column of the bulk."""
    if (_fields_used(criteria) | set(more_fields)) & _BULK_FIELDS:
        return operation.join(bulk, bulk.c.uuid == operation.c.bulk_uuid)
    return operation


def _order_by(criteria: SearchCriteria, backend: str) -> list[ColumnElement[Any]]:
    """The requested orders, then `id` so that pages are stable. NULL sorts as the smallest
    value on every backend (SQLite's and MySQL's rule; PostgreSQL is told so)."""
    clauses: list[ColumnElement[Any]] = []
    for field, descending in criteria.effective_sort():
        column = field_column(field)
        sorted_by = compared_value(field, column)
        clause = sorted_by.desc() if descending else sorted_by.asc()
        if backend == "postgresql" and column.nullable:
            clause = clause.nulls_last() if descending else clause.nulls_first()
        clauses.append(clause)
    if "id" not in dict(criteria.effective_sort()):
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


# Backends whose planner, asked for `ORDER BY id LIMIT n`, may walk the primary key and filter,
# betting that matches are spread evenly through the table. SQLite's planner does not take
# that bet here, and its count is several times cheaper without the ids.
_BOUNDED_PAGES = frozenset({"postgresql", "mysql", "mariadb"})


def _needs_id_range(criteria: SearchCriteria, backend: str) -> bool:
    """A filtered page read in id order, on a backend whose planner may walk the primary key
    for it (see `page_query`)."""
    sort = criteria.effective_sort()
    in_id_order = not sort or sort[0][0] == "id"
    return backend in _BOUNDED_PAGES and bool(_fields_filtered(criteria)) and in_id_order


def _counts_bulks(criteria: SearchCriteria, backend: str) -> bool:
    """Whether the matches are counted in the bulk table: when every filter is on a field
    operations share with their bulk (`start_time`, `bulk_uuid`, the user, the description),
    or there is none, the count is the sum of the matching bulks' `operation_rows`, a row
    per bulk instead of one per operation (a week of operations is a few hundred bulks).
    Every bulk is written with its operations in one transaction and deleted with them, so
    the sum is the count. Not where the page needs the matches' id range."""
    return _fields_filtered(criteria) <= _BULK_COLUMNS.keys() and not _needs_id_range(
        criteria, backend
    )


def count_query(criteria: SearchCriteria, backend: str) -> Select[Any]:
    """The number of matches and, where the page needs them, their lowest and highest ids,
    read in the same scan (every index ends with `id`)."""
    if _counts_bulks(criteria, backend):
        total = func.coalesce(func.sum(bulk.c.operation_rows), 0)
        return select(total).where(bulk_where_clause(criteria, backend))
    columns: list[ColumnElement[Any]] = [func.count()]
    if _needs_id_range(criteria, backend):
        columns += [func.min(operation.c.id), func.max(operation.c.id)]
    return (
        select(*columns).select_from(from_clause(criteria)).where(where_clause(criteria, backend))
    )


def items_query(
    criteria: SearchCriteria, backend: str, columns: Sequence[Any] = ITEM_COLUMNS
) -> Select[Any]:
    return (
        select(*columns)
        .select_from(from_clause(criteria))
        .where(where_clause(criteria, backend))
        .order_by(*_order_by(criteria, backend))
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
    where = where_clause(criteria, backend)
    if after is not None:
        where = and_(where, after)
    if matches.first_id is not None and matches.last_id is not None:
        where = and_(
            where,
            operation.c.id >= int64_value(matches.first_id),
            operation.c.id <= int64_value(matches.last_id),
        )
    order_by = _order_by(criteria, backend)
    if offset < DEFERRED_OFFSET:
        query = (
            select(*ITEM_COLUMNS, *extra_columns).select_from(from_clause(criteria)).where(where)
        )
        return query.order_by(*order_by).limit(page_size).offset(offset)
    # Deep pages: the rows skipped are found in an index (ids only), and only the page's own
    # rows are read from the table.
    ids = (
        select(operation.c.id.label("page_id"))
        .select_from(from_clause(criteria))
        .where(where)
        .order_by(*order_by)
        .limit(page_size)
        .offset(offset)
        .subquery("page_ids")
    )
    joined = from_clause(criteria).join(ids, ids.c.page_id == operation.c.id)
    return select(*ITEM_COLUMNS, *extra_columns).select_from(joined).order_by(*order_by)


@dataclass(frozen=True, slots=True)
class Page:
    rows: Sequence[Row[Any]]
    total_count: int


def page_offset(current_page: int | None, page_size: int) -> int:
    """The rows before the page. Magento 2.4's rule: pages below 1 are page 1, and a page past
    the end is empty (`Framework/Data/Collection::getCurPage` no longer clamps to the last
    page, as 2.3 did)."""
    return (max(current_page or 1, 1) - 1) * page_size


async def count_matches(
    connection: AsyncConnection, criteria: SearchCriteria, backend: str
) -> Matches:
    return Matches.of((await connection.execute(count_query(criteria, backend))).one())


async def search_page(connection: AsyncConnection, criteria: SearchCriteria, backend: str) -> Page:
    """One page (criteria.page_size must be set) and the count of every match, read in one
    transaction (one snapshot), so that the page agrees with the count."""
    assert criteria.page_size
    matches = await count_matches(connection, criteria, backend)
    offset = page_offset(criteria.current_page, criteria.page_size)
    if offset >= matches.count:
        # Nothing to read (and an offset past 64 bits never reaches the database).
        return Page(rows=[], total_count=matches.count)
    query = page_query(criteria, backend, matches, criteria.page_size, offset)
    rows = (await connection.execute(query)).all()
    return Page(rows=rows, total_count=matches.count)


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


async def open_stream(
    connection: AsyncConnection,
    criteria: SearchCriteria,
    backend: str,
    batch_size: int = 1000,
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
