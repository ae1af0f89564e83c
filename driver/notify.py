"""Delivering rule notifications: the log, or a webhook (generic JSON or Slack-compatible).

A rule's ``notify`` action becomes a :class:`~policies.Notice` on the plan. After the plan is
journaled, :class:`Notifier` delivers each notice of it:

- ``channel: log`` writes it to the driver's log;
- any other channel names the environment variable that holds a webhook URL (the URL carries the
  webhook's secret, so it lives in the environment, not in the stack file). The notice is POSTed
  as JSON: ``format: json`` sends ``{stack, pool, rule, message, plan_id, decided_at, mode,
  text}``; ``format: slack`` sends ``{"text": ...}``, the body Slack's incoming webhooks accept
  (https://api.slack.com/messaging/webhooks: "a JSON payload with a text field"), which
  Mattermost and Rocket.Chat accept too.

Delivery is **at most once per plan and notice**: the journal records the attempt (``updates``
rows of kind ``notify``) *before* the request is sent, so a driver that crashes or re-runs a
plan never sends the same notice twice; a failure after every attempt is recorded, not retried
by later cycles. Each attempt has a timeout (``driver.notify.timeout``); failed attempts
(connection errors, timeouts, HTTP 429 and 5xx) are retried with exponential backoff (tenacity)
up to ``driver.notify.attempts``. A 4xx other than 429 is not retried: the request itself is
wrong. Everything sent or written (payload, journal, log) passes through
:func:`driver.redact.redact_text`, with the webhook's own variable added to the secrets, so the
URL never appears anywhere.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import requests
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from driver.redact import redact_text
from infra.config import MirrorcastError

if TYPE_CHECKING:
    from driver.journal import Journal
    from infra.config import NotifySettings
    from policies import Notice

__all__ = ["Delivery", "Notifier", "WebhookError", "notice_key", "payload"]

logger = logging.getLogger(__name__)

JOURNAL_KIND = "notify"
"""The ``updates.kind`` of delivery records."""


class WebhookError(MirrorcastError, RuntimeError):
    """One delivery attempt failed. ``retryable`` is False for a request the server refused."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class Delivery:
    """What happened to one notice: ``delivered``, ``failed`` or ``skipped`` (sent before)."""

    notice: Notice
    key: str
    status: str
    detail: str
    attempts: int = 0


def notice_key(notice: Notice, *, plan_id: str) -> str:
    """A short, stable id of one notice of one plan (the at-most-once key in the journal)."""
    raw = json.dumps(
        [plan_id, notice.pool, notice.rule, notice.channel, notice.message], separators=(",", ":")
    )
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:16]


def payload(
    notice: Notice, *, stack: str, plan_id: str, decided_at: datetime, mode: str
) -> dict[str, Any]:
    """The JSON body for ``notice.format`` (see the module docstring)."""
    text = (
        f"mirrorcast [{stack}/{notice.pool}] {notice.message} (rule {notice.rule}, plan {plan_id})"
    )
    if notice.format == "slack":
        return {"text": text}
    return {
        "stack": stack,
        "pool": notice.pool,
        "rule": notice.rule,
        "message": notice.message,
        "plan_id": plan_id,
        "decided_at": decided_at.isoformat(),
        "mode": mode,
        "text": text,
    }


_ANSWER_MAX_BYTES = 64 * 1024
"""Largest webhook answer read (only its status matters; Slack answers ``ok``)."""


def _post(url: str, body: bytes, *, timeout: float) -> int:
    """One POST within ``timeout`` seconds in all; returns the HTTP status or raises :class:`WebhookError`.

    The deadline covers the whole request, answer included, and the answer is capped, so a
    webhook that trickles or never finishes its answer cannot hold the cycle
    (:func:`forecasting.sources.bounded_request`).
    """
    from forecasting.sources import AnswerTooLarge, bounded_request

    try:
        # The scheme was checked by the caller: only http(s) URLs get here.
        with requests.Session() as session:
            response = bounded_request(
                session,
                "POST",
                url,
                data=body,
                headers={"Content-Type": "application/json", "User-Agent": "mirrorcast-driver"},
                deadline=timeout,
                max_bytes=_ANSWER_MAX_BYTES,
            )
    except requests.Timeout:
        raise WebhookError(f"no answer within {timeout:g}s", retryable=True) from None
    except AnswerTooLarge as exc:
        raise WebhookError(f"answer refused: {exc}", retryable=False) from None
    except requests.ConnectionError as exc:
        raise WebhookError(f"cannot connect ({_root_cause(exc)})", retryable=True) from None
    except requests.RequestException as exc:
        raise WebhookError(f"connection failed ({exc})", retryable=True) from None
    status = int(response.status_code)
    if status >= 400:
        retryable = status == 429 or status >= 500
        raise WebhookError(f"HTTP {status} {response.reason}", retryable=retryable)
    return status


