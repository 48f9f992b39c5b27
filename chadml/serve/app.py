"""The HTTP face of :class:`chadml.serve.SearchService`: a FastAPI (ASGI) app with the API, the page and its docs.

Routes:

- ``POST /api/query``: a recording (multipart field ``audio``: WAV, FLAC or OGG) with ``top``,
  ``rerank`` and ``index`` -> the ranked songs (id, title, score, matched time), the query's length and
  the timing of each step;
- ``GET /api/songs`` (paged: ``offset``, ``limit``, ``q``), ``GET /api/songs/{id}``,
  ``GET /api/songs/{id}/audio`` (the recording; HTTP range requests, so that the page plays it from
  the matched time), ``GET /api/queries/{query_id}/alignment`` (the pitch contours of a match),
  ``GET /api/health``;
- ``/`` the page, ``/docs`` the API's documentation (from ``/openapi.json``), ``/static/*`` their files.

Every error is JSON ``{"error": message, "status": code}`` with a 4xx status for bad requests (never a
traceback). With a token (:class:`ServeConfig` ``token``) the API except ``/api/health`` asks for
``Authorization: Bearer <token>`` (or ``?token=``, for the page's audio player). Each request is logged
(logger ``chadml.serve``) with its status and time, and a query with the time of each step.

Example
-------
>>> from fastapi.testclient import TestClient                                 # doctest: +SKIP
>>> client = TestClient(create_app(SearchService([Collection("demo", "ix")])))  # doctest: +SKIP
>>> client.get("/api/health").json()["status"]                                # doctest: +SKIP
'ok'
"""
from __future__ import annotations

import asyncio
import functools
import hmac
import logging
import os
import time
from typing import Any, Optional

from fastapi import FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from .service import SearchService
from .upload import ServiceError

log = logging.getLogger("chadml.serve")

__all__ = ["create_app", "STATIC_DIR"]

#: the page's files (shipped in the package: setup.py package_data)
STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")

DESCRIPTION = """Query by humming: upload a recording of a hummed or sung tune and get the songs it
matches, each with the moment in the song where the tune occurs.

Errors are JSON `{"error": "...", "status": N}`. With `--token`, send `Authorization: Bearer TOKEN`."""


class MatchOut(BaseModel):
    """One ranked song (fields of :class:`chadml.search.Match`, and where to fetch its audio)."""
    model_config = ConfigDict(extra="allow")
    song_id: str
    title: str
    score: Optional[float]
    time_s: float
    rank: int
    audio_url: str


class QueryOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    query_id: str
    index: str
    rerank: str
    duration_s: float
    generation: int
    matches: list[MatchOut]
    timing: dict[str, Any]


class SongOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    song_id: str
    title: str
    duration_s: Optional[float]
    n_fingerprints: int
    has_audio: bool
    audio_url: Optional[str]


class SongPage(BaseModel):
    index: str
    generation: int
    total: int
    offset: int
    limit: int
    songs: list[SongOut]


class ErrorOut(BaseModel):
    error: str
    status: int


