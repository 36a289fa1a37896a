"""`GET /swagger`: Swagger UI on the schemas, as Magento's own `/swagger` page, with its assets
served from the installed swagger-ui-bundle package (nothing is loaded from elsewhere)."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

SWAGGER_PATH = "/swagger"
ASSETS = f"{SWAGGER_PATH}/assets"

# The schema lists only what the caller may use, so it is fetched with the token once one is
# authorized; a token typed without its scheme gets `Bearer ` in front.
_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>bulkops REST API</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/swagger-ui-standalone-preset.js"></script>
<script>
window.ui = SwaggerUIBundle({{
  urls: {urls},
  dom_id: "#swagger-ui",
  deepLinking: true,
  persistAuthorization: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  plugins: [SwaggerUIBundle.plugins.DownloadUrl],
  layout: "StandaloneLayout",
  requestInterceptor: function (request) {{
    var headers = request.headers;
    if (!headers.Authorization && request.loadSpec) {{
      // Where persistAuthorization keeps it (the first load runs before window.ui is set).
      var stored = JSON.parse(localStorage.getItem("authorized") || "{{}}").api_key;
      if (stored && stored.value) {{
        headers.Authorization = stored.value;
      }}
    }}
    if (headers.Authorization && !/^Bearer /i.test(headers.Authorization)) {{
      headers.Authorization = "Bearer " + headers.Authorization;
    }}
    return request;
  }}
}});
</script>
</body>
</html>
"""


async def swagger_page(request: Request) -> HTMLResponse:
    # The first store view, as Magento's page shows the current store's schema.
    store = request.app.state.settings.store_views[0].code
    urls = [
        {"name": "REST", "url": f"/rest/{store}/schema?services=all"},
        {"name": "Asynchronous", "url": f"/rest/{store}/async/schema?services=all"},
        {"name": "Bulk", "url": f"/rest/{store}/async/bulk/schema?services=all"},
    ]
    # Safe inside <script>: no "</" can close it early.
    encoded = json.dumps(urls).replace("</", "<\\/")
    return HTMLResponse(_PAGE.format(assets=ASSETS, urls=encoded))


routes = [
    Route(SWAGGER_PATH, swagger_page, methods=["GET"]),
    Mount(ASSETS, app=StaticFiles(directory=swagger_ui_path), name="swagger-assets"),
]
