"""``chad serve``: query by humming as a web page and an HTTP API.

- :mod:`chadml.serve.service`: :class:`SearchService` (queries on a worker pool, the catalog, song
  audio, the alignment picture; the limits and errors), :class:`ServeConfig`, :class:`Collection`;
- :mod:`chadml.serve.upload`: an uploaded recording decoded and checked (:func:`decode_query`,
  :class:`ServiceError`);
- :mod:`chadml.serve.alignment`: the pitch contours of a match;
- :mod:`chadml.serve.app`: the FastAPI app (:func:`create_app`): the API, the page, the docs;
- :mod:`chadml.serve.runner`: :func:`serve` (uvicorn);
- ``static/``: the page (HTML, JS, CSS; no build step, nothing fetched from elsewhere).

Example
-------
>>> from chadml.serve import Collection, SearchService, serve
>>> serve(SearchService([Collection("demo", "chad-demo/index_m1")]), port=8000)   # doctest: +SKIP
"""
from __future__ import annotations

from .alignment import CONTOUR_CONFIG, align_contours, pitch_contour, song_contour
from .app import STATIC_DIR, create_app
from .runner import bind, serve
from .service import MEDIA_TYPES, Collection, SearchService, ServeConfig, audio_url
from .upload import ServiceError, decode_query, loudest_dbfs

__all__ = ["SearchService", "ServeConfig", "Collection", "ServiceError", "create_app", "serve", "bind",
           "decode_query", "loudest_dbfs", "pitch_contour", "song_contour", "align_contours", "CONTOUR_CONFIG",
           "STATIC_DIR", "MEDIA_TYPES", "audio_url"]