ERRORS = {s: {"model": ErrorOut, "description": d} for s, d in (
    (400, "bad parameters or an empty upload"), (401, "missing or wrong token"),
    (404, "unknown or missing index, song or query"), (413, "upload too large or recording too long"),
    (415, "not audio that can be read"), (422, "silent or too short recording, invalid parameters"))}


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors():
        loc = [str(x) for x in e.get("loc", ()) if x not in ("body", "query", "path", "header")]
        parts.append(f"{'.'.join(loc) or 'request'}: {e.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def _timing_note(t: dict | None) -> str:
    if not t:
        return ""
    steps = ", ".join(f"{k[:-2]} {t[k] * 1e3:.0f} ms" for k in ("decode_s", "fingerprint_s", "f0_s", "ann_s",
                                                                  "rerank_s") if isinstance(t.get(k), float))
    return f" (query {t.get('duration_s', 0):.1f} s; {steps})"


def create_app(service: SearchService) -> FastAPI:
    """The ASGI app of ``service`` (see the module docstring)."""
    cfg = service.config
    app = FastAPI(title="chad", version=__version__, description=DESCRIPTION, docs_url=None, redoc_url=None,
                  openapi_url="/openapi.json")
    app.state.service = service

    async def in_pool(fn, *args, **kw):
        """``fn(*args, **kw)`` on the service's worker pool; an unexpected error becomes a JSON 500."""
        return await asyncio.get_running_loop().run_in_executor(service.pool, functools.partial(guard, fn, *args,
                                                                                                **kw))

    def guard(fn, *args, **kw):
        try:
            return fn(*args, **kw)
        except ServiceError:
            raise
        except Exception as exc:  # noqa: BLE001 - a bug answers one line of JSON, logged with its traceback
            log.exception("internal error in %s", getattr(fn, "__name__", fn))
            raise ServiceError(500, f"internal error: {type(exc).__name__}: {exc}") from None

    # ---- errors, authentication and the request log ----------------------------------------------

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError):
        return _error(exc.status, exc.message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        return _error(422, _describe_validation(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return _error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def any_error(request: Request, exc: Exception):
        log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, f"internal error: {type(exc).__name__}")

    @app.middleware("http")
    async def log_and_guard(request: Request, call_next):
        t0 = time.perf_counter()
        path = request.url.path
        response = None
        if path.startswith("/api/") and path != "/api/health" and cfg.token is not None:
            auth = request.headers.get("authorization", "")
            given = auth[7:].strip() if auth[:7].lower() == "bearer " else request.query_params.get("token", "")
            if not hmac.compare_digest(given.encode(), cfg.token.encode()):
                response = _error(401, "this server needs a token: send 'Authorization: Bearer TOKEN'"
                                  if not given else "wrong token", {"WWW-Authenticate": "Bearer"})
        if response is None and request.method == "POST" and path == "/api/query":
            size = request.headers.get("content-length")
            if size and size.isdigit() and int(size) > cfg.max_upload_bytes + 65536:
                response = _error(413, f"the upload is {int(size) / 1e6:.1f} MB; the limit is "
                                       f"{cfg.max_upload_bytes / 1e6:g} MB")
        if response is None:
            response = await call_next(request)
        ms = (time.perf_counter() - t0) * 1e3
        response.headers["Server-Timing"] = f"app;dur={ms:.1f}"
        log.info("%s %s %d %.1f ms%s", request.method, path, response.status_code, ms,
                 _timing_note(getattr(request.state, "timing", None)))
        return response

    # ---- the API ---------------------------------------------------------------------------------

    @app.post("/api/query", response_model=QueryOut, responses=ERRORS, tags=["query"],
              summary="Find the songs a recording hums or sings")
    async def query(request: Request,
                    audio: UploadFile = File(..., description="the recording: WAV, FLAC or OGG "
                                                              f"(at most {cfg.max_query_s:g} s)"),
                    top: int = Form(10, ge=1, le=cfg.top_max, description="how many songs to return"),
                    rerank: Optional[str] = Form(None, description="pearson, dtw or dtw-f0 (default: "
                                                                   f"{cfg.rerank})"),
                    index: Optional[str] = Form(None, description=f"index name (default: {service.default})")):
        data = await audio.read(cfg.max_upload_bytes + 1)
        if len(data) > cfg.max_upload_bytes:
            raise ServiceError(413, f"the upload is over the limit of {cfg.max_upload_bytes / 1e6:g} MB")
        result = await in_pool(service.query, data, index=index, top=top, rerank=rerank)
        request.state.timing = {**result["timing"], "duration_s": result["duration_s"]}
        return result

    @app.get("/api/queries/{query_id}/alignment", responses=ERRORS, tags=["query"],
             summary="The pitch contours of a recent query and of a song over its matched segment")
    async def alignment(query_id: str, song_id: str = Query(..., description="a song of the query's results"),
                        time_s: float = Query(..., ge=0, description="the matched time in the song (s)"),
                        index: Optional[str] = Query(None)):
        return await in_pool(service.alignment, query_id, song_id, time_s, index=index)

    @app.get("/api/songs", response_model=SongPage, responses=ERRORS, tags=["songs"],
             summary="The songs of an index, a page at a time")
    def songs(index: Optional[str] = None, offset: int = Query(0, ge=0), limit: int = Query(50, ge=1, le=1000),
              q: Optional[str] = Query(None, description="only songs whose id or title contains this")):
        return guard(service.songs, index=index, offset=offset, limit=limit, q=q)

    @app.get("/api/songs/{song_id:path}/audio", responses={**ERRORS, 206: {"description": "a byte range"}},
             tags=["songs"], summary="A song's recording (supports HTTP Range requests)",
             response_class=FileResponse)
    def song_audio(song_id: str, index: Optional[str] = None):
        path, media = guard(service.audio_file, song_id, index=index)
        return FileResponse(path, media_type=media, headers={"Cache-Control": "private, max-age=3600"})

    @app.get("/api/songs/{song_id:path}", response_model=SongOut, responses=ERRORS, tags=["songs"],
             summary="One song")
    def song(song_id: str, index: Optional[str] = None):
        return guard(service.song, song_id, index=index)

    @app.get("/api/health", tags=["service"], summary="Status, indexes and limits (no token needed)")
    def health():
        h = guard(service.health)
        return JSONResponse(h, status_code=200 if h["status"] == "ok" else 503)

    # ---- the page and the docs -------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(os.path.join(STATIC_DIR, "index.html"), headers={"Cache-Control": "no-cache"})

    @app.get("/docs", include_in_schema=False)
    def docs():
        return FileResponse(os.path.join(STATIC_DIR, "docs.html"), headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
