"""JSON responses as Magento sends them: `application/json; charset=utf-8`, errors included."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from bulkops.errors import WebapiError

JSON_MEDIA_TYPE = "application/json; charset=utf-8"


class JSONResponse(Response):
    media_type = JSON_MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(error: WebapiError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status_code)
