"""The operation search form, its results computed as the API computes them, and the equal
REST call."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from bulkops.api.bulk import STREAMED_PAGE_SIZE, applied_search, searched_page
from bulkops.console import search_form
from bulkops.console.rendering import render
from bulkops.console.session import Session
from bulkops.criteria import Condition, parse_search_criteria
from bulkops.errors import InputError
from bulkops.querystring import parse_query_string
from bulkops.searchable import SEARCHABLE_FIELDS


async def search_page(request: Request, session: Session) -> Response:
    """The operation search form and, once sent, its results, computed as the API computes
    them, with the API's URL and a curl line for the same search."""
    state = request.app.state
    context: dict[str, Any] = {
        "values": None,
        "fields": list(SEARCHABLE_FIELDS),
        "conditions": [condition.value for condition in Condition],
        "groups": search_form.GROUPS,
        "filters_per_group": search_form.FILTERS,
    }
    try:
        values = search_form.form_values(request.scope["query_string"])
    except InputError as error:
        return render(request, "search.html", context | {"error": str(error)}, session, 400)
    if values is None:
        return render(request, "search.html", context, session)
    query = search_form.query_string(values)
    api_url = f"{str(request.base_url).rstrip('/')}/rest/V1/bulk?{query}"
    context |= {
        "values": values,
        "api_url": api_url,
        "curl": f"curl -g -H \"Authorization: Bearer $TOKEN\" '{api_url}'",
    }
    try:
        criteria = parse_search_criteria(parse_query_string(query), state.settings.page_limits)
        if not criteria.page_size or criteria.page_size > STREAMED_PAGE_SIZE:
            raise InputError(
                "The console shows pages of 1 to %max operations.", {"max": STREAMED_PAGE_SIZE}
            )
        items, total_count = await searched_page(
            state, applied_search(state, session.user, criteria)
        )
    except InputError as error:
        return render(request, "search.html", context | {"error": str(error)}, session, 400)
    context |= {"items": items, "total_count": total_count}
    return render(request, "search.html", context, session)
