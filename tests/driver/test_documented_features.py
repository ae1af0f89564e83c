"""Documented features that must work end to end through the ``mirrorcast`` command (issue 17).

Each test runs the real command line on a copy of the project (file metrics, the real engine and
planner), so what it checks is what a person typing the command gets.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import pytest
from typer.testing import CliRunner

from driver.cli import app

matplotlib.use("Agg")

runner = CliRunner()

# The demo campaign (examples/demo/events.yaml) starts at 14:30; deciding at the end of the
# recording puts it inside the one-hour horizon.
AT = "2026-11-23T13:55:00Z"


@pytest.fixture
def in_project(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The project copy with a light stack (3 days, one model) beside demo."""
    text = (project / "stacks" / "Pulumi.demo.yaml").read_text()
    light = text.replace(
        "  mirrorcast:forecast:\n    horizon: 1h\n    history: 14d\n",
        "  mirrorcast:forecast:\n    horizon: 1h\n    history: 3d\n    models: [seasonal_naive]\n",
    )
    assert light != text
    (project / "stacks" / "Pulumi.light.yaml").write_text(light)
    monkeypatch.chdir(project)
    return project


def _with_rules_file(project: Path, rules_yaml: str) -> None:
    stack = project / "stacks" / "Pulumi.light.yaml"
    text = stack.read_text()
    stack.write_text(
        text.replace("      rules:\n", "      rules_file: rules/web.yaml\n      rules:\n", 1)
    )
    (project / "stacks" / "rules").mkdir()
    (project / "stacks" / "rules" / "web.yaml").write_text(rules_yaml)


# --------------------------------------------------------------------------- rules_file


class TestRulesFile:
    """docs/rules.md: the driver merges ``pools.<p>.rules_file`` right after loading the stack."""

    ALWAYS = (
        "- name: always-notify\n"
        "  when: current(cpu) >= 0%\n"
        "  actions:\n"
        "    - type: notify\n"
        "      message: rules file loaded\n"
    )

    @pytest.mark.parametrize("command", ["plan", "run"])
    def test_a_rule_from_the_rules_file_is_evaluated(self, in_project: Path, command: str) -> None:
        _with_rules_file(in_project, self.ALWAYS)
        args = [command, "--stack", "light", "--at", AT, "--json"]
        if command == "run":
            args.append("--once")

        result = runner.invoke(app, args)

        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        rules = {r["rule"]: r["status"] for r in report["rules"]}
        assert rules["always-notify"] == "fired"
        assert "log: [web] rules file loaded" in report["notifications"]

    def test_a_rules_file_of_invalid_yaml_stops_the_command_naming_the_file(
        self, in_project: Path
    ) -> None:
        _with_rules_file(in_project, "- name: broken\n  when: [unclosed\n")

        result = runner.invoke(app, ["run", "--stack", "light", "--once", "--at", AT])

        assert result.exit_code == 2, result.output
        assert "rules/web.yaml" in result.output and "invalid YAML" in result.output
        assert "Traceback" not in result.output


# --------------------------------------------------------------------------- forecast


