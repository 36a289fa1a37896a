"""Yes-or-no query parameters (`?force=true`, `?dry_run=1`)."""

from __future__ import annotations

from starlette.requests import Request

from bulkops.errors import InputError

_FLAGS = {"true": True, "1": True, "false": False, "0": False}


def query_flag(request: Request, name: str) -> bool:
    """The parameter as a boolean (`true`/`false`, `1`/`0`, any case); absent: false;
    anything else is a 400."""
    text = request.query_params.get(name)
    if text is None:
        return False
    flag = _FLAGS.get(text.strip().lower())
    if flag is None:
        raise InputError.invalid_type(name, text, "bool")
    return flag
