"""Rule notifications are delivered (docs/rules.md: "the driver delivers"), against a real HTTP server.

The webhook is a real ``http.server`` on a loopback port: what it receives is the request the
driver sent over TCP, so payload shape, retries and timeouts are tested as they happen on a wire.
The Slack-compatible body is checked against Slack's documented contract for incoming webhooks
(https://api.slack.com/messaging/webhooks: POST a JSON body whose ``text`` field is the message).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from driver_helpers import activation_plan
from tenacity import wait_none
from typer.testing import CliRunner

from driver.cli import app
from driver.journal import Journal
from driver.notify import Notifier
from infra.config import NotifySettings
from policies._plan import Notice

NOW = datetime(2026, 11, 23, 13, 55, tzinfo=UTC)
runner = CliRunner()


class Webhook:
    """A loopback HTTP server that records each POST and answers from a script of statuses."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.statuses: list[int] = []  # answered in order; 200 once exhausted
        self.delay_s = 0.0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                outer.received.append(
                    {"headers": dict(self.headers), "body": body, "json": json.loads(body)}
                )
                if outer.delay_s:
                    time.sleep(outer.delay_s)
                status = outer.statuses.pop(0) if outer.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = (
            f"http://127.0.0.1:{self.server.server_address[1]}/hook/T000/B000/s3cr3t-hook-path"
        )
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook(monkeypatch: pytest.MonkeyPatch) -> Iterator[Webhook]:
    server = Webhook()
    monkeypatch.setenv("OPS_WEBHOOK", server.url)
    yield server
    server.close()


@pytest.fixture
def journal(tmp_path: Path, project: Path) -> Iterator[Journal]:
    """A journal holding two plans, ``plan-1`` and ``plan-2`` (deliveries refer to a plan)."""
    j = Journal(f"sqlite:///{tmp_path / 'journal.db'}")
    cycle = j.start_cycle(stack="demo", mode="apply", at=NOW)
    for name in ("plan-1", "plan-2"):
        real = j.record_plan(
            stack="demo", cycle_id=cycle, plan=activation_plan(project), status="applied"
        )
        PLAN_IDS[name] = real
    yield j
    j.close()


PLAN_IDS: dict[str, str] = {}


def notifier(journal: Journal, **settings: Any) -> Notifier:
    return Notifier(
        journal=journal,
        stack="demo",
        settings=NotifySettings(**settings),
        clock=lambda: NOW,
        wait=wait_none(),  # retries at once: the test is about how many, not how long apart
    )


def notice(**fields: Any) -> Notice:
    values: dict[str, Any] = {
        "pool": "web",
        "rule": "predicted-cpu",
        "channel": "OPS_WEBHOOK",
        "message": "mirror activating ahead of the campaign",
    }
    values.update(fields)
    return Notice(**values)


def deliver(n: Notifier, *notices: Notice, plan_id: str = "plan-1") -> list[Any]:
    return n.deliver(list(notices), plan_id=PLAN_IDS[plan_id], decided_at=NOW, mode="apply")


