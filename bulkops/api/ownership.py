"""Which bulks a caller may read: every bulk (admins, integrations with the right), or only
those it submitted. Another's bulk is answered as a missing one: no existence oracle."""

from __future__ import annotations

from sqlalchemy.engine import RowMapping

from bulkops.auth.context import UserContext
from bulkops.criteria import Condition, Filter, SearchCriteria


def _owner_is(field: str, value: int) -> Filter:
    return Filter(field, None, None, Condition.EQ, value)


def visible_to(user: UserContext, criteria: SearchCriteria) -> SearchCriteria:
    """The search restricted to the bulks the user may read, as filters on the bulk's
    `user_type` and `user_id` (the bulk table's index on both serves them)."""
    if user.all_bulks:
        return criteria
    assert user.user_id is not None, "require_bulk_reader refuses users without an id"
    return criteria.restricted_to(
        _owner_is("user_type", int(user.user_type)), _owner_is("user_id", user.user_id)
    )


def reads(user: UserContext, found_bulk: RowMapping | None) -> bool:
    """Whether the user may read this bulk (a row of the bulk table; None: no such bulk)."""
    return found_bulk is not None and user.reads_bulk_of(
        found_bulk["user_type"], found_bulk["user_id"]
    )
