"""Running the app: uvicorn on one socket, the service's pool stopped on the way out.

Example
-------
>>> serve(SearchService([Collection("demo", "chad-demo/index_m1")]), port=8000)   # doctest: +SKIP
"""
from __future__ import annotations

import logging
import os
import socket
from typing import Callable

import torch
import uvicorn

from .app import create_app
from .service import SearchService

__all__ = ["serve", "bind"]

log = logging.getLogger("chadml.serve")


def bind(host: str = "127.0.0.1", port: int = 8000) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(service: SearchService, *, host: str = "127.0.0.1", port: int = 8000,
          ready: Callable[[str], None] | None = None) -> None:
    """Serve ``service`` on ``host:port`` until interrupted; ``ready(url)`` is called once the socket listens.

    Torch gets ``CPU count / workers`` threads per query (at least one), so that queries answered at
    once do not fight over the cores.
    """
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // service.config.n_workers))
    sock = bind(host, port)
    log.debug("warmed up in %.2f s", service.warm_up())
    real_port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    app = create_app(service)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                            timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    if ready:
        ready(f"http://{shown}:{real_port}")
    log.info("serving %s on http://%s:%d (%d workers)", ", ".join(service.collections), shown, real_port,
             service.config.n_workers)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        service.close()
