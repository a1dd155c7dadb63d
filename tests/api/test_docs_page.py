"""`/docs` works on a machine without internet: Swagger UI comes from the API itself."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

from tests.api.conftest import ServedApi
from warden.api import create_app
from warden.settings import Settings


async def test_docs_page_references_no_other_host_and_every_asset_answers(
    settings: Settings,
) -> None:
    served = ServedApi(create_app(settings)).start()
    try:
        async with served.client() as http:
            page = await http.get("/docs")
            assert page.status_code == 200 and "text/html" in page.headers["content-type"]
            html = page.text
            assert not re.search(r"https?://|//[a-z0-9]", html), "the page names another host"
            refs = re.findall(r'(?:src|href)="([^"]+)"', html)
            refs += re.findall(r"url: '([^']+)'", html)  # the OpenAPI document Swagger UI loads
            assert len(refs) == 4, refs  # stylesheet, icon, script, openapi.json
            for ref in refs:
                url = urljoin(served.url + "/docs", ref)
                assert urlsplit(url).netloc == urlsplit(served.url).netloc, ref
                asset = await http.get(url)
                assert asset.status_code == 200, ref
                assert asset.content, ref
            script = await http.get("/docs/assets/swagger-ui-bundle.js")
            assert "javascript" in script.headers["content-type"]
            assert "SwaggerUIBundle" in script.text
            assert (
                "text/css"
                in (await http.get("/docs/assets/swagger-ui.css")).headers["content-type"]
            )
            # only those files: not the bundle's demo page, and no ReDoc (it loads from a CDN)
            assert (await http.get("/docs/assets/index.html")).status_code == 404
            assert (await http.get("/redoc")).status_code == 404
    finally:
        served.stop()
