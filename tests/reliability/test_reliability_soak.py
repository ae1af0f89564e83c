"""A short soak in CI: real driver cycles over a real trace excerpt with random, seeded faults.

The long soak is ``benchmarks/soak.py TRACES_DIR --cycles N`` (see docs/reliability.md).
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from soak_harness import FAULT_KINDS, STACK, check_invariants, make_project, run_soak

from infra.config import load_stack

TRACE = (
    Path(__file__).resolve().parents[1] / "data" / "backtest" / "elb_request_count_8c0756_4days.csv"
)


def test_a_seeded_soak_with_random_faults_loses_and_repeats_nothing(tmp_path: Path) -> None:
    root = make_project(tmp_path / "project", TRACE)

    report, _journal, _cli = run_soak(root, cycles=100, seed=7, fault_rate=0.4)

    print("\n".join(report.lines()))
    assert report.problems == []
    # The run exercised what it claims to: every fault kind, kills with restarts, activations
    # and rollbacks, and at least one interrupted update reconciled.
    assert set(report.faults) == set(FAULT_KINDS)
    assert report.restarts >= 3
    assert report.recoveries >= 1
    assert report.activations >= 2 and report.rollbacks_completed >= 1
    assert report.activations == report.activation_decisions
    assert report.degraded_cycles >= 1
    # The same seed gives the same fault schedule.
    again, _journal, _cli = run_soak(
        make_project(tmp_path / "again", TRACE), cycles=8, seed=7, fault_rate=0.4
    )
    first, _j, _c = run_soak(
        make_project(tmp_path / "first", TRACE), cycles=8, seed=7, fault_rate=0.4
    )
    assert again.faults == first.faults


def test_the_invariant_check_catches_a_lost_journal_entry(tmp_path: Path) -> None:
    root = make_project(tmp_path / "project", TRACE)
    initial = load_stack(STACK, root)
    report, journal, cli = run_soak(root, cycles=40, seed=3, fault_rate=0.0)
    assert report.problems == [] and report.plans_applied >= 1
    applied = [
        p for p in journal.plans(stack=STACK, limit=1000) if p.status == "applied" and p.changes
    ]
    with journal.engine.begin() as c:
        for table in ("config_changes", "updates"):
            c.execute(sa.text(f"DELETE FROM {table} WHERE plan_id = :p"), {"p": applied[-1].id})
        c.execute(sa.text("DELETE FROM plans WHERE id = :p"), {"p": applied[-1].id})
    report.activation_decisions = report.plans_applied = report.rollbacks_completed = 0

    problems = check_invariants(root, journal, cli, initial=initial, report=report)

    assert any("replay" in problem for problem in problems), problems
