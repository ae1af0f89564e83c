"""HTTP requests with a whole-request deadline and a cap on the answer's size.

``requests`` alone bounds each socket read, not the request: a server that trickles one byte
every half second never times out, and a 1.5 GB answer is read whole into memory. Every HTTP
client of the driver (the Prometheus source, the GitHub API for pull requests) goes through
:func:`bounded_request`, which

- streams the body in the pieces the socket delivers (``read1``: whatever has arrived, never
  waiting to fill a buffer), checking the deadline after each piece;
- gives every socket wait at most the time left before the deadline, so a silent server is cut
  off at the deadline too, and waits for the status and headers on a daemon thread, so headers
  that trickle in are cut off at the deadline as well;
- stops reading once the body exceeds ``max_bytes`` (and refuses at once when the
  ``Content-Length`` says it will), so memory stays bounded whatever the server sends.

The answer is returned as the ``requests.Response`` with its body already read, so callers use
``.json()``, ``.text`` and ``.status_code`` as usual.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import requests

from infra.config import MirrorcastError

__all__ = ["AnswerTooLarge", "DeadlineExceeded", "bounded_request"]

_PIECE = 64 * 1024
"""Largest piece read at once (``read1`` returns less when less has arrived)."""


class DeadlineExceeded(MirrorcastError, requests.Timeout):
    """The whole request (connect, headers, body) took longer than its deadline.

    A :class:`requests.Timeout`, so callers that already map timeouts keep working.
    """


class AnswerTooLarge(MirrorcastError, requests.RequestException):
    """The answer's body is larger than the cap; reading stopped there."""

    def __init__(self, message: str, *, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


def bounded_request(
    session: requests.Session,
    method: str,
    url: str,
    *,
    deadline: float,
    max_bytes: int,
    **kwargs: Any,
) -> requests.Response:
    """``session.request(method, url, **kwargs)`` finished within ``deadline`` s, body at most ``max_bytes``.

    :param session: the session to send on.
    :param method: HTTP method (``GET``, ``POST``).
    :param url: the full URL.
    :param deadline: seconds for the whole request, from now until the last byte of the body.
    :param max_bytes: largest body accepted (after content decoding).
    :param kwargs: passed to ``session.request`` (``data``, ``json``, ``headers``, ``params``);
        ``timeout`` and ``stream`` are set here.
    :raises DeadlineExceeded: the deadline passed before the answer was complete.
    :raises AnswerTooLarge: the body is larger than ``max_bytes``.
    :raises requests.RequestException: as ``requests`` raises them (connection refused, ...).
    """
    started = time.monotonic()
    ends = started + deadline

    def left() -> float:
        remaining = ends - time.monotonic()
        if remaining <= 0:
            raise DeadlineExceeded(f"no complete answer within {deadline:g} s")
        return remaining

    response = _headers_within(
        session, method, url, seconds=left(), deadline=deadline, kwargs=kwargs
    )
    try:
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            raise AnswerTooLarge(
                f"the answer is {int(declared):,} bytes, more than the limit of {max_bytes:,} bytes",
                limit=max_bytes,
            )
        pieces: list[bytes] = []
        size = 0
        raw = response.raw
        while True:
            _set_socket_timeout(response, left())
            try:
                piece = raw.read1(_PIECE, decode_content=True)
            except Exception as exc:
                # urllib3 wraps socket timeouts in its own ReadTimeoutError; after the deadline
                # any read error is the deadline's doing.
                if time.monotonic() >= ends - 0.05:
                    raise DeadlineExceeded(f"no complete answer within {deadline:g} s") from exc
                raise requests.ConnectionError(str(exc)) from exc
            if not piece:
                break
            size += len(piece)
            if size > max_bytes:
                raise AnswerTooLarge(
                    f"the answer is larger than the limit of {max_bytes:,} bytes; reading stopped",
                    limit=max_bytes,
                )
            pieces.append(piece)
            left()
        # requests keeps a body it has read in ``_content``; .content, .text and .json() use it.
        response._content = b"".join(pieces)
        response._content_consumed = True  # type: ignore[attr-defined]
        return response
    finally:
        # Returns the connection to the pool when the body was read, drops it otherwise.
        response.close()


def _headers_within(
    session: requests.Session,
    method: str,
    url: str,
    *,
    seconds: float,
    deadline: float,
    kwargs: dict[str, Any],
) -> requests.Response:
    """Send the request and read the status and headers, giving up after ``seconds``.

    Headers that trickle in (a byte every half second) never trip a per-read timeout, and
    ``requests`` gives no handle on the socket before they are complete, so the wait happens
    on a daemon thread: at the deadline the caller moves on, and the thread closes the
    response if it ever arrives (http.client caps headers at 100 lines of 64 KiB, so what it
    holds meanwhile is bounded).
    """
    outcome: dict[str, Any] = {}
    done = threading.Event()
    lock = threading.Lock()

    def send() -> None:
        try:
            answer = session.request(method, url, timeout=seconds, stream=True, **kwargs)
        except BaseException as exc:  # handed to the caller below
            outcome["error"] = exc
        else:
            with lock:
                if outcome.get("abandoned"):
                    answer.close()
                    return
                outcome["response"] = answer
        done.set()

    threading.Thread(target=send, name="bounded-request", daemon=True).start()
    if not done.wait(seconds):
        with lock:
            outcome["abandoned"] = True
            late = outcome.pop("response", None)
        if late is not None:
            late.close()
        raise DeadlineExceeded(f"no complete answer within {deadline:g} s")
    error = outcome.get("error")
    if isinstance(error, requests.Timeout):
        raise DeadlineExceeded(f"no complete answer within {deadline:g} s") from error
    if error is not None:
        raise error
    response: requests.Response = outcome["response"]
    return response


def _set_socket_timeout(response: requests.Response, seconds: float) -> None:
    """Bound the next socket wait by what is left of the deadline (urllib3 set the initial one)."""
    connection = getattr(response.raw, "_connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        sock.settimeout(max(0.01, seconds))
