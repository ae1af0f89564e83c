"""A test server on a free loopback port, served from a thread: the suite's one copy of it."""

from __future__ import annotations

import contextlib
import http.server
import socketserver
import threading
from collections.abc import Iterator

__all__ = ["local_http_server", "serving"]


@contextlib.contextmanager
def serving(server: socketserver.TCPServer, *, name: str = "test-http") -> Iterator[str]:
    """Serve ``server`` (bound to a loopback port) from a daemon thread; yields its base URL.

    Shut down and closed on exit, so a test leaves no listening port behind.
    """
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextlib.contextmanager
def local_http_server(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """``handler`` serving on a free loopback port, its threads daemons; yields the base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    with serving(server) as url:
        yield url
