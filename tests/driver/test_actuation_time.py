"""Decision-to-effect time: measured from the journal, added to every rule's lead."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from driver_helpers import NOW, ScriptedEngine, activation_plan

import driver.service
from driver.cycle import actuation_estimate
from driver.journal import Journal
from driver.service import Driver

AT = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)


def journal_with_updates(path: Path, project: Path, seconds: list[float]) -> Journal:
    """A journal whose plans' `pulumi up` finished ``seconds`` after their cycle started."""
    journal = Journal(f"sqlite:///{path}")
    plan = activation_plan(project)
    for index, taken in enumerate(seconds):
        started = NOW + timedelta(hours=index)
        cycle = journal.start_cycle(stack="demo", mode="apply", at=started)
        plan_id = journal.record_plan(stack="demo", cycle_id=cycle, plan=plan, status="applying")
        journal.record_update(
            stack="demo",
            plan_id=plan_id,
            kind="up",
            at=started + timedelta(seconds=taken),
            ok=True,
            summary="updated",
        )
    return journal


def test_the_journal_measures_cycle_start_to_up_finished(tmp_path: Path, project: Path) -> None:
    journal = journal_with_updates(tmp_path / "j.db", project, [90, 120, 600])
    # A failed update and a gitops push are not `pulumi up` finishing.
    cycle = journal.start_cycle(stack="demo", mode="apply", at=NOW + timedelta(days=1))
    plan_id = journal.record_plan(
        stack="demo", cycle_id=cycle, plan=activation_plan(project), status="failed"
    )
    journal.record_update(
        stack="demo", plan_id=plan_id, kind="up", at=NOW + timedelta(days=2), ok=False, summary="x"
    )
    journal.record_update(
        stack="demo",
        plan_id=plan_id,
        kind="gitops",
        at=NOW + timedelta(days=2),
        ok=True,
        summary="x",
    )
    assert journal.actuation_times(stack="demo") == [
        timedelta(seconds=600),
        timedelta(seconds=120),
        timedelta(seconds=90),
    ]
    assert journal.actuation_times(stack="other") == []
    journal.close()


def test_a_high_percentile_of_recent_times_once_enough_are_measured() -> None:
    minutes = [timedelta(minutes=m) for m in (3, 2, 2, 2, 10)]
    assert actuation_estimate(minutes[:2], percentile=90) is None  # the default stands in
    estimate = actuation_estimate(minutes, percentile=90)
    assert estimate is not None and timedelta(minutes=6) < estimate < timedelta(minutes=10)
    assert actuation_estimate(minutes, percentile=50) == timedelta(minutes=2)


def test_the_driver_hands_the_measured_time_to_the_planner(
    tmp_path: Path, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = journal_with_updates(tmp_path / "j.db", project, [240, 300, 360])
    seen: list[Any] = []
    real = driver.service.decide

    def spy(**kwargs: Any) -> Any:
        seen.append(kwargs["actuation_time"])
        return real(**kwargs)

    monkeypatch.setattr(driver.service, "decide", spy)
    service = Driver(
        stack="demo",
        root=project,
        mode="plan",
        journal=journal,
        engine=ScriptedEngine({"cpu": 95.0, "rps": 100.0}),
        clock=lambda: AT,
    )
    report = service.preview(now=AT)
    assert seen and seen[0] is not None
    assert timedelta(minutes=5) < seen[0] <= timedelta(minutes=6)  # p90 of 4, 5 and 6 minutes
    # The rule's lead in the explanation includes it.
    assert report.result.plan.rules
    journal.close()
