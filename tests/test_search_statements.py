"""A search's count and page statements are built once per shape of its criteria and shared by
every search of that shape, its values bound apart; searches on statuses, topics, bulks and
users are counted from the operations' counts where the page needs no id range. (That their
answers are right: tests/test_search_model.py, on every backend.)"""

from __future__ import annotations

from urllib.parse import quote

from sqlalchemy.dialects import postgresql, sqlite

from bulkops.criteria import SearchCriteria, parse_search_criteria
from bulkops.querystring import parse_query_string
from bulkops.store import search


def _criteria(*filters: tuple[str, str, str], sort: str = "") -> SearchCriteria:
    query = "&".join(
        f"searchCriteria[filter_groups][{n}][filters][0][field]={field}"
        f"&searchCriteria[filter_groups][{n}][filters][0][value]={quote(value)}"
        f"&searchCriteria[filter_groups][{n}][filters][0][condition_type]={condition}"
        for n, (field, value, condition) in enumerate(filters)
    )
    if sort:
        query += f"&searchCriteria[sortOrders][0][field]={sort}"
    return parse_search_criteria(parse_query_string(query + "&searchCriteria[pageSize]=20"))


def test_searches_of_one_shape_share_their_statements() -> None:
    first, values = search.SearchShape.of(_criteria(("status", "2", "eq")), "sqlite")
    second, other_values = search.SearchShape.of(_criteria(("status", "3", "eq")), "sqlite")
    assert first == second
    assert (values, other_values) == ([2], [3])
    assert search._cached_count(first, "sqlite") is search._cached_count(second, "sqlite")
    differently = search.SearchShape.of(_criteria(("status", "3", "neq")), "sqlite")[0]
    assert differently != first


def test_a_like_shape_depends_on_what_the_trigram_index_can_find() -> None:
    """On SQLite a message pattern with a run of three characters is narrowed by the trigram
    index, one without is not: two shapes, two statements."""
    long_run = search.SearchShape.of(_criteria(("result_message", "%abc%", "like")), "sqlite")
    short_runs = search.SearchShape.of(_criteria(("result_message", "%ab%", "like")), "sqlite")
    assert long_run[0] != short_runs[0]
    assert long_run[1] == ['"abc"', "%abc%"]
    assert short_runs[1] == ["%ab%"]


def _count_sql(criteria: SearchCriteria, backend: str) -> str:
    dialect = sqlite.dialect() if backend == "sqlite" else None
    statement = search.count_query(criteria, backend)
    return str(statement.compile(dialect=dialect))


def test_searches_on_statuses_and_topics_count_from_the_operations_counts() -> None:
    by_status = _criteria(("status", "3", "eq"), ("topic_name", "async.V1.a.POST", "eq"))
    assert "FROM bulkops_operation_tally" in _count_sql(by_status, "sqlite")
    # The servers' pages in id order need the matches' id range, which only the operations
    # hold; sorted by another field, they count from the counts too.
    assert "FROM bulkops_operation_tally" not in _count_sql(by_status, "postgresql")
    sorted_by_status = _criteria(("status", "3", "eq"), sort="status")
    assert "FROM bulkops_operation_tally" in _count_sql(sorted_by_status, "postgresql")
    # A pattern, a range or another field: the operations themselves.
    for criteria in (
        _criteria(("topic_name", "%a%", "like")),
        _criteria(("status", "2", "gteq")),
        _criteria(("status", "3", "eq"), ("error_code", "1", "eq")),
    ):
        assert "FROM bulkops_operation_tally" not in _count_sql(criteria, "sqlite")


def test_a_pages_size_and_offset_are_written_into_sqlites_sql() -> None:
    """SQLite plans a statement without its parameters' values: its page's LIMIT and OFFSET
    are written in at each execution, so that the planner can weigh them. The servers plan
    each execution with its values: theirs stay bound."""
    criteria = _criteria(("topic_name", "async.V1.a.POST", "eq"), ("status", "2,3", "in"))
    parameters = {"v0": "async.V1.a.POST", "v1": [2, 3], "page_size": 20, "page_offset": 40}
    for backend, dialect in (("sqlite", sqlite.dialect()), ("postgresql", postgresql.dialect())):
        shape = search.SearchShape.of(criteria, backend)[0]
        page = search._cached_page(shape, backend, False, False).compile(dialect=dialect)
        expanded = page.construct_expanded_state(parameters).statement
        if backend == "sqlite":
            assert expanded.endswith("LIMIT 20 OFFSET 40")
        else:
            assert expanded.endswith("LIMIT %(page_size)s::BIGINT OFFSET %(page_offset)s::BIGINT")
