"""`/docs`: Swagger UI over the API's own OpenAPI document, with nothing loaded from elsewhere.

FastAPI's default page loads Swagger UI's script and stylesheet from a CDN, so on a machine
without internet it is blank. Here the page names only files this API serves itself, from
the pinned `swagger-ui-bundle-v2` package (Swagger UI 5, which reads OpenAPI 3.1). ReDoc is
not served.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from swagger_ui_bundle import swagger_ui_path

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"
#: The only files the page needs; nothing else of the bundle (its demo page points at a
#: public petstore) is served.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}


def install_docs(app: FastAPI) -> None:
    """Serve `/docs` and its assets on `app` (created with `docs_url=None, redoc_url=None`)."""
    bundle = Path(str(swagger_ui_path))

    @app.get(DOCS_PATH, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon-32x32.png",
            # no badge from the public validator service
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get(ASSETS_PATH + "/{name}", include_in_schema=False)
    async def swagger_asset(name: str) -> FileResponse:
        media_type = ASSETS.get(name)
        if media_type is None:
            raise HTTPException(status_code=404, detail=f"no asset {name!r}")
        return FileResponse(bundle / name, media_type=media_type)
