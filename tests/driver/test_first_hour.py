"""First-hour frictions (issue 17): output that fits a terminal, and messages that say what to do.

These run the real ``mirrorcast`` command line on a copy of the project; the console is 80
columns wide, the width the issue measured at.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from driver.cli import app

runner = CliRunner(env={"COLUMNS": "80"})


@pytest.fixture
def in_project(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    text = (project / "stacks" / "Pulumi.demo.yaml").read_text()
    light = text.replace(
        "  mirrorcast:forecast:\n    horizon: 1h\n    history: 14d\n",
        "  mirrorcast:forecast:\n    horizon: 1h\n    history: 3d\n    models: [seasonal_naive]\n",
    ).replace("current(cpu) > 90% for 5m", "current(cpu) > 30% for 5m")  # fires on the demo
    (project / "stacks" / "Pulumi.light.yaml").write_text(light)
    monkeypatch.chdir(project)
    return project


class TestHistory:
    def test_history_is_one_line_per_plan_and_details_has_the_rest(self, in_project: Path) -> None:
        for at in ("2026-11-23T13:45:00Z", "2026-11-23T13:50:00Z", "2026-11-23T13:55:00Z"):
            cycle = runner.invoke(app, ["run", "--stack", "light", "--once", "--at", at])
            assert cycle.exit_code == 0, cycle.output
        plans = json.loads(runner.invoke(app, ["history", "--stack", "light", "--json"]).stdout)
        assert len(plans) == 3 and all(p["changes"] for p in plans)

        short = runner.invoke(app, ["history", "--stack", "light"])

        assert short.exit_code == 0, short.output
        lines = short.stdout.rstrip("\n").splitlines()
        assert all(len(line) <= 80 for line in lines)
        rows = [line for line in lines if any(p["id"] in line for p in plans)]
        assert len(rows) == 3  # one line each
        assert len(lines) <= 3 + 4  # plus title, header and the --details hint
        assert "activate_mirror web" in rows[0] and "(cpu-now)" in rows[0]
        assert "pools.web.mirror.state" not in short.stdout  # keys are for --details

        detailed = runner.invoke(app, ["history", "--stack", "light", "--details"])

        assert detailed.exit_code == 0, detailed.output
        assert "pools.web.mirror.state: 'paused' -> 'active'" in detailed.stdout
        assert plans[0]["explanation"].strip().splitlines()[0] in detailed.stdout

    def test_an_empty_history_says_so(self, in_project: Path) -> None:
        result = runner.invoke(app, ["history", "--stack", "light"])

        assert result.exit_code == 0 and "no plans journaled for stack light" in result.stdout
