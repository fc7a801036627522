"""The application factory: settings in, a configured FastAPI app out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import Session, sessionmaker

from xietong import __version__
from xietong.config import Settings, load_settings
from xietong.core.db import make_engine, make_session_factory
from xietong.core.fanout import make_broadcaster
from xietong.core.pii import PiiProtector
from xietong.core.storage import LocalBlobStore
from xietong.web.context import AppServices
from xietong.web.deps import csrf_protect
from xietong.web.errors import install_error_handlers
from xietong.web.middleware import (
    BodyLimitMiddleware,
    DicomwebGZipMiddleware,
    SecurityHeadersMiddleware,
)
from xietong.web.realtime import delivery as live_delivery
from xietong.web.routers import UPLOAD_PATHS, include_routers
from xietong.web.subjects import register_subjects

STATIC_DIR = Path(__file__).resolve().parent / "web" / "static"


def create_app(
    settings: Settings | None = None,
    *,
    session_factory: sessionmaker[Session] | None = None,
) -> FastAPI:
    """Build the app. Tests pass a ``session_factory`` bound to their own connection."""
    settings = settings or load_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(
        settings.database_url, echo=settings.database.echo, pool_size=settings.database.pool_size
    )
    services = AppServices(
        settings=settings,
        engine=engine,
        session_factory=session_factory or make_session_factory(engine),
        blobs=LocalBlobStore(settings.blob_root),
        pii=PiiProtector(settings.security.pii_key, settings.security.pii_cipher),
    )

    broadcaster = make_broadcaster(settings.redis_url, settings.database_url)
    register_subjects()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await broadcaster.start()
        live_delivery.attach(broadcaster)
        try:
            yield
        finally:
            live_delivery.detach(broadcaster)
            await broadcaster.stop()
            engine.dispose()

    app = FastAPI(
        title="Xietong 协同",
        version=__version__,
        description="Regional collaborative care platform: JSON API.",
        lifespan=lifespan,
        dependencies=[Depends(csrf_protect)],
        docs_url=None,  # served below from vendored assets, not a CDN
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.services = services
    app.state.broadcaster = broadcaster
    install_error_handlers(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    include_routers(app)
    _add_docs_route(app)
    app.add_middleware(DicomwebGZipMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(
        BodyLimitMiddleware,
        max_body=settings.http.max_body_bytes,
        max_upload=settings.http.max_upload_bytes,
        upload_paths=UPLOAD_PATHS,
        default_locale=settings.i18n.default_locale,
    )
    return app


DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Xietong API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/vendor/swagger-ui/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/static/vendor/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/static/swagger-init.js"></script></body></html>"""


def _add_docs_route(app: FastAPI) -> None:
    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        """The interactive API reference (OpenAPI at /openapi.json)."""
        return HTMLResponse(DOCS_PAGE)
