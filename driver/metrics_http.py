"""The ``/metrics`` HTTP server: a connection limit and per-connection timeouts.

``prometheus_client.start_http_server`` gives every connection a thread that waits for the
request for ever, so idle connections pile up until the process runs out of file descriptors
(at 1,023 of them the driver's cycles failed with "Too many open files": the journal and the
stack files could no longer be opened). This server serves the same WSGI app
(``prometheus_client.make_wsgi_app``) but

- holds at most ``max_connections`` connections at once; one more is accepted and closed at
  once, so it costs a file descriptor for microseconds, not for ever;
- gives each connection ``timeout`` seconds per socket wait (an idle or stalled client is
  dropped, freeing its slot) and ``deadline`` seconds in all (a client trickling its request
  to hold a slot is dropped too).

A Prometheus scrape is one short request per interval, so the defaults (16 connections, 10 s)
never get in its way.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from prometheus_client import CollectorRegistry, make_wsgi_app

__all__ = ["DEFAULT_MAX_CONNECTIONS", "DEFAULT_TIMEOUT", "MetricsServer", "serve_metrics"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_CONNECTIONS = 16
"""Connections served at once; more are closed on accept."""

DEFAULT_TIMEOUT = 10.0
"""Seconds a connection may wait on one socket read or write, and (x3) in all."""


class _Handler(WSGIRequestHandler):
    # socketserver.StreamRequestHandler applies this to the connection's socket.
    timeout = DEFAULT_TIMEOUT

    def log_message(self, format: str, *args: Any) -> None:
        # Scrapes every 15 s would flood the driver's log; errors are counted, not logged.
        return None


class MetricsServer(ThreadingMixIn, WSGIServer):
    """A threading WSGI server that bounds its connections (see the module docstring)."""

    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog of 5 makes a burst of clients wait out SYN retries.
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[WSGIRequestHandler],
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        deadline: float = 3 * DEFAULT_TIMEOUT,
    ) -> None:
        self.max_connections = max_connections
        self.deadline = deadline
        self._slots = threading.BoundedSemaphore(max_connections)
        self.accepted = 0
        """Connections accepted (served or refused)."""
        self.refused = 0
        """Connections closed on accept because every slot was taken."""
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.accepted += 1
        if not self._slots.acquire(blocking=False):
            self.refused += 1
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        # Ends the connection at the deadline even when each read is within the timeout.
        timer = threading.Timer(self.deadline, _hang_up, args=(request,))
        timer.daemon = True
        timer.start()
        try:
            super().process_request_thread(request, client_address)
        finally:
            timer.cancel()
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out or hung up is routine for a public endpoint: no traceback.
        logger.debug(
            "/metrics connection from %s ended with an error", client_address, exc_info=True
        )


def _hang_up(request: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed
        request.shutdown(socket.SHUT_RDWR)


def serve_metrics(
    registry: CollectorRegistry,
    *,
    host: str,
    port: int,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    timeout: float = DEFAULT_TIMEOUT,
) -> MetricsServer:
    """Serve ``registry`` at ``http://host:port/metrics`` on a daemon thread; returns the server.

    :param registry: the metrics to serve.
    :param host: address to bind.
    :param port: port to bind (0: any free port; see ``server.server_port``).
    :param max_connections: connections served at once; default :data:`DEFAULT_MAX_CONNECTIONS`.
    :param timeout: seconds per socket wait, and three times that per connection in all;
        default :data:`DEFAULT_TIMEOUT`.
    """
    handler = type("MetricsHandler", (_Handler,), {"timeout": timeout})
    family = socket.AF_INET6 if ":" in host else socket.AF_INET

    class Server(MetricsServer):
        address_family = family

    server = Server((host, port), handler, max_connections=max_connections, deadline=3 * timeout)
    server.set_app(make_wsgi_app(registry))
    thread = threading.Thread(
        target=server.serve_forever, name="metrics-http", kwargs={"poll_interval": 0.5}, daemon=True
    )
    thread.start()
    logger.debug("serving /metrics at most %d connections, %g s timeout", max_connections, timeout)
    return server
