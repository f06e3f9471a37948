"""`create_app(settings)`: the FastAPI app. All state lives on the app, built in its lifespan."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from PIL import Image
from starlette.concurrency import run_in_threadpool

from picmatch import __version__
from picmatch.config import Settings
from picmatch.indexer import IndexReport, ProgressCallback
from picmatch.library import Library, open_with_settings
from picmatch.server import (
    routes_dupes,
    routes_explain,
    routes_images,
    routes_jobs,
    routes_library,
    routes_map,
    routes_search,
)
from picmatch.server.host_check import HostCheckMiddleware, allowed_host_names
from picmatch.server.http_errors import install_error_handlers
from picmatch.server.jobs import JobManager
from picmatch.server.middleware import (
    BodyLimitMiddleware,
    CatchAllMiddleware,
    SecurityHeadersMiddleware,
)
from picmatch.server.state import ServerState
from picmatch.server.thumbnails import ThumbnailCache
from picmatch.server.work_limits import WorkLimits

STATIC_DIR = Path(__file__).parent / "static"
MULTIPART_SLACK = 64 * 1024  # room for multipart headers and form fields beside the image

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def create_app(settings: Settings, *, library: Library | None = None) -> FastAPI:
    """The app. It opens the library at start-up, unless given one (which it then owns)."""
    app = FastAPI(
        title="picmatch",
        version=__version__,
        summary="Search your images by similarity.",
        lifespan=_lifespan(settings, library),
        redoc_url=None,
    )
    install_error_handlers(app)
    limit = settings.max_upload_bytes
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=limit + MULTIPART_SLACK,
        limit_for_message=limit,
        timeout=settings.body_timeout,
    )
    allowed_hosts = allowed_host_names(settings.host, settings.allowed_hosts)
    app.add_middleware(HostCheckMiddleware, bind_host=settings.host, allowed=allowed_hosts)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(CatchAllMiddleware)  # added last: outermost, sees every error
    app.include_router(routes_library.health_router)
    for module in (routes_library, routes_search, routes_images, routes_jobs, routes_dupes):
        app.include_router(module.router)
    for router in (routes_map.page_router, routes_map.router, routes_map.sheet_router):
        app.include_router(router)
    app.include_router(routes_explain.router)
    app.include_router(routes_explain.image_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_api_route("/", _page, include_in_schema=False)
    app.add_api_route("/dupes", _dupes_page, include_in_schema=False)
    return app


def open_server_library(settings: Settings) -> Library:
    """Open the library and warm its model up, so the first search is fast. Blocking.

    A missing library is created only when the server may index something into it.
    """
    library = open_with_settings(settings, create=bool(settings.allowed_roots))
    try:
        _warm_up(library)
    except BaseException:
        library.close()
        raise
    return library


def _warm_up(library: Library) -> None:
    """One search for a tiny generated JPEG: a process's first decode, inference and index load
    are several times slower than later ones, and should not land on the first user."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (128, 128, 128)).save(buffer, "JPEG")
    library.search(buffer.getvalue(), k=1)


def _lifespan(settings: Settings, given: Library | None) -> Lifespan:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        library = (
            given if given is not None else await run_in_threadpool(open_server_library, settings)
        )
        limits = WorkLimits.for_this_machine(settings.max_pixels)
        thumbnails = ThumbnailCache(
            library.path / "thumbnails", max_pixels=settings.max_pixels, gate=limits.large_decodes
        )
        state = ServerState(
            settings=settings,
            library=library,
            jobs=JobManager(_index_runner(library)),
            thumbnails=thumbnails,
            limits=limits,
        )
        app.state.picmatch = state
        try:
            yield
        finally:
            await run_in_threadpool(state.jobs.shutdown)
            library.close()

    return lifespan


def _index_runner(library: Library) -> Callable[[str, ProgressCallback], IndexReport]:
    def run(path: str, progress: ProgressCallback) -> IndexReport:
        report = library.index([path], progress=progress)
        routes_map.refresh_map_quietly(library)  # the map shows what was just indexed
        return report

    return run


async def _page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


async def _dupes_page() -> FileResponse:
    return FileResponse(STATIC_DIR / "dupes.html", headers={"Cache-Control": "no-cache"})