class TestForecastCommand:
    """Every command shows the forecast the driver acts on (events included)."""

    def test_forecast_and_plan_show_the_same_forecast_with_the_campaign_uplift(
        self, in_project: Path
    ) -> None:
        shown = runner.invoke(
            app, ["forecast", "--stack", "light", "--pool", "web", "--at", AT, "--json"]
        )
        planned = runner.invoke(app, ["plan", "--stack", "light", "--at", AT, "--json"])

        assert shown.exit_code == 0, shown.output
        assert planned.exit_code == 0, planned.output
        by_metric = {f["metric"]: f for f in json.loads(shown.stdout)}
        acted_on = {f["metric"]: f for f in json.loads(planned.stdout)["forecasts"]}
        assert set(by_metric) == set(acted_on) == {"cpu", "rps"}
        for metric in ("cpu", "rps"):
            assert by_metric[metric]["quantiles"] == acted_on[metric]["quantiles"]
            assert by_metric[metric]["mean"] == acted_on[metric]["mean"]
        # The event feed reached the forecast: the campaign uplift is among its adjustments.
        assert any("configured uplift" in a for a in by_metric["cpu"]["adjustments"])

    def test_the_plot_shows_history_thresholds_event_windows_and_units(
        self, in_project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        from driver.commands import forecast as command

        figures: list[object] = []
        real = command.forecast_figure

        def keep(*args: object, **kwargs: object) -> object:
            figure = real(*args, **kwargs)  # type: ignore[arg-type]
            figures.append(figure)
            return figure

        monkeypatch.setattr(command, "forecast_figure", keep)
        png = tmp_path / "web.png"

        args = ["forecast", "--stack", "light", "--pool", "web", "--metric", "cpu", "--at", AT]
        result = runner.invoke(app, [*args, "--plot", str(png)])

        assert result.exit_code == 0, result.output
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        (figure,) = figures
        (ax,) = figure.axes  # type: ignore[attr-defined]
        labels = ax.get_legend_handles_labels()[1]
        # the demo's rules: predicted(cpu, p90) > 80% and current(cpu) > 90%
        assert "predicted-cpu: p90 > 80" in labels and "cpu-now: current > 90" in labels
        assert "black-friday-early-access" in labels
        assert ax.get_ylabel() == "cpu (%)"
        observed = next(line for line in ax.get_lines() if line.get_label() == "observed")
        assert len(observed.get_xdata()) > 12  # hours of history before the forecast


# --------------------------------------------------------------------------- rollback requests


class TestRollbackRequests:
    """A request with nothing to roll back is answered and cleared; ``--cancel`` withdraws one."""

    @pytest.fixture
    def firing(self, in_project: Path) -> Path:
        """The light stack with its reactive rule lowered so it fires on the demo's 40% cpu."""
        stack = in_project / "stacks" / "Pulumi.light.yaml"
        text = stack.read_text()
        stack.write_text(text.replace("current(cpu) > 90% for 5m", "current(cpu) > 30% for 5m"))
        return in_project

    def _pending(self) -> list[dict[str, object]]:
        status = runner.invoke(app, ["status", "--stack", "light", "--json"])
        assert status.exit_code == 0, status.output
        pending: list[dict[str, object]] = json.loads(status.stdout)["pending_rollback_requests"]
        return pending

    def test_a_request_with_nothing_active_is_answered_and_does_not_block_activation(
        self, firing: Path
    ) -> None:
        asked = runner.invoke(app, ["rollback", "--stack", "light", "--pool", "web"])
        assert asked.exit_code == 0, asked.output

        cycle = runner.invoke(app, ["run", "--stack", "light", "--once", "--at", AT, "--json"])

        assert cycle.exit_code == 0, cycle.output
        report = json.loads(cycle.stdout)
        assert report["rollbacks_answered"] == ["web"]
        assert "nothing to roll back" in report["explanation"]
        changes = {c["path"]: c["new"] for c in report["changes"]}
        assert changes["pools.web.mirror.state"] == "active"  # cpu-now fired and acted
        assert self._pending() == []

    def test_the_console_says_the_request_was_cleared(self, firing: Path) -> None:
        runner.invoke(app, ["rollback", "--stack", "light", "--pool", "web"])

        cycle = runner.invoke(app, ["run", "--stack", "light", "--once", "--at", AT])

        assert cycle.exit_code == 0, cycle.output
        assert "nothing active to roll back; request cleared" in cycle.stdout

    def test_cancel_withdraws_the_pending_request(self, in_project: Path) -> None:
        runner.invoke(app, ["rollback", "--stack", "light", "--pool", "web"])
        assert len(self._pending()) == 1

        cancelled = runner.invoke(
            app, ["rollback", "--stack", "light", "--pool", "web", "--cancel", "--json"]
        )

        assert cancelled.exit_code == 0, cancelled.output
        assert len(json.loads(cancelled.stdout)["cancelled"]) == 1
        assert self._pending() == []
        again = runner.invoke(app, ["rollback", "--stack", "light", "--pool", "web", "--cancel"])
        assert again.exit_code == 0 and "nothing to cancel" in again.stdout

    def test_cancel_with_now_is_refused_naming_the_option(self, in_project: Path) -> None:
        result = runner.invoke(
            app, ["rollback", "--stack", "light", "--pool", "web", "--cancel", "--now"]
        )

        assert result.exit_code == 2
        words = " ".join(result.output.replace("│", " ").split())  # Rich boxes and wraps errors
        assert "cannot be combined with --now" in words