class TestPayloads:
    def test_the_generic_json_payload_names_stack_pool_rule_plan_and_time(
        self, webhook: Webhook, journal: Journal
    ) -> None:
        (delivery,) = deliver(notifier(journal), notice())

        assert delivery.status == "delivered", delivery.detail
        (request,) = webhook.received
        assert request["headers"]["Content-Type"] == "application/json"
        body = request["json"]
        assert body["stack"] == "demo" and body["pool"] == "web"
        assert body["rule"] == "predicted-cpu" and body["plan_id"] == PLAN_IDS["plan-1"]
        assert body["message"] == "mirror activating ahead of the campaign"
        assert body["decided_at"] == NOW.isoformat() and body["mode"] == "apply"

    def test_the_slack_payload_is_an_incoming_webhook_body(
        self, webhook: Webhook, journal: Journal
    ) -> None:
        deliver(notifier(journal), notice(format="slack"))

        (request,) = webhook.received
        # Slack incoming webhooks: a JSON object whose "text" is the message.
        assert set(request["json"]) == {"text"}
        assert "mirror activating ahead of the campaign" in request["json"]["text"]
        assert "demo/web" in request["json"]["text"]

    def test_secrets_never_reach_the_payload_or_the_journal(
        self, webhook: Webhook, journal: Journal, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("GITHUB_TOKEN", "ghp_0123456789abcdefSECRET")
        leaky = notice(message=f"token is ghp_0123456789abcdefSECRET, hook {webhook.url}")

        deliver(notifier(journal), leaky)

        (request,) = webhook.received
        assert "ghp_0123456789abcdefSECRET" not in request["body"]
        assert webhook.url not in request["body"] and "[redacted]" in request["body"]
        rows = journal.updates(stack="demo")
        assert rows and all(webhook.url not in r["summary"] for r in rows)


class TestDelivery:
    def test_a_failing_webhook_is_retried_until_it_answers(
        self, webhook: Webhook, journal: Journal
    ) -> None:
        webhook.statuses = [503, 500]

        (delivery,) = deliver(notifier(journal, attempts=3), notice())

        assert delivery.status == "delivered" and delivery.attempts == 3
        assert len(webhook.received) == 3

    def test_a_webhook_that_keeps_failing_is_recorded_as_not_delivered(
        self, webhook: Webhook, journal: Journal
    ) -> None:
        webhook.statuses = [500, 500, 500]

        (delivery,) = deliver(notifier(journal, attempts=3), notice())

        assert delivery.status == "failed" and "HTTP 500" in delivery.detail
        assert len(webhook.received) == 3
        rows = journal.updates_of_plan(plan_id=PLAN_IDS["plan-1"], kind="notify")
        assert [r["ok"] for r in rows] == [False, False]  # the intent, then the failure
        assert "after 3 attempt(s)" in rows[-1]["summary"]

    def test_a_refused_request_is_not_retried(self, webhook: Webhook, journal: Journal) -> None:
        webhook.statuses = [404]

        (delivery,) = deliver(notifier(journal, attempts=3), notice())

        assert delivery.status == "failed" and "not retried" in delivery.detail
        assert len(webhook.received) == 1

    def test_a_webhook_that_does_not_answer_times_out(
        self, webhook: Webhook, journal: Journal
    ) -> None:
        webhook.delay_s = 2.0
        started = time.monotonic()

        (delivery,) = deliver(
            notifier(journal, attempts=1, timeout=timedelta(seconds=0.3)), notice()
        )

        assert delivery.status == "failed" and "no answer within 0.3s" in delivery.detail
        assert time.monotonic() - started < 1.9  # it did not wait for the slow answer

    def test_each_notice_of_a_plan_is_sent_at_most_once(
        self, webhook: Webhook, journal: Journal
    ) -> None:
        n = notifier(journal)
        deliver(n, notice())

        (again,) = deliver(n, notice())  # the same plan delivered again (a re-run, a recovery)

        assert again.status == "skipped"
        assert len(webhook.received) == 1
        deliver(n, notice(), plan_id="plan-2")  # a later decision notifies again
        assert len(webhook.received) == 2

    def test_an_unset_webhook_variable_is_a_clear_failure(
        self, journal: Journal, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv("NOBODY_HOOK", raising=False)

        (delivery,) = deliver(notifier(journal), notice(channel="NOBODY_HOOK"))

        assert delivery.status == "failed"
        assert "environment variable NOBODY_HOOK (the webhook URL) is not set" in delivery.detail


def test_a_driver_cycle_delivers_a_fired_rules_notification(
    project: Path, webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end: ``mirrorcast run --once`` on the demo data with a notify rule that fires."""
    stack = project / "stacks" / "Pulumi.demo.yaml"
    text = stack.read_text()
    light = text.replace(
        "  mirrorcast:forecast:\n    horizon: 1h\n    history: 14d\n",
        "  mirrorcast:forecast:\n    horizon: 1h\n    history: 3d\n    models: [seasonal_naive]\n",
    ).replace(
        "      rules:\n",
        "      rules:\n"
        "        - name: tell-ops\n"
        "          when: current(cpu) > 30% for 5m\n"
        "          actions:\n"
        "            - type: notify\n"
        "              channel: OPS_WEBHOOK\n"
        "              format: slack\n"
        "              message: cpu above 30%\n",
        1,
    )
    stack.write_text(light)
    monkeypatch.chdir(project)

    result = runner.invoke(
        app, ["run", "--stack", "demo", "--once", "--at", "2026-11-23T13:55:00Z", "--json"]
    )

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    (request,) = webhook.received
    assert "cpu above 30%" in request["json"]["text"]
    assert report["plan_id"] in request["json"]["text"]
    journal = Journal(None)
    try:
        rows = journal.updates_of_plan(plan_id=report["plan_id"], kind="notify")
    finally:
        journal.close()
    assert rows[-1]["ok"] and "HTTP 200 after 1 attempt(s)" in rows[-1]["summary"]
