"""An HTTP server on loopback that answers the way a broken backend or proxy does, by path.

Used as a Prometheus base URL (``http://127.0.0.1:<port>/<behaviour>``), so every request the
source sends (``/<behaviour>/api/v1/query_range``) gets that behaviour, and as a GitHub API
(``github_api: http://127.0.0.1:<port>/<behaviour>``). Written on raw sockets because the point
is to misbehave below HTTP: headers or a body that trickle, never end or never stop coming.

Behaviours (:data:`BEHAVIOURS`):

``trickle``
    valid headers with a Content-Length of 1 MB, then the body one byte every 0.5 s.
``endless``
    valid headers, no Content-Length, then 8 KiB every 20 ms for ever (400 KiB/s): under any
    size cap for minutes, so only a whole-request deadline stops it.
``huge``
    valid headers, no Content-Length, then 1.5 GB as fast as the client reads.
``huge-declared``
    the same 1.5 GB, announced in Content-Length.
``header-trickle``
    the status line, then one header byte every 0.5 s for ever: the answer never starts.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import time
from collections.abc import Iterator

from local_http import serving

__all__ = ["BEHAVIOURS", "HUGE_BYTES", "hostile_http_server"]

HUGE_BYTES = 1_500_000_000
"""Size of the ``huge`` answers (the 1.5 GB of the issue that took RSS to 1.6 GB)."""

BEHAVIOURS = ("trickle", "endless", "huge", "huge-declared", "header-trickle")

_BLOCK = b"[" + b"1," * (512 * 1024 - 1) + b"1"  # 1 MiB of a JSON array that never closes


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(5)
        with contextlib.suppress(OSError):
            head = _read_head(sock)
            path = head.split(b" ", 2)[1].decode() if head.count(b" ") >= 2 else "/"
            behaviour = path.strip("/").split("/", 1)[0]
            # Once answering, the client decides when this ends (it hangs up).
            sock.settimeout(None)
            _ANSWERS.get(behaviour, _not_found)(sock)


def _read_head(sock: socket.socket) -> bytes:
    """The request line and headers, and the body when a Content-Length announces one."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        if not piece:
            break
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            missing = int(value.strip()) - len(body)
            while missing > 0:
                piece = sock.recv(min(missing, 65536))
                if not piece:
                    break
                missing -= len(piece)
    return head


def _headers(*, length: int | None) -> bytes:
    lines = ["HTTP/1.1 200 OK", "Content-Type: application/json", "Connection: close"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _trickle(sock: socket.socket) -> None:
    sock.sendall(_headers(length=1_000_000))
    for _ in range(1_000_000):
        sock.sendall(b"1")
        time.sleep(0.5)


def _endless(sock: socket.socket) -> None:
    sock.sendall(_headers(length=None))
    while True:
        sock.sendall(_BLOCK[: 8 * 1024])
        time.sleep(0.02)


def _huge(sock: socket.socket, *, declare: bool) -> None:
    sock.sendall(_headers(length=HUGE_BYTES if declare else None))
    sent = 0
    while sent < HUGE_BYTES:
        block = _BLOCK[: HUGE_BYTES - sent]
        sock.sendall(block)
        sent += len(block)


def _header_trickle(sock: socket.socket) -> None:
    sock.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    while True:
        time.sleep(0.5)
        sock.sendall(b"a")


def _not_found(sock: socket.socket) -> None:
    sock.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


_ANSWERS = {
    "trickle": _trickle,
    "endless": _endless,
    "huge": lambda sock: _huge(sock, declare=False),
    "huge-declared": lambda sock: _huge(sock, declare=True),
    "header-trickle": _header_trickle,
}


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


@contextlib.contextmanager
def hostile_http_server() -> Iterator[str]:
    """Serve on a free loopback port; yields ``http://127.0.0.1:<port>``. Stopped on exit."""
    with serving(_Server(("127.0.0.1", 0), _Handler), name="hostile-http") as url:
        yield url