def _root_cause(exc: BaseException) -> str:
    """The innermost error message (requests nests urllib3's), which names refused/DNS plainly."""
    while exc.__context__ is not None and exc.__context__ is not exc:
        exc = exc.__context__
    return str(exc) or type(exc).__name__


class Notifier:
    """Delivers a plan's notices and records each delivery in the journal.

    :param journal: where deliveries are recorded (and looked up, for at most once).
    :param stack: the stack name (in payloads and journal rows).
    :param settings: ``driver.notify`` (timeout per attempt, attempts).
    :param clock: the current UTC time, for journal rows.
    :param wait: tenacity wait strategy between attempts; default exponential 0.5 s to 4 s.
    """

    def __init__(
        self,
        *,
        journal: Journal,
        stack: str,
        settings: NotifySettings,
        clock: Callable[[], datetime],
        wait: Any = None,
    ) -> None:
        self.journal = journal
        self.stack = stack
        self.settings = settings
        self.clock = clock
        self.wait = wait if wait is not None else wait_exponential(multiplier=0.5, max=4)

    def deliver(
        self, notices: Iterable[Notice], *, plan_id: str, decided_at: datetime, mode: str
    ) -> list[Delivery]:
        """Deliver each notice not yet recorded for ``plan_id``; one :class:`Delivery` each."""
        done = self._recorded(plan_id)
        out: list[Delivery] = []
        for notice in notices:
            key = notice_key(notice, plan_id=plan_id)
            if key in done:
                out.append(Delivery(notice, key, "skipped", "already sent for this plan"))
                continue
            done.add(key)
            # Intent first: from here on this notice counts as sent, whatever happens next.
            self._record(plan_id, key, ok=False, summary=f"sending to {notice.channel}")
            delivery = self._deliver_one(
                notice, key, plan_id=plan_id, decided_at=decided_at, mode=mode
            )
            self._record(plan_id, key, ok=delivery.status == "delivered", summary=delivery.detail)
            out.append(delivery)
        return out

    # ------------------------------------------------------------------ internals

    def _deliver_one(
        self, notice: Notice, key: str, *, plan_id: str, decided_at: datetime, mode: str
    ) -> Delivery:
        secrets = [] if notice.channel == "log" else [notice.channel]
        body = payload(notice, stack=self.stack, plan_id=plan_id, decided_at=decided_at, mode=mode)
        text = redact_text(json.dumps(body), extra_env=secrets)
        if notice.channel == "log":
            logger.warning("notification: %s", redact_text(body.get("text", notice.text)))
            return Delivery(notice, key, "delivered", "written to the log", attempts=1)
        url = os.environ.get(notice.channel, "").strip()
        if not url:
            return Delivery(
                notice,
                key,
                "failed",
                f"channel {notice.channel}: the environment variable {notice.channel} "
                "(the webhook URL) is not set",
            )
        if not url.startswith(("https://", "http://")):
            return Delivery(
                notice,
                key,
                "failed",
                f"channel {notice.channel}: the value of {notice.channel} is not an http(s) URL",
            )
        timeout = self.settings.timeout.total_seconds()
        attempts = 0

        def attempt() -> int:
            nonlocal attempts
            attempts += 1
            return _post(url, text.encode("utf-8"), timeout=timeout)

        retrying = Retrying(
            stop=stop_after_attempt(self.settings.attempts),
            wait=self.wait,
            retry=retry_if_exception(lambda e: isinstance(e, WebhookError) and e.retryable),
            reraise=False,
        )
        try:
            status = retrying(attempt)
        except RetryError as exc:
            cause = exc.last_attempt.exception()
            detail = f"channel {notice.channel}: {cause} after {attempts} attempt(s)"
            return Delivery(notice, key, "failed", redact_text(detail, extra_env=secrets), attempts)
        except WebhookError as exc:
            detail = f"channel {notice.channel}: {exc} (not retried)"
            return Delivery(notice, key, "failed", redact_text(detail, extra_env=secrets), attempts)
        return Delivery(
            notice,
            key,
            "delivered",
            f"channel {notice.channel}: HTTP {status} after {attempts} attempt(s)",
            attempts,
        )

    def _recorded(self, plan_id: str) -> set[str]:
        rows = self.journal.updates_of_plan(plan_id=plan_id, kind=JOURNAL_KIND)
        return {str(row["summary"]).split(":", 1)[0] for row in rows}

    def _record(self, plan_id: str, key: str, *, ok: bool, summary: str) -> None:
        self.journal.record_update(
            stack=self.stack,
            plan_id=plan_id,
            kind=JOURNAL_KIND,
            at=self.clock(),
            ok=ok,
            summary=f"{key}: {redact_text(summary)}",
        )
